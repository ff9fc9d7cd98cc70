/**
 * Proofs of the quota protocol. A run gets a random secret from its own activity (`mintQuotaSecret`)
 * and sends it only to its coordinator, inside its request. Every message the coordinator sends the
 * run carries `HMAC-SHA256(secret, kind + body)`, so a signal forged by anyone else (who never saw the
 * secret) is refused; the run gives its lease back with the secret itself, which the coordinator
 * compares with the one the lease was asked with. Pure (noble hashes), so both workflows compute it.
 */
import { hmac } from '@noble/hashes/hmac';
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { canonicalJson } from '../hashing';

/** The messages a coordinator sends a run. */
export type QuotaProofKind = 'quotaGranted' | 'quotaQueued' | 'quotaProbe';

/** The proof for `body` (the message without its `proof` field), bound to its kind. */
export function quotaProof(secret: string, kind: QuotaProofKind, body: object): string {
  return bytesToHex(hmac(sha256, utf8ToBytes(secret), utf8ToBytes(`${kind}\n${canonicalJson(body)}`)));
}

/** Equal strings, compared without an early exit. */
export function sameSecret(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Workflows recorded before the protocol was authenticated take the old branches on replay: a run
 * asked without a secret, a coordinator took limits from requests. Both sides check this id.
 */
export const QUOTA_AUTH_PATCH = 'portarium-quota-auth-v1';
