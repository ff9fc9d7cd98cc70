/**
 * Workspace quotas end to end on a real Temporal server: many runs against a concurrency limit, the
 * per-minute window, waiting visibly in AwaitingQuota, cancel while waiting, and reclaiming the lease
 * of a terminated holder. Worker crashes are in test/quotas-restart.test.ts.
 */
import * as assert from 'node:assert/strict';
import { CancelledFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { RunHandle } from '../workers/client';
import { formatStatus } from '../workers/cli/format';
import { PortariumClient } from '../workers/client';
import { loadConfig } from '../workers/config';
import { createPortariumWorkers } from '../workers/worker';
import { loadPolicyDir } from '../activities/policy/load';
import { alice, tempFileSink, uid, waitForState, waitForStatus, withWorker } from './support/harness';
import { keepHistory } from './support/histories';
import { grantOrder, InFlightRecorder, quotaPolicyDir, quotaStatus, waitForQuota } from './support/quota-fixtures';
import { DEV_KEYS, testEnv } from './support/shared';
import { quotaWorkflowId } from '../workflows/ids';
import { workspaceQuota } from '../workflows/quota/coordinator';

const opts = (policyDir: string, recorder: InFlightRecorder) => ({
  connection: testEnv().nativeConnection,
  client: testEnv().client,
  policyDir,
  runtimes: [recorder],
});

const events = async (run: RunHandle) => (await run.evidence()).entries.map((e) => e.event);

describe('workspace quotas', function () {
  this.timeout(120_000);

  it('12 concurrent runs under concurrentDispatches 2: never more than 2 in flight, all succeed, granted in request order', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 2 } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      const runs: RunHandle[] = [];
      for (let i = 0; i < 12; i++) {
        const run = await h.start('read', { workspaceId, input: { delayMs: 800 } });
        runs.push(run);
        // Each run is in the coordinator's book before the next starts, so request order is start order.
        await waitForQuota(h.client, workspaceId, (s) => [...s.leases, ...s.waiting].some((e) => e.runId === run.workflowId) || recorder.started.includes(run.workflowId));
      }
      const results = await Promise.all(runs.map((r) => r.result()));
      assert.deepEqual(results.map((r) => r.state), Array(12).fill('Succeeded'));
      assert.equal(recorder.maxInFlight, 2, 'the limit was reached and never exceeded');
      assert.deepEqual(await grantOrder(h.client, workspaceId), runs.map((r) => r.workflowId), 'granted in request order');
      assert.deepEqual([...recorder.started].sort(), runs.map((r) => r.workflowId).sort(), 'each dispatched once');
      const queued = [];
      for (const run of runs) {
        const ev = await events(run);
        assert.ok(ev.includes('StateAwaitingQuota') && ev.includes('QuotaGranted'), ev.join(','));
        assert.ok(ev.indexOf('QuotaGranted') < ev.indexOf('StateDispatching'));
        if (ev.includes('QuotaQueued')) queued.push(run);
      }
      assert.ok(queued.length >= 6, `most runs waited (${queued.length})`);
      const s = await quotaStatus(h.client, workspaceId);
      assert.deepEqual([s?.leases.length, s?.waiting.length], [0, 0], 'every lease came back');
      await keepHistory('lean-quota-authenticated', queued[queued.length - 1]);
    });
  });

  it('a waiting run shows AwaitingQuota and why; cancel while waiting ends it Cancelled and the next waiter gets the slot', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ '*': { concurrentDispatches: 1 } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      const holder = await h.start('read', { workspaceId, input: { delayMs: 2500 } });
      await waitForState(holder, 'Dispatching');
      const cancelled = await h.start('read', { workspaceId, input: { n: 2 } });
      const st = await waitForStatus(cancelled, (s) => s.quota?.phase === 'queued');
      assert.equal(st.state, 'AwaitingQuota');
      assert.match(st.quota!.waitingFor!, new RegExp(`^waiting for quota: 1 of 1 concurrent echo dispatches in workspace ${workspaceId}; position 1$`));
      assert.equal(st.quota!.coordinator, `${workspaceId}/quota/echo`);
      assert.match(formatStatus(cancelled.workflowId, st), /^quota {9}waiting for quota: 1 of 1 concurrent echo/m, 'portarium run status shows why');
      const withdrawn = await h.start('read', { workspaceId, input: { n: 3 } });
      await waitForStatus(withdrawn, (s) => s.quota?.phase === 'queued' && s.quota.queued?.position === 2);
      const next = await h.start('read', { workspaceId, input: { n: 4 } });
      await waitForStatus(next, (s) => s.quota?.queued?.position === 3);

      await cancelled.cancel({ requestedBy: alice, reason: 'not needed' });
      assert.equal((await cancelled.result()).state, 'Cancelled');
      await withdrawn.handle.cancel();
      await assert.rejects(withdrawn.result(), (e) => e instanceof WorkflowFailedError && e.cause instanceof CancelledFailure);
      assert.equal((await withdrawn.status()).state, 'Cancelled');
      await waitForQuota(h.client, workspaceId, (s) => s.waiting.length === 1 && s.waiting[0].runId === next.workflowId);

      assert.equal((await holder.result()).state, 'Succeeded');
      assert.equal((await next.result()).state, 'Succeeded');
      assert.deepEqual(recorder.started, [holder.workflowId, next.workflowId], 'the cancelled runs never dispatched');
      assert.equal(recorder.maxInFlight, 1);
      assert.deepEqual((await events(cancelled)).slice(-3), ['QuotaQueued', 'CancelRequested', 'StateCancelled']);
    });
  });

  it('dispatchesPerMinute: a run past the limit waits with an until-time and proceeds when the window frees', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { dispatchesPerMinute: 2 } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      const first = await h.start('read', { workspaceId });
      assert.equal((await first.result()).state, 'Succeeded');
      const second = await h.start('read', { workspaceId, input: { n: 2 } });
      assert.equal((await second.result()).state, 'Succeeded');
      const third = await h.start('read', { workspaceId, input: { n: 3 } });
      const st = await waitForStatus(third, (s) => s.quota?.phase === 'queued');
      assert.equal(st.state, 'AwaitingQuota');
      assert.match(st.quota!.waitingFor!, /^waiting for quota: 2 of 2 echo dispatches in the last minute in workspace .*; position 1; a slot frees at /);
      // The coordinator's grant time, which the window counts (the run records it in QuotaGranted).
      const firstGrant = (await first.evidence()).entries.find((e) => e.event === 'QuotaGranted')!.data!.grantedAt as string;
      assert.equal(st.deadlines.quotaFreesAt, new Date(Date.parse(firstGrant) + 60_000).toISOString());
      assert.equal((await third.result()).state, 'Succeeded');
      const granted = (await third.evidence()).entries.find((e) => e.event === 'QuotaGranted')!;
      assert.ok(Date.parse(granted.occurredAt) >= Date.parse(st.deadlines.quotaFreesAt!), 'granted once the oldest grant left the window');
    });
  });

  it('a terminated holder never releases: the lease check reclaims its lease and the next run proceeds', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 1, leaseCheckInterval: '2s' } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      const holder = await h.start('read', { workspaceId, input: { delayMs: 60_000 } });
      await waitForState(holder, 'Dispatching');
      const waiter = await h.start('read', { workspaceId, input: { n: 2 } });
      await waitForState(waiter, 'AwaitingQuota');
      await holder.handle.terminate('stuck');
      assert.equal((await waiter.result()).state, 'Succeeded');
      assert.equal(recorder.maxInFlight, 1, 'the terminated dispatch stopped before the next one started');
      const s = await quotaStatus(h.client, workspaceId);
      assert.equal(s?.leases.length, 0);
    });
  });

  it('a dedicated workspace: the coordinator runs on the workspace\'s own task queue, beside its runs', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 1 } }, { isolation: 'dedicated' });
    const recorder = new InFlightRecorder();
    const base = uid('tq');
    const config = loadConfig({ PORTARIUM_POLICY_DIR: dir, PORTARIUM_TASK_QUEUE: base, PORTARIUM_WORKSPACES: workspaceId, ...DEV_KEYS }, { echoLedger: 'memory', shutdownGrace: '2s' });
    const { workers } = await createPortariumWorkers(config, { connection: testEnv().nativeConnection, runtimes: [recorder], evidence: tempFileSink() });
    const portarium = new PortariumClient(testEnv().client, loadPolicyDir(dir).routing(base));
    const running = workers.map((w) => w.run());
    try {
      const start = (i: number) => portarium.startRun({
        workspaceId, correlationId: uid('corr'), requestedBy: alice, idempotencyKey: uid('key'), reason: 'dedicated quota',
        action: { runtime: 'echo', target: 'test/thing', operation: 'read', input: { delayMs: 300, i } },
      });
      const runs = [await start(1), await start(2), await start(3)];
      for (const r of runs) assert.equal((await r.run.result()).state, 'Succeeded');
      assert.equal(recorder.maxInFlight, 1);
      const coordinator = await testEnv().client.workflow.getHandle(quotaWorkflowId(workspaceId, 'echo')).describe();
      assert.equal(coordinator.taskQueue, `${base}.ws.${workspaceId}`);
    } finally {
      workers.forEach((w) => w.shutdown());
      await Promise.all(running);
    }
  });

  it('a runtime without a quota dispatches at once, without a lease', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ kestra: { concurrentDispatches: 1 } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      const run = await h.start('read', { workspaceId, correlationId: uid('corr') });
      assert.equal((await run.result()).state, 'Succeeded');
      const st = await run.status();
      assert.equal(st.quota, undefined);
      assert.ok(!(await events(run)).includes('StateAwaitingQuota'));
    });
  });
});

describe('workspace quota coordinator history', function () {
  this.timeout(120_000);

  it('continues as new past its history limit, carrying leases and queue: the limit still holds', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 1 } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      const first = await h.client.workflow.start(workspaceQuota, {
        workflowId: quotaWorkflowId(workspaceId, 'echo'),
        taskQueue: h.taskQueue,
        args: [{ schemaVersion: 1, workspaceId, runtime: 'echo', maxHistoryEvents: 50 }],
      });
      const runs = await Promise.all(Array.from({ length: 10 }, (_, i) => h.start('read', { workspaceId, input: { delayMs: 150, i } })));
      const results = await Promise.all(runs.map((r) => r.result()));
      assert.deepEqual(results.map((r) => r.state), Array(10).fill('Succeeded'));
      assert.equal(recorder.maxInFlight, 1);
      assert.equal(recorder.started.length, 10);
      const firstRun = h.client.workflow.getHandle(first.workflowId, first.firstExecutionRunId);
      assert.equal((await firstRun.describe()).status.name, 'CONTINUED_AS_NEW', 'the first coordinator run continued as new');
      const s = await quotaStatus(h.client, workspaceId);
      assert.deepEqual([s?.leases.length, s?.waiting.length], [0, 0]);
    });
  });
});
