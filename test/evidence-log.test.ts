/**
 * Workspace evidence logs: the file sink (idempotent retries, crashes mid-write, concurrent writers)
 * and verification, which must name the first bad point for every kind of tampering.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { FileEvidenceSink } from '../activities/evidence/file-sink';
import { signerFromHex } from '../activities/evidence/tree-head-signer';
import { type EvidenceEntry, EvidenceChain, hashEntry } from '../workflows/evidence-chain';
import { type LogProblemReason, type WorkspaceLog, verifyWorkspaceLog } from '../activities/evidence/log';
import { rootOf } from '../activities/evidence/merkle';
import { signTreeHead, verifyTreeHead } from '../activities/evidence/tree-head';

const signer = signerFromHex('11'.repeat(32));
const other = signerFromHex('22'.repeat(32));
const actor = { kind: 'User' as const, id: 'alice' };

function chainFor(runId: string, n: number, workspaceId = 'ws'): EvidenceEntry[] {
  const chain = new EvidenceChain({ workspaceId, correlationId: `c-${runId}`, runId });
  for (let i = 0; i < n; i++) {
    chain.append({ category: 'System', event: `E${i}`, actor, summary: `entry ${i}`, data: { i },
      payloadRefs: i === n - 1 ? [{ kind: 'RuntimeOutput', uri: `portarium-payload://${workspaceId}/${'ab'.repeat(32)}`, sha256: 'ab'.repeat(32), contentType: 'application/json' }] : undefined },
    new Date(Date.UTC(2026, 0, 1, 0, i)));
  }
  return JSON.parse(JSON.stringify(chain.entries));
}

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-evlog-'));
const clone = (log: WorkspaceLog): WorkspaceLog => JSON.parse(JSON.stringify(log));
const typeOf = (err: unknown) => (err instanceof ApplicationFailure ? err.type : String(err));

/** Three runs, written in interleaved batches: r1 [0..2], r2 [0..1], r1 [3..4], r3 [0..3], r2 [2..3]. */
async function sampleLog(sink: FileEvidenceSink): Promise<WorkspaceLog> {
  const r1 = chainFor('ws:r1', 5);
  const r2 = chainFor('ws:r2', 4);
  const r3 = chainFor('ws:r3', 4);
  await sink.append({ workspaceId: 'ws', runId: 'ws:r1', entries: r1.slice(0, 3) });
  await sink.append({ workspaceId: 'ws', runId: 'ws:r2', entries: r2.slice(0, 2) });
  await sink.append({ workspaceId: 'ws', runId: 'ws:r1', entries: r1.slice(3) });
  await sink.append({ workspaceId: 'ws', runId: 'ws:r3', entries: r3 });
  await sink.append({ workspaceId: 'ws', runId: 'ws:r2', entries: r2.slice(2) });
  return sink.readWorkspace('ws');
}

/** Re-hash a run's chain from `seq` on, as a forger without the signing key could. */
function rehash(entries: EvidenceEntry[], runId: string, from: number): void {
  const run = entries.filter((e) => e.runId === runId);
  for (let i = from; i < run.length; i++) {
    if (i > 0) run[i].previousHash = run[i - 1].hash;
    const { hash: _h, ...body } = run[i];
    run[i].hash = hashEntry(body);
  }
}

describe('evidence log: file sink and verification', function () {
  it('the worker signs tree heads with node:crypto, byte for byte as the pure-JS signer, and they verify', function () {
    for (const seed of ['11'.repeat(32), '0f'.repeat(32), 'fe'.repeat(32)]) {
      const body = { workspaceId: 'ws-é', treeSize: 7, rootHash: 'ab'.repeat(32), timestamp: '2026-12-07T00:00:00.000Z' };
      const fast = signerFromHex(seed).sign(body);
      assert.deepEqual(fast, signTreeHead(body, seed));
      assert.ok(verifyTreeHead(fast, signerFromHex(seed).publicKey));
      assert.ok(!verifyTreeHead({ ...fast, treeSize: 8 }, signerFromHex(seed).publicKey), 'a changed head does not verify');
    }
  });

  let dir: string;
  let sink: FileEvidenceSink;
  let log: WorkspaceLog;

  before(async function () {
    dir = tempDir();
    sink = new FileEvidenceSink({ dir, signer });
    log = await sampleLog(sink);
  });

  it('keeps one ordered log per workspace, one leaf per batch and a signed head over them', function () {
    assert.deepEqual(log.entries.map((s) => s.wsSeq), [...Array(13).keys()]);
    assert.deepEqual(log.leaves.map((l) => [l.leaf.runId, l.leaf.count]), [['ws:r1', 3], ['ws:r2', 2], ['ws:r1', 5], ['ws:r3', 4], ['ws:r2', 4]]);
    const newest = log.treeHeads[log.treeHeads.length - 1];
    assert.equal(newest.treeSize, 5);
    assert.equal(newest.rootHash, rootOf(log.leaves.map((l) => l.leafHash)));
    const verdict = verifyWorkspaceLog(log, { publicKey: signer.publicKey });
    assert.deepEqual(verdict, { ok: true, entries: 13, runs: 3, treeSize: 5, rootHash: newest.rootHash });
    const lines = fs.readFileSync(path.join(dir, 'ws', 'entries.jsonl'), 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 13, 'one line per entry');
  });

  const cases: [string, (l: WorkspaceLog) => void, LogProblemReason, { runId?: string; seq?: number; wsSeq?: number }][] = [
    ['edited summary', (l) => { l.entries[4].entry.summary = 'nothing to see'; }, 'hash_mismatch', { runId: 'ws:r2', seq: 1 }],
    ['edited actor', (l) => { l.entries[0].entry.actor.id = 'mallory'; }, 'hash_mismatch', { runId: 'ws:r1', seq: 0 }],
    ['edited category', (l) => { l.entries[1].entry.category = 'Policy'; }, 'hash_mismatch', { runId: 'ws:r1', seq: 1 }],
    ['edited time', (l) => { l.entries[2].entry.occurredAt = '2020-01-01T00:00:00.000Z'; }, 'hash_mismatch', { runId: 'ws:r1', seq: 2 }],
    ['edited data', (l) => { l.entries[3].entry.data = { i: 99 }; }, 'hash_mismatch', { runId: 'ws:r2', seq: 0 }],
    ['edited payload hash', (l) => { l.entries[6].entry.payloadRefs![0].sha256 = 'cd'.repeat(32); }, 'hash_mismatch', { runId: 'ws:r1', seq: 4 }],
    ['edited correlation id', (l) => { l.entries[7].entry.correlationId = 'x'; }, 'hash_mismatch', { runId: 'ws:r3', seq: 0 }],
    ['edited event', (l) => { l.entries[8].entry.event = 'Nothing'; }, 'hash_mismatch', { runId: 'ws:r3', seq: 1 }],
    ['edited seq', (l) => { l.entries[9].entry.seq = 7; }, 'hash_mismatch', { runId: 'ws:r3', seq: 2 }],
    ['edited previous hash', (l) => { l.entries[10].entry.previousHash = 'f'.repeat(64); }, 'hash_mismatch', { runId: 'ws:r3', seq: 3 }],
    ['edited hash', (l) => { l.entries[11].entry.hash = 'e'.repeat(64); }, 'hash_mismatch', { runId: 'ws:r2', seq: 2 }],
    ['moved to another run', (l) => { l.entries[12].entry.runId = 'ws:r1'; }, 'hash_mismatch', { runId: 'ws:r1', seq: 5 }],
    ['entry deleted', (l) => { l.entries.splice(4, 1); }, 'missing_entry', { wsSeq: 4 }],
    ['entry deleted and the log renumbered', (l) => { l.entries.splice(1, 1); l.entries.forEach((s, i) => (s.wsSeq = i)); }, 'missing_entry', { runId: 'ws:r1', seq: 1 }],
    ['entries swapped', (l) => { [l.entries[5], l.entries[6]] = [l.entries[6], l.entries[5]]; }, 'reordered', { wsSeq: 5 }],
    ['entries swapped and renumbered', (l) => { [l.entries[5], l.entries[6]] = [l.entries[6], l.entries[5]]; l.entries.forEach((s, i) => (s.wsSeq = i)); }, 'reordered', { runId: 'ws:r1', seq: 3 }],
    ['entry duplicated', (l) => { l.entries.splice(3, 0, JSON.parse(JSON.stringify(l.entries[3]))); }, 'extra_entry', { wsSeq: 4 }],
    ['re-hashed edit of a run\'s last entry', (l) => { l.entries[6].entry.summary = 'forged'; rehash(l.entries.map((s) => s.entry), 'ws:r1', 4); }, 'leaf_mismatch', { runId: 'ws:r1', seq: 4 }],
    ['run truncated (last entries and leaf kept)', (l) => { l.entries = l.entries.filter((s) => !(s.entry.runId === 'ws:r3' && s.entry.seq >= 2)); l.entries.forEach((s, i) => (s.wsSeq = i)); }, 'truncated', { runId: 'ws:r3', seq: 2 }],
    ['forged entry appended after the last leaf', (l) => {
      const last = l.entries[12].entry;
      const forged = { ...JSON.parse(JSON.stringify(last)), seq: 4, summary: 'forged', previousHash: last.hash };
      const { hash: _h, ...body } = forged;
      l.entries.push({ wsSeq: 13, entry: { ...forged, hash: hashEntry(body) } });
    }, 'uncommitted', { runId: 'ws:r2', seq: 4 }],
  ];
  for (const [name, tamper, reason, at] of cases) {
    it(`detects ${name}: ${reason}`, function () {
      const l = clone(log);
      tamper(l);
      const v = verifyWorkspaceLog(l, { publicKey: signer.publicKey });
      assert.equal(v.ok, false, 'tampering went unnoticed');
      if (v.ok) return;
      assert.equal(v.problem.reason, reason, v.problem.message);
      for (const [k, value] of Object.entries(at)) assert.equal(v.problem[k as keyof typeof at], value, `${k} in: ${v.problem.message}`);
    });
  }

  it('detects a log truncated behind its signed head, and leaves no one signed', function () {
    const l = clone(log);
    l.leaves.pop();
    l.entries = l.entries.filter((s) => !(s.entry.runId === 'ws:r2' && s.entry.seq >= 2));
    const v = verifyWorkspaceLog(l, { publicKey: signer.publicKey });
    assert.ok(!v.ok && v.problem.reason === 'truncated' && v.problem.treeSize === 5, JSON.stringify(v));
    // Dropping the signed heads too does not help against a head the auditor kept.
    l.treeHeads = l.treeHeads.filter((h) => h.treeSize <= 4);
    assert.equal(verifyWorkspaceLog(l, { publicKey: signer.publicKey }).ok, true);
    const kept = log.treeHeads[log.treeHeads.length - 1];
    const v2 = verifyWorkspaceLog(l, { publicKey: signer.publicKey, trustedHead: kept });
    assert.ok(!v2.ok && v2.problem.reason === 'truncated', JSON.stringify(v2));
  });

  it('detects a forked tree: two signed heads of one size, or a log that no longer extends a kept head', async function () {
    const forkSink = new FileEvidenceSink({ dir: tempDir(), signer });
    const fork = await forkSink.append({ workspaceId: 'ws', runId: 'ws:r9', entries: chainFor('ws:r9', 2) });
    const l = clone(log);
    const head = log.treeHeads.find((h) => h.treeSize === 1)!;
    l.treeHeads.push(signTreeHead({ workspaceId: 'ws', treeSize: 1, rootHash: fork.treeHead.rootHash, timestamp: head.timestamp }, '11'.repeat(32)));
    const v = verifyWorkspaceLog(l, { publicKey: signer.publicKey });
    assert.ok(!v.ok && v.problem.reason === 'fork' && v.problem.treeSize === 1, JSON.stringify(v));
    const v2 = verifyWorkspaceLog(clone(log), { publicKey: signer.publicKey, trustedHead: fork.treeHead });
    assert.ok(!v2.ok && v2.problem.reason === 'fork', JSON.stringify(v2));
  });

  it('refuses a head with a bad signature, or signed by another key', function () {
    const l = clone(log);
    const sth = l.treeHeads[2];
    sth.signature = sth.signature.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const v = verifyWorkspaceLog(l, { publicKey: signer.publicKey });
    assert.ok(!v.ok && v.problem.reason === 'bad_signature' && v.problem.treeSize === 3, JSON.stringify(v));
    const v2 = verifyWorkspaceLog(clone(log), { publicKey: other.publicKey });
    assert.ok(!v2.ok && v2.problem.reason === 'bad_signature', JSON.stringify(v2));
  });

  it('a retried batch writes nothing twice, and an overlapping batch writes only what is new', async function () {
    const s = new FileEvidenceSink({ dir: tempDir(), signer });
    const r = chainFor('ws:r1', 4);
    const first = await s.append({ workspaceId: 'ws', runId: 'ws:r1', entries: r.slice(0, 2) });
    const again = await s.append({ workspaceId: 'ws', runId: 'ws:r1', entries: r.slice(0, 2) });
    assert.deepEqual([again.written, again.skipped, again.leafIndex, again.treeHead], [0, 2, first.leafIndex, first.treeHead]);
    const overlap = await s.append({ workspaceId: 'ws', runId: 'ws:r1', entries: r.slice(1) });
    assert.deepEqual([overlap.written, overlap.skipped, overlap.count, overlap.head], [2, 1, 4, r[3].hash]);
    const stored = await s.readWorkspace('ws');
    assert.equal(stored.entries.length, 4);
    assert.equal(stored.leaves.length, 2);
    assert.ok(verifyWorkspaceLog(stored, { publicKey: signer.publicKey }).ok);
  });

  it('refuses a fork (another entry at a stored seq) and a gap, writing nothing', async function () {
    const s = new FileEvidenceSink({ dir: tempDir(), signer });
    const r = chainFor('ws:r1', 3);
    await s.append({ workspaceId: 'ws', runId: 'ws:r1', entries: r.slice(0, 2) });
    const forked = chainFor('ws:r1', 3);
    forked[1].summary = 'other';
    rehash(forked, 'ws:r1', 1);
    await assert.rejects(s.append({ workspaceId: 'ws', runId: 'ws:r1', entries: forked }), (e) => typeOf(e) === 'EvidenceConflict' && /fork/.test((e as Error).message));
    await assert.rejects(s.append({ workspaceId: 'ws', runId: 'ws:r2', entries: chainFor('ws:r2', 3).slice(1) }), (e) => typeOf(e) === 'EvidenceConflict' && /gap/.test((e as Error).message));
    const tampered = chainFor('ws:r3', 1);
    tampered[0].summary = 'edited after hashing';
    await assert.rejects(s.append({ workspaceId: 'ws', runId: 'ws:r3', entries: tampered }), (e) => typeOf(e) === 'EvidenceConflict');
    const stored = await s.readWorkspace('ws');
    assert.equal(stored.entries.length, 2);
    assert.ok(verifyWorkspaceLog(stored, { publicKey: signer.publicKey }).ok);
  });

  for (const crashAt of ['entries', 'leaves', 'treeHeads'] as const) {
    it(`a crash while writing ${crashAt}, then the retry: no loss, no duplicate`, async function () {
      const d = tempDir();
      let armed = false;
      let crashed = false;
      const s = new FileEvidenceSink({
        dir: d,
        signer,
        beforeWrite(kind, data) {
          if (kind !== crashAt || !armed || crashed) return;
          crashed = true;
          // Half the bytes reach the file, then the process "dies".
          fs.appendFileSync(path.join(d, 'ws', `${kind === 'treeHeads' ? 'tree-heads' : kind}.jsonl`), data.subarray(0, Math.floor(data.length / 2)));
          throw new Error('simulated crash');
        },
      });
      const r = chainFor('ws:r1', 3);
      await s.append({ workspaceId: 'ws', runId: 'ws:r1', entries: r.slice(0, 1) });
      armed = true;
      await assert.rejects(s.append({ workspaceId: 'ws', runId: 'ws:r1', entries: r }), (e) => typeOf(e) === 'EvidenceUnavailable');
      // A fresh sink (another worker after the crash) retries the same batch.
      const retry = await new FileEvidenceSink({ dir: d, signer }).append({ workspaceId: 'ws', runId: 'ws:r1', entries: r });
      assert.equal(retry.count, 3);
      const stored = await s.readWorkspace('ws');
      assert.deepEqual(stored.entries.map((e) => e.entry.seq), [0, 1, 2]);
      assert.deepEqual(stored.leaves.map((l) => l.leaf.count), [1, 3]);
      assert.deepEqual(verifyWorkspaceLog(stored, { publicKey: signer.publicKey }).ok, true);
    });
  }

  it('concurrent runs through two sinks on one folder make a single consistent log', async function () {
    const d = tempDir();
    const a = new FileEvidenceSink({ dir: d, signer });
    const b = new FileEvidenceSink({ dir: d, signer });
    const runs = Array.from({ length: 8 }, (_, i) => chainFor(`ws:c${i}`, 6));
    await Promise.all(runs.map(async (r, i) => {
      const s = i % 2 ? a : b;
      for (let k = 0; k < 6; k += 2) await s.append({ workspaceId: 'ws', runId: r[0].runId, entries: r.slice(k, k + 2) });
    }));
    const stored = await a.readWorkspace('ws');
    assert.deepEqual(stored.entries.map((s) => s.wsSeq), [...Array(48).keys()]);
    assert.equal(stored.leaves.length, 24);
    const v = verifyWorkspaceLog(stored, { publicKey: signer.publicKey });
    assert.ok(v.ok, JSON.stringify(v));
    assert.equal(stored.treeHeads[stored.treeHeads.length - 1].rootHash, rootOf(stored.leaves.map((l) => l.leafHash)));
  });
});
