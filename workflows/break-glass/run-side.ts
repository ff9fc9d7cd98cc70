/**
 * Break-glass on the run's side: the `breakGlass` and `reviewBreakGlass` update handlers, the claim
 * to the workspace's ledger, and the review the run holds after its outcome. Rules live in
 * `./release.ts` and `GovernedRunState`; this file wires and awaits.
 */
import { condition, proxyActivities, setHandler } from '@temporalio/workflow';
import { patchApplies } from '../run/patches';
import type { BreakGlassActivities } from '../../activities/break-glass';
import { FailureType, refusal } from '../failures';
import type { IdOptions } from '../schemas';
import * as msg from '../run/messages';
import { observeBreakGlass, observeBreakGlassReview } from '../run/metrics';
import type { GovernedRunState, Verdict } from '../run/state';
import { TERMINAL_STATES } from '../types';
import { breakGlassRequestSchema, breakGlassReviewSchema } from './schemas';
import type { BreakGlassOutcome, BreakGlassReviewOutcome } from './types';

/** Runs that took a break-glass release record this marker; its review is held before the run completes. */
export const BREAK_GLASS_PATCH = 'portarium-break-glass-v1';

// Bounded: a ledger that cannot be reached refuses the release (fail closed) instead of holding it.
const { claimBreakGlass } = proxyActivities<BreakGlassActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '500ms', maximumAttempts: 4, nonRetryableErrorTypes: [FailureType.InvalidMessage] },
  summary: 'break-glass ledger',
});

/** Longest a `breakGlass` update waits for the main loop to act on the release before it replies. */
const REPLY_WAIT_MS = 10_000;

/** What the handlers borrow from the run's wiring (governed-run.ts). */
export interface BreakGlassWiring {
  /** Resolves once policy has decided (messages before that wait). */
  policyDecided(): Promise<void>;
  /** Wraps an update handler so unexpected errors become recorded `InvalidMessage` refusals. */
  total<T>(via: string, handler: (raw: unknown) => Promise<T>): (raw: unknown) => Promise<T>;
  /** The parsed message, or a thrown `InvalidMessage`. */
  parse<T>(schema: Parameters<typeof import('../schemas').check<T>>[0], raw: unknown): T;
  now(): Date;
}

const once = <T>(build: () => T) => {
  let built: T | undefined;
  return () => (built ??= build());
};

function throwIfRefused(v: Verdict, tier: string | undefined, metric = true): void {
  if (v.ok) return;
  if (metric) observeBreakGlass(v.type, tier);
  throw refusal(v.type, v.message);
}

export function wireBreakGlass(run: GovernedRunState, w: BreakGlassWiring, ids: IdOptions): void {
  const releaseSchema = once(() => breakGlassRequestSchema(ids));
  const reviewSchema = once(() => breakGlassReviewSchema(ids));

  setHandler(
    msg.breakGlassUpdate,
    w.total('breakGlass', async (raw): Promise<BreakGlassOutcome> => {
      await w.policyDecided();
      const req = w.parse(releaseSchema(), raw);
      const judged = run.judgeBreakGlass(req, w.now());
      throwIfRefused(judged, run.tier);
      if (!judged.replayed) {
        // The marker says this run took the break-glass path (and holds a review before it completes).
        patchApplies(run, BREAK_GLASS_PATCH);
        const policy = run.policySnapshot!.breakGlass!;
        let answer;
        try {
          answer = await claimBreakGlass({
            workspaceId: run.input.workspaceId,
            claim: { claimId: `${run.workflowId}/${req.decisionId}`, runId: run.workflowId, principalId: req.by.id, perPrincipal: policy.perPrincipal, perWorkspace: policy.perWorkspace },
          });
        } catch {
          throwIfRefused(run.breakGlassUncounted(req, 'ledger unavailable', w.now()), run.tier);
        }
        const tick = run.wakeups;
        throwIfRefused(run.applyBreakGlass(req, answer!, w.now()), run.tier);
        observeBreakGlass('granted', run.tier);
        // Reply after the main loop acted on the release (Dispatching or beyond), as `decide` does.
        await condition(() => run.wakeups > tick || TERMINAL_STATES.has(run.state), REPLY_WAIT_MS);
      }
      return { decisionId: req.decisionId, state: run.state, breakGlass: run.breakGlass!.view() };
    }),
    { validator: (raw) => void w.parse(releaseSchema(), raw) },
  );

  setHandler(
    msg.reviewBreakGlassUpdate,
    w.total('reviewBreakGlass', async (raw): Promise<BreakGlassReviewOutcome> => {
      await w.policyDecided();
      const req = w.parse(reviewSchema(), raw);
      const v = run.applyBreakGlassReview(req, w.now());
      if (!v.ok) throw refusal(v.type, v.message);
      const review = run.breakGlass!.view().review;
      if (!v.replayed && (review.state === 'confirmed' || review.state === 'flagged')) observeBreakGlassReview(review.state);
      return { reviewId: req.reviewId, review };
    }),
    { validator: (raw) => void w.parse(reviewSchema(), raw) },
  );
}

/**
 * After the run's outcome (dispatched, failed, or stopped after the release), a break-glass run
 * stays open until its review is confirmed, flagged or overdue: its result never comes first.
 */
export async function holdBreakGlassReview(run: GovernedRunState, now: () => Date): Promise<void> {
  const bg = run.breakGlass;
  if (!bg?.open || !patchApplies(run, BREAK_GLASS_PATCH)) return;
  const dueIn = Math.max(1, Date.parse(bg.status.review.dueAt) - Date.now());
  if (await condition(() => !bg.open, dueIn)) return;
  run.breakGlassReviewOverdue(now());
  observeBreakGlassReview('overdue');
}
