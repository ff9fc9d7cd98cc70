/**
 * The public message API of `governedRun`. Wire names are fixed: operators, bots and services use them.
 * Each definition is exported once and shared by the workflow, the client helper, the CLI and tests.
 * MAINTENANCE: keep README "Messages" in sync.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { EvidenceEntry } from '../evidence-chain';
import type {
  AmendRequest,
  CancelRequest,
  DecideRequest,
  Decision,
  DecisionOutcome,
  ManualCompletion,
  QuotaGrant,
  QuotaProbe,
  QuotaQueuedNotice,
  QuotaRelease,
  QuotaRequest,
  RunStatus,
  WorkspaceQuotaStatus,
} from '../types';
import type {
  BreakGlassClaim,
  BreakGlassClaimAnswer,
  BreakGlassLedgerStatus,
  BreakGlassOutcome,
  BreakGlassRequest,
  BreakGlassReviewOutcome,
  BreakGlassReviewRequest,
} from '../break-glass/types';
import type { RevokedNotice } from '../revocation/types';

/** Approve the run's current action (fire-and-forget). Refusals show in `status` and evidence. */
export const approveSignal = defineSignal<[Decision]>('approve');
/** Reject the action (in Assisted: veto). Needs a rationale. */
export const rejectSignal = defineSignal<[Decision]>('reject');
/** Return the run to the requester for an amendment. Needs a rationale. */
export const requestChangesSignal = defineSignal<[Decision]>('requestChanges');
/** Withdraw the run: by its requester or an operator. Reaches a running dispatch. */
export const cancelRunSignal = defineSignal<[CancelRequest]>('cancelRun');
/**
 * An emergency revocation may cover the run (sent by the registry's fan-out). Carries the revocation
 * id only: the run asks the registry what it is, so a forged one changes nothing.
 */
export const revokedSignal = defineSignal<[RevokedNotice]>('revoked');
/** ManualOnly: report the work done by a person, with a reference to the proof. */
export const manualCompletionSignal = defineSignal<[ManualCompletion]>('manualCompletion');

/** Decide and get the outcome back; refusals fail the update with a typed `ApplicationFailure`. */
export const decideUpdate = defineUpdate<DecisionOutcome, [DecideRequest]>('decide');
/** After requestChanges: the requester replaces the action. Voids prior approvals; returns the new status. */
export const amendActionUpdate = defineUpdate<RunStatus, [AmendRequest]>('amendAction');

/**
 * Break-glass: a holder of a break-glass role releases a HumanApprove run (or an Assisted veto
 * window) now, with a reason, bypassing quorum and cooling-off; counted by the workspace's ledger.
 */
export const breakGlassUpdate = defineUpdate<BreakGlassOutcome, [BreakGlassRequest]>('breakGlass');
/** The mandatory post-hoc review of a break-glass release: confirm or flag, with a rationale. */
export const reviewBreakGlassUpdate = defineUpdate<BreakGlassReviewOutcome, [BreakGlassReviewRequest]>('reviewBreakGlass');

/** State, tier, reasons, approvals given and needed, deadlines, last error. */
export const statusQuery = defineQuery<RunStatus>('status');

export interface EvidenceView {
  head: string;
  count: number;
  entries: EvidenceEntry[];
}
/** The run's evidence chain so far. */
export const evidenceQuery = defineQuery<EvidenceView>('evidence');

// Quota coordination between runs and `workspaceQuota` (one per workspace and runtime). Internal:
// runs and coordinators exchange these; operators only read the coordinator's `status`.

/** To a coordinator: a run asks for a lease (idempotent per lease id). */
export const quotaRequestSignal = defineSignal<[QuotaRequest]>('quotaRequest');
/** To a coordinator: the run's dispatch ended, or it withdraws while waiting. */
export const quotaReleaseSignal = defineSignal<[QuotaRelease]>('quotaRelease');
/** To a coordinator: check now that holders and waiters still run (e.g. after terminating a run). */
export const quotaReconcileSignal = defineSignal<[]>('quotaReconcile');
/** To a run: it may dispatch. */
export const quotaGrantedSignal = defineSignal<[QuotaGrant]>('quotaGranted');
/** To a run: it waits, and why. */
export const quotaQueuedSignal = defineSignal<[QuotaQueuedNotice]>('quotaQueued');
/** To a run: a liveness check; signalling a closed run fails, which frees its lease. */
export const quotaProbeSignal = defineSignal<[QuotaProbe]>('quotaProbe');
/** A coordinator's limits, leases, queue and window. */
export const quotaStatusQuery = defineQuery<WorkspaceQuotaStatus>('status');

// The break-glass ledger (`breakGlassLedger`, one per workspace, id `<workspace>/break-glass`). Internal:
// the `claimBreakGlass` activity of a run asks it; operators only read its `status`.

/** To a ledger: count one use if both windows allow it (idempotent per claim id). */
export const breakGlassClaimUpdate = defineUpdate<BreakGlassClaimAnswer, [BreakGlassClaim]>('claim');
/** A ledger's uses still counted and refusals. */
export const breakGlassLedgerStatusQuery = defineQuery<BreakGlassLedgerStatus>('status');
