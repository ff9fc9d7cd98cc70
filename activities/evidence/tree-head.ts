/**
 * What a workspace's Merkle log commits to, and its signed tree heads. Pure (`@noble/*`), so the CLI,
 * sinks and any client verify with the same bytes.
 *
 * - A leaf is one run's chain head at one point: "run R had `count` entries ending in `head`".
 *   Leaf hash = SHA-256(0x00 || canonical JSON of the leaf), as in RFC 6962. A leaf of a chain kept
 *   per Temporal execution also names the execution; leaves without one hash as they always did.
 * - A signed tree head (STH) commits the signer to the tree's size and root at a time. The Ed25519
 *   signature covers the canonical JSON of every field but `signature`, schema tag included, so a
 *   signature over anything else never verifies. `keyId` is the SHA-256 of the public key.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils';
import { type EvidenceCrypto, canonicalJson, jsonString, pureCrypto } from '../../workflows/hashing';
import { leafHashOfText } from './merkle';

const LEAF_SCHEMA = 'portarium.evidence-leaf.v1';
export const TREE_HEAD_SCHEMA = 'portarium.tree-head.v1';

export interface RunLeaf {
  workspaceId: string;
  runId: string;
  /** The Temporal run id of the execution whose chain this is; absent for chains kept by workflow id alone. */
  execution?: string;
  count: number;
  head: string;
}

export interface TreeHeadBody {
  workspaceId: string;
  treeSize: number;
  rootHash: string;
  /** ISO-8601 time the head was signed. */
  timestamp: string;
}

export interface SignedTreeHead extends TreeHeadBody {
  schema: typeof TREE_HEAD_SCHEMA;
  keyId: string;
  /** Ed25519 signature, hex. */
  signature: string;
}

export function leafHashOf(leaf: RunLeaf, crypto: EvidenceCrypto = pureCrypto): string {
  const { workspaceId, runId, execution, count, head } = leaf;
  // canonicalJson drops an undefined `execution`, so older leaves keep their hash. Spelled out (keys
  // sorted) for the usual types; a mistyped field of a tampered log goes the general way.
  const text = typeof count === 'number' && Number.isFinite(count) && typeof head === 'string' && typeof runId === 'string'
    && typeof workspaceId === 'string' && (execution === undefined || typeof execution === 'string')
    ? `{"count":${JSON.stringify(count)}${execution === undefined ? '' : `,"execution":${jsonString(execution)}`},"head":${jsonString(head)},"runId":${
      jsonString(runId)},"schema":"${LEAF_SCHEMA}","workspaceId":${jsonString(workspaceId)}}`
    : canonicalJson({ schema: LEAF_SCHEMA, workspaceId, runId, execution, count, head });
  return leafHashOfText(text, crypto);
}

export function keyIdOf(publicKeyHex: string, crypto: EvidenceCrypto = pureCrypto): string {
  return bytesToHex(crypto.sha256(hexToBytes(publicKeyHex)));
}

/** The bytes a tree head's signature covers. */
export function treeHeadMessage(sth: Omit<SignedTreeHead, 'signature'>): Uint8Array {
  const { schema, workspaceId, treeSize, rootHash, timestamp, keyId } = sth;
  return new TextEncoder().encode(canonicalJson({ schema, workspaceId, treeSize, rootHash, timestamp, keyId }));
}

export function signTreeHead(body: TreeHeadBody, privateKeyHex: string): SignedTreeHead {
  const keyId = keyIdOf(bytesToHex(ed25519.getPublicKey(hexToBytes(privateKeyHex))));
  const unsigned = { schema: TREE_HEAD_SCHEMA, ...body, keyId } as const;
  return { ...unsigned, signature: bytesToHex(ed25519.sign(treeHeadMessage(unsigned), hexToBytes(privateKeyHex))) };
}

/** Whether `sth` is signed by `publicKeyHex` (and names that key). Never throws. */
export function verifyTreeHead(sth: SignedTreeHead, publicKeyHex: string, crypto: EvidenceCrypto = pureCrypto): boolean {
  try {
    if (sth.schema !== TREE_HEAD_SCHEMA || sth.keyId !== keyIdOf(publicKeyHex, crypto)) return false;
    const { signature, ...unsigned } = sth;
    const verify = crypto.ed25519Verify ?? ((sig, msg, pk) => ed25519.verify(sig, msg, pk));
    return verify(hexToBytes(signature), treeHeadMessage(unsigned), hexToBytes(publicKeyHex));
  } catch {
    return false;
  }
}
