/**
 * Break-glass review deadlines on the time-skipping test server: a review that one of two reviewers
 * confirmed is still overdue when the second does not come within `reviewWithin`, and the run's
 * result waits for that deadline. Hours pass in milliseconds. Serial.
 */
import * as assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bob, uid, waitForState, withWorker } from './support/harness';
import { breakGlassPolicyDir, ivan, release, review, stillOpen } from './support/break-glass';
import { startTimeSkippingEnv } from './support/time-skipping';

describe('break-glass review deadline (time-skipping server)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  const policyDir = breakGlassPolicyDir({ bg: { reviewers: 2, reviewWithin: '4h' } });

  before(async function () {
    env = await startTimeSkippingEnv();
  });
  after(async function () {
    await env?.teardown();
  });

  it('one confirmation of two is overdue after reviewWithin; the result comes then, not before; a late review is refused', async function () {
    await withWorker({ connection: env.nativeConnection, client: env.client, policyDir, taskQueue: uid('tq-bgt') }, async (h) => {
      const run = await h.start('write', { workspaceId: 'bg' });
      const s = await waitForState(run, 'AwaitingApproval');
      await run.breakGlass(release(ivan, s.actionHash));
      const done = await waitForState(run, 'Succeeded');
      const dueIn = Date.parse(done.breakGlass!.review.dueAt) - Date.parse(done.breakGlass!.at);
      assert.equal(dueIn, 4 * 3600_000);
      await run.reviewBreakGlass(review(bob));
      await env.sleep('3h');
      assert.ok(await stillOpen(run), 'no result before the review deadline');
      assert.equal((await run.status()).breakGlass?.review.state, 'pending');
      assert.equal((await run.result()).state, 'Succeeded');
      const st = await run.status();
      assert.equal(st.breakGlass?.review.state, 'overdue');
      assert.ok(Date.parse(st.breakGlass!.review.endedAt!) >= Date.parse(st.breakGlass!.review.dueAt));
      const entry = (await run.evidence()).entries.find((e) => e.event === 'BreakGlassReviewOverdue');
      assert.deepEqual([entry?.data?.confirmations, entry?.data?.needed], [1, 2]);
      // The run has closed with its review overdue: a late review has nothing to reach.
      await assert.rejects(run.reviewBreakGlass(review({ id: 'carol', roles: ['approver'] })));
      assert.equal((await run.status()).breakGlass?.review.reviews.length, 1);
    });
  });
});
