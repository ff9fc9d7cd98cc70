/**
 * Standing approvals (grants) in the policy language: which rules accept them (`approval.grants`;
 * absent: none, the default), who may grant, and the caps on a grant. The pure terms and scope check
 * the run uses are in grant-scope.ts (no zod, so the workflow bundle may load them).
 * MAINTENANCE: keep docs/operators.md "Standing approvals" in sync.
 */
import { z } from 'zod';
import { DURATION_PATTERN, durationMs } from './duration';

const MAX_VALIDITY_MS = 366 * 86_400_000;
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}$/, 'expected an identifier');

export const GrantsAccepted = z.strictObject({
  /** Who may grant for this rule: holders of these roles, or these people (they must also be eligible approvers). */
  grantors: z
    .strictObject({ roles: z.array(name).min(1).max(20).optional(), users: z.array(name).min(1).max(50).optional() })
    .refine((g) => g.roles !== undefined || g.users !== undefined, 'name grantor roles or users'),
  /** Most uses one grant may allow. @default 100 */
  maxUses: z.number().int().min(1).max(10_000).default(100),
  /** Longest a grant may stay valid. @default 30d */
  maxValidity: z
    .string()
    .regex(DURATION_PATTERN, 'expected a duration such as 4h or 7d')
    .refine((d) => !DURATION_PATTERN.test(d) || (durationMs(d) >= 60_000 && durationMs(d) <= MAX_VALIDITY_MS), 'between 1m and 366d')
    .default('30d'),
});
export type GrantsAccepted = z.infer<typeof GrantsAccepted>;
