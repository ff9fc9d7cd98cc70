/**
 * Break-glass: who may release a waiting run at once in an incident, how its mandatory post-hoc
 * review runs, and how often it may be used. Part of the workspace policy file and of the decision
 * snapshot (inside `policyHash`: it decides who may release). Absent: no break-glass in the workspace.
 * MAINTENANCE: keep README "Policies" and docs/operators.md "Break-glass" in sync.
 */
import { z } from 'zod';
import { DURATION_PATTERN, durationMs } from './duration';

const MAX_WINDOW_MS = 366 * 86_400_000;
const window = z
  .string()
  .regex(DURATION_PATTERN, 'expected a duration such as 15m, 4h or 7d')
  .refine((d) => !DURATION_PATTERN.test(d) || (durationMs(d) >= 1_000 && durationMs(d) <= MAX_WINDOW_MS), 'between 1s and 366d');
const role = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,63}$/, 'expected a role name');

const Rate = z.strictObject({
  /** Uses allowed in any sliding window of `per`. */
  count: z.number().int('expected a whole number').min(1, 'at least 1').max(1000),
  /** The window, e.g. `24h`. */
  per: window,
});

export const BreakGlass = z.strictObject({
  /** Holders of any of these roles may release a HumanApprove run or an Assisted veto window now. */
  roles: z.array(role).min(1).max(20),
  /** Distinct reviewers (eligible approvers of the run's rule, not the releaser, not the requester). @default 1 */
  reviewers: z.number().int().min(1).max(10).default(1),
  /** Time after the release by which the review must be complete; past it the review is overdue. @default 24h */
  reviewWithin: window.default('24h'),
  /** How often break-glass may be used; both limits apply. @default one use per principal and 10 per workspace per 24h */
  rateLimit: z
    .strictObject({ perPrincipal: Rate.default({ count: 1, per: '24h' }), perWorkspace: Rate.default({ count: 10, per: '24h' }) })
    .default({ perPrincipal: { count: 1, per: '24h' }, perWorkspace: { count: 10, per: '24h' } }),
});
export type BreakGlass = z.infer<typeof BreakGlass>;

/** A rate limit as a run and the ledger carry it. */
export interface BreakGlassRate {
  count: number;
  perMs: number;
}

/** Break-glass as the run's snapshot carries it (durations in ms). */
export interface BreakGlassPolicy {
  roles: string[];
  reviewers: number;
  reviewWithinMs: number;
  perPrincipal: BreakGlassRate;
  perWorkspace: BreakGlassRate;
}

export function snapshotBreakGlass(b: BreakGlass | undefined): BreakGlassPolicy | undefined {
  if (!b) return undefined;
  const rate = (r: { count: number; per: string }): BreakGlassRate => ({ count: r.count, perMs: durationMs(r.per) });
  return {
    roles: [...b.roles],
    reviewers: b.reviewers,
    reviewWithinMs: durationMs(b.reviewWithin),
    perPrincipal: rate(b.rateLimit.perPrincipal),
    perWorkspace: rate(b.rateLimit.perWorkspace),
  };
}
