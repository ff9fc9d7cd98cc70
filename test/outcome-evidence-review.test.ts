/**
 * Review of the outcome entry stored by the dispatch activity (issue 15): what a retried attempt, a
 * slow sink and a worker clock ahead of the server do to a run whose runtime succeeded.
 */
import * as assert from 'node:assert/strict';
import type { AppendBatch, EvidenceSink } from '../activities/evidence/sink';
import type { PolicyDecision } from '../policies/evaluate';
import { buildEntry, verifyChain } from '../workflows/evidence-chain';
import { FailureType } from '../workflows/failures';
import { succeededEvidence } from '../workflows/run/outcome';
import { GovernedRunState } from '../workflows/run/state';
import { type GovernedRunInput, RunState } from '../workflows/types';
import { tempFileSink, withWorker } from './support/harness';
import { testEnv } from './support/shared';

const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms);

const INPUT: GovernedRunInput = {
  workspaceId: 'ws1',
  correlationId: 'c1',
  requestedBy: { id: 'alice', roles: ['dev'] },
  action: { runtime: 'echo', target: 'crm/contacts', operation: 'read', input: { n: 1 } },
  idempotencyKey: 'k1',
  reason: 'review',
};

const AUTO: PolicyDecision = {
  effect: 'Allow', tier: 'Auto', reasons: ['rule r1'], matchedRules: ['r1'], policyHash: 'p'.repeat(64), quorum: 0,
  eligibleRoles: [], eligibleUsers: [], requiredRoles: [], coolingOffMs: 0, freshnessMs: 0, signed: false,
  expiresAfterMs: 3_600_000, escalation: [], vetoWindowMs: 0, manualExpiresAfterMs: 7_200_000, operatorRoles: [],
  incompatibleDuties: [], approverKeys: {}, approverRoles: {},
};

/** A lean run dispatching since `at(1000)`, its outcome entry stamped by the worker's clock at `at(stampedAt)`. */
function adoptedAt(stampedAt: number): GovernedRunState {
  const run = new GovernedRunState(INPUT, 'ws1/run-1', at(0), 'exec-1', undefined, true);
  run.recordRequested(at(0));
  run.applyPolicy(AUTO, at(0));
  run.transition(RunState.Dispatching, at(1000), 'dispatching to echo');
  run.deferEvidence();
  const last = run.chain.entries[run.chain.entries.length - 1];
  const entry = buildEntry({ workspaceId: INPUT.workspaceId, correlationId: INPUT.correlationId, runId: 'ws1/run-1' }, { seq: last.seq + 1, previousHash: last.hash },
    succeededEvidence({ runtime: 'echo' }), at(stampedAt), true);
  assert.ok(run.endWith(RunState.Succeeded, entry));
  return run;
}

describe('outcome evidence under review', function () {
  this.timeout(60_000);

  it('an entry the run records after an outcome stamped by a worker clock ahead of the server keeps time going forward', function () {
    // The worker's clock is 3 s ahead of the server's: the outcome says 00:00:05, the workflow task
    // that adopts it runs at 00:00:02 workflow time. A message refused then is stamped 00:00:02.
    const run = adoptedAt(5000);
    run.refuse('approve', 'mallory', FailureType.DecisionNotExpected, 'the run has ended', at(2000));
    const v = verifyChain(run.chain.entries, { workspaceId: 'ws1', runId: 'ws1/run-1' });
    assert.ok(v.ok, `the chain verifies: ${JSON.stringify(v)}`);
  });

  it('a retried attempt after an earlier one stored the outcome and timed out (slow sink): the run still succeeds', async function () {
    const inner = tempFileSink();
    let slowOnce = true;
    const sink: EvidenceSink = {
      kind: inner.kind,
      async append(batch: AppendBatch) {
        const receipt = await inner.append(batch);
        if (slowOnce && batch.entries.some((e) => e.event === 'StateSucceeded')) {
          slowOnce = false;
          // Stored, but the answer takes longer than the dispatch's heartbeat timeout (10 s): the
          // attempt is timed out and retried, as when the worker died right after the write.
          await new Promise((r) => setTimeout(r, 12_000));
        }
        return receipt;
      },
      readWorkspace: (ws) => inner.readWorkspace(ws),
      readRun: (ws, run, execution) => inner.readRun(ws, run, execution),
      close: () => inner.close(),
    };
    await withWorker({ ...opts(), evidence: sink }, async (h) => {
      const run = await h.start('read');
      const result = await run.result().catch((err: Error) => ({ state: `threw ${err.message}: ${String((err.cause as Error | undefined)?.message)}` }));
      assert.equal(result.state, 'Succeeded');
      const view = await run.evidence();
      assert.deepEqual(await inner.readRun('test', run.workflowId), view.entries, 'the sink holds exactly the chain the workflow reports');
    });
  });
});
