/**
 * `portarium break-glass …`: release a waiting run now as a holder of a break-glass role, and review
 * a release afterwards. Refusals print their type (exit 3), like `decide`.
 */
import { randomUUID } from 'node:crypto';
import type { SignedKind } from '../../workflows/run/signatures';
import type { BreakGlassStatus } from '../../workflows/break-glass/types';
import { type Command, type Ctx, UsageError, need, principal, str, strings } from './kit';
import { HELP } from './format';

/** Signs a message when `--key` is given (index.ts `signedBy`); passed in, so no import circle. */
export type SignedBy = (ctx: Ctx, id: string, kind: SignedKind, messageId: string, signerId: string, actionHash: string) => Promise<{ signature?: string; signedAt?: string }>;

const describe = (b: BreakGlassStatus) => {
  const r = b.review;
  const reviews = r.reviews.map((x) => `${x.reviewerId}:${x.verdict}`).join(', ') || 'none';
  return `break-glass ${b.decisionId} by ${b.by} at ${b.at}; review ${r.state} (${r.reviews.filter((x) => x.verdict === 'confirm').length}/${r.needed} confirmed, due ${r.dueAt}; reviews: ${reviews})`;
};

export function breakGlassCommands(signedBy: SignedBy): Command[] {
  async function release(ctx: Ctx): Promise<number> {
    const [id] = ctx.args;
    const [by, reason, actionHash] = need(ctx.values, 'by', 'reason', 'action-hash');
    const decisionId = str(ctx.values, 'decision-id') ?? randomUUID();
    const who = principal(by, ctx.values);
    const signed = await signedBy(ctx, id, 'breakGlass', decisionId, who.id, actionHash);
    const out = await (await ctx.client()).run(id).breakGlass({ decisionId, by: who, reason, actionHash, ...signed });
    ctx.io.out(`released; state ${out.state}; ${describe(out.breakGlass)}`);
    return 0;
  }

  async function review(ctx: Ctx): Promise<number> {
    const [id] = ctx.args;
    const [reviewer, verdict, rationale] = need(ctx.values, 'reviewer', 'verdict', 'rationale');
    if (verdict !== 'confirm' && verdict !== 'flag') throw new UsageError(`--verdict must be confirm or flag, got ${verdict}`);
    const reviewId = str(ctx.values, 'review-id') ?? randomUUID();
    const who = principal(reviewer, ctx.values);
    const run = (await ctx.client()).run(id);
    const signed = str(ctx.values, 'key') ? await signedBy(ctx, id, 'reviewBreakGlass', reviewId, who.id, (await run.status()).actionHash) : {};
    const out = await run.reviewBreakGlass({ reviewId, reviewer: who, verdict, rationale, ...signed });
    ctx.io.out(`review ${out.reviewId} recorded; review ${out.review.state} (${out.review.reviews.filter((x) => x.verdict === 'confirm').length}/${out.review.needed} confirmed, due ${out.review.dueAt})`);
    return 0;
  }

  // `break-glass review` first: commands match by their leading words.
  return [
    { ...HELP.breakGlassReview, run: review, arity: [1, 1], options: strings('reviewer', 'roles', 'verdict', 'rationale', 'review-id', 'key') },
    { ...HELP.breakGlass, run: release, arity: [1, 1], options: strings('by', 'roles', 'reason', 'action-hash', 'decision-id', 'key') },
  ];
}
