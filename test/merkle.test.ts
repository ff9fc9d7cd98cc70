/**
 * RFC 6962 / 9162 Merkle trees: roots against a naive reference written from the definition with
 * node:crypto, the RFC's empty-tree and empty-leaf values, inclusion and consistency proofs that
 * verify for every size and index up to 40 and fail for every kind of doctoring, and verifiers that
 * answer false instead of throwing on garbage.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  EMPTY_ROOT,
  MerkleFrontier,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from '../activities/evidence/merkle';

const sha = (...parts: Buffer[]): Buffer => createHash('sha256').update(Buffer.concat(parts)).digest();

/** MTH(D[n]) straight from the definition: recursive, on raw data, nothing shared with the module. */
function referenceRoot(data: readonly Buffer[]): string {
  const mth = (d: readonly Buffer[]): Buffer => {
    if (d.length === 0) return sha();
    if (d.length === 1) return sha(Buffer.from([0x00]), d[0]);
    let k = 1;
    while (k * 2 < d.length) k *= 2;
    return sha(Buffer.from([0x01]), mth(d.slice(0, k)), mth(d.slice(k)));
  };
  return mth(data).toString('hex');
}

const MAX = 40;
const data = (n: number, tag = 'leaf'): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.from(`${tag}-${i}`));
const leaves = (n: number, tag?: string): string[] => data(n, tag).map((d) => leafHash(d));
/** The same hash with its first hex digit changed. */
const flip = (h: string): string => (h[0] === '0' ? '1' : '0') + h.slice(1);
const replaceAt = (proof: readonly string[], k: number, h: string): string[] => proof.map((x, j) => (j === k ? h : x));

// One set of leaves; trees of size n are its first n, so every call also exercises the prefix sizes.
const ALL = leaves(MAX + 1);
const ROOTS = Array.from({ length: MAX + 2 }, (_, n) => rootOf(ALL.slice(0, n)));
const OUTSIDER = leafHash(Buffer.from('not in any tree'));
/** Proof lengths depend only on the sizes; cached because the wrong-size checks ask for many. */
const lengths = new Map<string, number>();
const inclusionLength = (i: number, n: number): number => cached(`i${i}/${n}`, () => inclusionProof(ALL, i, n).length);
const consistencyLength = (m: number, n: number): number => cached(`c${m}/${n}`, () => consistencyProof(ALL, m, n).length);
function cached(key: string, f: () => number): number {
  if (!lengths.has(key)) lengths.set(key, f());
  return lengths.get(key)!;
}

describe('merkle (RFC 6962 / RFC 9162)', function () {
  it('matches the RFC values for the empty tree and the empty leaf, and hashes nodes with 0x01', function () {
    assert.equal(EMPTY_ROOT, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(rootOf([]), EMPTY_ROOT);
    assert.equal(leafHash(new Uint8Array(0)), '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    const [a, b] = ALL;
    assert.equal(nodeHash(a, b), sha(Buffer.from([0x01]), Buffer.from(a, 'hex'), Buffer.from(b, 'hex')).toString('hex'));
    assert.throws(() => nodeHash('zz'.repeat(32), b), TypeError);
    assert.throws(() => nodeHash(a.slice(2), b), TypeError);
  });

  it('rootOf and the append-only frontier equal the reference root for every size 0..70', function () {
    const frontier = new MerkleFrontier();
    assert.equal(frontier.root(), EMPTY_ROOT);
    const hs = leaves(70);
    for (let n = 0; n <= 70; n++) {
      if (n > 0) frontier.append(hs[n - 1]);
      const expected = referenceRoot(data(n));
      assert.equal(rootOf(hs.slice(0, n)), expected, `rootOf(${n})`);
      assert.equal(frontier.size, n);
      assert.equal(frontier.root(), expected, `frontier after ${n} appends`);
      assert.equal(MerkleFrontier.of(hs.slice(0, n)).root(), expected, `MerkleFrontier.of(${n})`);
    }
  });

  it('a frontier refuses a malformed leaf hash and is unchanged by it', function () {
    const frontier = MerkleFrontier.of(ALL.slice(0, 3));
    for (const bad of ['', 'zz'.repeat(32), ALL[3].slice(1), `${ALL[3]}00`]) {
      assert.throws(() => frontier.append(bad), TypeError, JSON.stringify(bad));
    }
    assert.equal(frontier.size, 3);
    assert.equal(frontier.root(), ROOTS[3]);
  });

  it('every inclusion proof up to size 40 verifies, and every doctored one fails', function () {
    for (let n = 1; n <= MAX; n++) {
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(ALL, i, n);
        const at = `leaf ${i} of ${n}`;
        assert.deepEqual(inclusionProof(ALL.slice(0, n), i, n), proof, `${at}: only the first n leaves count`);
        assert.ok(verifyInclusion(ALL[i], i, n, proof, ROOTS[n]), at);

        for (let j = 0; j < n; j++) {
          if (j === i) continue;
          assert.ok(!verifyInclusion(ALL[i], j, n, proof, ROOTS[n]), `${at}: wrong index ${j}`);
          assert.ok(!verifyInclusion(ALL[j], i, n, proof, ROOTS[n]), `${at}: wrong leaf ${j}`);
        }
        assert.ok(!verifyInclusion(OUTSIDER, i, n, proof, ROOTS[n]), `${at}: leaf from outside`);
        assert.ok(!verifyInclusion(ALL[i], i, n, proof, ROOTS[n + 1]), `${at}: root of another tree`);

        for (let size = i + 1; size <= MAX + 1; size++) {
          if (size === n) continue;
          // Against the claimed size's own root a proof for another size never holds.
          assert.ok(!verifyInclusion(ALL[i], i, size, proof, ROOTS[size]), `${at}: claimed size ${size}`);
          // With the right root but a wrong size the path can coincide (e.g. leaf 0 of 3 and of 4):
          // the signed tree head is what binds the size. A path of another length never passes.
          if (inclusionLength(i, size) !== proof.length) {
            assert.ok(!verifyInclusion(ALL[i], i, size, proof, ROOTS[n]), `${at}: wrong size ${size}`);
          }
        }

        proof.forEach((h, k) => {
          assert.ok(!verifyInclusion(ALL[i], i, n, replaceAt(proof, k, flip(h)), ROOTS[n]), `${at}: hash ${k} flipped`);
          assert.ok(!verifyInclusion(ALL[i], i, n, proof.slice(0, k), ROOTS[n]), `${at}: truncated to ${k}`);
        });
        if (proof.length > 1) assert.ok(!verifyInclusion(ALL[i], i, n, [...proof].reverse(), ROOTS[n]), `${at}: reordered`);
        assert.ok(!verifyInclusion(ALL[i], i, n, [...proof, ALL[0]], ROOTS[n]), `${at}: extended at the end`);
        assert.ok(!verifyInclusion(ALL[i], i, n, [ALL[0], ...proof], ROOTS[n]), `${at}: extended at the start`);
      }
    }
  });

  it('every consistency proof up to size 40 verifies, and doctored proofs, wrong sizes and forks fail', function () {
    for (let n = 1; n <= MAX; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof(ALL, m, n);
        const at = `${m} -> ${n}`;
        assert.deepEqual(consistencyProof(ALL.slice(0, n), m, n), proof, `${at}: only the first n leaves count`);
        assert.ok(verifyConsistency(m, n, ROOTS[m], ROOTS[n], proof), at);
        if (m === n) {
          assert.deepEqual(proof, []);
          continue;
        }
        assert.ok(proof.length > 0, `${at}: a proof is needed`);

        assert.ok(!verifyConsistency(m, n, ROOTS[n], ROOTS[m], proof), `${at}: roots swapped`);
        assert.ok(!verifyConsistency(m, n, ROOTS[m], ROOTS[m], proof), `${at}: old root twice`);
        assert.ok(!verifyConsistency(m, n, ROOTS[m], ROOTS[n], []), `${at}: empty proof`);
        proof.forEach((h, k) => {
          assert.ok(!verifyConsistency(m, n, ROOTS[m], ROOTS[n], replaceAt(proof, k, flip(h))), `${at}: hash ${k} flipped`);
          assert.ok(!verifyConsistency(m, n, ROOTS[m], ROOTS[n], proof.slice(0, k)), `${at}: truncated to ${k}`);
        });
        assert.ok(!verifyConsistency(m, n, ROOTS[m], ROOTS[n], proof.slice(1)), `${at}: first hash dropped`);
        assert.ok(!verifyConsistency(m, n, ROOTS[m], ROOTS[n], [...proof, ALL[0]]), `${at}: extended`);

        for (let size = 1; size <= MAX + 1; size++) {
          // Claimed sizes with their own roots never take another pair's proof; with the original
          // roots only a path of another length is sure to fail (see the inclusion case).
          if (size !== m && size < n) {
            assert.ok(!verifyConsistency(size, n, ROOTS[size], ROOTS[n], proof), `${at}: claimed old size ${size}`);
            if (consistencyLength(size, n) !== proof.length) {
              assert.ok(!verifyConsistency(size, n, ROOTS[m], ROOTS[n], proof), `${at}: wrong old size ${size}`);
            }
          }
          if (size !== n && size > m) {
            assert.ok(!verifyConsistency(m, size, ROOTS[m], ROOTS[size], proof), `${at}: claimed new size ${size}`);
            if (consistencyLength(m, size) !== proof.length) {
              assert.ok(!verifyConsistency(m, size, ROOTS[m], ROOTS[n], proof), `${at}: wrong new size ${size}`);
            }
          }
        }

        // Forks: the new tree was grown from another m-leaf prefix (one changed leaf, first or last).
        for (const j of new Set([0, m - 1])) {
          const forked = replaceAt(ALL.slice(0, n), j, OUTSIDER);
          const forkedOld = rootOf(forked.slice(0, m));
          const forkedNew = rootOf(forked);
          const forkedProof = consistencyProof(forked, m, n);
          assert.ok(verifyConsistency(m, n, forkedOld, forkedNew, forkedProof), `${at}: the fork is self-consistent`);
          assert.ok(!verifyConsistency(m, n, ROOTS[m], forkedNew, forkedProof), `${at}: fork at leaf ${j}`);
          assert.ok(!verifyConsistency(m, n, ROOTS[m], forkedNew, proof), `${at}: fork at leaf ${j}, honest proof`);
          assert.ok(!verifyConsistency(m, n, forkedOld, ROOTS[n], proof), `${at}: forked old tree at leaf ${j}`);
        }
      }
    }
  });

  it('treats the empty old tree and equal sizes as the RFC leaves them', function () {
    assert.deepEqual(consistencyProof(ALL, 0, 5), []);
    assert.deepEqual(consistencyProof(ALL, 0, 0), []);
    assert.ok(verifyConsistency(0, 5, EMPTY_ROOT, ROOTS[5], []));
    assert.ok(!verifyConsistency(0, 5, EMPTY_ROOT, ROOTS[5], [ALL[0]]));
    assert.ok(verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, []));
    assert.ok(verifyConsistency(5, 5, ROOTS[5], ROOTS[5], []));
    assert.ok(!verifyConsistency(5, 5, ROOTS[5], ROOTS[6], []));
    assert.ok(!verifyConsistency(5, 5, ROOTS[5], ROOTS[5], [ALL[0]]));
  });

  it('builders throw RangeError on impossible sizes and indexes', function () {
    const hs = ALL.slice(0, 4);
    for (const [index, size] of [[4, 4], [-1, 4], [0, 5], [0, 0], [Number.NaN, 4], [0, Number.NaN], [1.5, 4], [0, Infinity]]) {
      assert.throws(() => inclusionProof(hs, index, size), RangeError, `inclusionProof(${index}, ${size})`);
    }
    for (const [from, to] of [[3, 2], [3, 5], [-1, 2], [0, 5], [Number.NaN, 2], [1, 2.5]]) {
      assert.throws(() => consistencyProof(hs, from, to), RangeError, `consistencyProof(${from}, ${to})`);
    }
  });

  it('verifiers answer false, never throw, on garbage', function () {
    const n = 6;
    const i = 3;
    const proof = inclusionProof(ALL, i, n);
    const cproof = consistencyProof(ALL, 3, n);
    assert.ok(verifyInclusion(ALL[i], i, n, proof, ROOTS[n]));
    assert.ok(verifyConsistency(3, n, ROOTS[3], ROOTS[n], cproof));

    const badHashes: unknown[] = ['', 'zz', 'zz'.repeat(32), ALL[i].slice(1), `${ALL[i]}0`, ALL[i].toUpperCase(), ` ${ALL[i].slice(1)}`, null, undefined, 42, {}];
    const badSizes: unknown[] = [-1, Number.NaN, Infinity, -Infinity, 1.5, 2 ** 53, '3', null, undefined];
    const badProofs: unknown[] = [null, undefined, 'abc', {}, [null], [42], ['zz'.repeat(32)], [...proof.slice(1), 'not hex']];
    const no = (f: () => boolean, what: string): void => {
      let result: boolean | undefined;
      assert.doesNotThrow(() => {
        result = f();
      }, what);
      assert.equal(result, false, what);
    };
    const any = (x: unknown): any => x;
    for (const h of badHashes) {
      no(() => verifyInclusion(any(h), i, n, proof, ROOTS[n]), `leaf ${String(h)}`);
      no(() => verifyInclusion(ALL[i], i, n, proof, any(h)), `root ${String(h)}`);
      no(() => verifyInclusion(ALL[i], i, n, replaceAt(proof, 0, any(h)), ROOTS[n]), `proof hash ${String(h)}`);
      no(() => verifyConsistency(3, n, any(h), ROOTS[n], cproof), `old root ${String(h)}`);
      no(() => verifyConsistency(3, n, ROOTS[3], any(h), cproof), `new root ${String(h)}`);
      no(() => verifyConsistency(3, n, ROOTS[3], ROOTS[n], replaceAt(cproof, 0, any(h))), `consistency hash ${String(h)}`);
      no(() => verifyConsistency(0, 0, any(h), any(h), []), `equal garbage roots ${String(h)}`);
    }
    for (const s of badSizes) {
      no(() => verifyInclusion(ALL[i], any(s), n, proof, ROOTS[n]), `index ${String(s)}`);
      no(() => verifyInclusion(ALL[i], i, any(s), proof, ROOTS[n]), `tree size ${String(s)}`);
      no(() => verifyConsistency(any(s), n, ROOTS[3], ROOTS[n], cproof), `from ${String(s)}`);
      no(() => verifyConsistency(3, any(s), ROOTS[3], ROOTS[n], cproof), `to ${String(s)}`);
    }
    for (const p of badProofs) {
      no(() => verifyInclusion(ALL[i], i, n, any(p), ROOTS[n]), `inclusion proof ${JSON.stringify(p)}`);
      no(() => verifyConsistency(3, n, ROOTS[3], ROOTS[n], any(p)), `consistency proof ${JSON.stringify(p)}`);
    }
    no(() => verifyInclusion(ALL[i], n, n, proof, ROOTS[n]), 'index == size');
    no(() => verifyConsistency(n, 3, ROOTS[n], ROOTS[3], cproof), 'from > to');
  });

  it('handles a 65,539-leaf tree: frontier, root and proofs agree', function () {
    const n = 2 ** 16 + 3;
    const hs = Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(`big-${i}`)));
    const root = rootOf(hs);
    assert.equal(MerkleFrontier.of(hs).root(), root);
    for (const i of [0, 2 ** 16, n - 1]) {
      const proof = inclusionProof(hs, i, n);
      assert.ok(verifyInclusion(hs[i], i, n, proof, root), `leaf ${i}`);
      assert.ok(!verifyInclusion(hs[i], i, n, proof, EMPTY_ROOT), `leaf ${i} against another root`);
    }
    // A power-of-two old tree, whose root the verifier puts at the head of the path itself.
    const m = 2 ** 16;
    assert.ok(verifyConsistency(m, n, rootOf(hs.slice(0, m)), root, consistencyProof(hs, m, n)));
  });

  it('stays sandbox-safe: the compiled module loads nothing but @noble/hashes (and the pure hashing module, itself checked)', function () {
    for (const [file, allowed] of [['activities/evidence/merkle.js', ['../../workflows/hashing']], ['workflows/hashing.js', []]] as const) {
      const js = fs.readFileSync(path.join(__dirname, '..', file), 'utf8');
      const required = [...js.matchAll(/require\(["']([^"']+)["']\)/g)].map((r) => r[1]);
      assert.deepEqual(required.filter((r) => !r.startsWith('@noble/hashes/') && !(allowed as readonly string[]).includes(r)), [], file);
      const code = js.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      for (const banned of ['Buffer', 'Date', 'process', 'performance', 'Math.random', 'node:']) {
        assert.ok(!code.includes(banned), `${file} uses ${banned}`);
      }
    }
  });
});
