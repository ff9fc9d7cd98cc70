/**
 * The example approval bot approves exactly the runs its rule covers, once, and leaves the rest.
 */
import * as assert from 'node:assert/strict';
import { type BotRule, approveCoveredRuns } from '../workers/examples/approval-bot';
import { alice, uid, waitForState, withWorker } from './support/harness';
import { testEnv } from './support/shared';

describe('approval bot', function () {
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });

  it('approves covered runs by update, skips the others, and never approves twice', async function () {
    await withWorker(opts(), async (h) => {
      // Other suites leave runs in workspace `test`; this test's own prefix keeps the rule to its runs.
      const prefix = `test/${uid('bot')}/`;
      const covered = await h.start('write', { action: { runtime: 'echo', target: `${prefix}ok`, operation: 'write', input: {} } });
      const uncovered = await h.start('write', { action: { runtime: 'echo', target: 'prod/db', operation: 'write', input: {} } });
      await waitForState(covered, 'AwaitingApproval');
      await waitForState(uncovered, 'AwaitingApproval');
      const rule: BotRule = {
        workspaceId: 'test',
        bot: { id: 'bot-1', roles: ['approver'] },
        allowOperations: ['write'],
        allowTargetPrefixes: [prefix],
      };
      const lines: string[] = [];
      // Visibility is eventually consistent: poll until the bot has seen the covered run.
      const deadline = Date.now() + 15_000;
      let approved: string[] = [];
      while (!approved.includes(covered.workflowId) && Date.now() < deadline) {
        approved = await approveCoveredRuns(h.portarium, rule, (l) => lines.push(l));
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(approved.includes(covered.workflowId));
      assert.ok(!approved.includes(uncovered.workflowId));
      assert.deepEqual(await approveCoveredRuns(h.portarium, rule, () => undefined), [], 'nothing left to approve; no second approval');
      assert.equal((await covered.result()).state, 'Succeeded');
      const left = await uncovered.status();
      assert.equal(left.state, 'AwaitingApproval');
      assert.ok(lines.some((l) => l.includes(uncovered.workflowId) && l.includes('target prod/db not allowed')));
      await uncovered.cancel({ requestedBy: alice, reason: 'test done' });
    });
  });

  it('signs its approval where the policy requires signed decisions, and leaves such runs alone without a key', async function () {
    await withWorker(opts(), async (h) => {
      const prefix = `sod/${uid('bot')}/`;
      const run = await h.start('wire', { workspaceId: 'sod', action: { runtime: 'echo', target: `${prefix}wire`, operation: 'wire', input: {} } });
      const waiting = await waitForState(run, 'AwaitingApproval');
      assert.equal(waiting.signedDecisions, true);
      // The bot acts as bob, whose public key test/policies/defaults.json registers.
      const rule: BotRule = { workspaceId: 'sod', bot: { id: 'bob', roles: ['approver'] }, allowOperations: ['wire'], allowTargetPrefixes: [prefix] };
      const lines: string[] = [];
      const deadline = Date.now() + 15_000;
      while (!lines.some((l) => l.includes(run.workflowId)) && Date.now() < deadline) {
        await approveCoveredRuns(h.portarium, rule, (l) => lines.push(l));
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(lines.some((l) => l.includes(run.workflowId) && l.includes('signed decisions required')), lines.join('\n'));
      assert.equal((await run.status()).approvals.length, 0);
      const approved = await approveCoveredRuns(h.portarium, { ...rule, privateKey: '11'.repeat(32) }, () => undefined);
      assert.deepEqual(approved, [run.workflowId]);
      assert.equal((await run.result()).state, 'Succeeded');
      const ev = await run.evidence();
      assert.equal(ev.entries.find((e) => e.event === 'ApprovalRecorded')?.data?.signed, true);
    });
  });
});
