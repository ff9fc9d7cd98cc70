/**
 * Every tier end to end on a real Temporal server: what runs at once, what waits, what never runs.
 */
import * as assert from 'node:assert/strict';
import { verifyChain } from '../workflows/evidence-chain';
import { keepHistory } from './support/histories';
import { alice, bob, carol, decision, failureType, oscar, waitForState, waitForStatus, withWorker } from './support/harness';
import { testEnv } from './support/shared';

describe('tiers', function () {
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });

  it('Auto dispatches at once and records the policy decision and the output', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('read', { input: { q: 'status' } });
      const result = await run.result();
      assert.equal(result.state, 'Succeeded');
      assert.equal(result.tier, 'Auto');
      assert.deepEqual(result.output, { echoed: { q: 'status' }, firstApplication: true });
      assert.match(result.reasons[0], /rule read-auto/);
      assert.deepEqual(await h.ledger.counts(), { applied: 1, calls: 1 });
      const ev = await run.evidence();
      assert.deepEqual(ev.entries.map((e) => e.event), ['RunRequested', 'PolicyAllowed', 'StateDispatching', 'StateSucceeded']);
      assert.equal(ev.head, result.evidenceHead);
      const status = await run.status();
      assert.ok(verifyChain(ev.entries, { workspaceId: 'test', runId: run.workflowId }).ok);
      assert.ok(status.policyHash && /^[0-9a-f]{64}$/.test(status.policyHash));
      await keepHistory('lean-auto-succeeded', run);
    });
  });

  it('Assisted announces the plan, waits out the veto window, then dispatches', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('notify');
      const waiting = await waitForState(run, 'VetoWindow');
      assert.ok(waiting.deadlines.vetoEndsAt);
      assert.equal((await h.ledger.counts()).applied, 0, 'nothing dispatched during the veto window');
      const result = await run.result();
      assert.equal(result.state, 'Succeeded');
      assert.ok(Date.now() >= Date.parse(waiting.deadlines.vetoEndsAt!), 'dispatched only after the window');
      assert.equal((await h.ledger.counts()).applied, 1);
      await keepHistory('lean-assisted-window-elapsed', run);
    });
  });

  it('Assisted: an eligible reviewer vetoes, and nothing is dispatched', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('rotate');
      const s = await waitForState(run, 'VetoWindow');
      await run.decide({ kind: 'reject', ...decision(bob, s.actionHash, { rationale: 'not during the freeze' }) });
      const result = await run.result();
      assert.equal(result.state, 'Rejected');
      assert.equal((await h.ledger.counts()).calls, 0);
      await keepHistory('lean-assisted-vetoed', run);
    });
  });

  it('Assisted: an eligible reviewer releases early', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('rotate');
      const s = await waitForState(run, 'VetoWindow');
      assert.ok(Date.parse(s.deadlines.vetoEndsAt!) - Date.now() > 30 * 60_000, 'window is an hour long');
      await run.signalDecision('approve', decision(carol, s.actionHash));
      assert.equal((await run.result()).state, 'Succeeded');
      assert.equal((await h.ledger.counts()).applied, 1);
    });
  });

  it('HumanApprove waits for an eligible approver, then dispatches once', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write');
      const s = await waitForState(run, 'AwaitingApproval');
      assert.equal(s.tier, 'HumanApprove');
      assert.equal(s.approvalsNeeded, 1);
      assert.deepEqual(s.eligibleRoles, ['approver']);
      assert.ok(s.deadlines.expiresAt);
      assert.equal((await h.ledger.counts()).calls, 0);
      const outcome = await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      assert.equal(outcome.counted, true);
      assert.equal(outcome.approvalsNeeded, 0);
      const result = await run.result();
      assert.equal(result.state, 'Succeeded');
      assert.deepEqual(await h.ledger.counts(), { applied: 1, calls: 1 });
      const status = await run.status();
      assert.deepEqual(status.approvals.map((a) => a.approverId), ['bob']);
      await keepHistory('lean-human-approved', run);
    });
  });

  it('ManualOnly is never dispatched; it ends with the manual completion report', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('wipe');
      const s = await waitForState(run, 'AwaitingManualCompletion');
      // An ineligible person cannot report it done.
      await run.completeManually({
        completionId: 'mc-0', completedBy: alice, completedAt: new Date().toISOString(), evidenceRef: 'CHG-1', actionHash: s.actionHash,
      });
      const refused = await waitForStatus(run, (st) => st.refusals.length > 0);
      assert.equal(refused.refusals[0].type, 'ManualCompletionRefused');
      assert.equal(refused.state, 'AwaitingManualCompletion');
      await run.completeManually({
        completionId: 'mc-1', completedBy: oscar, completedAt: new Date().toISOString(), evidenceRef: 'CHG-1042', actionHash: s.actionHash,
      });
      const result = await run.result();
      assert.equal(result.state, 'ManuallyCompleted');
      assert.equal((await h.ledger.counts()).calls, 0, 'the system never dispatched it');
      const ev = await run.evidence();
      const report = ev.entries.find((e) => e.event === 'ManualCompletionReported');
      assert.equal(report?.actor.id, 'oscar');
      assert.equal(report?.data?.evidenceRef, 'CHG-1042');
      await keepHistory('lean-manual-completed', run);
    });
  });

  it('Deny ends the run at once with the reasons, and nothing is dispatched', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('delete');
      const result = await run.result();
      assert.equal(result.state, 'Denied');
      assert.match(result.reasons.join(), /delete-deny/);
      const unmatched = await (await h.start('launch')).result();
      assert.equal(unmatched.state, 'Denied');
      assert.match(unmatched.reasons.join(), /no rule matched: deny by default/);
      assert.equal((await h.ledger.counts()).calls, 0);
      await keepHistory('lean-denied', run);
    });
  });

  it('a tier override can only make a run stricter', async function () {
    await withWorker(opts(), async (h) => {
      const raised = await h.start('read', { tierOverride: 'HumanApprove' });
      const s = await waitForState(raised, 'AwaitingApproval');
      assert.match(s.reasons.join(), /raised the tier from Auto to HumanApprove/);
      const lowered = await h.start('write', { tierOverride: 'Auto' });
      const s2 = await waitForState(lowered, 'AwaitingApproval');
      assert.match(s2.reasons.join(), /tierOverride Auto ignored/);
      await raised.cancel({ requestedBy: alice, reason: 'done testing' });
      await lowered.cancel({ requestedBy: alice, reason: 'done testing' });
      assert.equal((await raised.result()).state, 'Cancelled');
    });
  });

  it('a non-retryable runtime failure fails the run with the runtime\'s failure type', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('read', { input: { fail: 'rejected' } });
      await assert.rejects(run.result(), (err) => failureType(err) === 'RuntimeRejected');
      const status = await run.status();
      assert.equal(status.state, 'Failed');
      assert.equal(status.lastError?.type, 'RuntimeRejected');
      assert.equal((await h.ledger.counts()).calls, 0);
      await keepHistory('lean-dispatch-failed', run);
    });
  });

  it('a retryable runtime failure is retried with the same dispatch key, then succeeds', async function () {
    this.timeout(30_000);
    await withWorker(opts(), async (h) => {
      const run = await h.start('read', { input: { failAttempts: 2 } });
      const result = await run.result();
      assert.equal(result.state, 'Succeeded');
      assert.deepEqual(await h.ledger.counts(), { applied: 1, calls: 1 });
    });
  });
});
