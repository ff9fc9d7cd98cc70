/**
 * RFC 6962 / RFC 9162 Merkle trees over SHA-256: tree hashes, inclusion and consistency proofs and
 * their verification, and an append-only frontier. Leaves and nodes are hashed with distinct 0x00 and
 * 0x01 prefixes so a leaf can never pass for an interior node.
 *
 * Pure and deterministic (only `@noble/hashes`, no Buffer, no node:crypto, no clock) so the workflow
 * sandbox, the sinks, the CLI and outside auditors all compute the same bytes; code outside the
 * sandbox may pass node:crypto's SHA-256 (`crypto`, last argument), which gives the same bytes faster.
 * Hashes are lowercase hex everywhere in the API; inside, the work is done on bytes so each hash is
 * decoded once.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils';
import { type EvidenceCrypto, pureCrypto } from '../../workflows/hashing';

type Hash = Uint8Array;

/** SHA-256 of the empty string: the root of the empty tree (RFC 6962 §2.1). */
export const EMPTY_ROOT: string = bytesToHex(sha256(new Uint8Array(0)));

/** What the verifiers accept: exactly 32 bytes in lowercase hex, as this API produces. */
const HASH_HEX = /^[0-9a-f]{64}$/;

function isHashHex(h: unknown): h is string {
  return typeof h === 'string' && HASH_HEX.test(h);
}

function isProof(proof: unknown): proof is readonly string[] {
  return Array.isArray(proof) && proof.every(isHashHex);
}

function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Decodes a hex hash, refusing anything that is not 32 bytes (a short one would hash silently). */
function decode(hex: string): Hash {
  if (typeof hex === 'string' && hex.length === 64) {
    try {
      return hexToBytes(hex);
    } catch {
      // fall through to the error below, which names the bad value
    }
  }
  throw new TypeError(`not a 32-byte hex hash: ${String(hex).slice(0, 80)}`);
}

/** Reused across calls (both hashes are synchronous and keep no reference): ~10% off large trees. */
const nodeInput = new Uint8Array(65);

function hashChildren(left: Hash, right: Hash, crypto: EvidenceCrypto): Hash {
  nodeInput[0] = 0x01;
  nodeInput.set(left, 1);
  nodeInput.set(right, 33);
  return crypto.sha256(nodeInput);
}

function equalBytes(a: Hash, b: Hash): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Leaf hash: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array, crypto: EvidenceCrypto = pureCrypto): string {
  const buf = new Uint8Array(data.length + 1);
  buf.set(data, 1);
  return bytesToHex(crypto.sha256(buf));
}

/** Leaf hash of the UTF-8 bytes of `text`, without encoding it first: SHA-256 of U+0000 then `text` is the same bytes. */
export function leafHashOfText(text: string, crypto: EvidenceCrypto = pureCrypto): string {
  return crypto.sha256Hex(`\u0000${text}`);
}

/** Interior node hash: SHA-256(0x01 || left || right), left/right are hex hashes. */
export function nodeHash(left: string, right: string, crypto: EvidenceCrypto = pureCrypto): string {
  return bytesToHex(hashChildren(decode(left), decode(right), crypto));
}

/** Largest power of two strictly below n (n >= 2): where a tree of n leaves splits. */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Tree hash of `leaves[lo, hi)`; recursion depth is log2 of the range, so size is no concern. */
function subtreeRoot(leaves: readonly Hash[], lo: number, hi: number, crypto: EvidenceCrypto): Hash {
  if (hi - lo === 1) return leaves[lo];
  const mid = lo + split(hi - lo);
  return hashChildren(subtreeRoot(leaves, lo, mid, crypto), subtreeRoot(leaves, mid, hi, crypto), crypto);
}

function decodeFirst(leafHashes: readonly string[], n: number): Hash[] {
  const out = new Array<Hash>(n);
  for (let i = 0; i < n; i++) out[i] = decode(leafHashes[i]);
  return out;
}

/** MTH over leaf hashes (RFC 6962 §2.1), split at the largest power of two smaller than n. */
export function rootOf(leafHashes: readonly string[], crypto: EvidenceCrypto = pureCrypto): string {
  if (leafHashes.length === 0) return EMPTY_ROOT;
  return bytesToHex(subtreeRoot(decodeFirst(leafHashes, leafHashes.length), 0, leafHashes.length, crypto));
}

/**
 * Audit path for leaf `index` in the tree of the first `treeSize` leaves (RFC 6962 §2.1.1), the
 * sibling nearest the leaf first. Throws RangeError on bad index/size.
 */
export function inclusionProof(leafHashes: readonly string[], index: number, treeSize: number, crypto: EvidenceCrypto = pureCrypto): string[] {
  if (!isSize(treeSize) || treeSize > leafHashes.length || !isSize(index) || index >= treeSize) {
    throw new RangeError(`no leaf ${index} in a tree of ${treeSize} (have ${leafHashes.length} leaves)`);
  }
  const leaves = decodeFirst(leafHashes, treeSize);
  // Descend from the root towards the leaf, taking the other half's root at each split.
  const siblings: string[] = [];
  let lo = 0;
  let hi = treeSize;
  while (hi - lo > 1) {
    const mid = lo + split(hi - lo);
    if (index < mid) {
      siblings.push(bytesToHex(subtreeRoot(leaves, mid, hi, crypto)));
      hi = mid;
    } else {
      siblings.push(bytesToHex(subtreeRoot(leaves, lo, mid, crypto)));
      lo = mid;
    }
  }
  return siblings.reverse();
}

/** RFC 9162 §2.1.3.2 verification algorithm. Returns false (never throws) on any malformed input, including bad hex. */
export function verifyInclusion(leafHashHex: string, index: number, treeSize: number, proof: readonly string[], root: string, crypto: EvidenceCrypto = pureCrypto): boolean {
  if (!isSize(index) || !isSize(treeSize) || index >= treeSize) return false;
  if (!isHashHex(leafHashHex) || !isHashHex(root) || !isProof(proof)) return false;
  // fn is our node's index at the current level, sn the index of the last node at that level.
  let fn = index;
  let sn = treeSize - 1;
  let r = hexToBytes(leafHashHex);
  for (const p of proof) {
    if (sn === 0) return false; // more proof than tree
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(hexToBytes(p), r, crypto);
      // A last node with no right sibling is promoted unchanged: skip the levels it climbs alone.
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = hashChildren(r, hexToBytes(p), crypto);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(r, hexToBytes(root));
}

/**
 * Consistency proof PROOF(m, D[n]) between the first `fromSize` and first `toSize` leaves (RFC 6962
 * §2.1.2). fromSize 0 or fromSize === toSize gives []. Throws RangeError unless
 * 0 <= fromSize <= toSize <= leafHashes.length.
 */
export function consistencyProof(leafHashes: readonly string[], fromSize: number, toSize: number, crypto: EvidenceCrypto = pureCrypto): string[] {
  if (!isSize(fromSize) || !isSize(toSize) || fromSize > toSize || toSize > leafHashes.length) {
    throw new RangeError(`no consistency proof from ${fromSize} to ${toSize} (have ${leafHashes.length} leaves)`);
  }
  if (fromSize === 0 || fromSize === toSize) return [];
  const leaves = decodeFirst(leafHashes, toSize);
  const out: string[] = [];
  // SUBPROOF over leaves[lo, hi) for its first m leaves. `known` holds while those m leaves are the
  // old tree's whole left edge, whose root the verifier already has, so it need not be sent.
  const sub = (m: number, lo: number, hi: number, known: boolean): void => {
    if (m === hi - lo) {
      if (!known) out.push(bytesToHex(subtreeRoot(leaves, lo, hi, crypto)));
      return;
    }
    const mid = lo + split(hi - lo);
    if (m <= mid - lo) {
      sub(m, lo, mid, known);
      out.push(bytesToHex(subtreeRoot(leaves, mid, hi, crypto)));
    } else {
      sub(m - (mid - lo), mid, hi, false);
      out.push(bytesToHex(subtreeRoot(leaves, lo, mid, crypto)));
    }
  };
  sub(fromSize, 0, toSize, true);
  return out;
}

function isPowerOfTwo(n: number): boolean {
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
}

/**
 * RFC 9162 §2.1.4.2 verification algorithm. fromSize === toSize: true iff proof empty and roots
 * equal. fromSize 0: true iff proof is empty (any tree extends the empty tree). Returns false, never
 * throws, on malformed input.
 */
export function verifyConsistency(fromSize: number, toSize: number, fromRoot: string, toRoot: string, proof: readonly string[], crypto: EvidenceCrypto = pureCrypto): boolean {
  if (!isSize(fromSize) || !isSize(toSize) || fromSize > toSize) return false;
  if (!isHashHex(fromRoot) || !isHashHex(toRoot) || !isProof(proof)) return false;
  if (fromSize === toSize) return proof.length === 0 && fromRoot === toRoot;
  if (fromSize === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  // A power-of-two old tree is a whole subtree of the new one, so its root is the path's start.
  const path = (isPowerOfTwo(fromSize) ? [fromRoot, ...proof] : proof).map((h) => hexToBytes(h));
  let fn = fromSize - 1;
  let sn = toSize - 1;
  // Climb past the levels where the old tree's last node is a right child already complete.
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // fr rebuilds the old root and sr the new one from the same path.
  let fr = path[0];
  let sr = path[0];
  for (let i = 1; i < path.length; i++) {
    if (sn === 0) return false; // more proof than tree
    const c = path[i];
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr, crypto);
      sr = hashChildren(c, sr, crypto);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      // Nodes to the right of the old tree belong to the new root only.
      sr = hashChildren(sr, c, crypto);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(fr, hexToBytes(fromRoot)) && equalBytes(sr, hexToBytes(toRoot));
}

/**
 * Append-only compact range: the roots of the perfect subtrees covering the leaves so far, largest
 * first, one per set bit of the size (O(log n) memory).
 */
export class MerkleFrontier {
  private readonly peaks: Hash[] = [];
  private count = 0;

  constructor(private readonly crypto: EvidenceCrypto = pureCrypto) {}

  /** Builds by appending each leaf hash in order. */
  static of(leafHashes: readonly string[], crypto: EvidenceCrypto = pureCrypto): MerkleFrontier {
    const f = new MerkleFrontier(crypto);
    for (const h of leafHashes) f.append(h);
    return f;
  }

  get size(): number {
    return this.count;
  }

  /** O(log n) amortised. Throws TypeError on a malformed hash, before changing anything. */
  append(leafHash: string): void {
    let node = decode(leafHash);
    // Like a binary increment: each trailing set bit of the size is a peak of equal size to merge.
    for (let n = this.count; n % 2 === 1; n = Math.floor(n / 2)) {
      node = hashChildren(this.peaks.pop()!, node, this.crypto);
    }
    this.peaks.push(node);
    this.count++;
  }

  /** Equals rootOf(all appended leaves); EMPTY_ROOT when empty. Folds the peaks right to left. */
  root(): string {
    if (this.peaks.length === 0) return EMPTY_ROOT;
    let acc = this.peaks[this.peaks.length - 1];
    for (let i = this.peaks.length - 2; i >= 0; i--) acc = hashChildren(this.peaks[i], acc, this.crypto);
    return bytesToHex(acc);
  }
}
