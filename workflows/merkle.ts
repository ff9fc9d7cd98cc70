/**
 * RFC 6962 (Certificate Transparency) Merkle tree hashing, inclusion and consistency proofs, over
 * SHA-256 with the 0x00 leaf and 0x01 node prefixes that stop second-preimage tricks. Pure JS
 * (`@noble/hashes`), so the workflow sandbox, sinks, the CLI and auditors compute the same bytes.
 * Hashes are lowercase hex everywhere in this API.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils';

export const EMPTY_ROOT = bytesToHex(sha256(new Uint8Array(0)));

const HASH_HEX = /^[0-9a-f]{64}$/;

export function leafHash(data: Uint8Array): string {
  const buf = new Uint8Array(data.length + 1);
  buf.set(data, 1);
  return bytesToHex(sha256(buf));
}

export function nodeHash(left: string, right: string): string {
  const buf = new Uint8Array(65);
  buf[0] = 1;
  buf.set(hexToBytes(left), 1);
  buf.set(hexToBytes(right), 33);
  return bytesToHex(sha256(buf));
}

/** Largest power of two strictly below n (n >= 2): where RFC 6962 splits a tree of n leaves. */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isSize(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** The Merkle tree hash of `leaves[lo, hi)`. */
function subtreeRoot(leaves: readonly string[], lo: number, hi: number): string {
  const n = hi - lo;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leaves[lo];
  const k = split(n);
  return nodeHash(subtreeRoot(leaves, lo, lo + k), subtreeRoot(leaves, lo + k, hi));
}

export function rootOf(leafHashes: readonly string[]): string {
  return subtreeRoot(leafHashes, 0, leafHashes.length);
}

/** Audit path of leaf `index` in the tree of the first `treeSize` leaves, leaf side first. */
export function inclusionProof(leafHashes: readonly string[], index: number, treeSize: number): string[] {
  if (!isSize(treeSize) || treeSize > leafHashes.length || !isSize(index) || index >= treeSize) {
    throw new RangeError(`no leaf ${index} in a tree of ${treeSize} (have ${leafHashes.length} leaves)`);
  }
  const path: string[] = [];
  let lo = 0;
  let hi = treeSize;
  const siblings: string[] = [];
  while (hi - lo > 1) {
    const k = split(hi - lo);
    if (index < lo + k) {
      siblings.push(subtreeRoot(leafHashes, lo + k, hi));
      hi = lo + k;
    } else {
      siblings.push(subtreeRoot(leafHashes, lo, lo + k));
      lo += k;
    }
  }
  // Collected root side first; a proof lists the leaf side first.
  for (let i = siblings.length - 1; i >= 0; i--) path.push(siblings[i]);
  return path;
}

export function verifyInclusion(leafHashHex: string, index: number, treeSize: number, proof: readonly string[], root: string): boolean {
  if (!isSize(index) || !isSize(treeSize) || index >= treeSize) return false;
  if (!HASH_HEX.test(leafHashHex) || !HASH_HEX.test(root) || !proof.every((h) => typeof h === 'string' && HASH_HEX.test(h))) return false;
  // RFC 9162 §2.1.3.2: walk up from the leaf; fn/sn track our position and the last index.
  let fn = index;
  let sn = treeSize - 1;
  let r = leafHashHex;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r === root;
}

/** PROOF(m, D[n]) of RFC 6962 §2.1.2: that the first `fromSize` leaves are a prefix of the first `toSize`. */
export function consistencyProof(leafHashes: readonly string[], fromSize: number, toSize: number): string[] {
  if (!isSize(fromSize) || !isSize(toSize) || fromSize > toSize || toSize > leafHashes.length) {
    throw new RangeError(`no consistency proof from ${fromSize} to ${toSize} (have ${leafHashes.length} leaves)`);
  }
  if (fromSize === 0 || fromSize === toSize) return [];
  const out: string[] = [];
  // SUBPROOF(m, D[lo:hi], complete): `complete` is true while the m-prefix is a whole subtree we already know.
  const sub = (m: number, lo: number, hi: number, complete: boolean): void => {
    const n = hi - lo;
    if (m === n) {
      if (!complete) out.push(subtreeRoot(leafHashes, lo, hi));
      return;
    }
    const k = split(n);
    if (m <= k) {
      sub(m, lo, lo + k, complete);
      out.push(subtreeRoot(leafHashes, lo + k, hi));
    } else {
      sub(m - k, lo + k, hi, false);
      out.push(subtreeRoot(leafHashes, lo, lo + k));
    }
  };
  sub(fromSize, 0, toSize, true);
  return out;
}

export function verifyConsistency(fromSize: number, toSize: number, fromRoot: string, toRoot: string, proof: readonly string[]): boolean {
  if (!isSize(fromSize) || !isSize(toSize) || fromSize > toSize) return false;
  if (!HASH_HEX.test(fromRoot) || !HASH_HEX.test(toRoot) || !proof.every((h) => typeof h === 'string' && HASH_HEX.test(h))) return false;
  if (fromSize === toSize) return proof.length === 0 && fromRoot === toRoot;
  if (fromSize === 0) return proof.length === 0;
  // RFC 9162 §2.1.4.2. When fromSize is a power of two, the old root is itself the first node.
  const path = isPowerOfTwo(fromSize) ? [fromRoot, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = fromSize - 1;
  let sn = toSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr === fromRoot && sr === toRoot;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * The append-only frontier of a tree: the roots of the perfect subtrees covering the leaves so far,
 * largest first. Appending is O(log n) amortised, and the root folds them right to left.
 */
export class MerkleFrontier {
  private readonly stack: { size: number; hash: string }[] = [];
  private count = 0;

  static of(leafHashes: readonly string[]): MerkleFrontier {
    const f = new MerkleFrontier();
    for (const h of leafHashes) f.append(h);
    return f;
  }

  get size(): number {
    return this.count;
  }

  append(leafHash: string): void {
    let node = { size: 1, hash: leafHash };
    // Merge equal-sized neighbours, like carrying in binary addition.
    while (this.stack.length && this.stack[this.stack.length - 1].size === node.size) {
      const left = this.stack.pop()!;
      node = { size: left.size * 2, hash: nodeHash(left.hash, node.hash) };
    }
    this.stack.push(node);
    this.count++;
  }

  root(): string {
    if (!this.stack.length) return EMPTY_ROOT;
    let hash = this.stack[this.stack.length - 1].hash;
    for (let i = this.stack.length - 2; i >= 0; i--) hash = nodeHash(this.stack[i].hash, hash);
    return hash;
  }
}
