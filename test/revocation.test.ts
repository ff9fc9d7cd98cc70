/**
 * Emergency revocation end to end on a real Temporal server: runs waiting for approval, in a veto
 * window, for quota, approved but held before dispatch, and in dispatch (echo and Kestra), all reached
 * by one revocation; new dispatches refused by the workers' cached check, also on a second worker
 * process; lifting by a second operator; a worker restart between revocation and effect. Each test has
 * its own registry (worker config). The registry itself: test/revocation-registry.test.ts.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createKestraRuntime } from '../activities/runtimes/kestra';
import { FileSecretStore } from '../activities/secrets/local-file';
import { FileEchoLedger } from '../activities/runtimes/echo';
import { KestraFake } from './fakes/kestra-server';
import { PortariumClient, type RunHandle } from '../workers/client';
import { RevocationClient } from '../workers/revocations';
import { startWorkerProcess } from './support/worker-process';
import { freePort } from './support/dev-server';
import { TEST_POLICY_DIR, bob, decision, gatedSink, oscar, uid, waitForState, waitForStatus, withWorker } from './support/harness';
import { keepHistory } from './support/histories';
import { quotaPolicyDir } from './support/quota-fixtures';
import { CallRecorder, assertRevoked, cli, revocationOpts, revocationsOf } from './support/revocation-fixtures';
import { shared } from './support/shared';
import type { Revocation } from '../workflows/revocation/types';

const approve = async (run: RunHandle, approver = bob) => {
  const { actionHash } = await run.status();
  await run.handle.signal('approve', decision(approver, actionHash));
};


describe('emergency revocation', function () {
  this.timeout(120_000);

  it('one revocation ends runs waiting for approval, in a veto window and for quota, cancels the one in dispatch, and refuses a new one; other targets run', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 1 } });
    const rec = new CallRecorder();
    const { registryId, opts } = revocationOpts(rec, { policyDir: dir });
    await withWorker(opts, async (h) => {
      const start = (op: string, target: string, input: Record<string, number> = { n: 1 }) =>
        h.start(op, { workspaceId, action: { runtime: 'echo', target, operation: op, input } });
      const holder = await start('read', 'flows/bad/holder', { delayMs: 30_000 });
      await waitForStatus(holder, () => rec.callsOf(holder.workflowId) === 1);
      const awaiting = await start('write', 'flows/bad/a');
      const veto = await start('rotate', 'flows/bad/b');
      const quota = await start('read', 'flows/bad/q');
      const fine = await start('write', 'flows/good/c');
      await waitForState(awaiting, 'AwaitingApproval');
      await waitForState(veto, 'VetoWindow');
      await waitForState(fine, 'AwaitingApproval');
      await waitForStatus(quota, (s) => s.quota?.phase === 'queued');

      const t0 = Date.now();
      const rev = await revocationsOf(h, registryId).revoke({
        scope: { workspaceId, kind: 'target', value: 'flows/bad/*' }, reason: 'compromised flow family', revokedBy: oscar,
      });
      await waitForState(awaiting, 'Revoked', 15_000);
      const waitingEnded = Date.now() - t0;
      // This worker's cache is warm (it dispatched the holder): a new dispatch sees the revocation from its next refresh (500 ms here).
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + 700 - Date.now())));
      const fresh = await start('read', 'flows/bad/new');
      const tNew = Date.now();
      // Refused at dispatch by the cached check, or ended while it waited for quota by the fan-out's second pass.
      await assertRevoked(fresh, rev, (await fresh.result(), (await fresh.status()).revocation?.effect === 'ended-before-dispatch') ? 'ended-before-dispatch' : 'dispatch-refused');
      const newRefused = Date.now() - tNew;
      console.log(`      time to effect: waiting run Revoked ${waitingEnded} ms after revoke; new run refused ${newRefused} ms after start`);

      await assertRevoked(awaiting, rev, 'ended-before-dispatch');
      await assertRevoked(veto, rev, 'ended-before-dispatch');
      await assertRevoked(quota, rev, 'ended-before-dispatch');
      await assertRevoked(holder, rev, 'dispatch-cancelled');
      assert.deepEqual(rec.cancelled, [holder.workflowId], 'the dispatch in flight was cancelled at the runtime');
      for (const run of [awaiting, veto, quota, fresh]) assert.equal(rec.callsOf(run.workflowId), 0, `${run.workflowId} never reached the runtime`);
      assert.equal(rec.calls.filter((c) => c.at > t0 && c.workflowId !== fine.workflowId).length, 0, 'no call after the revocation');

      // Another target of the same workspace is not covered.
      await approve(fine);
      assert.equal((await fine.result()).state, 'Succeeded');
      assert.equal((await fine.status()).revocation, undefined);
      await keepHistory('lean-revoked-while-waiting', awaiting);
      await keepHistory('lean-revoked-during-dispatch', holder);
    });
  });

  it('approved but held before dispatch (evidence sink down): revoked, it ends Revoked once the sink answers, never dispatched', async function () {
    const rec = new CallRecorder();
    const { sink, gate } = gatedSink();
    const { registryId, opts } = revocationOpts(rec);
    await withWorker({ ...opts, evidence: sink }, async (h) => {
      const run = await h.start('write');
      await waitForState(run, 'AwaitingApproval');
      await approve(run);
      await waitForState(run, 'Dispatching');
      const rev = await revocationsOf(h, registryId).revoke({ scope: { workspaceId: 'test', kind: 'runtime', value: 'echo' }, reason: 'echo compromised', revokedBy: oscar });
      await waitForStatus(run, (s) => s.revocation?.revocationId === rev.id);
      gate.down = false;
      await assertRevoked(run, rev, 'ended-before-dispatch');
      assert.equal(rec.calls.length, 0, 'nothing reached the runtime');
    });
  });

  it('lift: refused for the operator who revoked (IncompatibleDuties), accepted from a second one through the CLI; new runs dispatch again', async function () {
    const rec = new CallRecorder();
    const { registryId, opts } = revocationOpts(rec);
    await withWorker(opts, async (h) => {
      const env = { TEMPORAL_ADDRESS: shared.address!, PORTARIUM_TASK_QUEUE: h.taskQueue, PORTARIUM_REVOCATION_REGISTRY: registryId };
      const added = await cli(env, 'revoke', 'add', '--scope', 'runtime:echo', '--workspace', 'test', '--reason', 'incident 7', '--by', 'oscar', '--json');
      assert.equal(added.code, 0, added.err);
      const rev = JSON.parse(added.out) as Revocation;
      const refused = await h.start('read');
      await assertRevoked(refused, rev, 'dispatch-refused');
      assert.equal(rec.calls.length, 0);

      const listed = await cli(env, 'revoke', 'list');
      assert.match(listed.out, new RegExp(`^${rev.id} {2}runtime echo in workspace test; revoked by oscar at .*: incident 7$`));
      const same = await cli(env, 'revoke', 'lift', rev.id, '--by', 'oscar', '--reason', 'fixed');
      assert.equal(same.code, 3);
      assert.match(same.err, /^refused: IncompatibleDuties: /);
      const lifted = await cli(env, 'revoke', 'lift', rev.id, '--by', 'carol', '--reason', 'patched and verified');
      assert.equal(lifted.code, 0, lifted.err);
      const all = await cli(env, 'revoke', 'list', '--all', '--json');
      const view = JSON.parse(all.out);
      assert.deepEqual([view.active.length, view.lifted[0].liftedBy, view.lifted[0].revokedBy], [0, 'carol', 'oscar']);
      assert.equal((await cli(env, 'revoke', 'list')).out, 'no revocations in force');

      // Within a cache refresh (500 ms here) the runtime is usable again.
      await new Promise((r) => setTimeout(r, 1_200));
      const again = await h.start('read');
      assert.equal((await again.result()).state, 'Succeeded');
      assert.equal(rec.callsOf(again.workflowId), 1);
      const unknown = await cli(env, 'revoke', 'lift', 'rev-999', '--by', 'carol', '--reason', 'x');
      assert.match(unknown.err, /^refused: RevocationRefused: /);
    });
  });

  it('a worker on another queue than the registry reads the revocations in force (no worker polls the registry): it refuses the revoked action and dispatches the rest', async function () {
    const rec = new CallRecorder();
    const { registryId, opts } = revocationOpts(rec);
    let rev: Revocation | undefined;
    // The registry runs on this first worker's queue; that worker is gone before the second one dispatches.
    await withWorker(opts, async (h) => {
      rev = await revocationsOf(h, registryId).revoke({ scope: { workspaceId: 'test', kind: 'target', value: 'test/thing' }, reason: 'thing compromised', revokedBy: oscar });
    });
    await withWorker(opts, async (h) => {
      const refused = await h.start('read');
      await assertRevoked(refused, rev!, 'dispatch-refused');
      const other = await h.start('read', { action: { runtime: 'echo', target: 'test/other', operation: 'read', input: { n: 1 } } });
      assert.equal((await other.result()).state, 'Succeeded', 'a worker that cannot query the registry still reads it');
      assert.equal(rec.callsOf(refused.workflowId), 0);
    });
  });

  it('a worker restart between the revocation and its effect loses nothing: the waiting run ends Revoked on the next worker', async function () {
    const rec = new CallRecorder();
    const { registryId, opts } = revocationOpts(rec);
    const taskQueue = uid('tq');
    let run: RunHandle | undefined;
    await withWorker({ ...opts, taskQueue }, async (h) => {
      run = await h.start('write', { action: { runtime: 'echo', target: 'test/restart', operation: 'write', input: {} } });
      await waitForState(run, 'AwaitingApproval');
      await revocationsOf(h, registryId).registry();
    });
    // No worker: the revoke update waits in the registry's task queue.
    const pending = new RevocationClient(opts.client, taskQueue, registryId).revoke({ scope: { workspaceId: 'test', kind: 'target', value: 'test/restart' }, reason: 'while no worker ran', revokedBy: oscar });
    await new Promise((r) => setTimeout(r, 500));
    await withWorker({ ...opts, taskQueue }, async () => {
      const rev = await pending;
      await assertRevoked(run!, rev, 'ended-before-dispatch');
    });
    assert.equal(rec.calls.length, 0);
  });
});

describe('emergency revocation: a runtime that can cancel', function () {
  this.timeout(60_000);

  it('Kestra: revoked during a dispatch, the remote execution is killed and the run ends Revoked (dispatch-cancelled)', async function () {
    const kestra = await new KestraFake({ password: 'kestra-rev-pw' }).start();
    const policyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-rev-policies-'));
    const secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-rev-secrets-'));
    try {
      fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(policyDir, 'defaults.json'));
      fs.writeFileSync(path.join(policyDir, 'ops1.json'), JSON.stringify({
        schemaVersion: 1, kind: 'workspace', workspace: 'ops1',
        rules: [{ id: 'pipelines', match: { runtime: 'kestra' }, tier: 'Auto' }],
        connections: { kestra: { baseUrl: kestra.url, auth: 'basic', pollInterval: '100ms', runTimeout: '30s' } },
        egress: { kestra: { hosts: [`127.0.0.1:${kestra.port}`] } },
      }));
      fs.writeFileSync(path.join(secretsDir, 'ops1.json'), JSON.stringify({ kestra: { username: kestra.options.username, password: 'kestra-rev-pw' } }), { mode: 0o600 });
      kestra.flow('ops.team', 'long', { paused: true });
      const { registryId, opts } = revocationOpts(createKestraRuntime(), { policyDir });
      await withWorker({ ...opts, secrets: new FileSecretStore(secretsDir) }, async (h) => {
        const run = await h.start('run', { workspaceId: 'ops1', action: { runtime: 'kestra', target: 'ops.team/long', operation: 'run', input: {} } });
        const deadline = Date.now() + 15_000;
        while (![...kestra.executions.values()].some((e) => e.flowId === 'long') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        const exec = [...kestra.executions.values()].find((e) => e.flowId === 'long')!;
        const rev = await revocationsOf(h, registryId).revoke({ scope: { workspaceId: '*', kind: 'runtime', value: 'kestra' }, reason: 'kestra build compromised', revokedBy: oscar });
        await assertRevoked(run, rev, 'dispatch-cancelled');
        assert.deepEqual(kestra.kills, [exec.id], 'the kill reached Kestra');
        assert.equal(kestra.creates().length, 1, 'nothing created after the revocation');
      });
    } finally {
      await kestra.close();
      fs.rmSync(policyDir, { recursive: true, force: true });
      fs.rmSync(secretsDir, { recursive: true, force: true });
    }
  });
});

describe('emergency revocation: a second worker process', function () {
  this.timeout(90_000);

  it('a revocation from the CLI reaches a run on another worker process, and that process refuses new dispatches from its own cache; the metrics count both', async function () {
    const { registryId, opts } = revocationOpts(new CallRecorder());
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-rev-worker-'));
    const otherQueue = uid('tq');
    const port = await freePort();
    const other = await startWorkerProcess({
      PORTARIUM_METRICS_ADDRESS: `127.0.0.1:${port}`,
      PORTARIUM_TASK_QUEUE: otherQueue, PORTARIUM_POLICY_DIR: TEST_POLICY_DIR, PORTARIUM_DATA_DIR: dataDir, PORTARIUM_LOG_LEVEL: 'WARN',
      PORTARIUM_REVOCATION_REGISTRY: registryId, PORTARIUM_REVOCATION_REFRESH: '500ms',
    });
    try {
      await withWorker(opts, async (h) => {
        const there = new PortariumClient(h.client, otherQueue);
        const startThere = async (operation: string) =>
          (await there.startRun({ workspaceId: 'test', correlationId: uid('corr'), requestedBy: { id: 'alice', roles: ['dev'] },
            action: { runtime: 'echo', target: 'test/thing', operation, input: { n: 1 } }, idempotencyKey: uid('key'), reason: 'second process' })).run;
        // The registry runs on the other process's queue: its fan-out and gauge are that process's.
        await new RevocationClient(h.client, otherQueue, registryId).registry();
        const before = await startThere('read');
        assert.equal((await before.result()).state, 'Succeeded');
        const waiting = await startThere('write');
        await waitForState(waiting, 'AwaitingApproval');

        const env = { TEMPORAL_ADDRESS: shared.address!, PORTARIUM_TASK_QUEUE: otherQueue, PORTARIUM_REVOCATION_REGISTRY: registryId };
        const added = await cli(env, 'revoke', 'add', '--scope', 'runtime:echo', '--workspace', 'test', '--reason', 'echo compromised', '--by', 'oscar', '--json');
        assert.equal(added.code, 0, added.err);
        const rev = JSON.parse(added.out) as Revocation;
        const t0 = Date.now();
        await assertRevoked(waiting, rev, 'ended-before-dispatch');
        // That process's cache is warm: the revocation is in it from its next refresh (500 ms here).
        await new Promise((r) => setTimeout(r, Math.max(0, t0 + 700 - Date.now())));
        const after = await startThere('read');
        await assertRevoked(after, rev, 'dispatch-refused');
        const ledger = await new FileEchoLedger(path.join(dataDir, 'echo-ledger')).counts();
        assert.deepEqual(ledger, { applied: 1, calls: 1 }, 'only the run before the revocation reached the runtime');
        let metrics = '';
        const deadline = Date.now() + 15_000;
        while (!/portarium_runs_revoked\{[^}]*effect="dispatch-refused"/.test(metrics) && Date.now() < deadline) {
          metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).catch(() => '');
          await new Promise((r) => setTimeout(r, 250));
        }
        assert.match(metrics, /^portarium_revocations_in_force(\{[^}]*\})? 1$/m, 'revocations in force');
        assert.match(metrics, /^portarium_runs_revoked\{[^}]*effect="ended-before-dispatch"[^}]*\} 1$/m, 'runs revoked while waiting');
        assert.match(metrics, /^portarium_runs_revoked\{[^}]*effect="dispatch-refused"[^}]*\} 1$/m, 'runs refused at dispatch');
      });
    } finally {
      other.child.kill('SIGTERM');
      await new Promise((r) => other.child.once('exit', r));
    }
  });
});

