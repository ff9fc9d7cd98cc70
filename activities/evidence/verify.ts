/**
 * node:crypto for evidence hashing and verification outside the workflow sandbox (CLI, sinks,
 * benches). The checks themselves are the pure ones in workflows/ (verifyChain, verifyWorkspaceLog,
 * merkle, tree-head), given this `EvidenceCrypto`: same bytes, same verdicts, several times faster
 * than the pure-JS hash the sandbox must use. Never import this from workflows/.
 */
import * as nodeCrypto from 'node:crypto';
import { type ChainScope, type ChainVerdict, type EvidenceEntry, verifyChain } from '../../workflows/evidence-chain';
import { type LogVerdict, type VerifyOptions, type WorkspaceLog, verifyWorkspaceLog } from './log';
import type { EvidenceCrypto } from '../../workflows/hashing';

// One-shot hash (Node ≥ 20.12) skips the Hash object per call; createHash where it is missing.
const oneShot = typeof nodeCrypto.hash === 'function';

function sha256Hex(text: string): string {
  // Node encodes a lone surrogate as U+FFFD, as TextEncoder does, so the bytes match the pure hash.
  return oneShot ? nodeCrypto.hash('sha256', text, 'hex') : nodeCrypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

function sha256(data: Uint8Array): Uint8Array {
  if (!oneShot) return nodeCrypto.createHash('sha256').update(data).digest();
  // The digest as a one-byte (latin1) string, copied into a small array V8 keeps on its heap: about half the
  // cost of a Buffer (a separate backing store each) for the 65-byte Merkle node hashes.
  const digest = nodeCrypto.hash('sha256', data, 'binary');
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = digest.charCodeAt(i);
  return out;
}

/** Public keys already imported, by hex; a verifier uses one or two, the bound keeps a hostile caller from growing it. */
const keys = new Map<string, nodeCrypto.KeyObject>();
const MAX_KEYS = 16;

function publicKeyObject(raw: Uint8Array): nodeCrypto.KeyObject {
  const hex = Buffer.from(raw).toString('hex');
  let key = keys.get(hex);
  if (!key) {
    key = nodeCrypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
    if (keys.size >= MAX_KEYS) keys.clear();
    keys.set(hex, key);
  }
  return key;
}

/**
 * OpenSSL's Ed25519 (RFC 8032). It accepts every signature our signer makes, as @noble/curves does;
 * on crafted edge cases (non-canonical encodings, small-order points) it may refuse where noble's
 * ZIP-215 rules accept, which fails closed.
 */
function ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    return nodeCrypto.verify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

export const nodeEvidenceCrypto: EvidenceCrypto = { sha256Hex, sha256, ed25519Verify };

/** verifyChain with node:crypto. */
export function verifyChainNode(entries: readonly EvidenceEntry[], scope: Omit<ChainScope, 'correlationId'>): ChainVerdict {
  return verifyChain(entries, scope, nodeEvidenceCrypto);
}

/** verifyWorkspaceLog with node:crypto. */
export function verifyWorkspaceLogNode(log: WorkspaceLog, opts: Omit<VerifyOptions, 'crypto'>): LogVerdict {
  return verifyWorkspaceLog(log, { ...opts, crypto: nodeEvidenceCrypto });
}
