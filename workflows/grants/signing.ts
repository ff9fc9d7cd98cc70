/**
 * Signed grants: where the rule needs signed decisions, a grant carries the grantor's Ed25519
 * signature over its canonical JSON (workspace, rule, scope, uses, expiry, reason, request id), so it
 * can neither be forged nor widened. Pure JS, as `../run/signatures.ts`, so runs verify in the sandbox.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils';
import { canonicalJson } from '../hashing';
import { ownValue } from '../../policies/own';
import type { GrantScope } from './types';

const SCHEMA = 'portarium.grant.v1';

export interface SignedGrant {
  workspaceId: string;
  requestId: string;
  ruleId: string;
  grantorId: string;
  scope: GrantScope;
  maxUses: number;
  expiresAt: string;
  reason: string;
  signedAt: string;
}

function message(f: SignedGrant): Uint8Array {
  const s = f.scope;
  const scope = { runtime: s.runtime ?? null, target: s.target ?? null, operation: s.operation ?? null, when: s.when ?? null };
  return new TextEncoder().encode(canonicalJson({ schema: SCHEMA, ...f, scope }));
}

export function signGrant(f: SignedGrant, privateKeyHex: string): string {
  return bytesToHex(ed25519.sign(message(f), hexToBytes(privateKeyHex.toLowerCase())));
}

/** Why a grant's signature does not hold under `keys`, or undefined when it does. */
export function grantSignatureRefusal(keys: Record<string, string>, f: SignedGrant | undefined, signature: string | undefined): string | undefined {
  if (!f || !signature) return 'the rule requires signed decisions: signature, signedAt and requestId missing';
  const key = ownValue(keys, f.grantorId);
  if (typeof key !== 'string' || !/^[0-9a-f]{64}$/.test(key)) return `no key registered for ${f.grantorId}`;
  try {
    return ed25519.verify(hexToBytes(signature), message(f), hexToBytes(key)) ? undefined : `signature of ${f.grantorId} does not verify`;
  } catch {
    return `signature of ${f.grantorId} does not verify`;
  }
}

/** The signed fields of a grant as stored (undefined when it carries no signature). */
export function signedFieldsOf(g: { workspaceId: string; requestId?: string; ruleId: string; grantor: { id: string }; scope: GrantScope; maxUses: number; expiresAt: string; reason: string; signedAt?: string }): SignedGrant | undefined {
  if (!g.requestId || !g.signedAt) return undefined;
  return { workspaceId: g.workspaceId, requestId: g.requestId, ruleId: g.ruleId, grantorId: g.grantor.id, scope: g.scope, maxUses: g.maxUses, expiresAt: g.expiresAt, reason: g.reason, signedAt: g.signedAt };
}
