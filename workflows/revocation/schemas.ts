/**
 * zod schemas for revocation messages, built by functions (no zod object in module scope of the
 * bundle). Ids are normalised like every principal id (lower case).
 */
import { IDENTIFIER_CHARS, RUNTIME_NAME_PATTERN, WORKSPACE_ID_PATTERN } from '../ids';
import { normalizePrincipalId } from '../run/signatures';
import { z } from '../zod-sandbox';
import type { LiftRequest, RevokeRequest, RevokedNotice, RevocationScope } from './types';

export const MAX_REASON_CHARS = 1000;
const id = (what: string, max = 128) => z.string().min(1, `${what} must not be empty`).max(max).regex(IDENTIFIER_CHARS, `${what} may hold letters, digits and . _ : @ / + - only`);
const reason = () => z.string().trim().min(1, 'a reason is required').max(MAX_REASON_CHARS);
const principal = () =>
  z.strictObject({
    id: id('principal id').transform(normalizePrincipalId),
    roles: z.array(id('role', 64)).max(64).default([]),
    workspaceId: z.string().regex(WORKSPACE_ID_PATTERN).optional(),
  });
const signature = () => z.string().regex(/^[0-9a-f]{128}$/, 'signature must be 128 hex digits').optional();
const signedAt = () => z.iso.datetime({ offset: true }).optional();
/** A revocation id as the registry assigns them. */
export const REVOCATION_ID = /^rev-[1-9][0-9]{0,9}$/;

export function revocationScopeSchema(): z.ZodType<RevocationScope> {
  return z
    .strictObject({
      workspaceId: z.union([z.literal('*'), z.string().regex(WORKSPACE_ID_PATTERN, 'workspaceId must be a workspace id or *')]),
      kind: z.enum(['runtime', 'target', 'tool', 'runtimeVersion']),
      runtime: z.string().regex(RUNTIME_NAME_PATTERN, 'runtime must be a runtime name').optional(),
      value: z.string().trim().min(1, 'value must not be empty').max(512),
    })
    .refine((s) => s.kind !== 'runtime' || RUNTIME_NAME_PATTERN.test(s.value), { message: 'a runtime scope names a runtime', path: ['value'] })
    .refine((s) => s.kind !== 'runtimeVersion' || s.runtime !== undefined, { message: 'a runtimeVersion scope needs runtime', path: ['runtime'] })
    .refine((s) => s.kind !== 'tool' || IDENTIFIER_CHARS.test(s.value), { message: 'a tool scope names a tool id', path: ['value'] })
    // A pattern is a prefix and `*`, nothing else: no wildcard inside it.
    .refine((s) => s.kind !== 'target' || !s.value.slice(0, -1).includes('*'), { message: 'a target pattern has one * at its end', path: ['value'] });
}

export function revokeRequestSchema(): z.ZodType<RevokeRequest> {
  return z.strictObject({
    scope: revocationScopeSchema(),
    reason: reason(),
    revokedBy: principal(),
    requestId: id('requestId', 200).optional(),
    signature: signature(),
    signedAt: signedAt(),
  });
}

export function liftRequestSchema(): z.ZodType<LiftRequest> {
  return z.strictObject({
    revocationId: z.string().regex(REVOCATION_ID, 'revocationId must look like rev-<n>'),
    reason: reason(),
    liftedBy: principal(),
    signature: signature(),
    signedAt: signedAt(),
  });
}

export function revokedNoticeSchema(): z.ZodType<RevokedNotice> {
  return z.strictObject({ revocationId: z.string().regex(REVOCATION_ID, 'revocationId must look like rev-<n>') });
}
