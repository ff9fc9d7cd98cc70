/**
 * Evidence verification with node:crypto (activities/evidence/verify.ts) outside the sandbox: the
 * same bytes as the pure hash the workflow uses, the same verdicts on every kind of tampering, and
 * the file sink's log read a chunk at a time.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileEvidenceSink } from '../activities/evidence/file-sink';
import { nodeEvidenceCrypto as node, verifyChainNode, verifyWorkspaceLogNode } from '../activities/evidence/verify';
import { signerFromHex } from '../activities/evidence/tree-head-signer';
import { type EvidenceEntry, EvidenceChain, entryBodyJson, genesisHash, hashEntry, verifyChain } from '../workflows/evidence-chain';
import { type WorkspaceLog, verifyWorkspaceLog } from '../activities/evidence/log';
import { CanonicalJsonError, canonicalJson, pureCrypto as pure } from '../workflows/hashing';
import { MerkleFrontier, consistencyProof, inclusionProof, rootOf, verifyConsistency, verifyInclusion } from '../activities/evidence/merkle';
import type { JsonValue } from '../workflows/types';
import { type RunLeaf, leafHashOf, signTreeHead, verifyTreeHead } from '../activities/evidence/tree-head';

const signer = signerFromHex('33'.repeat(32));
const other = signerFromHex('44'.repeat(32));
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-evverify-'));
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));

/** Text that trips encoders: accents, CJK, an emoji (a surrogate pair), a lone surrogate, quotes, backslashes, controls. */
const AWKWARD = ['café', '日本語の証拠', 'emoji 🧾 receipt', 'lone \ud800 half', 'quote " and \\ backslash', 'tab\tnew\nline\u0001', '\u2028\u2029', ''];

function chainFor(runId: string, n: number, workspaceId = 'ws', text = (i: number) => AWKWARD[i % AWKWARD.length]): EvidenceEntry[] {
  const chain = new EvidenceChain({ workspaceId, correlationId: `c-${runId}`, runId });
  for (let i = 0; i < n; i++) {
    chain.append({
      category: i % 2 ? 'Approval' : 'Action', event: `E${i}`, actor: { kind: 'User', id: `usér-${i}` }, summary: text(i),
      data: { i, note: text(i + 1), nested: { z: [1, 0.5, -3e-7, 1e21, true, null], a: text(i + 2) }, '10': 'integer-like key', '9': 'sorts after 10' },
      payloadRefs: i === n - 1 ? [{ kind: 'RuntimeOutput', uri: `portarium-payload://${workspaceId}/${'ab'.repeat(32)}`, sha256: 'ab'.repeat(32), contentType: 'application/json' }] : undefined,
    }, new Date(Date.UTC(2026, 0, 1, 0, i)));
  }
  return [...chain.entries];
}

/** canonicalJson as first written (every object's keys sorted, every string through JSON.stringify): the definition the faster one must match. */
function referenceCanonicalJson(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number' && !Number.isFinite(value)) throw new CanonicalJsonError('non-finite');
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value !== 'object') throw new CanonicalJsonError(typeof value);
  if (Array.isArray(value)) return `[${value.map((v) => referenceCanonicalJson(v === undefined ? null : v)).join(',')}]`;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw new CanonicalJsonError('not plain');
  const record = value as Record<string, unknown>;
  return `{${Object.keys(record).sort().filter((k) => record[k] !== undefined).map((k) => `${JSON.stringify(k)}:${referenceCanonicalJson(record[k])}`).join(',')}}`;
}

/** Seeded values of every JSON shape, keys in any order, for comparing the fast serialiser with canonicalJson. */
function randomJson(seed: number, depth = 0): JsonValue {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const value = (d: number): JsonValue => {
    const r = next();
    if (d > 3 || r < 0.3) return [AWKWARD[Math.floor(next() * AWKWARD.length)], Math.floor(next() * 1e6) - 5e5, next() * 1e-3, true, null][Math.floor(next() * 5)];
    if (r < 0.5) return Array.from({ length: Math.floor(next() * 4) }, () => value(d + 1));
    const o: { [k: string]: JsonValue } = {};
    for (let i = Math.floor(next() * 5); i > 0; i--) o[['b', 'a', '10', '9', 'é', 'A', 'hash', 'z z'][Math.floor(next() * 8)] + (next() < 0.3 ? '"' : '')] = value(d + 1);
    return o;
  };
  return value(depth);
}

describe('evidence verification with node:crypto', function () {
  it('hashes entries, genesis, leaves and Merkle roots to the same bytes as the pure hash, awkward text included', function () {
    const made = chainFor('ws:r1', AWKWARD.length + 2);
    for (const entry of [...made, ...clone(made)]) {
      const { hash, ...body } = entry;
      assert.equal(entryBodyJson(entry), referenceCanonicalJson(body));
      assert.equal(hashEntry(body, node), hash);
      assert.equal(node.sha256Hex(entryBodyJson(entry)), hash);
    }
    for (const text of AWKWARD) assert.equal(node.sha256Hex(text), pure.sha256Hex(text), JSON.stringify(text));
    assert.equal(genesisHash('ws', 'ws:r1', node), genesisHash('ws', 'ws:r1'));
    assert.equal(genesisHash('wś', 'r\ud800', node), genesisHash('wś', 'r\ud800'));
    const leaves: RunLeaf[] = AWKWARD.map((t, i) => ({ workspaceId: `ws-${t}`, runId: `r-${t}`, ...(i % 2 ? { execution: `x-${i}` } : {}), count: i, head: 'cd'.repeat(32) }));
    const hashes = leaves.map((l) => leafHashOf(l, node));
    assert.deepEqual(hashes, leaves.map((l) => leafHashOf(l)));
    for (let n = 0; n <= 17; n++) {
      const some = Array.from({ length: n }, (_, i) => hashes[i % hashes.length].replace(/^../, i.toString(16).padStart(2, '0')));
      assert.equal(rootOf(some, node), rootOf(some), `root of ${n}`);
      assert.equal(MerkleFrontier.of(some, node).root(), rootOf(some), `frontier of ${n}`);
      if (n > 0) {
        const proof = inclusionProof(some, n - 1, n, node);
        assert.deepEqual(proof, inclusionProof(some, n - 1, n));
        assert.ok(verifyInclusion(some[n - 1], n - 1, n, proof, rootOf(some), node));
        const consistency = consistencyProof(some, Math.ceil(n / 3), n, node);
        assert.deepEqual(consistency, consistencyProof(some, Math.ceil(n / 3), n));
        assert.ok(verifyConsistency(Math.ceil(n / 3), n, rootOf(some.slice(0, Math.ceil(n / 3))), rootOf(some), consistency, node));
      }
    }
  });

  it('serialises oddly shaped entries and values exactly as canonicalJson does, or refuses as it does', function () {
    const [entry] = clone(chainFor('ws:r1', 1));
    const odd: Record<string, unknown>[] = [
      { ...entry, extra: 'an unknown key' },
      { ...entry, data: undefined, payloadRefs: undefined },
      { ...entry, seq: '0' },
      { ...entry, actor: { kind: 'User', id: 'x', role: 'admin' } },
      { ...entry, data: { b: 1, a: { d: undefined, c: [undefined, 2] } } },
      { ...entry, data: { n: -0, big: 1e21, small: 5e-324, frac: 0.1 } },
      Object.assign(Object.create(null), entry),
    ];
    for (const o of odd) {
      const { hash: _h, ...body } = o;
      assert.equal(entryBodyJson(o as unknown as EvidenceEntry), referenceCanonicalJson(body), JSON.stringify(o).slice(0, 200));
    }
    for (let seed = 1; seed <= 500; seed++) {
      const v = randomJson(seed);
      assert.equal(canonicalJson(v), referenceCanonicalJson(v), JSON.stringify(v));
      // Parsed back, keys come in sorted order (but integer-like ones): the path without a sort.
      assert.equal(canonicalJson(JSON.parse(canonicalJson(v))), referenceCanonicalJson(v));
    }
    for (const n of [0, -0, 0.1, 1e21, 1e-7, 5e-324, -123.456, Number.MAX_SAFE_INTEGER, 2 ** 70]) assert.equal(canonicalJson({ n }), referenceCanonicalJson({ n }));
    for (const bad of [{ ...entry, data: { x: NaN } }, { ...entry, data: { when: new Date(0) } }, { ...entry, actor: { id: () => 1 } }]) {
      assert.throws(() => entryBodyJson(bad as unknown as EvidenceEntry), CanonicalJsonError);
    }
    class Wrapped { toJSON() { return 'not plain'; } }
    assert.throws(() => canonicalJson({ a: new Wrapped() }), CanonicalJsonError);
    // A key inherited from a polluted Object.prototype is not the object's own, so not in its canonical form.
    const proto = Object.prototype as Record<string, unknown>;
    try {
      proto.zzPolluted = 'inherited';
      assert.equal(canonicalJson({ a: 1, b: { c: 2 } }), '{"a":1,"b":{"c":2}}');
      assert.equal(entryBodyJson(entry), referenceCanonicalJson((({ hash: _h, ...body }) => body)(entry)));
    } finally {
      delete proto.zzPolluted;
    }
  });

  it('checks Ed25519 signatures as the pure check does: signed heads pass, a flipped bit, another key or a short signature fail', function () {
    const sth = signer.sign({ workspaceId: 'ws', treeSize: 3, rootHash: 'ef'.repeat(32), timestamp: '2026-01-01T00:00:00.000Z' });
    const flipped = { ...sth, signature: sth.signature.replace(/^./, (c) => (c === '0' ? '1' : '0')) };
    const short = { ...sth, signature: sth.signature.slice(0, 126) };
    const moved = { ...sth, treeSize: 4 };
    for (const [head, key, expected] of [[sth, signer.publicKey, true], [flipped, signer.publicKey, false], [short, signer.publicKey, false], [moved, signer.publicKey, false], [sth, other.publicKey, false], [sth, 'zz', false]] as const) {
      assert.equal(verifyTreeHead(head, key, node), expected);
      assert.equal(verifyTreeHead(head, key), expected);
    }
  });

  describe('on a log written by the file sink', function () {
    let log: WorkspaceLog;
    before(async function () {
      const sink = new FileEvidenceSink({ dir: tempDir(), signer });
      const r1 = chainFor('ws:r1', 6);
      const r2 = chainFor('ws:r2', 4);
      await sink.append({ workspaceId: 'ws', runId: 'ws:r1', entries: r1.slice(0, 3) });
      await sink.append({ workspaceId: 'ws', runId: 'ws:r2', entries: r2.slice(0, 2), execution: 'exec-1' });
      await sink.append({ workspaceId: 'ws', runId: 'ws:r1', entries: r1.slice(3) });
      await sink.append({ workspaceId: 'ws', runId: 'ws:r2', entries: r2.slice(2), execution: 'exec-1' });
      log = await sink.readWorkspace('ws');
    });

    const both = (l: WorkspaceLog, signatures: 'all' | 'newest' = 'all') => {
      const viaNode = verifyWorkspaceLogNode(l, { publicKey: signer.publicKey, signatures });
      assert.deepEqual(viaNode, verifyWorkspaceLog(l, { publicKey: signer.publicKey, signatures }), 'node:crypto and the pure hash disagree');
      return viaNode;
    };

    it('verifies it, with the verdict the pure hash gives', function () {
      const v = both(log);
      assert.ok(v.ok, JSON.stringify(v));
      assert.deepEqual([v.entries, v.runs, v.treeSize], [10, 2, 4]);
      assert.ok(both(log, 'newest').ok);
      const r1 = log.entries.filter((s) => s.entry.runId === 'ws:r1').map((s) => s.entry);
      assert.deepEqual(verifyChainNode(r1, { workspaceId: 'ws', runId: 'ws:r1' }), verifyChain(r1, { workspaceId: 'ws', runId: 'ws:r1' }));
    });

    const tampering: [string, (l: WorkspaceLog) => void, string][] = [
      ['an edited summary (non-ASCII)', (l) => { l.entries[1].entry.summary = '日本語の改竄'; }, 'hash_mismatch'],
      ['an edited nested datum', (l) => { (l.entries[4].entry.data!.nested as { a: string }).a = 'café!'; }, 'hash_mismatch'],
      ['a broken link (an entry re-hashed after its edit)', (l) => {
        const e = l.entries[0].entry;
        e.summary = 'forged';
        const { hash: _h, ...body } = e;
        e.hash = hashEntry(body);
      }, 'previous_hash_mismatch'],
      ['a head whose root is not the leaves\' root (re-signed by the right key)', (l) => {
        const h = l.treeHeads[1];
        l.treeHeads[1] = signTreeHead({ workspaceId: 'ws', treeSize: h.treeSize, rootHash: 'ab'.repeat(32), timestamp: h.timestamp }, '33'.repeat(32));
      }, 'root_mismatch'],
      ['a leaf naming another head', (l) => { l.leaves[2].leaf.head = 'cd'.repeat(32); }, 'leaf_mismatch'],
      ['a bad signature on the newest head', (l) => {
        const h = l.treeHeads[l.treeHeads.length - 1];
        h.signature = h.signature.replace(/^./, (c) => (c === '0' ? '1' : '0'));
      }, 'bad_signature'],
    ];
    for (const [name, tamper, reason] of tampering) {
      it(`names ${name}: ${reason}`, function () {
        const l = clone(log);
        tamper(l);
        for (const signatures of ['all', 'newest'] as const) {
          const v = both(l, signatures);
          assert.ok(!v.ok && v.problem.reason === reason, JSON.stringify(v));
        }
      });
    }
  });

  it('the file sink reads a log bigger than one read chunk, with characters split across chunks, and leaves out a torn last line', async function () {
    this.timeout(120_000);
    const dir = tempDir();
    const sink = new FileEvidenceSink({ dir, signer });
    // ~12 KB of three-byte characters per entry (offset by one ASCII byte so chunk edges fall mid-character): > 1 MiB in all.
    const big = (i: number) => `${'x'.repeat(i % 3)}${'証'.repeat(3_900)}`;
    for (let r = 0; r < 10; r++) await sink.append({ workspaceId: 'ws', runId: `ws:r${r}`, entries: chainFor(`ws:r${r}`, 10, 'ws', big) });
    const file = path.join(dir, 'ws', 'entries.jsonl');
    assert.ok(fs.statSync(file).size > 1024 * 1024, 'the log spans more than one read chunk');
    const log = await sink.readWorkspace('ws');
    assert.equal(log.entries.length, 100);
    assert.equal(log.entries[57].entry.summary, big(7));
    assert.ok(verifyWorkspaceLogNode(log, { publicKey: signer.publicKey }).ok);
    // A write that crashed half way: never acknowledged, not part of the log.
    fs.appendFileSync(file, '{"entry":{"summary":"half a line');
    const again = await sink.readWorkspace('ws');
    assert.equal(again.entries.length, 100);
    assert.ok(verifyWorkspaceLogNode(again, { publicKey: signer.publicKey }).ok);
  });
});
