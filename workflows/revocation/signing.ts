/**
 * Signed revocations: where a workspace requires signed decisions (any of its rules has
 * `approval.signed`), `revoke` and `lift` for it must carry an Ed25519 signature by the operator's
 * registered key (`approverKeys`) over the request's canonical JSON, bound to the registry and to the
 * request (its `requestId`, or the revocation id for a lift), so a signature is never good for another
 * scope, reason or revocation. Pure JS, as `../run/signatures.ts`, so the registry verifies in the sandbox.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils';
import { canonicalJson } from '../hashing';
import { ownValue } from '../../policies/own';
import type { RevocationScope } from './types';

const SCHEMA = 'portarium.revocation.v1';

export type SignedRevocation =
  | { kind: 'revoke'; registryId: string; requestId: string; scope: RevocationScope; reason: string; signerId: string; signedAt: string }
  | { kind: 'lift'; registryId: string; revocationId: string; reason: string; signerId: string; signedAt: string };

/** What the signing activity tells the registry: whether signatures are required, and the keys to check against (one map per requiring workspace). */
export interface RevocationSigning {
  required: boolean;
  keySets: Record<string, string>[];
}

function message(f: SignedRevocation): Uint8Array {
  const scope = f.kind === 'revoke' ? { workspaceId: f.scope.workspaceId, kind: f.scope.kind, value: f.scope.value, runtime: f.scope.runtime ?? null } : undefined;
  return new TextEncoder().encode(canonicalJson({ schema: SCHEMA, ...f, ...(scope && { scope }) }));
}

export function signRevocation(f: SignedRevocation, privateKeyHex: string): string {
  return bytesToHex(ed25519.sign(message(f), hexToBytes(privateKeyHex.toLowerCase())));
}

/** Why a signed revocation request is refused, or undefined when the signature holds for every key set. */
export function revocationSignatureRefusal(signing: RevocationSigning, f: SignedRevocation | undefined, signature: string | undefined): string | undefined {
  if (!signing.required) return undefined;
  if (!f || !signature) return 'the workspace requires signed decisions: signature, signedAt (and requestId for revoke) missing';
  for (const keys of signing.keySets) {
    const key = ownValue(keys, f.signerId);
    if (typeof key !== 'string' || !/^[0-9a-f]{64}$/.test(key)) return `no key registered for ${f.signerId}`;
    let ok = false;
    try {
      ok = ed25519.verify(hexToBytes(signature), message(f), hexToBytes(key));
    } catch {
      ok = false;
    }
    if (!ok) return `signature of ${f.signerId} does not verify`;
  }
  return undefined;
}
