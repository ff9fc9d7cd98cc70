/**
 * One run's break-glass release and its post-hoc review, as pure rules: who may release, who may
 * review, when the review ends. `GovernedRunState` holds one `BreakGlassRecord` and records evidence
 * and events for what these functions decide. No Temporal imports.
 */
import type { BreakGlassPolicy } from '../../policies/break-glass';
import { FailureType } from '../failures';
import { normalizePrincipalId } from '../run/signatures';
import { RunState, type Tier } from '../types';
import type { BreakGlassClaimAnswer, BreakGlassRequest, BreakGlassReviewRecord, BreakGlassReviewRequest, BreakGlassStatus } from './types';

type Refused = { ok: false; type: FailureType; message: string };
const refused = (type: FailureType, message: string): Refused => ({ ok: false, type, message });

/** What the release check needs of the run. */
export interface ReleaseContext {
  state: RunState;
  tier: Tier | undefined;
  actionHash: string;
  requesterId: string;
  policy: BreakGlassPolicy | undefined;
  /** The run was rejected or sent back for changes meanwhile (the main loop has not acted yet). */
  decidedOtherwise: boolean;
  cancelled: boolean;
}

/** States a break-glass releases: a HumanApprove run waiting for its quorum, an Assisted veto window. */
const RELEASABLE: readonly RunState[] = [RunState.AwaitingApproval, RunState.VetoWindow];

/**
 * Why `req` by a principal holding `roles` may not release the run now, or undefined when it may.
 * Never ManualOnly, never a denied or ended run: break-glass bypasses quorum and cooling-off only.
 */
export function releaseRefusal(ctx: ReleaseContext, req: BreakGlassRequest, roles: readonly string[]): Refused | undefined {
  if (!ctx.policy) return refused(FailureType.BreakGlassNotAllowed, 'the workspace policy has no break-glass');
  if (ctx.tier === 'ManualOnly') return refused(FailureType.BreakGlassNotAllowed, 'a ManualOnly action is never released by break-glass');
  if (!RELEASABLE.includes(ctx.state) || ctx.cancelled || ctx.decidedOtherwise) {
    return refused(FailureType.BreakGlassNotAllowed, `break-glass releases a run awaiting approval or in its veto window, not one ${ctx.cancelled || ctx.decidedOtherwise ? 'already decided' : `in state ${ctx.state}`}`);
  }
  if (req.actionHash !== ctx.actionHash) return refused(FailureType.ActionHashMismatch, `release is for action ${req.actionHash}, the run's action is ${ctx.actionHash}`);
  if (normalizePrincipalId(req.by.id) === normalizePrincipalId(ctx.requesterId)) {
    return refused(FailureType.SelfApprovalRefused, `${req.by.id} requested this run and may not release it`);
  }
  if (!roles.some((r) => ctx.policy!.roles.includes(r))) {
    return refused(FailureType.BreakGlassNotAllowed, `${req.by.id} holds none of the break-glass roles [${ctx.policy.roles.join(', ')}]`);
  }
  return undefined;
}

/** Why the ledger refused, as the run records it. */
export function rateRefusal(answer: BreakGlassClaimAnswer): Refused {
  const which = answer.limit === 'perPrincipal' ? `per principal (${answer.window.principalUses} used)` : `per workspace (${answer.window.workspaceUses} used)`;
  return refused(FailureType.BreakGlassRateLimited, `break-glass rate limit reached ${which}`);
}

/** A granted release and its review, as status shows it and continue-as-new would carry it. */
export class BreakGlassRecord {
  constructor(readonly status: BreakGlassStatus) {}

  static granted(req: BreakGlassRequest, roles: string[], from: RunState, answer: BreakGlassClaimAnswer, policy: BreakGlassPolicy, eligibleRoles: string[], now: Date): BreakGlassRecord {
    return new BreakGlassRecord({
      decisionId: req.decisionId,
      by: req.by.id,
      roles,
      reason: req.reason,
      at: now.toISOString(),
      releasedFrom: from,
      window: answer.window,
      review: {
        state: 'pending',
        needed: policy.reviewers,
        dueAt: new Date(now.getTime() + policy.reviewWithinMs).toISOString(),
        eligibleRoles: [...eligibleRoles],
        reviews: [],
      },
    });
  }

  get open(): boolean {
    return this.status.review.state === 'pending';
  }

  get confirmations(): number {
    return this.status.review.reviews.filter((r) => r.verdict === 'confirm').length;
  }

  /** The review this id already recorded (a retried update), if any. */
  reviewed(reviewId: string): BreakGlassReviewRecord | undefined {
    return this.status.review.reviews.find((r) => r.reviewId === reviewId);
  }

  /**
   * Why `req` by a reviewer holding `roles` may not review, or undefined. Reviewers are the rule's
   * eligible approvers (roles or named users), never the releaser or the requester, each once.
   */
  reviewRefusal(req: BreakGlassReviewRequest, roles: readonly string[], requesterId: string, eligibleUsers: readonly string[]): Refused | undefined {
    const who = normalizePrincipalId(req.reviewer.id);
    if (!this.open) return refused(FailureType.BreakGlassReviewRefused, `the break-glass review is ${this.status.review.state}`);
    if (who === normalizePrincipalId(this.status.by)) return refused(FailureType.BreakGlassReviewRefused, `${req.reviewer.id} released this run and may not review the release`);
    if (who === normalizePrincipalId(requesterId)) return refused(FailureType.BreakGlassReviewRefused, `${req.reviewer.id} requested this run and may not review the release`);
    if (this.status.review.reviews.some((r) => normalizePrincipalId(r.reviewerId) === who)) return refused(FailureType.BreakGlassReviewRefused, `${req.reviewer.id} already reviewed this release`);
    const eligible = eligibleUsers.some((u) => normalizePrincipalId(u) === who) || roles.some((r) => this.status.review.eligibleRoles.includes(r));
    if (!eligible) return refused(FailureType.ApproverNotEligible, `${req.reviewer.id} holds none of [${this.status.review.eligibleRoles.join(', ')}]`);
    return undefined;
  }

  /** Take a review; returns the review state it leaves (a flag ends it at once, N confirmations end it). */
  addReview(req: BreakGlassReviewRequest, now: Date): BreakGlassStatus['review']['state'] {
    const review = this.status.review;
    review.reviews.push({ reviewId: req.reviewId, reviewerId: req.reviewer.id, verdict: req.verdict, rationale: req.rationale, at: now.toISOString() });
    if (req.verdict === 'flag') this.end('flagged', now);
    else if (this.confirmations >= review.needed) this.end('confirmed', now);
    return review.state;
  }

  /** The deadline passed with the review still pending. */
  overdue(now: Date): void {
    if (this.open) this.end('overdue', now);
  }

  private end(state: 'confirmed' | 'flagged' | 'overdue', now: Date): void {
    this.status.review.state = state;
    this.status.review.endedAt = now.toISOString();
  }

  view(): BreakGlassStatus {
    const s = this.status;
    return { ...s, roles: [...s.roles], window: { ...s.window }, review: { ...s.review, eligibleRoles: [...s.review.eligibleRoles], reviews: s.review.reviews.map((r) => ({ ...r })) } };
  }
}
