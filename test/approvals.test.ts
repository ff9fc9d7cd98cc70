/**
 * Approval rules through the real workflow: quorum of distinct approvers, maker-checker, duplicate
 * decisions, action-hash binding, reject, and request-changes → amend → re-approve.
 */
import * as assert from 'node:assert/strict';
import { hashAction } from '../workflows/hashing';
import { keepHistory } from './support/histories';
import {
  alice,
  bob,
  carol,
  dave,
  decision,
  failureType,
  mallory,
  waitForState,
  waitForStatus,
  withWorker,
} from './support/harness';
import { testEnv } from './support/shared';

describe('approvals', function () {
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });

  it('a 2-of-3 quorum needs two distinct eligible approvers; the same person twice counts once', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('transfer', { input: { amount: 500 } });
      const s = await waitForState(run, 'AwaitingApproval');
      assert.equal(s.approvalsNeeded, 2);
      const first = await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      assert.deepEqual([first.counted, first.approvalsNeeded], [true, 1]);
      const again = await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      assert.deepEqual([again.counted, again.approvalsNeeded], [false, 1], 'bob approving twice counts once');
      assert.equal((await run.status()).state, 'AwaitingApproval');
      assert.equal((await h.ledger.counts()).calls, 0);
      const second = await run.decide({ kind: 'approve', ...decision(dave, s.actionHash) });
      assert.equal(second.approvalsNeeded, 0);
      assert.equal((await run.result()).state, 'Succeeded');
      const status = await run.status();
      assert.deepEqual(status.approvals.map((a) => a.approverId).sort(), ['bob', 'dave']);
      assert.equal((await h.ledger.counts()).applied, 1);
      await keepHistory('lean-quorum-two-of-three', run);
    });
  });

  it('the requester approving their own run is refused, recorded, and does not count', async function () {
    await withWorker(opts(), async (h) => {
      const selfApprover = { id: alice.id, roles: ['approver'] };
      const run = await h.start('write', { requestedBy: selfApprover });
      const s = await waitForState(run, 'AwaitingApproval');
      await assert.rejects(run.decide({ kind: 'approve', ...decision(selfApprover, s.actionHash) }), (e) => failureType(e) === 'SelfApprovalRefused');
      // The signal path cannot answer, so the refusal shows in status.
      await run.signalDecision('approve', decision(selfApprover, s.actionHash));
      const after = await waitForStatus(run, (st) => st.refusals.length === 2);
      assert.deepEqual(after.refusals.map((r) => [r.type, r.via, r.by]), [
        ['SelfApprovalRefused', 'decide', 'alice'],
        ['SelfApprovalRefused', 'approve', 'alice'],
      ]);
      assert.equal(after.approvalsNeeded, 1);
      assert.equal(after.lastError?.type, 'SelfApprovalRefused');
      const refusedEntries = (await run.evidence()).entries.filter((e) => e.event === 'RequestRefused');
      assert.equal(refusedEntries.length, 2, 'both refused attempts are in the evidence');
      await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      assert.equal((await run.result()).state, 'Succeeded');
      await keepHistory('lean-self-approval-refused', run);
    });
  });

  it('a repeated decision id counts once; reusing it for another decision is refused', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('transfer');
      const s = await waitForState(run, 'AwaitingApproval');
      const d = decision(bob, s.actionHash, { decisionId: 'dec-fixed' });
      await run.signalDecision('approve', d);
      await run.signalDecision('approve', d);
      const outcome = await run.decide({ kind: 'approve', ...d });
      assert.equal(outcome.approvalsNeeded, 1, 'three deliveries of one decision count once');
      const approvals = (await run.evidence()).entries.filter((e) => e.event === 'ApprovalRecorded');
      assert.equal(approvals.length, 1, 'and are recorded once');
      await assert.rejects(
        run.decide({ kind: 'approve', ...decision(carol, s.actionHash, { decisionId: 'dec-fixed' }) }),
        (e) => failureType(e) === 'DecisionConflict',
      );
      await run.cancel({ requestedBy: alice, reason: 'test done' });
      assert.equal((await run.result()).state, 'Cancelled');
    });
  });

  it('a decision for another action hash, or by an ineligible person, is refused', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write');
      const s = await waitForState(run, 'AwaitingApproval');
      const otherHash = hashAction({ runtime: 'echo', target: 'test/thing', operation: 'write', input: { n: 2 } });
      await assert.rejects(run.decide({ kind: 'approve', ...decision(bob, otherHash) }), (e) => failureType(e) === 'ActionHashMismatch');
      await assert.rejects(run.decide({ kind: 'approve', ...decision(mallory, s.actionHash) }), (e) => failureType(e) === 'ApproverNotEligible');
      // A malformed update is refused by the validator before it reaches history.
      await assert.rejects(run.handle.executeUpdate('decide', { args: [{ kind: 'approve', decisionId: 'x' }] }), (e) => failureType(e) === 'InvalidMessage');
      const st = await run.status();
      assert.equal(st.approvalsNeeded, 1);
      assert.deepEqual(st.refusals.map((r) => r.type), ['ActionHashMismatch', 'ApproverNotEligible']);
      await run.cancel({ requestedBy: alice, reason: 'test done' });
      await run.result();
    });
  });

  it('reject ends the run and nothing is dispatched', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write');
      const s = await waitForState(run, 'AwaitingApproval');
      await assert.rejects(run.decide({ kind: 'reject', ...decision(bob, s.actionHash) }), /rationale/, 'reject needs a rationale');
      await run.signalDecision('reject', decision(bob, s.actionHash, { rationale: 'wrong target' }));
      const result = await run.result();
      assert.equal(result.state, 'Rejected');
      assert.equal((await h.ledger.counts()).calls, 0);
      const rejected = (await run.evidence()).entries.find((e) => e.event === 'Rejected');
      assert.equal(rejected?.summary, 'wrong target');
      await keepHistory('lean-rejected', run);
    });
  });

  it('request-changes returns the run to the requester; amending voids approvals and needs new ones', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('transfer', { input: { amount: 900 } });
      const s = await waitForState(run, 'AwaitingApproval');
      await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      await run.decide({ kind: 'requestChanges', ...decision(dave, s.actionHash, { rationale: 'split it in two' }) });
      await waitForState(run, 'ChangesRequested');
      const newAction = { runtime: 'echo', target: 'test/thing', operation: 'transfer', input: { amount: 450 } };
      await assert.rejects(
        run.amend({ amendmentId: 'am-0', amendedBy: bob, action: newAction, reason: 'I know better' }),
        (e) => failureType(e) === 'AmendNotAllowed',
      );
      const amended = await run.amend({ amendmentId: 'am-1', amendedBy: alice, action: newAction, reason: 'split as asked' });
      assert.equal(amended.actionHash, hashAction(newAction));
      const waiting = await waitForState(run, 'AwaitingApproval');
      assert.equal(waiting.approvalsNeeded, 2, 'the approval for the old action is void');
      assert.deepEqual(waiting.approvals, []);
      await assert.rejects(run.decide({ kind: 'approve', ...decision(bob, s.actionHash) }), (e) => failureType(e) === 'ActionHashMismatch');
      await run.decide({ kind: 'approve', ...decision(bob, amended.actionHash) });
      await run.decide({ kind: 'approve', ...decision(carol, amended.actionHash) });
      const result = await run.result();
      assert.equal(result.state, 'Succeeded');
      assert.deepEqual(result.output, { echoed: { amount: 450 }, firstApplication: true });
      const events = (await run.evidence()).entries.map((e) => e.event);
      assert.ok(events.indexOf('ActionAmended') > events.indexOf('ChangesRequested'));
      await keepHistory('lean-request-changes-amended', run);
    });
  });
});
