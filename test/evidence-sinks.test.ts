/**
 * Governed runs on a real Temporal server writing evidence to real sinks, and `portarium evidence`
 * verifying what they wrote: the chain is stored before the action runs and when the run ends, a
 * sink that is down makes the run wait (not act), a forked chain stops it, concurrent runs make one
 * log, payloads are referenced by hash, no secret reaches the sink, and tampering is named.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { FileEvidenceSink } from '../activities/evidence/file-sink';
import { PostgresEvidenceSink, migrateEvidenceSchema } from '../activities/evidence/postgres-sink';
import type { AppendBatch, EvidenceSink, WorkspaceLog } from '../activities/evidence/sink';
import { FilePayloadStore } from '../activities/payload-store';
import { main } from '../workers/cli';
import { PROJECT_ROOT } from '../workers/config';
import { EvidenceChain } from '../workflows/evidence-chain';
import { verifyWorkspaceLog } from '../activities/evidence/log';
import { keepHistory } from './support/histories';
import { TEST_SIGNER, bob, decision, failureType, waitForState, withWorker } from './support/harness';
import { startPostgres } from './support/postgres';
import { shared, testEnv } from './support/shared';

const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });
const PUBLIC_KEY = ['--public-key', TEST_SIGNER.publicKey];

async function cli(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function fileSink(): { sink: FileEvidenceSink; dir: string; env: NodeJS.ProcessEnv } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-ev-e2e-'));
  return { sink: new FileEvidenceSink({ dir, signer: TEST_SIGNER }), dir, env: { PORTARIUM_EVIDENCE_DIR: dir } };
}

/** A sink that fails its first `failures` appends the way a dead disk or database does. */
function flaky(inner: EvidenceSink, failures: number): EvidenceSink & { calls: number } {
  const s = {
    kind: inner.kind,
    calls: 0,
    async append(batch: AppendBatch) {
      s.calls++;
      if (s.calls <= failures) throw ApplicationFailure.create({ type: 'EvidenceUnavailable', message: 'disk full' });
      return inner.append(batch);
    },
    readWorkspace: (ws: string) => inner.readWorkspace(ws),
    readRun: (ws: string, run: string) => inner.readRun(ws, run),
    close: () => inner.close(),
  };
  return s;
}

describe('evidence sinks end to end', function () {
  this.timeout(90_000);

  it('an approved run is stored before it acts and when it ends; every check passes; tampering is named', async function () {
    const { sink, dir, env } = fileSink();
    await withWorker({ ...opts(), evidence: sink }, async (h) => {
      const run = await h.start('write', { input: { amount: 120, password: 'hunter2-never-stored', nested: { apiKey: 'ak-never-stored-91' } } });
      const s = await waitForState(run, 'AwaitingApproval');
      assert.equal(s.evidenceStored, undefined, 'nothing is written while the run only waits');
      await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      const result = await run.result();
      assert.equal(result.state, 'Succeeded');
      const view = await run.evidence();
      const stored = await sink.readRun('test', run.workflowId);
      assert.deepEqual(stored, view.entries, 'the sink holds exactly the chain the workflow reports');
      const status = await run.status();
      assert.deepEqual([status.evidenceStored?.count, status.evidenceStored?.head], [view.count, view.head]);
      const log = await sink.readWorkspace('test');
      // The dispatch activity stores the chain up to StateDispatching before it calls the runtime.
      const dispatchingAt = view.entries.findIndex((e) => e.event === 'StateDispatching');
      assert.deepEqual(log.leaves.map((l) => l.leaf.count), [dispatchingAt + 1, view.count],
        'one leaf before dispatch (approvals durable before the action), one at the end');
      assert.ok(view.entries.findIndex((e) => e.event === 'ApprovalRecorded') < dispatchingAt, 'the approval is in the first leaf');

      // Payloads by reference: the input (credentials masked) and the output, checked by hash.
      const succeeded = view.entries.find((e) => e.event === 'StateSucceeded')!;
      assert.deepEqual(succeeded.payloadRefs?.map((r) => r.kind), ['ActionInput', 'RuntimeOutput']);
      const payloads = new FilePayloadStore(path.join(PROJECT_ROOT, '.data', 'payloads'));
      const input = JSON.parse((await payloads.get({ ...succeeded.payloadRefs![0], bytes: 0 })).toString());
      assert.equal(input.amount, 120);
      assert.equal(input.password, '[redacted]');
      const everything = fs.readdirSync(path.join(dir, 'test')).map((f) => fs.readFileSync(path.join(dir, 'test', f), 'utf8')).join('')
        + (await Promise.all(succeeded.payloadRefs!.map((r) => payloads.get({ ...r, bytes: 0 })))).join('');
      for (const secret of ['hunter2-never-stored', 'ak-never-stored-91']) assert.ok(!everything.includes(secret), `${secret} reached the sink or a payload`);
      await keepHistory('lean-evidence-stored-approved', run);

      const conn = ['--address', shared.address!, '--task-queue', h.taskQueue];
      const fromWorkflow = await cli(env, 'evidence', 'verify', 'run', run.workflowId, ...conn);
      assert.equal(fromWorkflow.code, 0, fromWorkflow.err);
      assert.match(fromWorkflow.out, new RegExp(`verified: run ${run.workflowId}, ${view.count} entries`));
      const fromSink = await cli(env, 'evidence', 'verify', 'run', run.workflowId, '--workspace', 'test', ...PUBLIC_KEY);
      assert.equal(fromSink.code, 0, fromSink.err);
      assert.match(fromSink.out, /leaf 1 in the signed tree of size 2/);
      const ws = await cli(env, 'evidence', 'verify', 'workspace', 'test', ...PUBLIC_KEY);
      assert.equal(ws.code, 0, ws.err);

      // Proofs: inclusion of the run, consistency of tree 1 with tree 2; a doctored proof fails.
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-proofs-'));
      const incl = path.join(work, 'incl.json');
      assert.equal((await cli(env, 'evidence', 'prove', 'run', run.workflowId, '--workspace', 'test', '--out', incl)).code, 0);
      const okIncl = await cli(env, 'evidence', 'verify', 'inclusion', incl, ...PUBLIC_KEY);
      assert.equal(okIncl.code, 0, okIncl.err);
      const doctored = JSON.parse(fs.readFileSync(incl, 'utf8'));
      doctored.leaf.count = 3;
      fs.writeFileSync(incl, JSON.stringify(doctored));
      const badIncl = await cli(env, 'evidence', 'verify', 'inclusion', incl, ...PUBLIC_KEY);
      assert.equal(badIncl.code, 1);
      assert.match(badIncl.err, /does not place run/);
      const cons = path.join(work, 'cons.json');
      assert.equal((await cli(env, 'evidence', 'prove', 'consistency', '--workspace', 'test', '--from', '1', '--out', cons)).code, 0);
      assert.equal((await cli(env, 'evidence', 'verify', 'consistency', cons, ...PUBLIC_KEY)).code, 0);
      const wrongKey = await cli(env, 'evidence', 'verify', 'consistency', cons, '--public-key', 'ab'.repeat(32));
      assert.equal(wrongKey.code, 1);
      assert.match(wrongKey.err, /bad_signature/);

      // An exported log, edited: the first bad point is named. Truncated: a kept head catches it.
      const exported = path.join(work, 'log.json');
      const head = path.join(work, 'head.json');
      assert.equal((await cli(env, 'evidence', 'export', '--workspace', 'test', '--out', exported)).code, 0);
      assert.equal((await cli(env, 'evidence', 'head', '--workspace', 'test', '--out', head)).code, 0);
      const edited: WorkspaceLog = JSON.parse(fs.readFileSync(exported, 'utf8'));
      const approval = edited.entries.find((e) => e.entry.event === 'ApprovalRecorded')!;
      approval.entry.actor.id = 'mallory';
      fs.writeFileSync(exported, JSON.stringify(edited));
      const tampered = await cli(env, 'evidence', 'verify', 'workspace', 'test', '--file', exported, ...PUBLIC_KEY);
      assert.equal(tampered.code, 1);
      assert.match(tampered.err, new RegExp(`hash_mismatch: run ${run.workflowId} \\(execution [^)]+\\): hash mismatch at seq ${approval.entry.seq}`));
      const truncated: WorkspaceLog = JSON.parse(fs.readFileSync(exported, 'utf8'));
      approval.entry.actor.id = 'bob';
      truncated.entries = truncated.entries.slice(0, log.leaves[0].leaf.count);
      truncated.leaves = truncated.leaves.slice(0, 1);
      truncated.treeHeads = truncated.treeHeads.slice(0, 1);
      truncated.entries.find((e) => e.entry.event === 'ApprovalRecorded')!.entry.actor.id = 'bob';
      fs.writeFileSync(exported, JSON.stringify(truncated));
      assert.equal((await cli(env, 'evidence', 'verify', 'workspace', 'test', '--file', exported, ...PUBLIC_KEY)).code, 0, 'a consistent prefix verifies alone');
      const cut = await cli(env, 'evidence', 'verify', 'workspace', 'test', '--file', exported, '--trusted-head', head, ...PUBLIC_KEY);
      assert.equal(cut.code, 1);
      assert.match(cut.err, /truncated/);
    });
  });

  it('a sink that is down makes the run wait before it acts, then it goes on; nothing is lost or doubled', async function () {
    const { sink } = fileSink();
    const down = flaky(sink, 2);
    await withWorker({ ...opts(), evidence: down }, async (h) => {
      const run = await h.start('read');
      const result = await run.result();
      assert.equal(result.state, 'Succeeded');
      assert.ok(down.calls >= 4, `the write was retried (${down.calls} calls)`);
      assert.deepEqual(await h.ledger.counts(), { applied: 1, calls: 1 });
      const log = await sink.readWorkspace('test');
      assert.deepEqual(log.entries.map((e) => e.entry.seq), [...Array((await run.evidence()).count).keys()]);
      assert.ok(verifyWorkspaceLog(log, { publicKey: TEST_SIGNER.publicKey }).ok);
    });
  });

  it('a sink that holds another chain for the run stops it before it acts (EvidenceConflict)', async function () {
    const { sink } = fileSink();
    await withWorker({ ...opts(), evidence: sink }, async (h) => {
      const run = await h.start('write');
      const s = await waitForState(run, 'AwaitingApproval');
      // Someone else's entries under this execution's chain, written while the run waits.
      const execution = (await h.client.workflow.getHandle(run.workflowId).describe()).runId;
      const squatter = new EvidenceChain({ workspaceId: 'test', correlationId: 'x', runId: run.workflowId });
      squatter.append({ category: 'Plan', event: 'RunRequested', actor: { kind: 'User', id: 'mallory' }, summary: 'not this run' }, new Date());
      await sink.append({ workspaceId: 'test', runId: run.workflowId, execution, entries: [...squatter.entries] });
      await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      await assert.rejects(run.result(), (e) => failureType(e) === 'EvidenceConflict');
      assert.equal((await h.ledger.counts()).calls, 0, 'the run never dispatched');
      const status = await run.status();
      assert.equal(status.state, 'Failed');
      assert.equal(status.lastError?.type, 'EvidenceConflict');
      assert.deepEqual((await sink.readRun('test', run.workflowId, execution)).map((e) => e.summary), ['not this run'], 'the stored chain is untouched');
    });
  });

  it('PostgreSQL: concurrent runs of one workspace from two workers make one verifiable log', async function () {
    const pg = await startPostgres();
    await migrateEvidenceSchema(pg.url);
    const a = new PostgresEvidenceSink({ url: pg.url, signer: TEST_SIGNER });
    const b = new PostgresEvidenceSink({ url: pg.url, signer: TEST_SIGNER });
    try {
      // Two pools, as two workers on two machines would have; batches alternate between them.
      let turn = 0;
      const both: EvidenceSink = { ...a, kind: 'postgres', append: (batch) => (turn++ % 2 ? a : b).append(batch), readWorkspace: (w) => a.readWorkspace(w), readRun: (w, r) => a.readRun(w, r), close: async () => undefined };
      await withWorker({ ...opts(), evidence: both }, async (h) => {
        const runs = await Promise.all(Array.from({ length: 8 }, () => h.start('read')));
        const results = await Promise.all(runs.map((r) => r.result()));
        assert.ok(results.every((r) => r.state === 'Succeeded'));
        const log = await a.readWorkspace('test');
        const v = verifyWorkspaceLog(log, { publicKey: TEST_SIGNER.publicKey });
        assert.ok(v.ok, JSON.stringify(v));
        assert.equal(log.leaves.length, 16, 'two leaves per run');
        for (const r of runs) assert.deepEqual(await a.readRun('test', r.workflowId), (await r.evidence()).entries);
      });
    } finally {
      await a.close();
      await b.close();
      await pg.stop();
    }
  });
});
