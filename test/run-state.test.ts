/**
 * The rules of one governed run without a server: quorum and cooling-off, escalation, rejection,
 * cancel, change requests and amendments, deadlines, the evidence sink's receipts, refusal
 * bookkeeping, and the snapshot a run continues as new from. Pure: time is passed in.
 */
import * as assert from 'node:assert/strict';
import type { PolicyDecision } from '../policies/evaluate';
import type { PolicySnapshot } from '../policies/schema';
import { FailureType } from '../workflows/failures';
import { hashAction } from '../workflows/hashing';
import { continuedInputSchema } from '../workflows/run/snapshot';
import { GovernedRunState, MAX_REFUSAL_ENTRIES } from '../workflows/run/state';
import { QuotaLease } from '../workflows/quota/lease';
import { type Decision, type DecisionKind, type GovernedRunInput, RunState } from '../workflows/types';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms);
const iso = (ms: number) => at(ms).toISOString();

const INPUT: GovernedRunInput = {
  workspaceId: 'ws1',
  correlationId: 'c1',
  requestedBy: { id: 'alice', roles: ['dev'] },
  action: { runtime: 'echo', target: 'crm/contacts', operation: 'write', input: { n: 1 } },
  idempotencyKey: 'k1',
  reason: 'unit test',
};

function decision(over: Partial<PolicyDecision> = {}): PolicyDecision {
  return {
    effect: 'Allow',
    tier: 'HumanApprove',
    reasons: ['rule r1'],
    matchedRules: ['r1'],
    policyHash: 'p'.repeat(64),
    quorum: 1,
    eligibleRoles: ['ops'],
    eligibleUsers: [],
    requiredRoles: [],
    coolingOffMs: 0,
    freshnessMs: 0,
    signed: false,
    expiresAfterMs: 3_600_000,
    escalation: [],
    vetoWindowMs: 60_000,
    manualExpiresAfterMs: 7_200_000,
    operatorRoles: ['sre'],
    incompatibleDuties: [],
    approverKeys: {},
    approverRoles: {},
    ...over,
  };
}

/** A run decided by `policy`, in `state`; `bounded` runs (after the hostile-input round) have a first execution id. */
function runIn(state: RunState, over: Partial<PolicyDecision> = {}, bounded = true): GovernedRunState {
  const run = new GovernedRunState(INPUT, 'ws1/run-1', at(0), bounded ? 'exec-1' : undefined);
  run.recordRequested(at(0));
  run.applyPolicy(decision(over), at(0));
  if (state !== RunState.Evaluating) run.transition(state, at(0), `entered ${state}`);
  return run;
}

let ids = 0;
function decide(run: GovernedRunState, kind: DecisionKind, approver: string, roles: string[], now: Date, over: Partial<Decision> = {}) {
  return run.applyDecision(kind, { decisionId: `d${++ids}`, approver: { id: approver, roles }, actionHash: run.actionHash, rationale: 'because', ...over }, kind, now);
}
// Read through a function: an assertion on the getter must not narrow later reads of it.
const cancelOf = (run: GovernedRunState) => run.cancel;
const manualOf = (run: GovernedRunState) => run.manual;
/** As JSON carries it: undefined fields dropped. */
const plain = (v: unknown) => JSON.parse(JSON.stringify(v));
const events = (run: GovernedRunState, name: string) => run.chain.entries.filter((e) => e.event === name);

describe('run state', function () {
  describe('approvals', function () {
    it('meets the quorum with distinct eligible approvers, one approval each', function () {
      const run = runIn(RunState.AwaitingApproval, { quorum: 2 });
      assert.equal(run.approvalsNeeded(at(1)), 2);
      assert.deepEqual(decide(run, 'approve', 'bob', ['ops'], at(1)), { ok: true, kind: 'approve', counted: true });
      assert.equal(run.approvalsNeeded(at(1)), 1);
      assert.equal(run.quorumMetAt(at(1)), false);
      decide(run, 'approve', 'carol', ['ops'], at(2));
      assert.equal(run.approvalsNeeded(at(2)), 0);
      assert.equal(run.quorumMetAt(at(2)), true);
      assert.deepEqual(run.status(at(2)).approvals.map((a) => a.approverId), ['bob', 'carol']);
    });

    it('does not count a second approval by the same approver (another decision id)', function () {
      const run = runIn(RunState.AwaitingApproval, { quorum: 2 });
      decide(run, 'approve', 'bob', ['ops'], at(1));
      const again = decide(run, 'approve', 'bob', ['ops'], at(2));
      assert.deepEqual(again, { ok: true, kind: 'approve', counted: false });
      assert.equal(run.approvalsNeeded(at(2)), 1);
      assert.equal(run.quorumMetAt(at(2)), false);
      assert.equal(run.repeatedApprovals, 1);
    });

    it('refuses self-approval by the requester, records it, and counts nothing', function () {
      const run = runIn(RunState.AwaitingApproval);
      const v = decide(run, 'approve', 'alice', ['ops'], at(1));
      assert.equal(v.ok, false);
      assert.equal(!v.ok && v.type, FailureType.SelfApprovalRefused);
      assert.equal(run.approvalsNeeded(at(1)), 1);
      const s = run.status(at(1));
      assert.equal(s.refusals.length, 1);
      assert.equal(s.refusals[0].type, FailureType.SelfApprovalRefused);
      assert.equal(s.lastError?.type, FailureType.SelfApprovalRefused);
      assert.equal(events(run, 'RequestRefused').length, 1);
    });

    it('refuses an approver without an eligible role, and one from another workspace', function () {
      const run = runIn(RunState.AwaitingApproval);
      const v = decide(run, 'approve', 'bob', ['dev'], at(1));
      assert.equal(!v.ok && v.type, FailureType.ApproverNotEligible);
      const w = run.applyDecision('approve', { decisionId: 'dx', approver: { id: 'eve', roles: ['ops'], workspaceId: 'ws2' }, actionHash: run.actionHash }, 'approve', at(1));
      assert.equal(!w.ok && w.type, FailureType.WorkspaceMismatch);
      assert.equal(run.approvalsNeeded(at(1)), 1);
    });

    it('counts an approval only from the end of the cooling-off period, measured from the round start', function () {
      const run = runIn(RunState.AwaitingApproval, { coolingOffMs: 60_000 });
      decide(run, 'approve', 'bob', ['ops'], at(10_000));
      assert.equal(run.quorumMetAt(at(59_999)), false);
      assert.equal(run.approvalsNeeded(at(59_999)), 1);
      assert.equal(run.book.nextCountsFrom(at(10_000)), iso(60_000));
      assert.equal(run.quorumMetAt(at(60_000)), true);
    });

    it('an approval given after the cooling-off ended counts at once', function () {
      const run = runIn(RunState.AwaitingApproval, { coolingOffMs: 60_000 });
      decide(run, 'approve', 'bob', ['ops'], at(90_000));
      assert.equal(run.quorumMetAt(at(90_000)), true);
    });

    it('needs every required specialist role among the counted approvers', function () {
      const run = runIn(RunState.AwaitingApproval, { quorum: 1, eligibleRoles: ['ops', 'legal'], requiredRoles: ['legal'] });
      decide(run, 'approve', 'bob', ['ops'], at(1));
      assert.equal(run.quorumMetAt(at(1)), false);
      assert.deepEqual(run.missingRoles(at(1)), ['legal']);
      decide(run, 'approve', 'lena', ['legal'], at(2));
      assert.equal(run.quorumMetAt(at(2)), true);
    });

    it('voids approvals older than the freshness window and records it', function () {
      const run = runIn(RunState.AwaitingApproval, { freshnessMs: 10_000 });
      decide(run, 'approve', 'bob', ['ops'], at(1_000));
      assert.equal(run.voidStaleApprovals(at(5_000)), false);
      assert.equal(run.voidStaleApprovals(at(20_000)), true);
      assert.equal(run.quorumMetAt(at(20_000)), false);
      assert.equal(events(run, 'ApprovalsVoided').length, 1);
    });

    it('refuses a decision that names another action hash', function () {
      const run = runIn(RunState.AwaitingApproval);
      const v = decide(run, 'approve', 'bob', ['ops'], at(1), { actionHash: 'f'.repeat(64) });
      assert.equal(!v.ok && v.type, FailureType.ActionHashMismatch);
    });
  });

  describe('escalation', function () {
    const escalation = [
      { afterMs: 1_000, addRoles: ['ops', 'lead'] },
      { afterMs: 2_000, addRoles: ['lead', 'cto'] },
    ];

    it('sets the round deadlines from its start: expiry and the first escalation step', function () {
      const run = runIn(RunState.AwaitingApproval, { escalation });
      run.openApprovalRound();
      assert.deepEqual(run.deadlines, { expiresAt: iso(3_600_000), escalatesAt: iso(1_000) });
      assert.equal(run.escalationDue(at(999)), false);
      assert.equal(run.escalationDue(at(1_000)), true);
    });

    it('adds each role once, moves to the next step, and records each step', function () {
      const run = runIn(RunState.AwaitingApproval, { escalation });
      run.openApprovalRound();
      assert.deepEqual(run.escalate(at(1_000)).addRoles, ['ops', 'lead']);
      assert.deepEqual(run.eligibleRoles, ['ops', 'lead']);
      assert.equal(run.deadlines.escalatesAt, iso(2_000));
      assert.equal(run.deadlines.expiresAt, iso(3_600_000));
      run.escalate(at(2_000));
      assert.deepEqual(run.eligibleRoles, ['ops', 'lead', 'cto']);
      assert.equal(run.deadlines.escalatesAt, undefined);
      assert.equal(run.escalationDue(at(10_000)), false);
      assert.deepEqual(events(run, 'Escalated').map((e) => e.data?.step), [1, 2]);
      assert.equal(run.status(at(2_000)).escalated, true);
    });

    it('lets an added role approve only after the step', function () {
      const run = runIn(RunState.AwaitingApproval, { escalation });
      run.openApprovalRound();
      const before = decide(run, 'approve', 'lee', ['lead'], at(500));
      assert.equal(!before.ok && before.type, FailureType.ApproverNotEligible);
      run.escalate(at(1_000));
      assert.deepEqual(decide(run, 'approve', 'lee', ['lead'], at(1_001)), { ok: true, kind: 'approve', counted: true });
    });

    it('resumes at the step it reached (a continued run does not repeat steps)', function () {
      const run = runIn(RunState.AwaitingApproval, { escalation });
      run.openApprovalRound();
      run.escalate(at(1_000));
      run.openApprovalRound();
      assert.equal(run.deadlines.escalatesAt, iso(2_000));
    });
  });

  describe('rejection, cancel, change requests', function () {
    it('records who rejected; a reject is not taken before policy decided', function () {
      const early = runIn(RunState.Evaluating);
      const v = decide(early, 'reject', 'bob', ['ops'], at(1));
      assert.equal(!v.ok && v.type, FailureType.DecisionNotExpected);
      assert.equal(early.rejectedBy, undefined);
      const run = runIn(RunState.AwaitingApproval);
      assert.equal(decide(run, 'reject', 'bob', ['ops'], at(1)).ok, true);
      assert.equal(run.rejectedBy, 'bob');
      assert.equal(events(run, 'Rejected').length, 1);
    });

    it('an approve in the veto window releases the run; requestChanges is not taken there', function () {
      const run = runIn(RunState.VetoWindow, { tier: 'Assisted' });
      const v = decide(run, 'requestChanges', 'bob', ['ops'], at(1));
      assert.equal(!v.ok && v.type, FailureType.DecisionNotExpected);
      assert.equal(run.released, false);
      decide(run, 'approve', 'bob', ['ops'], at(2));
      assert.equal(run.released, true);
    });

    it('takes a cancel from the requester or an operator only, and keeps the first', function () {
      const run = runIn(RunState.AwaitingApproval);
      const v = run.applyCancel({ requestedBy: { id: 'mallory', roles: ['dev'] }, reason: 'no' }, at(1));
      assert.equal(!v.ok && v.type, FailureType.CancelNotAllowed);
      assert.equal(run.cancel, undefined);
      assert.equal(run.applyCancel({ requestedBy: { id: 'sam', roles: ['sre'] }, reason: 'first' }, at(2)).ok, true);
      assert.equal(run.applyCancel({ requestedBy: { id: 'alice', roles: [] }, reason: 'second' }, at(3)).ok, true);
      assert.equal(cancelOf(run)?.reason, 'first');
      assert.equal(events(run, 'CancelRequested').length, 1);
    });

    it('a change request waits for the requester’s amendment, which voids approvals and starts a new round', function () {
      const run = runIn(RunState.AwaitingApproval, { quorum: 2 });
      decide(run, 'approve', 'bob', ['ops'], at(1));
      decide(run, 'requestChanges', 'carol', ['ops'], at(2));
      assert.equal(run.changesRequestedBy, 'carol');
      run.transition(RunState.ChangesRequested, at(3), 'changes requested');
      const action = { ...INPUT.action, input: { n: 2 } };
      const other = run.applyAmendment({ amendmentId: 'a1', amendedBy: { id: 'bob', roles: ['ops'] }, action, reason: 'fix' }, at(4));
      assert.equal(!other.ok && other.type, FailureType.AmendNotAllowed);
      const moved = run.applyAmendment({ amendmentId: 'a2', amendedBy: { id: 'alice', roles: [] }, action: { ...action, runtime: 'kestra' }, reason: 'fix' }, at(4));
      assert.equal(!moved.ok && moved.type, FailureType.AmendNotAllowed);
      assert.equal(run.amended, false);
      assert.equal(run.applyAmendment({ amendmentId: 'a3', amendedBy: { id: 'alice', roles: [] }, action, reason: 'fix' }, at(5)).ok, true);
      assert.equal(run.amended, true);
      assert.equal(run.actionHash, hashAction(action));
      assert.equal(run.changesRequestedBy, undefined);
      assert.equal(run.book.approvals.length, 0);
      assert.equal(run.roundStartedAt.toISOString(), iso(5));
      // Deciding the amended action by policy consumes the amendment.
      run.applyPolicy(decision({ quorum: 2 }), at(6));
      assert.equal(run.amended, false);
    });

    it('refuses an amendment when no changes were requested', function () {
      const run = runIn(RunState.AwaitingApproval);
      const v = run.applyAmendment({ amendmentId: 'a1', amendedBy: { id: 'alice', roles: [] }, action: INPUT.action, reason: 'x' }, at(1));
      assert.equal(!v.ok && v.type, FailureType.AmendNotAllowed);
      assert.equal(run.amended, false);
    });

    it('takes a manual completion only while awaiting one, for the run’s action hash', function () {
      const run = runIn(RunState.AwaitingManualCompletion, { tier: 'ManualOnly' });
      const m = { completionId: 'm1', completedBy: { id: 'bob', roles: ['ops'] }, completedAt: iso(1), evidenceRef: 'ticket-1', actionHash: run.actionHash };
      const wrong = run.applyManualCompletion({ ...m, actionHash: 'f'.repeat(64) }, at(1));
      assert.equal(!wrong.ok && wrong.type, FailureType.ManualCompletionRefused);
      assert.equal(run.manual, undefined);
      assert.equal(run.applyManualCompletion(m, at(2)).ok, true);
      assert.equal(manualOf(run)?.evidenceRef, 'ticket-1');
    });
  });

  describe('deadlines and dispatch', function () {
    it('a veto window and a manual window each set their one deadline; ending the run clears them', function () {
      const run = runIn(RunState.Evaluating, { tier: 'Assisted' });
      run.openVetoWindow(at(1_000));
      assert.deepEqual(run.deadlines, { vetoEndsAt: iso(61_000) });
      run.openManualWindow(at(2_000));
      assert.deepEqual(run.deadlines, { expiresAt: iso(7_202_000) });
      run.end(RunState.Expired, at(3_000), 'expired');
      assert.deepEqual(run.deadlines, {});
      assert.equal(run.state, RunState.Expired);
      assert.deepEqual(run.status(at(3_000)).deadlines, {});
    });

    it('quota: asking clears deadlines, a queue notice shows when a slot frees', function () {
      const run = runIn(RunState.AwaitingApproval);
      run.openApprovalRound();
      const lease = new QuotaLease('quota/ws1/echo', 'lease-1', { concurrentDispatches: 1 });
      run.askForQuota(lease);
      assert.equal(run.quota, lease);
      assert.deepEqual(run.deadlines, {});
      run.quotaQueued(iso(5_000));
      assert.deepEqual(run.deadlines, { quotaFreesAt: iso(5_000) });
      run.quotaQueued(undefined);
      assert.deepEqual(run.deadlines, {});
    });

    it('a held dispatch judges decisions in the state it was decided in, until the next transition', function () {
      const run = runIn(RunState.VetoWindow, { tier: 'Assisted' });
      run.dispatchDecided();
      run.transition(RunState.Dispatching, at(1), 'dispatching');
      assert.equal(run.dispatchPending, false);
      const refused = decide(run, 'reject', 'bob', ['ops'], at(2));
      assert.equal(!refused.ok && refused.type, FailureType.DecisionNotExpected);
      run.holdDecisionsIn(RunState.VetoWindow);
      assert.equal(decide(run, 'reject', 'bob', ['ops'], at(3)).ok, true);
      assert.equal(run.rejectedBy, 'bob');
      run.endHold();
      assert.equal(run.heldFrom, undefined);
    });

    it('counts wakeups, and records the runtime’s output and a failure', function () {
      const run = runIn(RunState.AwaitingApproval);
      run.wake();
      run.wake();
      assert.equal(run.wakeups, 2);
      run.recordOutput({ ok: 1 });
      run.noteFailure({ type: FailureType.RuntimeRejected, message: 'no' });
      const s = run.status(at(1));
      assert.deepEqual(s.output, { ok: 1 });
      assert.equal(s.lastError?.type, FailureType.RuntimeRejected);
    });

    it('queues one search-attribute upsert and one details rebuild until taken', function () {
      const run = runIn(RunState.AwaitingApproval);
      assert.equal(run.takePublish(), false);
      run.queuePublish();
      run.queuePublish();
      assert.equal(run.takePublish(), true);
      assert.equal(run.takePublish(), false);
      assert.equal(run.queueDetails(), true);
      assert.equal(run.queueDetails(), false);
      run.detailsShown();
      assert.equal(run.queueDetails(), true);
    });
  });

  describe('evidence receipts', function () {
    const receiptFor = (run: GovernedRunState, count: number, head = run.chain.entries[count - 1].hash) =>
      ({ sink: 'test', count, head, leafIndex: count - 1, treeSize: count, rootHash: 'r' });

    it('takes a receipt for our chain: the acknowledged entries are no longer unpersisted', function () {
      const run = runIn(RunState.AwaitingApproval);
      const n = run.chain.entries.length;
      assert.deepEqual(run.acceptReceipt(receiptFor(run, n - 1)), { ok: true });
      assert.equal(run.unpersisted.length, 1);
      assert.deepEqual(run.acceptReceipt(receiptFor(run, n)), { ok: true });
      assert.equal(run.unpersisted.length, 0);
      assert.equal(run.status(at(1)).evidenceStored?.count, n);
    });

    it('a receipt that is not one proves nothing was stored: EvidenceUnavailable, the run may retry', function () {
      const run = runIn(RunState.AwaitingApproval);
      for (const bad of [undefined, { count: 1.5, head: 'x' }, { count: 1 }] as never[]) {
        const v = run.acceptReceipt(bad);
        assert.equal(!v.ok && v.type, FailureType.EvidenceUnavailable);
      }
      assert.equal(run.evidenceRefused, false);
      assert.equal(run.evidenceStored, undefined);
    });

    it('a receipt for another chain (other head, count going back, count past ours) is a fork: EvidenceConflict', function () {
      const cases: [string, (run: GovernedRunState) => ReturnType<GovernedRunState['acceptReceipt']>][] = [
        ['other head', (run) => run.acceptReceipt(receiptFor(run, 1, 'f'.repeat(64)))],
        ['past ours', (run) => run.acceptReceipt({ ...receiptFor(run, 1), count: run.chain.entries.length + 1 })],
        ['going back', (run) => (run.acceptReceipt(receiptFor(run, 2)), run.acceptReceipt(receiptFor(run, 1)))],
      ];
      for (const [name, act] of cases) {
        const run = runIn(RunState.AwaitingApproval);
        const v = act(run);
        assert.equal(!v.ok && v.type, FailureType.EvidenceConflict, name);
        assert.equal(run.evidenceRefused, true, name);
      }
    });

    it('after the sink says the execution moved, the whole chain is written again', function () {
      const run = runIn(RunState.AwaitingApproval);
      run.acceptReceipt(receiptFor(run, run.chain.entries.length));
      run.forgetReceipt();
      assert.equal(run.unpersisted.length, run.chain.entries.length);
    });
  });

  describe('refusal bookkeeping', function () {
    it('an identical repeat bumps the last record’s count instead of adding one', function () {
      const run = runIn(RunState.AwaitingApproval);
      for (let i = 0; i < 3; i++) run.refuse('approve', 'x', FailureType.InvalidMessage, 'bad', at(i));
      const s = run.status(at(3));
      assert.equal(s.refusals.length, 1);
      assert.equal(s.refusals[0].count, 3);
      assert.equal(s.refusalsTotal, 3);
    });

    it('shows the last 20 refusals, counts all, and clips long texts', function () {
      const run = runIn(RunState.AwaitingApproval);
      for (let i = 0; i < 25; i++) run.refuse('approve', `u${i}`, FailureType.InvalidMessage, `bad ${i}`, at(i));
      run.refuse('approve', 'long', FailureType.InvalidMessage, 'y'.repeat(5_000), at(30));
      const s = run.status(at(31));
      assert.equal(s.refusals.length, 20);
      assert.equal(s.refusalsTotal, 26);
      assert.equal(s.refusals[0].by, 'u6');
      assert.equal(s.refusals[19].message.length, 1000);
    });

    it('past MAX_REFUSAL_ENTRIES refusals are counted, then summarised in one entry at the next transition', function () {
      const run = runIn(RunState.AwaitingApproval);
      const before = run.chain.entries.length;
      for (let i = 0; i < MAX_REFUSAL_ENTRIES + 50; i++) run.refuse('approve', `u${i}`, FailureType.InvalidMessage, `bad ${i}`, at(i));
      assert.equal(run.chain.entries.length, before + MAX_REFUSAL_ENTRIES);
      run.end(RunState.Expired, at(1_000), 'expired');
      const summary = events(run, 'RequestsRefusedSummary');
      assert.equal(summary.length, 1);
      assert.equal(summary[0].data?.total, 50);
      assert.equal(run.refusalsTotal, MAX_REFUSAL_ENTRIES + 50);
    });

    it('runs from before the hostile-input round record every refusal as before', function () {
      const run = runIn(RunState.AwaitingApproval, {}, false);
      const before = run.chain.entries.length;
      for (let i = 0; i < MAX_REFUSAL_ENTRIES + 5; i++) run.refuse('approve', `u${i}`, FailureType.InvalidMessage, `bad ${i}`, at(i));
      assert.equal(run.chain.entries.length, before + MAX_REFUSAL_ENTRIES + 5);
    });
  });

  describe('continue-as-new snapshot', function () {
    const policySnapshot = { policyHash: 'p'.repeat(64), workspaceId: 'ws1', rules: [] } as unknown as PolicySnapshot;

    it('round-trips the whole state (through JSON and the continued-input schema) exactly', function () {
      const run = runIn(RunState.AwaitingApproval, { quorum: 3, coolingOffMs: 5_000, escalation: [{ afterMs: 1_000, addRoles: ['lead'] }] });
      run.openApprovalRound();
      decide(run, 'approve', 'bob', ['ops'], at(10));
      run.escalate(at(1_000));
      decide(run, 'approve', 'lee', ['lead'], at(1_100));
      decide(run, 'approve', 'alice', ['ops'], at(1_200));
      for (let i = 0; i < MAX_REFUSAL_ENTRIES + 3; i++) run.refuse('cancelRun', `u${i}`, FailureType.CancelNotAllowed, `no ${i}`, at(2_000 + i));
      run.applyCancel({ requestedBy: { id: 'sam', roles: ['sre'] }, reason: 'stop' }, at(3_000));
      run.acceptReceipt({ sink: 'test', count: 2, head: run.chain.entries[1].hash, leafIndex: 1, treeSize: 2, rootHash: 'r' });
      run.usePolicySnapshot(policySnapshot);

      const carried = run.carry(policySnapshot);
      const parsed = continuedInputSchema().safeParse(JSON.parse(JSON.stringify({ continued: carried })));
      assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues.slice(0, 3)));
      const next = new GovernedRunState(INPUT, 'ws1/run-1', at(4_000), parsed.data.continued.firstExecutionRunId, parsed.data.continued, true);
      const again = next.carry(policySnapshot);
      assert.deepEqual(plain(again), plain({ ...carried, continuations: carried.continuations + 1 }));
      assert.deepEqual(plain(next.status(at(4_000))), plain({ ...run.status(at(4_000)), continuations: 1 }));
      assert.equal(next.lean, true);
      // The carried round goes on: the escalation step is not taken again, quorum still counts.
      next.openApprovalRound();
      assert.equal(next.deadlines.escalatesAt, undefined);
      assert.equal(next.approvalsNeeded(at(6_000)), 1);
      assert.deepEqual(next.eligibleRoles, ['ops', 'lead']);
    });
  });
});
