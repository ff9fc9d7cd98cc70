/**
 * Failure types of governed runs. Callers match on `type` (`ApplicationFailure.type`), never on text.
 * Workflow code and message handlers throw only these, through the factories below.
 * MAINTENANCE: keep README "Failure types" in sync.
 */
import { ApplicationFailure } from '@temporalio/common';

export const FailureType = {
  /** Workflow input failed validation; `details[0]` lists every bad field. Non-retryable. */
  InvalidRunInput: 'InvalidRunInput',
  /** A signal or update payload failed validation. */
  InvalidMessage: 'InvalidMessage',
  /** The decision names a different action hash than the run's current one. */
  ActionHashMismatch: 'ActionHashMismatch',
  /** The requester tried to decide on their own run. */
  SelfApprovalRefused: 'SelfApprovalRefused',
  /** The approver holds none of the eligible roles. */
  ApproverNotEligible: 'ApproverNotEligible',
  /** Policy requires a signed decision and the signature is missing, malformed or wrong. */
  SignatureInvalid: 'SignatureInvalid',
  /** The decision would give one person two duties the policy names as incompatible. */
  IncompatibleDuties: 'IncompatibleDuties',
  /** A decision arrived in a state that takes none (e.g. after the run ended). */
  DecisionNotExpected: 'DecisionNotExpected',
  /** A decision id was reused with different content. */
  DecisionConflict: 'DecisionConflict',
  /** Someone other than the requester or an operator tried to cancel. */
  CancelNotAllowed: 'CancelNotAllowed',
  /** Only the requester may amend, and only after requestChanges. */
  AmendNotAllowed: 'AmendNotAllowed',
  /** Manual completion by someone not eligible, or for another action. */
  ManualCompletionRefused: 'ManualCompletionRefused',
  /** Policy denied the action. */
  PolicyDenied: 'PolicyDenied',
  /** The runtime refused the action; retrying will not help. Non-retryable. */
  RuntimeRejected: 'RuntimeRejected',
  /** The runtime could not be reached or failed transiently. Retryable. */
  RuntimeUnavailable: 'RuntimeUnavailable',
  /** No adapter is registered for the action's runtime. Non-retryable. */
  UnknownRuntime: 'UnknownRuntime',
  /** The workspace has no connection to this runtime in its policy file. Non-retryable. */
  RuntimeNotConfigured: 'RuntimeNotConfigured',
  /**
   * The request may have reached the runtime but no answer came back, and the runtime offers no way to
   * look the call up. Resending could apply the action twice, so the run stops for a person to check.
   */
  RuntimeOutcomeUnknown: 'RuntimeOutcomeUnknown',
  /** The egress guard refused an outbound call (host not allow-listed, blocked address, redirect). */
  EgressDenied: 'EgressDenied',
  /** The run enables an agent tool that was not declared, is not allow-listed, or needs a stricter tier. */
  ToolNotAllowed: 'ToolNotAllowed',
  /** The secret store refused or has no credentials for this workspace and runtime. Non-retryable. */
  CredentialsDenied: 'CredentialsDenied',
  /** The secret store is sealed or unreachable. Retryable. */
  CredentialsUnavailable: 'CredentialsUnavailable',
  /**
   * The evidence sink already holds different entries for this run (a fork), the batch does not
   * continue the stored chain, or the log asked for is under a name that is no workspace id (no log
   * could ever hold it). Non-retryable: the run stops before it acts, for a person to check.
   */
  EvidenceConflict: 'EvidenceConflict',
  /** The evidence sink could not be written (disk, database). Retryable: the run waits for it. */
  EvidenceUnavailable: 'EvidenceUnavailable',
  /**
   * An execution asked to continue another execution's evidence chain (a reset run continuing the run
   * it was reset from). Non-retryable; the workflow starts this execution's own chain instead.
   */
  EvidenceExecutionMoved: 'EvidenceExecutionMoved',
  /**
   * An event subscriber did not take an event (down, 5xx, 408, 429). Retried by the delivery activity;
   * never fails a run: what stays undelivered shows in `status.events.undelivered`.
   */
  SubscriberUnavailable: 'SubscriberUnavailable',
  /**
   * Something crossed workspaces: a run whose workflow id names another workspace than its input, a
   * principal of another workspace, an activity asked for another workspace's data, or a payload to
   * store under a name that is no workspace id. Refused and recorded; non-retryable.
   */
  WorkspaceMismatch: 'WorkspaceMismatch',
  /**
   * A run reached a worker that does not serve its workspace (started on another task queue than its
   * workspace's isolation setting routes it to). Non-retryable: nothing of it runs there.
   */
  WrongTaskQueue: 'WrongTaskQueue',
  /**
   * A quota message that does not prove it comes from the run's coordinator (a grant, queue notice
   * or probe without the proof keyed by the lease's secret, or for another lease), or a release
   * without the lease's secret. Refused and recorded; it changes nothing.
   */
  QuotaProofInvalid: 'QuotaProofInvalid',
  /**
   * Break-glass refused: the workspace has none, the principal holds no break-glass role, the run is
   * not in a state it releases (only AwaitingApproval and VetoWindow; never ManualOnly, a denied or
   * ended run), or it was already released. Recorded; nothing changes.
   */
  BreakGlassNotAllowed: 'BreakGlassNotAllowed',
  /** Break-glass refused by the workspace's rate limit (per principal or per workspace). Recorded. */
  BreakGlassRateLimited: 'BreakGlassRateLimited',
  /** A break-glass review by someone who may not review it (the releaser, the requester, a second review by the same person), or with no review open. */
  BreakGlassReviewRefused: 'BreakGlassReviewRefused',
  /**
   * An emergency revocation covers the action (runtime, target, tool or runtime version): the dispatch
   * activity refused to call the runtime, and the run ends `Revoked`. Non-retryable.
   */
  Revoked: 'Revoked',
  /**
   * The worker's cache of revocations is older than its bound (the registry did not answer): nothing
   * is dispatched unchecked; retryable, the run waits in Dispatching until the registry answers.
   */
  RevocationsUnavailable: 'RevocationsUnavailable',
  /**
   * The revocation registry refused a request: an unknown or already lifted revocation, a full
   * registry; or a run was told of a revocation the registry does not hold (forged). Non-retryable.
   */
  RevocationRefused: 'RevocationRefused',
  /**
   * A standing approval (grant) was refused: its rule accepts none, the grantor may not grant for it,
   * it asks more uses or a longer validity than the rule allows, or it is unknown. Non-retryable.
   */
  GrantRefused: 'GrantRefused',
  /** A grant could not be used: revoked, expired, or every use taken (`grant list` shows which). */
  GrantUnavailable: 'GrantUnavailable',
  /**
   * The worker runs governed runs from a workflow bundle without Portarium's workflow interceptors
   * (workers/workflow-clock.ts), which the run's clock needs. Non-retryable; use the prebuilt
   * bundle, or add `WORKFLOW_CLOCK_MODULE` (portarium-worker/worker) to
   * your own bundle's `workflowInterceptorModules`.
   */
  WorkerMisconfigured: 'WorkerMisconfigured',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** Failure types the dispatch activity must not retry. */
export const NON_RETRYABLE_DISPATCH_FAILURES: string[] = [
  FailureType.RuntimeRejected,
  FailureType.UnknownRuntime,
  FailureType.InvalidMessage,
  FailureType.RuntimeNotConfigured,
  FailureType.RuntimeOutcomeUnknown,
  FailureType.EgressDenied,
  FailureType.ToolNotAllowed,
  FailureType.CredentialsDenied,
];

function failure(type: FailureType, message: string, nonRetryable: boolean, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable, details: details ? [details] : undefined });
}

/** A refused governance request (decision, cancel, amend): never retried, type says why. */
export const refusal = (type: FailureType, message: string, details?: unknown) => failure(type, message, true, details);

/** The runtime refused the action; retrying will not help. */
export const runtimeRejected = (message: string, details?: unknown) => failure(FailureType.RuntimeRejected, message, true, details);

/** The runtime is unreachable or failed transiently; the activity is retried. */
export const runtimeUnavailable = (message: string, details?: unknown) => failure(FailureType.RuntimeUnavailable, message, false, details);

/** The call may have been applied and cannot be looked up: never resend it blindly. */
export const runtimeOutcomeUnknown = (message: string, details?: unknown) => failure(FailureType.RuntimeOutcomeUnknown, message, true, details);
