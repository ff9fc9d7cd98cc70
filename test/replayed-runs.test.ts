/**
 * Runs on a worker that keeps no run in its cache: every workflow task after the first replays the
 * run's history from the start. The policy snapshot is a local activity, and core may give the
 * activation that resolves it another workflow time on replay than it had live; the evidence the
 * first task hashed (and the dispatch activity stored) must be the evidence every replay computes.
 */
import * as assert from 'node:assert/strict';
import { verifyChain } from '../workflows/evidence-chain';
import { runWorkflowId } from '../workflows/ids';
import * as path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { PROJECT_ROOT } from '../workers/config';
import { type Harness, alice, bob, decision, failureType, uid, waitForStatus, withWorker } from './support/harness';
import { testEnv } from './support/shared';
import type { GovernedRunInput } from '../workflows/types';

describe('runs replayed at every workflow task (no cache)', function () {
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, config: { maxCachedWorkflows: 0 } });

  it('an Auto run: the outcome entry the dispatch activity chained to the live evidence is the replay\'s too, and the sink holds the chain the run reports', async function () {
    await withWorker(opts(), async (h) => {
      for (let i = 0; i < 3; i++) {
        const run = await h.start('read', { input: { q: `status ${i}` } });
        const result = await run.result();
        assert.equal(result.state, 'Succeeded', JSON.stringify(result));
        const ev = await run.evidence();
        assert.deepEqual(ev.entries.map((e) => e.event), ['RunRequested', 'PolicyAllowed', 'StateDispatching', 'StateSucceeded']);
        assert.ok(verifyChain(ev.entries, { workspaceId: 'test', runId: run.workflowId }).ok);
        const stored = await h.evidence.readRun('test', run.workflowId, (await run.handle.describe()).runId);
        assert.deepEqual(stored, ev.entries, 'the sink holds exactly the chain the run reports');
        assert.equal(ev.head, result.evidenceHead);
      }
      assert.deepEqual(await h.ledger.counts(), { applied: 3, calls: 3 });
    });
  });

  /** Start a run with a signal delivered in its first workflow task, before policy has decided. */
  async function startWithSignal(h: Harness, operation: string, signal: string, arg: unknown): Promise<{ workflowId: string; runId: string }> {
    const input: GovernedRunInput = {
      workspaceId: 'test',
      correlationId: uid('corr'),
      requestedBy: alice,
      action: { runtime: 'echo', target: 'test/thing', operation, input: { n: 1 } },
      idempotencyKey: uid('key'),
      reason: 'early message',
    };
    const workflowId = runWorkflowId(input.workspaceId, input.idempotencyKey);
    const handle = await h.client.workflow.signalWithStart('governedRun', { taskQueue: h.taskQueue, workflowId, args: [input], signal, signalArgs: [arg] });
    return { workflowId, runId: handle.signaledRunId };
  }

  it('a message that arrived with the start of an Auto run is refused on the record, and the chain replays as stored', async function () {
    await withWorker(opts(), async (h) => {
      // A malformed approval: handled once policy has decided, as a refusal.
      const { workflowId, runId } = await startWithSignal(h, 'read', 'approve', { decisionId: 'd-1', approver: { id: 'bob' } });
      const run = h.portarium.run(workflowId);
      const result = await run.result();
      assert.equal(result.state, 'Succeeded', JSON.stringify(result));
      const ev = await run.evidence();
      const refusal = ev.entries.find((e) => /Refused/.test(e.event));
      assert.ok(refusal, `the early message is refused on the record: ${ev.entries.map((e) => e.event)}`);
      const decided = ev.entries.find((e) => e.event === 'PolicyAllowed')!;
      // The decision and the first transition are of the activation that resolved the snapshot: one
      // pinned time. The refusal, recorded while the runtime ran, follows the outcome entry.
      assert.equal(ev.entries.find((e) => e.event === 'StateDispatching')!.occurredAt, decided.occurredAt);
      assert.ok(refusal.seq > ev.entries.find((e) => e.event === 'StateSucceeded')!.seq);
      assert.ok(verifyChain(ev.entries, { workspaceId: 'test', runId: workflowId }).ok);
      assert.deepEqual(await h.evidence.readRun('test', workflowId, runId), ev.entries, 'the sink holds exactly the chain the run reports');
    });
  });

  it('a cancel that arrived with the start ends a HumanApprove run Cancelled, with every entry at the time of the request', async function () {
    await withWorker(opts(), async (h) => {
      const { workflowId, runId } = await startWithSignal(h, 'write', 'cancelRun', { requestedBy: alice, reason: 'asked in error' });
      const run = h.portarium.run(workflowId);
      const result = await run.result();
      assert.equal(result.state, 'Cancelled', JSON.stringify(result));
      const ev = await run.evidence();
      const times = new Set(ev.entries.map((e) => e.occurredAt));
      assert.equal(times.size, 1, `the request's activation and the one that resolved the snapshot (pinned to the request's time) made every entry: ${ev.entries.map((e) => `${e.event}@${e.occurredAt}`)}`);
      assert.ok(ev.entries.some((e) => e.event === 'StateCancelled'));
      assert.ok(verifyChain(ev.entries, { workspaceId: 'test', runId: workflowId }).ok);
      assert.deepEqual(await h.evidence.readRun('test', workflowId, runId), ev.entries, 'the sink holds exactly the chain the run reports');
      assert.equal((await h.ledger.counts()).calls, 0);
    });
  });

  it('a worker whose workflow bundle lacks the clock interceptor fails the run WorkerMisconfigured before it loads policy; nothing is dispatched', async function () {
    this.timeout(120_000);
    const { code } = await bundleWorkflowCode({ workflowsPath: path.join(PROJECT_ROOT, 'dist', 'workflows', 'index.js'), logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } });
    await withWorker({ ...opts(), workflowBundle: { code } }, async (h) => {
      const run = await h.start('read');
      await assert.rejects(run.result(), (err: unknown) => failureType(err) === 'WorkerMisconfigured');
      const { events } = await run.handle.fetchHistory();
      assert.ok(!(events ?? []).some((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity'), 'policy was not loaded');
      assert.deepEqual(await h.ledger.counts(), { applied: 0, calls: 0 });
    });
  });

  it('forged and oversized messages that arrive before policy decided are refused on the record; the HumanApprove run still waits for, and takes, a real approval', async function () {
    await withWorker(opts(), async (h) => {
      // A forged quota grant with the start (the run holds no lease), then a cancel far over the reason limit.
      const { workflowId, runId } = await startWithSignal(h, 'write', 'quotaGranted', { leaseId: 'forged', proof: 'x'.repeat(64) });
      const run = h.portarium.run(workflowId);
      await h.client.workflow.getHandle(workflowId).signal('cancelRun', { requestedBy: alice, reason: 'r'.repeat(5_000) });
      const waiting = await waitForStatus(run, (s) => s.state === 'AwaitingApproval' && s.refusals.length >= 2);
      assert.deepEqual(waiting.refusals.map((r) => r.type).sort(), ['InvalidMessage', 'InvalidMessage']);
      await run.decide({ kind: 'approve', ...decision(bob, waiting.actionHash) });
      const result = await run.result();
      assert.equal(result.state, 'Succeeded', JSON.stringify(result));
      const ev = await run.evidence();
      assert.ok(verifyChain(ev.entries, { workspaceId: 'test', runId: workflowId }).ok);
      assert.deepEqual(await h.evidence.readRun('test', workflowId, runId), ev.entries, 'the sink holds exactly the chain the run reports');
      assert.deepEqual(await h.ledger.counts(), { applied: 1, calls: 1 });
    });
  });
});

