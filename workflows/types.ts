/**
 * Serialisable shapes of the governed run: its input, its decisions, its status and its result.
 * Plain types and const-objects only, so this file is safe in the workflow bundle and in clients.
 * The zod schemas that check these shapes at boundaries live in `./schemas.ts`.
 */

import type { QuotaLimits } from '../policies/quotas';
import type { QuotaBlocker, QuotaBookState } from './quota/book';
import type { BreakGlassStatus } from './break-glass/types';
import type { EvidenceEntry } from './evidence-chain';

/** Execution tiers, weakest first. `Deny` is a policy effect, not a tier a run can wait in. */
export const Tier = {
  Auto: 'Auto',
  Assisted: 'Assisted',
  HumanApprove: 'HumanApprove',
  ManualOnly: 'ManualOnly',
} as const;
export type Tier = (typeof Tier)[keyof typeof Tier];

/**
 * The tier order (weakest first), ranks and comparisons live with the policy language in
 * policies/vocabulary.ts, the lowest floor, so the evaluator, the agent-tool floors and the run all
 * compare tiers by one table. Re-exported here, next to the Tier type.
 */
export { TIER_ORDER, TIER_RANK, isStricterTier, stricterTier, tierRank } from '../policies/vocabulary';
/** Compile-time check that the table and the Tier const-object name the same tiers. */
type SameTiers<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const sameTiers: SameTiers<Tier, import('../policies/vocabulary').TierName> = true;
void sameTiers;

/**
 * Run states as operators see them in `status`, the `PortariumState` search attribute and evidence.
 * MAINTENANCE: keep README "Run states" in sync.
 */
export const RunState = {
  /** Input accepted, policy being evaluated. */
  Evaluating: 'Evaluating',
  /** HumanApprove: waiting for the quorum of approvals. */
  AwaitingApproval: 'AwaitingApproval',
  /** HumanApprove: a reviewer asked for changes; waiting for the requester's `amendAction`. */
  ChangesRequested: 'ChangesRequested',
  /** ManualOnly: waiting for `manualCompletion` by a person who did the work. */
  AwaitingManualCompletion: 'AwaitingManualCompletion',
  /** Assisted: the plan is announced; a reviewer may veto or release early until the window ends. */
  VetoWindow: 'VetoWindow',
  /**
   * Allowed, and waiting for a workspace quota lease for its runtime (concurrent dispatches or
   * dispatches per minute); `status.quota` says which limit and `deadlines.quotaFreesAt` until when.
   */
  AwaitingQuota: 'AwaitingQuota',
  /** The action is being executed by its runtime. */
  Dispatching: 'Dispatching',
  /** The runtime executed the action. Terminal. */
  Succeeded: 'Succeeded',
  /** ManualOnly: a person reported the work done. Terminal. */
  ManuallyCompleted: 'ManuallyCompleted',
  /** The runtime refused or failed the action (after retries). Terminal. */
  Failed: 'Failed',
  /** A reviewer rejected (or vetoed) the action. Terminal. */
  Rejected: 'Rejected',
  /** Policy denied the action; nothing was dispatched. Terminal. */
  Denied: 'Denied',
  /** No decision (or manual completion) arrived before the deadline. Terminal. */
  Expired: 'Expired',
  /** Cancelled by `cancelRun` or by Temporal cancellation. Terminal. */
  Cancelled: 'Cancelled',
  /** An emergency revocation covers the action: ended before dispatch, or its dispatch cancelled; `status.revocation` names it. Terminal. */
  Revoked: 'Revoked',
} as const;
export type RunState = (typeof RunState)[keyof typeof RunState];

export const TERMINAL_STATES: ReadonlySet<RunState> = new Set<RunState>([
  RunState.Succeeded,
  RunState.ManuallyCompleted,
  RunState.Failed,
  RunState.Rejected,
  RunState.Denied,
  RunState.Expired,
  RunState.Cancelled,
  RunState.Revoked,
]);

/** A person or machine identity, as the caller asserts it. `roles` decide eligibility. */
export interface Principal {
  id: string;
  roles: string[];
  /**
   * The workspace this person or bot acts for, when the caller's identity provider says so. A
   * principal of another workspace than the run's is refused (`WorkspaceMismatch`) and recorded.
   */
  workspaceId?: string;
}

/** JSON value accepted as action input and returned as runtime output. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What the run asks a runtime to do. Its canonical hash is what approvers decide on. */
export interface GovernedAction {
  /** Runtime that executes it, e.g. `echo`, `activepieces`, `langflow`. */
  runtime: string;
  /** What it acts on, e.g. a flow id or `crm/contacts`. */
  target: string;
  /** Operation or capability, e.g. `read`, `write`. */
  operation: string;
  /** Runtime input. Referenced in evidence by hash, never inlined. */
  input: { [key: string]: JsonValue };
  /** Agent tools the run enables (Langflow). */
  tools?: string[];
}

/** Workflow input of `governedRun`. */
export interface GovernedRunInput {
  schemaVersion?: 1;
  workspaceId: string;
  correlationId: string;
  requestedBy: Principal;
  action: GovernedAction;
  /**
   * The client's key for this request: the workflow id is `<workspaceId>:<idempotencyKey>`, so a repeated
   * start finds the run. Not the per-action `DispatchRequest.dispatchKey`.
   */
  idempotencyKey: string;
  reason: string;
  /** Only a stricter tier than policy decides has effect; a weaker one is ignored and recorded. */
  tierOverride?: Tier;
}

/** Common fields of every approval decision, by signal or by the `decide` update. */
export interface Decision {
  /** Unique per decision; a repeated id counts once. */
  decisionId: string;
  approver: Principal;
  /** Required for reject and requestChanges. */
  rationale?: string;
  /** Hash of the action this decision is about; must equal the run's current `actionHash`. */
  actionHash: string;
  /** Ed25519 signature (hex) over the decision; required where policy says `signed`. */
  signature?: string;
  /** ISO-8601 time the approver signed; part of what is signed. */
  signedAt?: string;
}

export const DecisionKind = {
  approve: 'approve',
  reject: 'reject',
  requestChanges: 'requestChanges',
} as const;
export type DecisionKind = (typeof DecisionKind)[keyof typeof DecisionKind];

/** Payload of the `decide` update. */
export interface DecideRequest extends Decision {
  kind: DecisionKind;
}

/** What a decision did. Refusals are thrown as typed failures by `decide` and shown in `status`. */
export interface DecisionOutcome {
  decisionId: string;
  kind: DecisionKind;
  /** False when the decision was valid but did not change the count (same approver again). */
  counted: boolean;
  state: RunState;
  approvalsNeeded: number;
}

/** Payload of the `cancelRun` signal. */
export interface CancelRequest {
  requestedBy: Principal;
  reason: string;
  /** The cancel's own id; needed to sign it. */
  cancelId?: string;
  /** Ed25519 signature (hex), required where the run's rule is signed (kind `cancelRun`, id `cancelId`). */
  signature?: string;
  /** ISO-8601 time it was signed; part of what is signed. */
  signedAt?: string;
}

/** Payload of the `manualCompletion` signal: who did the work, when, and where its proof is. */
export interface ManualCompletion {
  completionId: string;
  completedBy: Principal;
  /** ISO-8601 time the work was done. */
  completedAt: string;
  /** Where the proof lives (ticket, change record, URL). */
  evidenceRef: string;
  actionHash: string;
  outcome?: 'Succeeded' | 'Failed';
  notes?: string;
  /** Ed25519 signature (hex), required where the run's rule is signed (kind `manualCompletion`, id `completionId`). */
  signature?: string;
  /** ISO-8601 time it was signed; part of what is signed. */
  signedAt?: string;
}

/** Payload of the `amendAction` update: the requester replaces the action after requestChanges. */
export interface AmendRequest {
  amendmentId: string;
  amendedBy: Principal;
  action: GovernedAction;
  reason: string;
  /** Ed25519 signature (hex), required where the run's rule is signed (kind `amendAction, over the amended action's hash`, id `amendmentId`). */
  signature?: string;
  /** ISO-8601 time it was signed; part of what is signed. */
  signedAt?: string;
}

export interface ApprovalRecord {
  decisionId: string;
  approverId: string;
  approverRoles: string[];
  /** Workflow time, ISO-8601. */
  at: string;
  /** When it starts to count: later than `at` inside a cooling-off period. */
  countsFrom: string;
  /** The standing approval (grant) that gave it, when one did. */
  grantId?: string;
}

export interface RefusalRecord {
  /** Failure type, e.g. `SelfApprovalRefused`. */
  type: string;
  message: string;
  /** Which message was refused: `approve`, `decide`, `cancelRun`, ... */
  via: string;
  by?: string;
  /** The refused message's own id (decisionId, amendmentId, completionId), when it could be read. */
  decisionId?: string;
  /** The action hash the refused message named, when it could be read. */
  actionHash?: string;
  /** When it was refused (the latest time, for a repeat). */
  at: string;
  /** How many times this same refusal arrived in a row (repeats are coalesced). @default 1 */
  count?: number;
}

export interface RunDeadlines {
  vetoEndsAt?: string;
  escalatesAt?: string;
  expiresAt?: string;
  /** AwaitingQuota, per-minute limit: when the window frees this run's slot (an estimate behind other waiters). */
  quotaFreesAt?: string;
}

/** Returned by the `status` query. MAINTENANCE: keep README "status" section in sync. */
export interface RunStatus {
  schemaVersion: 1;
  workspaceId: string;
  correlationId: string;
  state: RunState;
  tier?: Tier;
  actionHash: string;
  action: { runtime: string; target: string; operation: string; tools?: string[] };
  requestedBy: string;
  policyHash?: string;
  /** Why policy decided as it did: matched rule ids and what they matched. */
  reasons: string[];
  approvals: ApprovalRecord[];
  approvalsNeeded: number;
  eligibleRoles: string[];
  eligibleUsers: string[];
  /** Decisions must be signed by the approver's registered key (`portarium decision sign`). */
  signedDecisions?: boolean;
  /** Specialist roles no counted approver holds yet. */
  missingRoles: string[];
  escalated: boolean;
  deadlines: RunDeadlines;
  /** Most recent refusals, newest last (bounded). */
  /** Run id of this workflow's first execution: what v2 signatures bind (`decision sign --first-run-id`). */
  firstExecutionRunId?: string;
  /** The latest refusals (at most 20; identical repeats coalesced into `count`). */
  refusals: RefusalRecord[];
  /** Every refusal this run made, including those no longer in `refusals`. */
  refusalsTotal?: number;
  lastError?: { type: string; message: string };
  output?: JsonValue;
  evidenceHead: string;
  evidenceCount: number;
  /** What the evidence sink holds for this run so far; absent until the first write. */
  evidenceStored?: EvidenceReceipt;
  /**
   * How many times this run continued as new (a long wait, or a flood of messages, keeps its history
   * bounded); absent when it never did. State, deadlines and evidence carry over unchanged.
   */
  continuations?: number;
  /** Lifecycle events for subscribers: delivered, pending and undelivered; absent when the workspace has none. */
  events?: RunEventsStatus;
  /** The quota lease of this run's dispatch; absent when no quota applies to its runtime. */
  quota?: RunQuotaStatus;
  /** Break-glass: who released the run, when, why, and its post-hoc review; absent when never used. */
  breakGlass?: BreakGlassStatus;
  /** The emergency revocation that reached this run, and what it did; absent when none did. */
  revocation?: import('./revocation/types').RunRevocation;
}

/** Where a run stands with its workspace quota. */
export interface RunQuotaStatus {
  /** Workflow id of the coordinator (`<workspace>/quota/<runtime>`); its `status` query shows the live queue. */
  coordinator: string;
  leaseId: string;
  /** `asking` until the coordinator answers; `queued` while waiting; `granted` once it may dispatch; `released` after. */
  phase: 'asking' | 'queued' | 'granted' | 'released';
  limits: Omit<QuotaLimits, 'leaseCheckIntervalMs'>;
  /** While queued: why, as when the run started waiting. */
  waitingFor?: string;
  queued?: QuotaQueuedNotice;
}

/**
 * Signal `quotaRequest` to a coordinator (sent by the `requestQuotaLease` activity with signalWithStart).
 * Version 2 carries the run's secret (from its own `mintQuotaSecret` activity) and no limits: the
 * coordinator takes limits from its own policy load. Version 1 (runs that asked before the protocol
 * was authenticated) carried limits, which are ignored now.
 */
export type QuotaRequest =
  | {
      schemaVersion: 1;
      leaseId: string;
      runId: string;
      runExecutionId?: string;
      limits: QuotaLimits;
    }
  | {
      schemaVersion: 2;
      leaseId: string;
      runId: string;
      runExecutionId: string;
      /** The run's secret for this lease: proofs to the run are keyed by it, and a release must carry it. */
      secret: string;
    };

/** Signal `quotaRelease` to a coordinator: the dispatch ended, or the run withdraws while waiting. */
export interface QuotaRelease {
  leaseId: string;
  runId: string;
  reason: 'done' | 'withdrawn';
  /** The secret the lease was asked with; absent only for leases asked with a version 1 request. */
  secret?: string;
}

/** Signal `quotaGranted` from a coordinator to a run. */
export interface QuotaGrant {
  leaseId: string;
  grantedAt: string;
  /** HMAC of the grant under the run's secret (workflows/quota/proof.ts); absent for version 1 leases. */
  proof?: string;
}

/** Signal `quotaQueued` from a coordinator to a run: it waits, behind `position - 1` others, because of `limit`. */
export interface QuotaQueuedNotice extends QuotaBlocker {
  leaseId: string;
  position: number;
  proof?: string;
}

/** Signal `quotaProbe` from a coordinator to a run (a liveness check). Version 1 probes had no payload. */
export interface QuotaProbe {
  leaseId: string;
  proof?: string;
}

/** Input of `workspaceQuota`; `state` is carried across continue-as-new. */
export interface WorkspaceQuotaInput {
  schemaVersion: 1;
  workspaceId: string;
  runtime: string;
  state?: QuotaBookState;
  /** History length past which the coordinator continues as new (tests lower it). @default 2000 */
  maxHistoryEvents?: number;
}

/** Messages a coordinator refused, coalesced per signal and reason. */
export interface QuotaRefusalCount {
  count: number;
  lastAt: string;
  /** Why the latest one was refused (bounded text). */
  lastReason: string;
}

/** The `status` query of a coordinator. */
export interface WorkspaceQuotaStatus {
  workspaceId: string;
  runtime: string;
  /** The limits the coordinator enforces, from its own load of the workspace policy (`{}`: no quota now). */
  limits: QuotaLimits;
  /** When the limits were last loaded from the policy; absent until the first load (nothing is granted before). */
  limitsLoadedAt?: string;
  /** Why the last policy load failed, if it did (the previous limits stay in force). */
  policyError?: string;
  /** Leases held, oldest first (at most 100 shown; `leaseCount` has them all). */
  leases: { leaseId: string; runId: string; grantedAt?: string }[];
  /** Waiters in order (at most 100 shown; `waitingCount` has them all). */
  waiting: { leaseId: string; runId: string; requestedAt: string }[];
  leaseCount: number;
  waitingCount: number;
  /** Grants counted in the per-minute window now. */
  grantsInWindow: number;
  blockedBy?: QuotaBlocker;
  /** Refused messages, keyed `<signal>:<reason>` (e.g. `quotaRelease:wrongSecret`). */
  refusals: Record<string, QuotaRefusalCount>;
}

/** What the evidence sink holds for a run, and where the run sits in the workspace's Merkle log. */
export interface EvidenceReceipt {
  sink: string;
  /** The Temporal execution whose chain the sink holds; absent for a chain kept by workflow id alone. */
  execution?: string;
  count: number;
  head: string;
  /** The leaf committing to `(run, count, head)`: prove it with `portarium evidence prove`. */
  leafIndex: number;
  treeSize: number;
  rootHash: string;
}

/** Workflow result for every governance outcome. A failed dispatch fails the workflow instead. */
export interface GovernedRunResult {
  schemaVersion: 1;
  state: RunState;
  tier?: Tier;
  actionHash: string;
  reasons: string[];
  output?: JsonValue;
  evidenceHead: string;
}

/** What the dispatch activity receives. No secrets: those are fetched inside the activity. */
export interface DispatchRequest {
  workspaceId: string;
  correlationId: string;
  workflowId: string;
  runtime: string;
  target: string;
  operation: string;
  input: { [key: string]: JsonValue };
  tools?: string[];
  /** The tier policy gave the run; adapters refuse agent tools that need a stricter one. */
  tier?: Tier;
  actionHash: string;
  /**
   * `<workflowId>/<actionHash>`: names this one action, so every attempt of its dispatch is recognised
   * as the same (runtimes see the dispatch id derived from it). Not the client's `idempotencyKey`,
   * which names the run. Workers before the rename recorded it as `idempotencyKey`; the dispatch
   * activity still accepts that name.
   */
  dispatchKey: string;
}

export interface DispatchResult {
  runtime: string;
  output: JsonValue;
  /** Runtime's own reference to the execution, if it has one. */
  externalRef?: string;
  /** The action input and the runtime output as stored in the payload store, for evidence. */
  payloadRefs?: { kind: string; uri: string; sha256: string; contentType: string }[];
  /** What the evidence sink held after the entries stored before the runtime was called. */
  evidence?: EvidenceReceipt;
  /**
   * Asked for with `OutcomeEvidenceRequest`: the run's outcome entry (`StateSucceeded`), built by the
   * activity right after the head it was given, and the sink's receipt once it holds it (absent: the
   * sink did not confirm it; the run stores it itself, idempotently).
   */
  outcome?: { entry: EvidenceEntry; stored?: EvidenceReceipt };
}

/**
 * What the dispatch activity needs to build and store the run's outcome entry itself, saving the run
 * a workflow task and an activity: the entry it follows, and the execution whose chain it continues.
 */
export interface OutcomeEvidenceRequest {
  execution?: string;
  after: { seq: number; hash: string; occurredAt: string };
}

/** One event a subscriber did not get, after every retry (or refused outright). */
export interface UndeliveredEvent {
  eventId: string;
  type: string;
  subscriber: string;
  error: string;
  /** HTTP status of the last answer, when there was one. */
  status?: number;
  at: string;
}

export interface RunEventsStatus {
  /** The workspace had subscribers when the run started, so the run publishes its events. */
  publishing: boolean;
  /** Events created so far. */
  published: number;
  /** (subscriber, event) pairs delivered. */
  delivered: number;
  /** Events waiting for delivery or being delivered now. */
  pending: number;
  /** Most recent delivery failures (bounded), newest last. */
  undelivered: UndeliveredEvent[];
  /** When the run ended with events still pending, the workflow that goes on delivering them. */
  handedOffTo?: string;
}
