/** zod schemas for grant messages, built by functions (no zod object in module scope of the bundle). */
import { IDENTIFIER_CHARS, RUNTIME_NAME_PATTERN, WORKSPACE_ID_PATTERN } from '../ids';
import { normalizePrincipalId } from '../run/signatures';
import { z } from '../zod-sandbox';
import type { GrantRequest, RevokeGrantRequest, UseGrantsRequest } from './types';

export const GRANT_ID = /^grant-[1-9][0-9]{0,9}$/;
const id = (what: string, max = 128) => z.string().min(1, `${what} must not be empty`).max(max).regex(IDENTIFIER_CHARS, `${what} may hold letters, digits and . _ : @ / + - only`);
const principal = () =>
  z.strictObject({
    id: id('principal id').transform(normalizePrincipalId),
    roles: z.array(id('role', 64)).max(64).default([]),
    workspaceId: z.string().regex(WORKSPACE_ID_PATTERN).optional(),
  });
const reason = () => z.string().trim().min(1, 'a reason is required').max(1000);
/** Exact text or a prefix ending in `*` (one `*`, at the end), as in policy rules. */
const pattern = (what: string) => z.string().trim().min(1).max(512).refine((p) => !p.slice(0, -1).includes('*'), `${what}: one * at the end only`);

export function grantRequestSchema(): z.ZodType<GrantRequest> {
  return z.strictObject({
    ruleId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}$/, 'ruleId must be a rule id'),
    grantor: principal(),
    scope: z.strictObject({
      runtime: z.string().regex(RUNTIME_NAME_PATTERN, 'runtime must be a runtime name').optional(),
      target: pattern('target').optional(),
      operation: pattern('operation').optional(),
      when: z.string().trim().min(1).max(2000).optional(),
    }),
    maxUses: z.number().int().min(1).max(10_000),
    expiresAt: z.iso.datetime({ offset: true }),
    reason: reason(),
    requestId: id('requestId', 200).optional(),
    signature: z.string().regex(/^[0-9a-f]{128}$/, 'signature must be 128 hex digits').optional(),
    signedAt: z.iso.datetime({ offset: true }).optional(),
  });
}

export function revokeGrantRequestSchema(): z.ZodType<RevokeGrantRequest> {
  return z.strictObject({ grantId: z.string().regex(GRANT_ID, 'grantId must look like grant-<n>'), revokedBy: principal(), reason: reason() });
}

export function useGrantsRequestSchema(): z.ZodType<UseGrantsRequest> {
  const ids = z.array(z.string().regex(GRANT_ID)).max(20);
  return z.strictObject({ useKey: z.string().min(1).max(300), take: ids.optional(), release: ids.optional() });
}
