/**
 * Serialisable shapes of break-glass: the `breakGlass` and `reviewBreakGlass` updates of a run, the
 * `breakGlassLedger` that rate-limits uses per workspace, and what `status.breakGlass` shows.
 * Plain types only (safe in the workflow bundle and in clients); schemas in `./schemas.ts`.
 */
import type { BreakGlassRate } from '../../policies/break-glass';
import type { Principal } from '../types';

/** Payload of the `breakGlass` update: release the run now, with a mandatory reason. */
export interface BreakGlassRequest {
  /** The release's own id (a repeated id answers as the first time). */
  decisionId: string;
  /** Who releases: a holder of a break-glass role of the workspace, never the requester. */
  by: Principal;
  /** Why it cannot wait for the normal approvals; shown in status, evidence and events. */
  reason: string;
  /** The action released; must equal the run's current `actionHash`. */
  actionHash: string;
  /** Ed25519 signature (hex), required where the run's rule is signed (kind `breakGlass`, id `decisionId`). */
  signature?: string;
  signedAt?: string;
}

/** Payload of the `reviewBreakGlass` update: a post-hoc review confirms or flags the release. */
export interface BreakGlassReviewRequest {
  reviewId: string;
  reviewer: Principal;
  verdict: 'confirm' | 'flag';
  rationale: string;
  /** Ed25519 signature (hex), required where the run's rule is signed (kind `reviewBreakGlass`, id `reviewId`). */
  signature?: string;
  signedAt?: string;
}

/** Where the post-hoc review stands: `pending` until N confirm, one flags, or it is overdue. */
export type BreakGlassReviewState = 'pending' | 'confirmed' | 'flagged' | 'overdue';

export interface BreakGlassReviewRecord {
  reviewId: string;
  reviewerId: string;
  verdict: 'confirm' | 'flag';
  rationale: string;
  at: string;
}

/** `status.breakGlass`: who released the run, when and why, and the review. */
export interface BreakGlassStatus {
  decisionId: string;
  by: string;
  roles: string[];
  reason: string;
  at: string;
  /** The state the run was released from (AwaitingApproval or VetoWindow). */
  releasedFrom: string;
  /** Uses in the windows when the ledger granted this one (this one included). */
  window: BreakGlassWindow;
  review: {
    state: BreakGlassReviewState;
    /** Distinct confirmations needed. */
    needed: number;
    dueAt: string;
    /** Who may review: the rule's eligible roles and users, never the releaser or the requester. */
    eligibleRoles: string[];
    reviews: BreakGlassReviewRecord[];
    /** When the review ended (confirmed, flagged or overdue). */
    endedAt?: string;
  };
}

/** What `breakGlassUpdate` answers. */
export interface BreakGlassOutcome {
  decisionId: string;
  state: string;
  breakGlass: BreakGlassStatus;
}

/** What `reviewBreakGlassUpdate` answers. */
export interface BreakGlassReviewOutcome {
  reviewId: string;
  review: BreakGlassStatus['review'];
}

/** Uses counted in the two sliding windows. */
export interface BreakGlassWindow {
  principalUses: number;
  workspaceUses: number;
}

/** The `claim` update to a workspace's `breakGlassLedger` (sent by the `claimBreakGlass` activity). */
export interface BreakGlassClaim {
  /** `<run workflow id>/<decision id>`: a retried claim answers as the first one. */
  claimId: string;
  runId: string;
  principalId: string;
  /** The limits of the run's frozen policy snapshot. */
  perPrincipal: BreakGlassRate;
  perWorkspace: BreakGlassRate;
}

/** The ledger's answer: granted (counted) or refused (not counted), with the window counts. */
export interface BreakGlassClaimAnswer {
  claimId: string;
  granted: boolean;
  /** When refused: which limit. */
  limit?: 'perPrincipal' | 'perWorkspace';
  window: BreakGlassWindow;
  at: string;
}

/** Input of `breakGlassLedger`; `uses` carried across continue-as-new. */
export interface BreakGlassLedgerInput {
  schemaVersion: 1;
  workspaceId: string;
  uses?: BreakGlassUse[];
  refused?: number;
}

export interface BreakGlassUse {
  claimId: string;
  runId: string;
  principalId: string;
  at: string;
  /** Until when it counts in the longest window of its claim. */
  until: string;
}

/** The ledger's `status` query. */
export interface BreakGlassLedgerStatus {
  workspaceId: string;
  /** Uses still counted in some window, oldest first (at most 100 shown). */
  uses: BreakGlassUse[];
  useCount: number;
  refused: number;
}
