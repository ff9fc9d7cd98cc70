/**
 * Regression tests from review: each `Context:` names the hole it keeps closed.
 */
import * as assert from 'node:assert/strict';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createEchoRuntime } from '../activities/runtimes/echo';
import type { RuntimeAdapter } from '../activities/runtimes/port';
import { runtimeRejected } from '../workflows/failures';
import { signDecision } from '../workflows/run/signatures';
import { alice, bob, carol, decision, failureType, oscar, uid, waitForState, waitForStatus, withWorker } from './support/harness';
import { testEnv } from './support/shared';
import { decodedHistory, textOf } from './support/leak-scan';

const SECRET = 'sk-live-SECRET12345678';
/** A runtime that leaks a credential in its error text, or in an output field. */
const leaky: RuntimeAdapter = {
  name: 'ghost',
  async execute(call) {
    if (call.request.input.fail) throw runtimeRejected(`upstream said 401 for Authorization: Bearer ${SECRET}`);
    return { output: { apiKey: SECRET, ok: true } };
  },
};

describe('hardening', function () {
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });

  it('deeply nested input fails the run as InvalidRunInput instead of retrying forever', async function () {
    // Context: a 6,000-level array overflowed zod's stack and failed the workflow task in a loop.
    await withWorker(opts(), async (h) => {
      let deep: unknown = 1;
      for (let i = 0; i < 500; i++) deep = [deep];
      const input = { workspaceId: 'test', correlationId: 'c', requestedBy: alice, action: { runtime: 'echo', target: 't', operation: 'read', input: { deep } }, idempotencyKey: uid('k'), reason: 'r' };
      const handle = await h.client.workflow.start('governedRun', { taskQueue: h.taskQueue, workflowId: uid('deep'), args: [input] });
      const err = await handle.result().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError);
      assert.equal((err.cause as ApplicationFailure).type, 'InvalidRunInput');
    });
  });

  it('an amendment is decided on its normalised form, not the raw payload', async function () {
    // Context: a raw amendAction with target "crm/prod " (trailing space) slipped past a rule on "crm/prod".
    await withWorker(opts(), async (h) => {
      const run = await h.start('write');
      const s = await waitForState(run, 'AwaitingApproval');
      await run.decide({ kind: 'requestChanges', ...decision(bob, s.actionHash, { rationale: 'narrow it' }) });
      await waitForState(run, 'ChangesRequested');
      const raw = { amendmentId: 'am-raw', amendedBy: alice, action: { runtime: 'echo', target: '  test/thing  ', operation: 'write', input: {} }, reason: 'x' };
      const status = await run.handle.executeUpdate('amendAction', { args: [raw] }) as { action: { target: string } };
      assert.equal(status.action.target, 'test/thing');
      await run.cancel({ requestedBy: alice, reason: 'done' });
    });
  });

  it('under a signed rule the roles that count are the registered ones, not the claimed ones', async function () {
    // Context: bob (registered as approver) signed an approval claiming the security role, and it counted.
    await withWorker(opts(), async (h) => {
      const run = await h.start('wire-sec', { workspaceId: 'sod', action: { runtime: 'echo', target: 'sod/x', operation: 'wire-sec', input: {} } });
      const s = await waitForState(run, 'AwaitingApproval');
      const d = decision({ id: 'bob', roles: ['security'] }, s.actionHash, { signedAt: new Date().toISOString() });
      const signature = signDecision({ workflowId: run.workflowId, firstExecutionRunId: s.firstExecutionRunId, actionHash: s.actionHash, kind: 'approve', decisionId: d.decisionId, approverId: 'bob', signedAt: d.signedAt! }, '11'.repeat(32));
      await assert.rejects(run.decide({ kind: 'approve', ...d, signature }), (e) => failureType(e) === 'ApproverNotEligible');
      await run.cancel({ requestedBy: alice, reason: 'done' });
    });
  });

  it('a cancel or a change request sent before the worker decided policy is applied, not lost', async function () {
    // Context: before the policy snapshot loaded, an operator's cancel was refused and the run dispatched.
    const client = testEnv().client;
    const taskQueue = uid('tq');
    const { PortariumClient } = await import('../workers/client');
    const portarium = new PortariumClient(client, taskQueue);
    const start = (operation: string) => portarium.startRun({ workspaceId: 'test', correlationId: uid('c'), requestedBy: alice, action: { runtime: 'echo', target: 'test/early', operation, input: {} }, idempotencyKey: uid('k'), reason: 'early' });
    const auto = (await start('read')).run;
    await auto.cancel({ requestedBy: oscar, reason: 'stop before it starts' });
    const write = (await start('write')).run;
    await withWorker({ ...opts(), taskQueue }, async (h) => {
      assert.equal((await auto.result()).state, 'Cancelled');
      const s = await waitForState(write, 'AwaitingApproval');
      // Context: a change request and an approval landing in one activation dispatched the action.
      await h.client.workflow.getHandle(write.workflowId).signal('requestChanges', { ...decision(carol, s.actionHash), rationale: 'wait' });
      await h.client.workflow.getHandle(write.workflowId).signal('approve', decision(bob, s.actionHash));
      await waitForState(write, 'ChangesRequested');
      assert.equal((await h.ledger.counts()).calls, 0);
      await write.cancel({ requestedBy: alice, reason: 'done' });
    });
  });

  it('credentials in runtime errors and outputs never reach status, evidence or history', async function () {
    // Context: an adapter's error text with a bearer token was copied into evidence and the failure.
    await withWorker({ ...opts(), runtimes: [createEchoRuntime(), leaky] }, async (h) => {
      const failed = await h.start('any', { action: { runtime: 'ghost', target: 'x', operation: 'any', input: { fail: true } } });
      await assert.rejects(failed.result());
      const ok = await h.start('any', { action: { runtime: 'ghost', target: 'x', operation: 'any', input: {} } });
      assert.deepEqual((await ok.result()).output, { apiKey: '[redacted]', ok: true });
      for (const run of [failed, ok]) {
        // The history decoded (what anyone with the workspace's keys reads), not only the ciphertext the server holds.
        const everything = textOf([await run.status(), await run.evidence(), await decodedHistory(h.client, run.workflowId, await run.handle.fetchHistory())]);
        assert.ok(!everything.includes('SECRET12345678'), `no secret in ${run.workflowId}`);
      }
      assert.match((await failed.status()).lastError!.message, /upstream said 401 for Authorization: \[redacted\]/);
    });
  });

  it('a repeated start is recognised by its whole request, also for a run started raw', async function () {
    await withWorker(opts(), async (h) => {
      const input = { workspaceId: 'test', correlationId: uid('c'), requestedBy: alice, action: { runtime: 'echo', target: 'test/raw', operation: 'write', input: {} }, idempotencyKey: uid('k'), reason: 'raw start' };
      await h.client.workflow.start('governedRun', { taskQueue: h.taskQueue, workflowId: `test:${input.idempotencyKey}`, args: [input] });
      const again = await h.portarium.startRun(input);
      assert.equal(again.existing, true);
      await assert.rejects(h.portarium.startRun({ ...input, tierOverride: 'ManualOnly' }), /another request/);
      await again.run.cancel({ requestedBy: alice, reason: 'done' });
      await waitForStatus(again.run, (s) => s.state === 'Cancelled');
    });
  });
});
