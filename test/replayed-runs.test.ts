/**
 * Runs on a worker that keeps no run in its cache: every workflow task after the first replays the
 * run's history from the start. The policy snapshot is a local activity, and core may give the
 * activation that resolves it another workflow time on replay than it had live; the evidence the
 * first task hashed (and the dispatch activity stored) must be the evidence every replay computes.
 */
import * as assert from 'node:assert/strict';
import { verifyChain } from '../workflows/evidence-chain';
import { runWorkflowId } from '../workflows/ids';
import { alice, uid, withWorker } from './support/harness';
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

  it('a message that arrived with the start, before policy decided, is recorded at the same time live and on replay', async function () {
    await withWorker(opts(), async (h) => {
      const input: GovernedRunInput = {
        workspaceId: 'test',
        correlationId: uid('corr'),
        requestedBy: alice,
        action: { runtime: 'echo', target: 'test/thing', operation: 'read', input: { n: 1 } },
        idempotencyKey: uid('key'),
        reason: 'early message',
      };
      const workflowId = runWorkflowId(input.workspaceId, input.idempotencyKey);
      // A malformed approval, delivered with the start: handled once policy has decided, as a refusal.
      const handle = await h.client.workflow.signalWithStart('governedRun', {
        taskQueue: h.taskQueue,
        workflowId,
        args: [input],
        signal: 'approve',
        signalArgs: [{ decisionId: 'd-1', approver: { id: 'bob' } }],
      });
      const run = h.portarium.run(workflowId);
      const result = await run.result();
      assert.equal(result.state, 'Succeeded', JSON.stringify(result));
      const ev = await run.evidence();
      assert.ok(ev.entries.some((e) => /Refused/.test(e.event)), `the early message is refused on the record: ${ev.entries.map((e) => e.event)}`);
      assert.ok(verifyChain(ev.entries, { workspaceId: 'test', runId: workflowId }).ok);
      assert.deepEqual(await h.evidence.readRun('test', workflowId, handle.signaledRunId), ev.entries, 'the sink holds exactly the chain the run reports');
    });
  });
});
