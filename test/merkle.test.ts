/**
 * RFC 6962 Merkle trees: roots against a naive reference written from the definition, the RFC's
 * empty-tree and empty-leaf values, and inclusion and consistency proofs that verify for every size
 * and index up to 40 and fail for every kind of doctoring.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  EMPTY_ROOT,
  MerkleFrontier,
  consistencyProof,
  inclusionProof,
  leafHash,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from '../workflows/merkle';

const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
/** MTH(D[n]) exactly as RFC 6962 §2.1 defines it, with node:crypto. */
function referenceRoot(data: Buffer[]): string {
  const mth = (d: Buffer[]): Buffer => {
    if (d.length === 0) return sha();
    if (d.length === 1) return sha(Buffer.from([0]), d[0]);
    let k = 1;
    while (k * 2 < d.length) k *= 2;
    return sha(Buffer.from([1]), mth(d.slice(0, k)), mth(d.slice(k)));
  };
  return mth(data).toString('hex');
}

const data = (n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`leaf-${i}`));
const leaves = (n: number) => data(n).map((d) => leafHash(d));
const flip = (h: string) => (h[0] === '0' ? '1' : '0') + h.slice(1);

describe('merkle (RFC 6962)', function () {
  it('matches the RFC values for the empty tree and the empty leaf', function () {
    assert.equal(EMPTY_ROOT, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(leafHash(new Uint8Array(0)), '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
  });

  it('rootOf and the append-only frontier equal the reference root for every size 0..70', function () {
    for (let n = 0; n <= 70; n++) {
      const expected = referenceRoot(data(n));
      assert.equal(rootOf(leaves(n)), expected, `rootOf(${n})`);
      assert.equal(MerkleFrontier.of(leaves(n)).root(), expected, `frontier(${n})`);
    }
  });

  it('every inclusion proof up to size 40 verifies, and every doctored one fails', function () {
    for (let n = 1; n <= 40; n++) {
      const hs = leaves(n);
      const root = rootOf(hs);
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(hs, i, n);
        assert.ok(verifyInclusion(hs[i], i, n, proof, root), `leaf ${i} of ${n}`);
        if (n > 1) {
          assert.ok(!verifyInclusion(hs[i], (i + 1) % n, n, proof, root), 'wrong index');
          assert.ok(!verifyInclusion(hs[(i + 1) % n], i, n, proof, root), 'wrong leaf');
          assert.ok(!verifyInclusion(hs[i], i, n, proof.slice(1), root), 'truncated proof');
          proof.forEach((_, k) => assert.ok(!verifyInclusion(hs[i], i, n, proof.map((h, j) => (j === k ? flip(h) : h)), root), `hash ${k} flipped`));
        }
        assert.ok(!verifyInclusion(hs[i], i, n, [...proof, hs[0]], root), 'extended proof');
        // The size is bound to the root by the signed head: against the bigger tree's root the proof fails.
        assert.ok(!verifyInclusion(hs[i], i, n + 1, proof, rootOf(leaves(n + 1))), 'proof of a smaller tree');
      }
    }
  });

  it('every consistency proof up to size 40 verifies, and doctored proofs and forks fail', function () {
    for (let n = 1; n <= 40; n++) {
      const hs = leaves(n);
      const newRoot = rootOf(hs);
      for (let m = 1; m <= n; m++) {
        const oldRoot = rootOf(hs.slice(0, m));
        const proof = consistencyProof(hs, m, n);
        assert.ok(verifyConsistency(m, n, oldRoot, newRoot, proof), `${m} -> ${n}`);
        if (m === n) continue;
        assert.ok(!verifyConsistency(m, n, newRoot, oldRoot, proof), 'roots swapped');
        assert.ok(!verifyConsistency(m, n, oldRoot, newRoot, proof.slice(0, -1)), 'truncated proof');
        proof.forEach((_, k) => assert.ok(!verifyConsistency(m, n, oldRoot, newRoot, proof.map((h, j) => (j === k ? flip(h) : h))), `hash ${k} flipped`));
        // A fork: the old tree had another leaf at m-1.
        const forked = rootOf([...hs.slice(0, m - 1), leafHash(Buffer.from('forged'))]);
        assert.ok(!verifyConsistency(m, n, forked, newRoot, proof), `fork at ${m} -> ${n}`);
      }
    }
  });

  it('answers false, never throws, on garbage', function () {
    const hs = leaves(4);
    assert.equal(verifyInclusion('zz', 0, 4, [], rootOf(hs)), false);
    assert.equal(verifyInclusion(hs[0], -1, 4, inclusionProof(hs, 0, 4), rootOf(hs)), false);
    assert.equal(verifyInclusion(hs[0], 0, Number.NaN, inclusionProof(hs, 0, 4), rootOf(hs)), false);
    assert.equal(verifyConsistency(2, 4, 'not hex', rootOf(hs), consistencyProof(hs, 2, 4)), false);
    assert.equal(verifyConsistency(3, 2, rootOf(hs), rootOf(hs), []), false);
    assert.throws(() => inclusionProof(hs, 4, 4), RangeError);
    assert.throws(() => consistencyProof(hs, 3, 5), RangeError);
  });
});
