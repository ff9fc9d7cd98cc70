/**
 * Hostile and sloppy input against evidence: lock files left by dead (or reborn) holders, batches far
 * past a database statement's limits, a second execution or a reset under one workflow id, and
 * `evidence verify run` handed a log whose newest head is forged or belongs to another workspace.
 */
import * as assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createEvidenceActivities } from '../../activities/evidence/activity';
import { FileEvidenceSink } from '../../activities/evidence/file-sink';
import { PostgresEvidenceSink, migrateEvidenceSchema } from '../../activities/evidence/postgres-sink';
import { type EvidenceSink, type WorkspaceLog } from '../../activities/evidence/sink';
import { LockTimeout, acquireFileLock, processStart } from '../../activities/file-lock';
import { rotateKeyring } from '../../workers/codec/keyring';
import { signerFromHex } from '../../activities/evidence/tree-head-signer';
import { main } from '../../workers/cli';
import { type EvidenceEntry, EvidenceChain } from '../../workflows/evidence-chain';
import { chainsOf, verifyWorkspaceLog } from '../../activities/evidence/log';
import type { EvidenceReceipt, GovernedRunInput, GovernedRunResult } from '../../workflows/types';
import { TEST_SIGNER, alice, uid, withWorker } from '../support/harness';
import { failureOf } from '../support/failures';
import { keepHistory } from '../support/histories';
import { startPostgres } from '../support/postgres';
import { testEnv } from '../support/shared';

const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });
const PUBLIC_KEY = ['--public-key', TEST_SIGNER.publicKey];
const LOCK_MODULE = path.join(__dirname, '..', '..', 'activities', 'file-lock.js');
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-hostile-ev-'));

async function cli(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function chainFor(runId: string, n: number, workspaceId = 'ws'): EvidenceEntry[] {
  const chain = new EvidenceChain({ workspaceId, correlationId: `c-${runId}`, runId });
  const t0 = Date.UTC(2026, 0, 1);
  for (let i = 0; i < n; i++) chain.append({ category: 'System', event: `E${i}`, actor: { kind: 'System', id: 'portarium' }, summary: `entry ${i}`, data: { i } }, new Date(t0 + i));
  // As stored: JSON, without the undefined fields the chain object carries.
  return JSON.parse(JSON.stringify(chain.entries));
}

/** A child process holding `file` through the lock module until its stdin closes (or it is killed). */
async function holder(file: string): Promise<ChildProcessWithoutNullStreams> {
  const code = `const { acquireFileLock } = require(${JSON.stringify(LOCK_MODULE)});
    acquireFileLock(${JSON.stringify(file)}, { timeoutMs: 20000 }).then((release) => {
      process.stdout.write('held\\n');
      process.stdin.on('end', () => { release(); process.exit(0); });
      process.stdin.resume();
    });`;
  const child = spawn(process.execPath, ['-e', code]);
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    child.on('exit', (c) => reject(new Error(`lock holder exited with ${c}`)));
  });
  return child;
}

const exited = (child: { exitCode: number | null; signalCode: string | null; once(e: 'exit', f: () => void): void }) =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));

/** The pid of a process that has ended (ours, so it is not reused behind our back within the test). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await exited(child);
  return child.pid!;
}

const record = (pid: number, start?: string) => JSON.stringify({ pid, ...(start === undefined ? {} : { start }), nonce: randomUUID() });

describe('hostile: evidence locks, batches, executions and verification', function () {
  this.timeout(180_000);

  describe('locks that die with their holder (file sink and keyring)', function () {
    const stale: [string, () => Promise<string>][] = [
      ['our own pid, with a nonce this process does not hold (a crashed earlier incarnation: pid 1 in a container)', async () => record(process.pid, processStart(process.pid))],
      ['our own pid, in the older pid-only format', async () => String(process.pid)],
      ['a dead pid', async () => record(await deadPid(), '1')],
      ['pid 1, alive, but started at another time than the holder that wrote the lock', async () => record(1, `${processStart(1) ?? '0'}7`)],
    ];
    for (const [name, content] of stale) {
      it(`a stale evidence lock naming ${name} is taken over; the append succeeds at once`, async function () {
        const dir = tempDir();
        const sink = new FileEvidenceSink({ dir, signer: TEST_SIGNER, lockTimeoutMs: 3_000 });
        fs.mkdirSync(path.join(dir, 'ws'), { recursive: true });
        fs.writeFileSync(path.join(dir, 'ws', '.lock'), await content());
        const started = Date.now();
        const r = await sink.append({ workspaceId: 'ws', runId: 'ws:a', entries: chainFor('ws:a', 3) });
        assert.equal(r.count, 3);
        assert.ok(Date.now() - started < 2_000, 'taken over without waiting for a timeout');
        assert.deepEqual(fs.readdirSync(path.join(dir, 'ws')).filter((f) => f.startsWith('.lock')), [], 'no lock, marker or temp file left behind');
      });
    }

    it('a lock held by another live process is respected; when that process dies, it is taken over', async function () {
      const dir = tempDir();
      fs.mkdirSync(path.join(dir, 'ws'), { recursive: true });
      const lock = path.join(dir, 'ws', '.lock');
      const child = await holder(lock);
      try {
        const sink = new FileEvidenceSink({ dir, signer: TEST_SIGNER, lockTimeoutMs: 800 });
        await assert.rejects(sink.append({ workspaceId: 'ws', runId: 'ws:a', entries: chainFor('ws:a', 1) }), (e: { type?: string }) => e.type === 'EvidenceUnavailable');
        assert.deepEqual(await sink.readRun('ws', 'ws:a'), [], 'nothing written while another process holds the lock');
        child.kill('SIGKILL'); // a crash: the lock file stays, its holder is gone
        await exited(child);
        assert.ok(fs.existsSync(lock));
        assert.equal((await sink.append({ workspaceId: 'ws', runId: 'ws:a', entries: chainFor('ws:a', 1) })).count, 1);
      } finally {
        child.kill('SIGKILL');
      }
    });

    it('a lock naming a live process we started, with its real start time, is respected; with another start time it is not', async function () {
      const dir = tempDir();
      const lock = path.join(dir, '.lock');
      const sleeper = spawn('sleep', ['30']);
      try {
        await new Promise((r) => setTimeout(r, 100));
        const start = processStart(sleeper.pid!);
        assert.ok(start, 'this platform exposes process start times');
        fs.writeFileSync(lock, record(sleeper.pid!, start));
        await assert.rejects(acquireFileLock(lock, { timeoutMs: 300 }), LockTimeout);
        fs.writeFileSync(lock, record(sleeper.pid!, `${start}0`));
        const release = await acquireFileLock(lock, { timeoutMs: 300 });
        assert.equal(JSON.parse(fs.readFileSync(lock, 'utf8')).pid, process.pid);
        release();
        assert.ok(!fs.existsSync(lock));
      } finally {
        sleeper.kill('SIGKILL');
      }
    });

    it('four processes racing for one stale lock never hold it at the same time', async function () {
      const dir = tempDir();
      const lock = path.join(dir, '.lock');
      const counter = path.join(dir, 'counter');
      fs.writeFileSync(counter, '0');
      // Each child: take the lock, read the counter, wait, write it plus one. A lost update shows overlap.
      const code = `const fs = require('fs'); const { acquireFileLock } = require(${JSON.stringify(LOCK_MODULE)});
        (async () => { for (let i = 0; i < 3; i++) {
          const release = await acquireFileLock(${JSON.stringify(lock)}, { timeoutMs: 30000 });
          const n = Number(fs.readFileSync(${JSON.stringify(counter)}, 'utf8'));
          await new Promise((r) => setTimeout(r, 15));
          fs.writeFileSync(${JSON.stringify(counter)}, String(n + 1));
          release();
        } })().catch((e) => { console.error(e); process.exit(1); });`;
      for (let round = 0; round < 3; round++) {
        fs.writeFileSync(lock, record(await deadPid(), '1'));
        const children = Array.from({ length: 4 }, () => spawn(process.execPath, ['-e', code], { stdio: 'inherit' }));
        await Promise.all(children.map(exited));
        assert.deepEqual(children.map((c) => c.exitCode), [0, 0, 0, 0]);
        assert.equal(Number(fs.readFileSync(counter, 'utf8')), (round + 1) * 12, `round ${round}: no two holders at once`);
      }
      assert.deepEqual(fs.readdirSync(dir).sort(), ['counter'], 'no lock, marker or temp file left behind');
    });

    it('the keyring takes over a stale lock naming our own pid, and waits for a live holder', async function () {
      const file = path.join(tempDir(), 'keys.json');
      fs.writeFileSync(`${file}.lock`, record(process.pid, processStart(process.pid)));
      const started = Date.now();
      assert.equal(await rotateKeyring(file, 'ws'), 'ws/k1');
      assert.ok(Date.now() - started < 2_000, 'taken over at once (not after an age-based timeout)');
      const child = await holder(`${file}.lock`);
      let rotated = false;
      const rotation = rotateKeyring(file, 'ws').then((id) => ((rotated = true), id));
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(rotated, false, 'waits while another process holds the keyring lock');
      child.stdin.end();
      await exited(child);
      assert.equal(await rotation, 'ws/k2');
    });
  });

  describe('bounded batches', function () {
    const BIG = 20_000;

    async function persistThroughActivity(sink: EvidenceSink, entries: EvidenceEntry[]): Promise<EvidenceReceipt> {
      const env = new MockActivityEnvironment({ workflowExecution: { workflowId: 'ws:big', runId: 'exec-1' } });
      return (await env.run(createEvidenceActivities(sink).persistEvidence, { workspaceId: 'ws', runId: 'ws:big', execution: 'exec-1', entries })) as EvidenceReceipt;
    }

    it(`file sink: ${BIG} entries in one append, and through the activity, are stored whole and verify`, async function () {
      const entries = chainFor('ws:big', BIG);
      const direct = new FileEvidenceSink({ dir: tempDir(), signer: TEST_SIGNER });
      assert.equal((await direct.append({ workspaceId: 'ws', runId: 'ws:big', entries })).count, BIG);
      const sink = new FileEvidenceSink({ dir: tempDir(), signer: TEST_SIGNER });
      const receipt = await persistThroughActivity(sink, entries);
      assert.deepEqual([receipt.count, receipt.head, receipt.execution], [BIG, entries[BIG - 1].hash, 'exec-1']);
      for (const s of [direct, sink]) {
        const log = await s.readWorkspace('ws');
        const v = verifyWorkspaceLog(log, { publicKey: TEST_SIGNER.publicKey, signatures: 'newest' });
        assert.ok(v.ok && v.entries === BIG, JSON.stringify(v));
      }
      assert.equal((await sink.readWorkspace('ws')).leaves.length, 10, 'the activity appended in bounded parts (2,000 entries each)');
    });

    it(`PostgreSQL: ${BIG} entries (past the 65,535-parameter limit of one INSERT) are stored whole and verify`, async function () {
      const pg = await startPostgres();
      try {
        await migrateEvidenceSchema(pg.url);
        const sink = new PostgresEvidenceSink({ url: pg.url, signer: TEST_SIGNER });
        try {
          const entries = chainFor('ws:big', BIG);
          // One append of the whole batch: the sink splits its INSERTs.
          const r = await sink.append({ workspaceId: 'ws', runId: 'ws:big', execution: 'direct', entries });
          assert.equal(r.count, BIG);
          const receipt = await persistThroughActivity(sink, entries);
          assert.equal(receipt.count, BIG);
          const log = await sink.readWorkspace('ws');
          const v = verifyWorkspaceLog(log, { publicKey: TEST_SIGNER.publicKey, signatures: 'newest' });
          assert.ok(v.ok && v.entries === 2 * BIG && v.runs === 2, JSON.stringify(v));
          assert.deepEqual(await sink.readRun('ws', 'ws:big', 'direct'), entries);
        } finally {
          await sink.close();
        }
      } finally {
        await pg.stop();
      }
    });
  });

  describe('evidence per execution', function () {
    function inputFor(key: string): GovernedRunInput {
      return {
        workspaceId: 'test',
        correlationId: uid('corr'),
        requestedBy: alice,
        action: { runtime: 'echo', target: 'test/thing', operation: 'read', input: { n: 1 } },
        idempotencyKey: key,
        reason: 'per-execution evidence',
      } as GovernedRunInput;
    }

    it('a second execution under a reused workflow id succeeds; both chains are stored and verify, each named', async function () {
      const dir = tempDir();
      const sink = new FileEvidenceSink({ dir, signer: TEST_SIGNER });
      await withWorker({ ...opts(), evidence: sink }, async (h) => {
        const input = inputFor(uid('reuse'));
        const { run } = await h.portarium.startRun(input);
        assert.equal((await run.result()).state, 'Succeeded');
        const first = (await h.client.workflow.getHandle(run.workflowId).describe()).runId;
        // What a raw `temporal workflow start` does by default: reuse the closed id.
        const second = await h.client.workflow.start('governedRun', { taskQueue: h.taskQueue, workflowId: run.workflowId, args: [input], workflowIdReusePolicy: 'ALLOW_DUPLICATE' });
        const result: GovernedRunResult = await second.result();
        assert.equal(result.state, 'Succeeded', 'the second execution is not stopped by the first one\'s chain');
        assert.notEqual(second.firstExecutionRunId, first);
        const log = await sink.readWorkspace('test');
        const chains = [...chainsOf(log.entries).values()].filter((c) => c.runId === run.workflowId);
        assert.deepEqual(chains.map((c) => c.execution), [first, second.firstExecutionRunId]);
        // `evidence` still answers for this execution: the sink's copy of the latest is exactly it.
        assert.deepEqual(await sink.readRun('test', run.workflowId), (await run.evidence()).entries);
        const verified = await cli({ PORTARIUM_EVIDENCE_DIR: dir }, 'evidence', 'verify', 'run', run.workflowId, '--workspace', 'test', ...PUBLIC_KEY);
        assert.equal(verified.code, 0, verified.err);
        for (const id of [first, second.firstExecutionRunId]) assert.match(verified.out, new RegExp(`verified: run ${run.workflowId} \\(execution ${id}\\), \\d+ entries`));
        assert.match(verified.out, /2 executions stored/);
        const ws = await cli({ PORTARIUM_EVIDENCE_DIR: dir }, 'evidence', 'verify', 'workspace', 'test', ...PUBLIC_KEY);
        assert.equal(ws.code, 0, ws.err);
        // An inclusion proof names the execution it is for: the first one's, on request.
        const proof = path.join(dir, 'first.json');
        assert.equal((await cli({ PORTARIUM_EVIDENCE_DIR: dir }, 'evidence', 'prove', 'run', run.workflowId, '--workspace', 'test', '--execution', first, '--out', proof)).code, 0);
        assert.equal(JSON.parse(fs.readFileSync(proof, 'utf8')).leaf.execution, first);
        const included = await cli({}, 'evidence', 'verify', 'inclusion', proof, ...PUBLIC_KEY);
        assert.equal(included.code, 0, included.err);
      });
    });

    it('a reset to before dispatch completes, and its own outcome is stored and verifies next to the original', async function () {
      const dir = tempDir();
      const sink = new FileEvidenceSink({ dir, signer: TEST_SIGNER });
      await withWorker({ ...opts(), evidence: sink }, async (h) => {
        const { run } = await h.portarium.startRun(inputFor(uid('reset')));
        assert.equal((await run.result()).state, 'Succeeded');
        const handle = h.client.workflow.getHandle(run.workflowId);
        const original = (await handle.describe()).runId;
        const events = (await handle.fetchHistory()).events ?? [];
        const dispatchAt = events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'dispatchAction');
        assert.ok(dispatchAt > 0, 'the run dispatched');
        const beforeDispatch = events.slice(0, dispatchAt).reverse().find((e) => e.workflowTaskCompletedEventAttributes);
        assert.ok(beforeDispatch, 'a workflow task completed before the dispatch');
        const { runId } = await h.client.workflowService.resetWorkflowExecution({
          namespace: h.client.options.namespace,
          workflowExecution: { workflowId: run.workflowId, runId: original },
          reason: 'hostile test: reset after dispatch',
          workflowTaskFinishEventId: beforeDispatch.eventId,
          requestId: randomUUID(),
        });
        const reset = h.client.workflow.getHandle(run.workflowId, runId!);
        const result: GovernedRunResult = await reset.result();
        assert.equal(result.state, 'Succeeded', 'the reset run is not failed by the original chain');
        const log = await sink.readWorkspace('test');
        assert.ok(verifyWorkspaceLog(log, { publicKey: TEST_SIGNER.publicKey }).ok);
        const chains = [...chainsOf(log.entries).values()].filter((c) => c.runId === run.workflowId);
        assert.deepEqual(chains.map((c) => c.execution), [original, runId]);
        const own = chains[1].entries;
        assert.equal(own[own.length - 1].hash, result.evidenceHead, 'the reset run\'s real outcome is durable');
        assert.equal(own[own.length - 1].event, 'StateSucceeded');
        const verified = await cli({ PORTARIUM_EVIDENCE_DIR: dir }, 'evidence', 'verify', 'run', run.workflowId, '--workspace', 'test', ...PUBLIC_KEY);
        assert.equal(verified.code, 0, verified.err);
        assert.match(verified.out, new RegExp(`execution ${runId}`));
        await keepHistory('lean-evidence-reset-own-chain', h.portarium.run(run.workflowId));
      });
    });

    it('chains stored before executions were kept apart still read and verify, next to per-execution chains of the same id', async function () {
      const pg = await startPostgres();
      try {
        // The tables as the previous release created them, with a chain written by it.
        const { Client } = await import('pg');
        const c = new Client({ connectionString: pg.url });
        await c.connect();
        await c.query(`CREATE TABLE portarium_evidence_entries (workspace_id text NOT NULL, ws_seq bigint NOT NULL, run_id text NOT NULL, seq integer NOT NULL,
            hash text NOT NULL, entry text NOT NULL, written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (workspace_id, ws_seq), UNIQUE (workspace_id, run_id, seq));
          CREATE TABLE portarium_evidence_leaves (workspace_id text NOT NULL, leaf_index bigint NOT NULL, run_id text NOT NULL, count integer NOT NULL,
            head text NOT NULL, leaf_hash text NOT NULL, PRIMARY KEY (workspace_id, leaf_index), UNIQUE (workspace_id, run_id, count));`);
        await c.end();
        await migrateEvidenceSchema(pg.url);
        const sink = new PostgresEvidenceSink({ url: pg.url, signer: TEST_SIGNER });
        const file = new FileEvidenceSink({ dir: tempDir(), signer: TEST_SIGNER });
        try {
          for (const s of [sink, file] as EvidenceSink[]) {
            const old = chainFor('ws:r', 3);
            await s.append({ workspaceId: 'ws', runId: 'ws:r', entries: old });
            await s.append({ workspaceId: 'ws', runId: 'ws:r', execution: 'e2', entries: chainFor('ws:r', 4) });
            const log = await s.readWorkspace('ws');
            assert.ok(verifyWorkspaceLog(log, { publicKey: TEST_SIGNER.publicKey }).ok, s.kind);
            assert.deepEqual(log.leaves.map((l) => l.leaf.execution), [undefined, 'e2'], s.kind);
            assert.deepEqual(await s.readRun('ws', 'ws:r'), chainFor('ws:r', 4), `${s.kind}: by default the execution that wrote last`);
          }
        } finally {
          await sink.close();
        }
      } finally {
        await pg.stop();
      }
    });
  });

  describe('evidence verify run checks the head it relies on', function () {
    /** Workspace `ws` with one run, and a bigger workspace `other` signed with the same key (one key signs every workspace of a worker). */
    async function stored(): Promise<{ dir: string; log: WorkspaceLog; foreign: WorkspaceLog; file: string }> {
      const dir = tempDir();
      const sink = new FileEvidenceSink({ dir, signer: TEST_SIGNER });
      await sink.append({ workspaceId: 'ws', runId: 'ws:r', execution: 'e1', entries: chainFor('ws:r', 2) });
      await sink.append({ workspaceId: 'ws', runId: 'ws:r', execution: 'e1', entries: chainFor('ws:r', 3) });
      for (let i = 0; i < 3; i++) await sink.append({ workspaceId: 'other', runId: `other:${i}`, execution: 'e', entries: chainFor(`other:${i}`, 2, 'other') });
      return { dir, log: await sink.readWorkspace('ws'), foreign: await sink.readWorkspace('other'), file: path.join(dir, 'log.json') };
    }

    it('a log whose newest head was swapped for one signed for another workspace is refused', async function () {
      const { dir, log, foreign, file } = await stored();
      const ok = await cli({ PORTARIUM_EVIDENCE_DIR: dir }, 'evidence', 'verify', 'run', 'ws:r', '--workspace', 'ws', ...PUBLIC_KEY);
      assert.equal(ok.code, 0, ok.err);
      fs.writeFileSync(file, JSON.stringify({ ...log, treeHeads: [...log.treeHeads, foreign.treeHeads.at(-1)!] }));
      const swapped = await cli({}, 'evidence', 'verify', 'run', 'ws:r', '--workspace', 'ws', '--file', file, ...PUBLIC_KEY);
      assert.equal(swapped.code, 1, swapped.out);
      assert.match(swapped.err, /bad_signature: the newest tree head \(size 3\) is signed for workspace other, not ws/);
    });

    it('a log with a forged or unsigned newest head is refused', async function () {
      const { log, file } = await stored();
      const newest = log.treeHeads.at(-1)!;
      const forged = signerFromHex('99'.repeat(32)).sign({ workspaceId: 'ws', treeSize: newest.treeSize, rootHash: newest.rootHash, timestamp: new Date().toISOString() });
      const unsigned = { ...newest, timestamp: new Date(Date.now() + 60_000).toISOString(), signature: '' };
      const claimsOurKey = { ...forged, keyId: newest.keyId };
      for (const head of [forged, unsigned, claimsOurKey]) {
        fs.writeFileSync(file, JSON.stringify({ ...log, treeHeads: [...log.treeHeads, head] }));
        const r = await cli({}, 'evidence', 'verify', 'run', 'ws:r', '--workspace', 'ws', '--file', file, ...PUBLIC_KEY);
        assert.equal(r.code, 1, r.out);
        assert.match(r.err, /bad_signature: the newest tree head \(size 2\) is not signed by the given key/);
      }
    });

    it('with --trusted-head, a log that no longer holds what a kept head covers is refused', async function () {
      const { log, file, foreign } = await stored();
      const kept = path.join(path.dirname(file), 'kept.json');
      fs.writeFileSync(kept, JSON.stringify(log.treeHeads.at(-1)));
      fs.writeFileSync(file, JSON.stringify(log));
      const fine = await cli({}, 'evidence', 'verify', 'run', 'ws:r', '--workspace', 'ws', '--file', file, '--trusted-head', kept, ...PUBLIC_KEY);
      assert.equal(fine.code, 0, fine.err);
      // A kept head of another workspace is no anchor for this one.
      fs.writeFileSync(kept, JSON.stringify(foreign.treeHeads.at(-1)));
      const wrong = await cli({}, 'evidence', 'verify', 'run', 'ws:r', '--workspace', 'ws', '--file', file, '--trusted-head', kept, ...PUBLIC_KEY);
      assert.equal(wrong.code, 1);
      assert.match(wrong.err, /bad_signature: the trusted head \(size 3\) is signed for workspace other/);
      // The log cut back to its first leaf and head: the kept head (size 2) is no longer covered.
      fs.writeFileSync(kept, JSON.stringify(log.treeHeads.at(-1)));
      fs.writeFileSync(file, JSON.stringify({ ...log, entries: log.entries.slice(0, 2), leaves: log.leaves.slice(0, 1), treeHeads: log.treeHeads.slice(0, 1) }));
      const alone = await cli({}, 'evidence', 'verify', 'run', 'ws:r', '--workspace', 'ws', '--file', file, ...PUBLIC_KEY);
      assert.equal(alone.code, 0, 'the cut log is consistent on its own');
      const cut = await cli({}, 'evidence', 'verify', 'run', 'ws:r', '--workspace', 'ws', '--file', file, '--trusted-head', kept, ...PUBLIC_KEY);
      assert.equal(cut.code, 1);
      assert.match(cut.err, /truncated: the trusted head covers 2 leaves/);
    });
  });

  describe('storage names', function () {
    // Context: a name that is no workspace id failed here as CredentialsDenied, a secret-store type
    // the evidence path does not know: the dispatch activity turned it into EvidenceUnavailable, which
    // the run waits out without end. EvidenceConflict is never retried and stops the run before it acts.
    it('a write or read under a name that is no workspace id is refused as EvidenceConflict, and nothing is written', async function () {
      const root = tempDir();
      const dir = path.join(root, 'sink');
      const sink = new FileEvidenceSink({ dir, signer: TEST_SIGNER });
      for (const ws of ['../ws-b', 'ws-a/../ws-b', 'WS-A', '', '..', '%2e%2e']) {
        const env = new MockActivityEnvironment({ workflowExecution: { workflowId: `${ws}:run`, runId: 'exec-1' } });
        const err = await failureOf(env.run(createEvidenceActivities(sink).persistEvidence, { workspaceId: ws, runId: `${ws}:run`, execution: 'exec-1', entries: chainFor(`${ws}:run`, 2) }));
        assert.equal(err.type, 'EvidenceConflict', ws);
        assert.equal(err.nonRetryable, true);
        assert.equal((await failureOf(sink.readWorkspace(ws))).type, 'EvidenceConflict', ws);
      }
      assert.deepEqual(fs.readdirSync(root).filter((f) => f !== 'sink'), [], 'nothing written beside the sink');
      assert.ok(!fs.existsSync(dir) || fs.readdirSync(dir).length === 0, 'nothing written in it');
    });
  });
});
