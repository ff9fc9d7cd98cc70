/**
 * Deadlines on the time-skipping test server: escalation adds approvers after its delay, undecided
 * runs expire, manual work expires, veto windows elapse. Hours pass in milliseconds. Serial.
 */
import * as assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { keepHistory } from './support/histories';
import { bob, decision, erin, failureType, waitForState, withWorker } from './support/harness';
import { startTimeSkippingEnv } from './support/time-skipping';
import { ApproverRolesKey } from '../workflows/search-attributes';

describe('timers (time-skipping server)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;

  before(async function () {
    env = await startTimeSkippingEnv();
  });
  after(async function () {
    await env?.teardown();
  });

  const opts = () => ({ connection: env.nativeConnection, client: env.client });

  it('escalation makes the next role eligible after its delay, and no sooner', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('deploy');
      const s = await waitForState(run, 'AwaitingApproval');
      assert.equal(Date.parse(s.deadlines.escalatesAt!) - Date.parse(s.deadlines.expiresAt!), -6 * 3600_000);
      await assert.rejects(run.decide({ kind: 'approve', ...decision(erin, s.actionHash) }), (e) => failureType(e) === 'ApproverNotEligible');
      await env.sleep('2h');
      await env.sleep('1m');
      const escalated = await run.status();
      assert.equal(escalated.escalated, true);
      assert.deepEqual(escalated.eligibleRoles, ['approver', 'lead']);
      assert.equal(escalated.deadlines.escalatesAt, undefined, 'no further step');
      // The "awaiting my approval" view finds it for the escalated role too, and for none once decided.
      const approverRoles = async () => (await run.handle.describe()).typedSearchAttributes.get(ApproverRolesKey);
      assert.deepEqual(await approverRoles(), ['approver', 'lead']);
      await run.decide({ kind: 'approve', ...decision(erin, s.actionHash) });
      assert.equal((await run.result()).state, 'Succeeded');
      assert.deepEqual(await approverRoles() ?? [], []);
      await keepHistory('lean-escalated-approved', run);
    });
  });

  it('an undecided run escalates, then expires at its deadline; nothing is dispatched', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('deploy');
      const s = await waitForState(run, 'AwaitingApproval');
      const result = await run.result();
      assert.equal(result.state, 'Expired');
      const ev = (await run.evidence()).entries;
      const escalated = ev.find((e) => e.event === 'Escalated')!;
      const expired = ev.find((e) => e.event === 'StateExpired')!;
      const escalatedAfter = Date.parse(escalated.occurredAt) - Date.parse(ev[0].occurredAt);
      assert.ok(escalatedAfter >= 2 * 3600_000 && escalatedAfter < 2 * 3600_000 + 5_000, `escalated after ${escalatedAfter} ms`);
      assert.ok(Date.parse(expired.occurredAt) >= Date.parse(s.deadlines.expiresAt!));
      assert.equal((await h.ledger.counts()).calls, 0);
      await keepHistory('lean-expired-after-escalation', run);
    });
  });

  it('a requested change that is never made expires the run', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write');
      const s = await waitForState(run, 'AwaitingApproval');
      await run.decide({ kind: 'requestChanges', ...decision(bob, s.actionHash, { rationale: 'add a ticket' }) });
      await waitForState(run, 'ChangesRequested');
      assert.equal((await run.result()).state, 'Expired');
    });
  });

  it('ManualOnly work not reported in time expires', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('wipe');
      const s = await waitForState(run, 'AwaitingManualCompletion');
      const requestedAt = Date.parse((await run.evidence()).entries[0].occurredAt);
      const window = Date.parse(s.deadlines.expiresAt!) - requestedAt;
      assert.ok(window >= 48 * 3600_000 && window < 48 * 3600_000 + 5_000, `expires ${window} ms after the request`);
      assert.equal((await run.result()).state, 'Expired');
    });
  });

  it('an hour-long Assisted veto window elapses without a veto, then dispatches', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('rotate');
      await waitForState(run, 'VetoWindow');
      assert.equal((await run.result()).state, 'Succeeded');
      assert.equal((await h.ledger.counts()).applied, 1);
    });
  });
});
