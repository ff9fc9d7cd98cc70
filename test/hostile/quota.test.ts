/**
 * Hostile input to workspace quotas, on a real Temporal server: whoever can signal a run or a
 * coordinator tries to dispatch past the limit, rewrite the limit, free another run's lease, or
 * wedge the coordinator. Each case checks what a user sees: nothing dispatched past the policy's
 * limit, the forgery recorded (run `status.refusals` / coordinator `status.refusals`), and every run
 * still readable and finishing.
 */
import * as assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import type { RunHandle } from '../../workers/client';
import * as msg from '../../workflows/run/messages';
import type { RunStatus } from '../../workflows/types';
import { quotaWorkflowId } from '../../workflows/ids';
import { type Harness, bob, decision, uid, waitForState, waitForStatus, withWorker } from '../support/harness';
import { InFlightRecorder, quotaPolicyDir, quotaStatus, waitForQuota } from '../support/quota-fixtures';
import { testEnv } from '../support/shared';

const opts = (policyDir: string, recorder: InFlightRecorder, taskQueue?: string) => ({
  connection: testEnv().nativeConnection,
  client: testEnv().client,
  policyDir,
  runtimes: [recorder],
  ...(taskQueue && { taskQueue }),
});

const HOLD_MS = 6_000;
/** How many `QuotaProofInvalid` refusals of `via` the run recorded (repeats may be coalesced into a count). */
const proofRefusals = (s: RunStatus, via: string) =>
  s.refusals.filter((r) => r.via === via && r.type === 'QuotaProofInvalid').reduce((n, r) => n + ((r as { count?: number }).count ?? 1), 0);
const events = async (run: RunHandle) => (await run.evidence()).entries.map((e) => e.event);

/** A holder dispatching under a `concurrentDispatches: 1` quota and a second run waiting behind it. */
async function holderAndWaiter(h: Harness, workspaceId: string) {
  const holder = await h.start('read', { workspaceId, input: { delayMs: HOLD_MS } });
  await waitForState(holder, 'Dispatching');
  const waiter = await h.start('read', { workspaceId, input: { n: 2 } });
  const st = await waitForStatus(waiter, (s) => s.quota?.phase === 'queued');
  return { holder, waiter, leaseId: st.quota!.leaseId };
}

/** A signal whose payload is sent as given, past any payload converter or codec. */
async function signalRaw(client: Client, workflowId: string, signalName: string, payloads: { metadata: Record<string, Uint8Array>; data: Uint8Array }[]): Promise<void> {
  await client.workflowService.signalWorkflowExecution({
    namespace: client.options.namespace,
    workflowExecution: { workflowId },
    signalName,
    input: { payloads },
    identity: 'mallory',
    requestId: randomUUID(),
  });
}
const bytes = (s: string) => new TextEncoder().encode(s);

/** `p`, or a failure saying `what` after `ms` (so a wedged coordinator fails the case, not the suite's timeout). */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('hostile: workspace quotas', function () {
  this.timeout(180_000);

  it('a forged quotaGranted does not let a second run dispatch past concurrentDispatches: 1; the forgery is recorded', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 1 } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      const { holder, waiter, leaseId } = await holderAndWaiter(h, workspaceId);
      const forged = h.client.workflow.getHandle(waiter.workflowId);
      await forged.signal(msg.quotaGrantedSignal, { leaseId, grantedAt: new Date().toISOString() });
      await forged.signal(msg.quotaGrantedSignal, { leaseId, grantedAt: new Date().toISOString(), proof: '0'.repeat(64) });
      const st = await waitForStatus(waiter, (s) => proofRefusals(s, 'quotaGranted') === 2);
      assert.equal(st.state, 'AwaitingQuota', 'the forged grants were not taken');
      assert.equal(st.quota!.phase, 'queued');
      assert.deepEqual(recorder.started, [holder.workflowId], 'only the holder dispatched');
      assert.ok((await events(waiter)).includes('RequestRefused'), 'the forgery is in the evidence');

      assert.equal((await holder.result()).state, 'Succeeded');
      assert.equal((await waiter.result()).state, 'Succeeded', 'the real grant still arrives');
      assert.equal(recorder.maxInFlight, 1);
    });
  });

  it('forged quotaQueued and quotaProbe signals are refused, recorded, and change nothing', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 1 } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      const { holder, waiter, leaseId } = await holderAndWaiter(h, workspaceId);
      const before = await waiter.status();
      const forged = h.client.workflow.getHandle(waiter.workflowId);
      await forged.signal(msg.quotaQueuedSignal, { leaseId, position: 99, limit: 'dispatchesPerMinute', inUse: 0, max: 1, freesAt: '2099-01-01T00:00:00.000Z', proof: 'f'.repeat(64) });
      await forged.signal(msg.quotaProbeSignal, { leaseId });
      await signalRaw(h.client, waiter.workflowId, 'quotaProbe', []);
      const st = await waitForStatus(waiter, (s) => proofRefusals(s, 'quotaQueued') === 1 && proofRefusals(s, 'quotaProbe') === 2);
      assert.equal(st.state, 'AwaitingQuota');
      assert.deepEqual(st.quota, before.quota, 'where the run stands is unchanged');
      assert.deepEqual(st.deadlines, before.deadlines);
      assert.equal((await holder.result()).state, 'Succeeded');
      assert.equal((await waiter.result()).state, 'Succeeded');
      assert.equal(recorder.maxInFlight, 1);
    });
  });

  it('a forged quotaRequest carrying limit 10000 does not change the coordinator\'s limits: status shows the policy\'s, and they hold', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 1 } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      const holder = await h.start('read', { workspaceId, input: { delayMs: HOLD_MS } });
      await waitForState(holder, 'Dispatching');
      const coordinator = h.client.workflow.getHandle(quotaWorkflowId(workspaceId, 'echo'));
      const runId = `${workspaceId}:${uid('forged')}`;
      await coordinator.signal(msg.quotaRequestSignal, { schemaVersion: 1, leaseId: `${runId}/x`, runId, limits: { concurrentDispatches: 10_000, dispatchesPerMinute: 10_000 } });
      const waiter = await h.start('read', { workspaceId, input: { n: 2 } });
      const st = await waitForStatus(waiter, (s) => s.quota?.phase === 'queued');
      assert.match(st.quota!.waitingFor!, /1 of 1 concurrent echo dispatches/);
      const s = await waitForQuota(h.client, workspaceId, (q) => q.waiting.some((w) => w.runId === waiter.workflowId));
      assert.deepEqual(s.limits, { concurrentDispatches: 1 }, 'the policy\'s limits, not the request\'s');
      assert.deepEqual(recorder.started, [holder.workflowId]);
      assert.equal((await holder.result()).state, 'Succeeded');
      assert.equal((await waiter.result()).state, 'Succeeded');
      assert.equal(recorder.maxInFlight, 1);
    });
  });

  it('a quotaRelease naming a held lease without or with a wrong secret is refused and recorded; the lease stays held', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 1 } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      const { holder, waiter } = await holderAndWaiter(h, workspaceId);
      const held = (await holder.status()).quota!.leaseId;
      const coordinator = h.client.workflow.getHandle(quotaWorkflowId(workspaceId, 'echo'));
      await coordinator.signal(msg.quotaReleaseSignal, { leaseId: held, runId: holder.workflowId, reason: 'done' });
      await coordinator.signal(msg.quotaReleaseSignal, { leaseId: held, runId: holder.workflowId, reason: 'done', secret: 'A'.repeat(43) });
      const s = await waitForQuota(h.client, workspaceId, (q) => q.refusals['quotaRelease:wrongSecret']?.count === 2);
      assert.deepEqual(s.leases.map((l) => l.leaseId), [held], 'still held');
      assert.deepEqual(s.waiting.map((w) => w.runId), [waiter.workflowId]);
      assert.equal((await waiter.status()).state, 'AwaitingQuota');
      assert.deepEqual(recorder.started, [holder.workflowId]);
      assert.equal((await holder.result()).state, 'Succeeded');
      assert.equal((await waiter.result()).state, 'Succeeded');
      assert.equal(recorder.maxInFlight, 1, 'the forged release freed nothing');
      const after = await quotaStatus(h.client, workspaceId);
      assert.deepEqual([after?.leaseCount, after?.waitingCount], [0, 0], 'the real releases were honoured');
    });
  });

  it('a policy tightened after a run started is what the coordinator enforces when that run asks: its old snapshot restores nothing', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 2 } });
    const taskQueue = uid('tq');
    let pending: RunHandle | undefined;
    await withWorker(opts(dir, new InFlightRecorder(), taskQueue), async (h) => {
      // A quick run starts the coordinator with the old limits; a HumanApprove run takes its snapshot (limit 2).
      assert.equal((await (await h.start('read', { workspaceId })).result()).state, 'Succeeded');
      assert.deepEqual((await quotaStatus(h.client, workspaceId))?.limits, { concurrentDispatches: 2 });
      pending = await h.start('write', { workspaceId });
      await waitForState(pending, 'AwaitingApproval');
    });
    const file = path.join(dir, `${workspaceId}.json`);
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), quotas: { echo: { concurrentDispatches: 1 } } }));
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder, taskQueue), async (h) => {
      const holder = await h.start('read', { workspaceId, input: { delayMs: HOLD_MS } });
      await waitForState(holder, 'Dispatching');
      const run = pending!;
      await run.decide({ kind: 'approve', ...decision(bob, (await run.status()).actionHash) });
      const st = await waitForStatus(run, (s) => s.quota?.phase === 'queued');
      assert.deepEqual(st.quota!.limits, { concurrentDispatches: 2 }, 'the run asked with its start-time snapshot');
      assert.match(st.quota!.waitingFor!, /1 of 1 concurrent echo dispatches/, 'the coordinator holds it to the tightened policy');
      assert.deepEqual((await quotaStatus(h.client, workspaceId))?.limits, { concurrentDispatches: 1 });
      assert.equal((await holder.result()).state, 'Succeeded');
      assert.equal((await run.result()).state, 'Succeeded');
      assert.equal(recorder.maxInFlight, 1);
    });
  });

  it('garbage that decodes, sent to every coordinator signal, is counted as refused; the coordinator answers status and grants', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 1 } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      assert.equal((await (await h.start('read', { workspaceId })).result()).state, 'Succeeded');
      const coordinatorId = quotaWorkflowId(workspaceId, 'echo');
      const coordinator = h.client.workflow.getHandle(coordinatorId);
      let deep: unknown = 'x';
      for (let i = 0; i < 200; i++) deep = { deep };
      const garbage: unknown[] = [null, 'x', 42, [], {}, deep, { schemaVersion: 2, leaseId: 'x'.repeat(100_000) }, { schemaVersion: 3 }, { constructor: { prototype: 1 } }];
      for (const g of garbage) {
        await coordinator.signal<[unknown]>('quotaRequest', g);
        await coordinator.signal<[unknown]>('quotaRelease', g);
      }
      await coordinator.signal<[unknown, unknown]>('quotaReconcile', 'unexpected', 1);
      // A request for a workflow that is not a run (the coordinator itself) takes no capacity.
      await coordinator.signal(msg.quotaRequestSignal, { schemaVersion: 2, leaseId: `${coordinatorId}/x`, runId: coordinatorId, runExecutionId: 'r', secret: 'A'.repeat(43) });
      const s = await waitForQuota(h.client, workspaceId, (q) => q.refusals['quotaRelease:invalid']?.count === garbage.length && q.refusals['quotaRequest:foreignRun']?.count === 1);
      assert.equal(s.refusals['quotaRequest:invalid'].count, garbage.length);
      assert.ok(JSON.stringify(s).length < 20_000, 'the refusals are counters, not a list');
      assert.equal((await (await h.start('read', { workspaceId, input: { n: 2 } })).result()).state, 'Succeeded', 'still granting');
    });
  });

  it('payloads that do not decode (unknown encoding, invalid JSON) leave the coordinator answering status and granting', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 1 } });
    const recorder = new InFlightRecorder();
    await withWorker(opts(dir, recorder), async (h) => {
      assert.equal((await (await h.start('read', { workspaceId })).result()).state, 'Succeeded');
      const coordinatorId = quotaWorkflowId(workspaceId, 'echo');
      for (const signal of ['quotaRequest', 'quotaRelease', 'quotaReconcile']) {
        await signalRaw(h.client, coordinatorId, signal, [{ metadata: { encoding: bytes('binary/bogus') }, data: bytes('??') }]);
        await signalRaw(h.client, coordinatorId, signal, [{ metadata: { encoding: bytes('json/plain') }, data: bytes('{not json') }]);
      }
      const run = await h.start('read', { workspaceId, input: { n: 2 } });
      assert.equal((await within(60_000, run.result(), 'the coordinator granted nothing')).state, 'Succeeded', 'still granting');
      assert.ok(await within(20_000, quotaStatus(h.client, workspaceId), 'the coordinator\'s status did not answer'), 'status answers');
      assert.equal(recorder.maxInFlight, 1);
    });
  });
});
