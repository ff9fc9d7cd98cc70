/**
 * zod schemas of the break-glass messages, built lazily (never at module top level: see
 * workflows/schemas.ts). Update validators refuse only bad shapes; who may release or review is
 * judged by the run and recorded.
 */
import { z } from '../zod-sandbox';
import { type IdOptions, actionHashSchema, principalSchema, signatureShape } from '../schemas';
import { IDENTIFIER_CHARS } from '../ids';
import type { BreakGlassClaim, BreakGlassReviewRequest, BreakGlassRequest } from './types';

const id = (what: string) =>
  z.string().min(1, `${what} must not be empty`).max(128, `${what} is longer than 128 characters`).regex(IDENTIFIER_CHARS, `${what} may hold letters, digits and . _ : @ / + - only`);
const text = (what: string, max: number) => z.string().trim().min(1, `${what} must not be empty`).max(max, `${what} is longer than ${max} characters`);

export function breakGlassRequestSchema(opts: IdOptions = {}): z.ZodType<BreakGlassRequest> {
  return z.strictObject({ decisionId: id('decisionId'), by: principalSchema(opts), reason: text('reason', 2000), actionHash: actionHashSchema(), ...signatureShape() });
}

export function breakGlassReviewSchema(opts: IdOptions = {}): z.ZodType<BreakGlassReviewRequest> {
  return z.strictObject({
    reviewId: id('reviewId'),
    reviewer: principalSchema(opts),
    verdict: z.enum(['confirm', 'flag']),
    rationale: text('rationale', 2000),
    ...signatureShape(),
  });
}

const rate = () => z.strictObject({ count: z.number().int().min(1).max(1000), perMs: z.number().int().min(1_000).max(366 * 86_400_000) });

export function breakGlassClaimSchema(): z.ZodType<BreakGlassClaim> {
  return z.strictObject({
    claimId: z.string().min(1).max(400),
    runId: z.string().min(1).max(300),
    principalId: id('principalId'),
    perPrincipal: rate(),
    perWorkspace: rate(),
  });
}
