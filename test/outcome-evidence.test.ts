/**
 * The outcome entry stored by the dispatch activity (issue 15): a successful run ends in the
 * dispatch's own workflow task, without an evidence activity, and its chain is still whole, ordered,
 * stored and verifiable: with messages refused while the runtime ran, with a sink that did not
 * confirm the outcome, and with an attempt that stored its outcome and died before reporting.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { FilePayloadStore } from '../activities/payload-store';
import { loadPolicyDir } from '../activities/policy/load';
import { createDispatchActivities } from '../activities/runtimes/dispatch';
import { MemoryEchoLedger, createEchoRuntime } from '../activities/runtimes/echo';
import type { AppendBatch, EvidenceSink } from '../activities/evidence/sink';
import { EvidenceChain, verifyChain } from '../workflows/evidence-chain';
import type { DispatchRequest, DispatchResult } from '../workflows/types';
import { TEST_POLICY_DIR, alice, tempFileSink, wrappedSink, waitForState, withWorker } from './support/harness';
import { keepHistory } from './support/histories';
import { testEnv } from './support/shared';

const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });

/** Names of the activities a run scheduled, in order (the policy snapshot is a local activity: a marker, not scheduled). */
async function activitiesOf(handle: { fetchHistory(): Promise<{ events?: unknown[] | null }> }): Promise<string[]> {
  const { events } = await handle.fetchHistory();
  return (events ?? [])
    .map((e) => (e as { activityTaskScheduledEventAttributes?: { activityType?: { name?: string } } }).activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((n): n is string => !!n);
}

describe('outcome evidence stored with the dispatch', function () {
  this.timeout(60_000);

  it('an Auto run ends without an evidence activity; the sink holds its whole chain, outcome included', async function () {
    const sink = tempFileSink();
    await withWorker({ ...opts(), evidence: sink }, async (h) => {
      const run = await h.start('read');
      const result = await run.result();
      assert.equal(result.state, 'Succeeded');
      assert.deepEqual(await activitiesOf(run.handle), ['dispatchAction']);
      const { events } = await run.handle.fetchHistory();
      const markers = (events ?? []).map((e) => e.markerRecordedEventAttributes?.markerName).filter(Boolean);
      assert.deepEqual(markers, ['core_patch', 'core_local_activity'], 'one patch marker, and the policy snapshot loaded by a local activity');
      const view = await run.evidence();
      assert.equal(view.entries.at(-1)?.event, 'StateSucceeded');
      assert.deepEqual(await sink.readRun('test', run.workflowId), view.entries, 'the sink holds exactly the chain the workflow reports');
      assert.equal(result.evidenceHead, view.head);
      const status = await run.status();
      assert.deepEqual([status.evidenceStored?.count, status.evidenceStored?.head], [view.count, view.head]);
      assert.ok(verifyChain(view.entries, { workspaceId: 'test', runId: run.workflowId }).ok);
    });
  });

  it('messages refused while the runtime runs are chained after its outcome, in time order, and stored', async function () {
    const sink = tempFileSink();
    await withWorker({ ...opts(), evidence: sink }, async (h) => {
      const run = await h.start('read', { input: { delayMs: 2_000 } });
      await waitForState(run, 'Dispatching');
      await run.handle.signal('approve', { not: 'a decision' });
      await run.handle.signal('cancelRun', { requestedBy: { id: 'mallory', roles: ['dev'] }, reason: 'not mine to cancel' });
      // Refused at once: status says so while the runtime still runs.
      const during = await run.status();
      assert.equal(during.state, 'Dispatching');
      assert.ok(during.refusals.length >= 2, JSON.stringify(during.refusals));
      const result = await run.result();
      assert.equal(result.state, 'Succeeded');
      const view = await run.evidence();
      const events = view.entries.map((e) => e.event);
      const at = events.indexOf('StateSucceeded');
      assert.equal(events[at - 1], 'StateDispatching');
      assert.deepEqual(events.slice(at + 1), ['RequestRefused', 'RequestRefused']);
      assert.ok(verifyChain(view.entries, { workspaceId: 'test', runId: run.workflowId }).ok, 'links, hashes and time order hold');
      assert.deepEqual(await sink.readRun('test', run.workflowId), view.entries, 'the refusals were stored too');
      // One more evidence write, for the refusals only.
      assert.deepEqual(await activitiesOf(run.handle), ['dispatchAction', 'persistEvidence']);
      await keepHistory('lean-refused-during-dispatch', run);
    });
  });

  it('a sink that does not confirm the outcome: the run stores the same entry itself, once', async function () {
    const inner = tempFileSink();
    let refuseOutcome = true;
    const sink = wrappedSink(inner, {
      async append(batch: AppendBatch) {
        if (refuseOutcome && batch.entries.some((e) => e.event === 'StateSucceeded')) {
          refuseOutcome = false;
          // Stored, but the answer is lost: the worst case for a retry.
          await inner.append(batch);
          throw ApplicationFailure.create({ type: 'EvidenceUnavailable', message: 'connection reset after commit' });
        }
        return inner.append(batch);
      },
    });
    await withWorker({ ...opts(), evidence: sink }, async (h) => {
      const run = await h.start('read');
      assert.equal((await run.result()).state, 'Succeeded');
      const view = await run.evidence();
      const stored = await inner.readRun('test', run.workflowId);
      assert.deepEqual(stored, view.entries);
      assert.equal(stored.filter((e) => e.event === 'StateSucceeded').length, 1);
      assert.deepEqual(await activitiesOf(run.handle), ['dispatchAction', 'persistEvidence']);
      await keepHistory('lean-outcome-unconfirmed', run);
    });
  });

  describe('the dispatch activity', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-outcome-'));
    const scope = { workspaceId: 'test', correlationId: 'corr-1', runId: 'test:outcome-1' };

    function setup(wrap: (inner: EvidenceSink) => EvidenceSink = (inner) => inner) {
      const sink = tempFileSink();
      const ledger = new MemoryEchoLedger();
      const acts = createDispatchActivities({
        runtimes: [createEchoRuntime(ledger)],
        policies: loadPolicyDir(TEST_POLICY_DIR),
        secrets: { kind: 'test', read: async () => ({}), close: async () => undefined },
        payloads: new FilePayloadStore(path.join(dir, 'payloads')),
        evidence: wrap(sink),
      });
      const chain = new EvidenceChain(scope);
      chain.append({ category: 'Plan', event: 'RunRequested', actor: { kind: 'User', id: alice.id }, summary: 'r' }, new Date('2026-01-01T00:00:00Z'));
      chain.append({ category: 'Action', event: 'StateDispatching', actor: { kind: 'System', id: 'portarium' }, summary: 'd' }, new Date('2026-01-01T00:00:01Z'));
      const last = chain.entries[1];
      const request: DispatchRequest = {
        workspaceId: 'test', correlationId: scope.correlationId, workflowId: scope.runId, runtime: 'echo', target: 'x', operation: 'read',
        input: { n: 1 }, actionHash: 'a'.repeat(64), dispatchKey: `${scope.runId}/${'a'.repeat(64)}`,
      } as DispatchRequest;
      const env = (attempt: number) => new MockActivityEnvironment({ workflowExecution: { workflowId: scope.runId, runId: 'exec-1' }, attempt });
      const dispatch = (n: number, attempt = 1) => env(attempt).run(acts.dispatchAction, request, n === 0 ? { execution: 'exec-1', entries: [...chain.entries] } : null,
        { execution: 'exec-1', after: { seq: last.seq, hash: last.hash, occurredAt: last.occurredAt } }) as Promise<DispatchResult>;
      return { sink, chain, dispatch, ledger };
    }

    it('builds the outcome entry the run would, after the head it was given, and stores it', async function () {
      const { sink, chain, dispatch } = setup();
      const r = await dispatch(0);
      const entry = r.outcome!.entry;
      assert.equal(r.outcome?.stored?.count, 3);
      assert.equal(r.outcome?.stored?.head, entry.hash);
      assert.ok(chain.adopt(entry), 'the entry is exactly the next one of the chain');
      assert.equal(entry.summary, 'echo executed the action');
      assert.deepEqual(entry.payloadRefs?.map((p) => p.kind), ['ActionInput', 'RuntimeOutput']);
      assert.deepEqual((await sink.readRun('test', scope.runId, 'exec-1')).map((e) => e.hash), chain.entries.map((e) => e.hash));
    });

    it('a retried attempt keeps the outcome entry an earlier attempt stored before it died', async function () {
      const { sink, dispatch } = setup();
      const first = await dispatch(0);
      await new Promise((r) => setTimeout(r, 5));
      const again = await dispatch(1);
      assert.deepEqual(again.outcome?.entry, first.outcome?.entry, 'the stored entry, not a second one stamped later');
      assert.equal(again.outcome?.stored?.count, 3);
      assert.equal((await sink.readRun('test', scope.runId, 'exec-1')).length, 3);
    });

    it('a retried attempt after one that stored the outcome and died answers from the sink: the runtime is not called again', async function () {
      const { sink, chain, dispatch, ledger } = setup();
      const first = await dispatch(0);
      assert.deepEqual(await ledger.counts(), { applied: 1, calls: 1 });
      // Temporal retries with the same arguments; this attempt is the second.
      const again = await dispatch(0, 2);
      assert.deepEqual(await ledger.counts(), { applied: 1, calls: 1 }, 'the echo runtime was not called again');
      assert.deepEqual(again.outcome?.entry, first.outcome?.entry);
      assert.deepEqual(again.output, first.output);
      assert.deepEqual(again.payloadRefs, first.payloadRefs);
      assert.equal(again.evidence, undefined, 'no pre-dispatch receipt past the head the run gave');
      assert.equal(again.outcome?.stored?.count, 3);
      assert.ok(chain.adopt(again.outcome!.entry));
      assert.equal((await sink.readRun('test', scope.runId, 'exec-1')).length, 3);
      // A retried attempt that finds nothing stored dispatches as usual.
      const fresh = setup();
      await fresh.dispatch(0, 3);
      assert.deepEqual(await fresh.ledger.counts(), { applied: 1, calls: 1 });
    });

    it('never fails a dispatch that ran: a sink that is down for the outcome leaves the entry for the run to store', async function () {
      const { sink, chain, dispatch } = setup((inner) => wrappedSink(inner, {
        append: async (batch) => {
          if (batch.entries.some((e) => e.event === 'StateSucceeded')) throw new Error('ECONNREFUSED');
          return inner.append(batch);
        },
      }));
      const r = await dispatch(0);
      assert.equal(r.output !== undefined, true);
      assert.equal(r.outcome?.stored, undefined, 'not confirmed');
      assert.ok(chain.adopt(r.outcome!.entry), 'still the next entry: the run adopts it and stores it itself');
      assert.equal((await sink.readRun('test', scope.runId, 'exec-1')).length, 2, 'the sink holds the chain up to the dispatch');
    });
  });
});
