/**
 * Cancel while waiting and while dispatching, by the `cancelRun` signal and by Temporal cancellation.
 */
import * as assert from 'node:assert/strict';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { keepHistory } from './support/histories';
import { alice, mallory, oscar, waitForState, waitForStatus, withWorker } from './support/harness';
import { testEnv } from './support/shared';

describe('cancel', function () {
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });

  it('the requester cancels a run awaiting approval; nothing is dispatched', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write');
      await waitForState(run, 'AwaitingApproval');
      await run.cancel({ requestedBy: alice, reason: 'no longer needed' });
      const result = await run.result();
      assert.equal(result.state, 'Cancelled');
      assert.equal((await h.ledger.counts()).calls, 0);
      const events = (await run.evidence()).entries.map((e) => e.event);
      assert.deepEqual(events.slice(-2), ['CancelRequested', 'StateCancelled']);
      await keepHistory('lean-cancelled-while-waiting', run);
    });
  });

  it('only the requester or an operator may cancel; others are refused and recorded', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write');
      await waitForState(run, 'AwaitingApproval');
      await run.cancel({ requestedBy: mallory, reason: 'mischief' });
      const st = await waitForStatus(run, (s) => s.refusals.length > 0);
      assert.equal(st.refusals[0].type, 'CancelNotAllowed');
      assert.equal(st.state, 'AwaitingApproval');
      await run.cancel({ requestedBy: oscar, reason: 'change freeze' });
      assert.equal((await run.result()).state, 'Cancelled');
    });
  });

  it('cancelRun reaches a dispatch in flight: the runtime stops and the run ends Cancelled', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('read', { input: { delayMs: 30_000 } });
      await waitForState(run, 'Dispatching');
      const t0 = Date.now();
      await run.cancel({ requestedBy: alice, reason: 'stop it' });
      const result = await run.result();
      assert.equal(result.state, 'Cancelled');
      assert.ok(Date.now() - t0 < 10_000, 'the runtime was stopped, not waited out');
      assert.equal((await h.ledger.counts()).applied, 0, 'the echo runtime never applied the action');
      await keepHistory('lean-cancelled-during-dispatch', run);
    });
  });

  it('Temporal cancellation (temporal workflow cancel) is recorded as Cancelled', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write');
      await waitForState(run, 'AwaitingApproval');
      await run.handle.cancel();
      await assert.rejects(run.result(), (e) => e instanceof WorkflowFailedError && e.cause instanceof CancelledFailure);
      const st = await run.status();
      assert.equal(st.state, 'Cancelled');
      assert.equal((await run.evidence()).entries.at(-1)?.event, 'StateCancelled');
    });
  });
});
