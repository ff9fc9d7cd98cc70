/**
 * The approval book and the decision rules without a server: one approval per approver, repeated
 * decision ids, cooling-off, freshness, amendments, and the order of the governance checks.
 */
import * as assert from 'node:assert/strict';
import { FailureType } from '../workflows/failures';
import { ApprovalBook, type DecisionContext, type DecisionVerdict, judgeDecision } from '../workflows/run/approvals';
import { type Decision, type DecisionKind, RunState } from '../workflows/types';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms);
const HASH = 'a'.repeat(64);
const OK: DecisionVerdict = { ok: true, kind: 'approve', counted: true };

const d = (decisionId: string, approver: string, over: Partial<Decision> = {}): Decision => ({
  decisionId, approver: { id: approver, roles: ['ops'] }, actionHash: HASH, ...over,
});

const ctx = (over: Partial<DecisionContext> = {}): DecisionContext => ({
  state: RunState.AwaitingApproval,
  workflowId: 'ws1/run-1',
  actionHash: HASH,
  requesterId: 'alice',
  eligibleRoles: ['ops'],
  eligibleUsers: [],
  normalizedIds: true,
  dutyConflict: () => undefined,
  ...over,
});
const typeOf = (v: DecisionVerdict) => (v.ok ? 'ok' : v.type);

describe('approval book', function () {
  it('keeps one approval per approver: a second one is accepted but not counted', function () {
    const book = new ApprovalBook();
    assert.deepEqual(book.settle('approve', d('d1', 'bob'), OK, at(1), at(0)), OK);
    assert.deepEqual(book.settle('approve', d('d2', 'bob'), OK, at(2), at(0)), { ...OK, counted: false });
    assert.deepEqual(book.approvals.map((a) => a.decisionId), ['d1']);
    book.settle('approve', d('d3', 'carol'), OK, at(3), at(0));
    assert.equal(book.counted(at(3)).length, 2);
  });

  it('answers a repeated decision id with its first verdict, and refuses the id reused for other content', function () {
    const book = new ApprovalBook();
    assert.equal(book.replay('approve', d('d1', 'bob')), undefined);
    book.settle('approve', d('d1', 'bob'), OK, at(1), at(0));
    assert.deepEqual(book.replay('approve', d('d1', 'bob')), { ...OK, replayed: true });
    assert.equal(typeOf(book.replay('approve', d('d1', 'carol'))!), FailureType.DecisionConflict);
    assert.equal(typeOf(book.replay('reject', d('d1', 'bob'))!), FailureType.DecisionConflict);
  });

  it('a refused decision id stays refused when repeated', function () {
    const book = new ApprovalBook();
    const refused: DecisionVerdict = { ok: false, type: FailureType.ApproverNotEligible, message: 'no' };
    book.settle('approve', d('d1', 'eve'), refused, at(1), at(0));
    assert.equal(typeOf(book.replay('approve', d('d1', 'eve'))!), FailureType.ApproverNotEligible);
    assert.equal(book.approvals.length, 0);
  });

  it('counts an approval from its cooling-off end, or from when it was given if later', function () {
    const book = new ApprovalBook();
    book.settle('approve', d('d1', 'bob'), OK, at(1_000), at(60_000));
    book.settle('approve', d('d2', 'carol'), OK, at(90_000), at(60_000));
    assert.deepEqual(book.counted(at(59_999)).map((a) => a.approverId), []);
    assert.equal(book.nextCountsFrom(at(0)), at(60_000).toISOString());
    assert.deepEqual(book.counted(at(60_000)).map((a) => a.approverId), ['bob']);
    assert.deepEqual(book.counted(at(90_000)).map((a) => a.approverId), ['bob', 'carol']);
    assert.equal(book.nextCountsFrom(at(90_000)), undefined);
  });

  it('freshness voids approvals given before the cutoff; a repeat of a voided one no longer counts', function () {
    const book = new ApprovalBook();
    book.settle('approve', d('d1', 'bob'), OK, at(1_000), at(0));
    book.settle('approve', d('d2', 'carol'), OK, at(5_000), at(0));
    assert.deepEqual(book.voidGivenBefore(at(3_000)), ['bob']);
    assert.deepEqual(book.approvals.map((a) => a.approverId), ['carol']);
    assert.deepEqual(book.replay('approve', d('d1', 'bob')), { ...OK, counted: false, replayed: true });
  });

  it('an amendment voids every approval, but decision ids stay used', function () {
    const book = new ApprovalBook();
    book.settle('approve', d('d1', 'bob'), OK, at(1), at(0));
    book.settle('approve', d('d2', 'carol'), OK, at(2), at(0));
    assert.equal(book.voidApprovals(), 2);
    assert.equal(book.counted(at(10)).length, 0);
    assert.equal(typeOf(book.replay('approve', d('d1', 'carol'))!), FailureType.DecisionConflict);
  });

  it('round-trips through its plain state (continue-as-new)', function () {
    const book = new ApprovalBook();
    book.settle('approve', d('d1', 'bob'), OK, at(1), at(10));
    book.settle('reject', d('d2', 'carol'), { ok: true, kind: 'reject', counted: true }, at(2), at(0));
    const copy = new ApprovalBook(JSON.parse(JSON.stringify(book.state)));
    assert.deepEqual(copy.state, book.state);
    assert.deepEqual(copy.replay('approve', d('d1', 'bob')), { ...OK, replayed: true });
    assert.equal(copy.settle('approve', d('d3', 'bob'), OK, at(3), at(0)).ok && copy.approvals.length, 1);
  });
});

describe('judgeDecision', function () {
  const judge = (kind: DecisionKind, dec: Decision, over: Partial<DecisionContext> = {}) => typeOf(judgeDecision(ctx(over), kind, dec));

  it('accepts an eligible approver for the run’s action', function () {
    assert.deepEqual(judgeDecision(ctx(), 'approve', d('d1', 'bob')), OK);
  });

  it('takes only the decisions the state waits for', function () {
    assert.equal(judge('approve', d('d1', 'bob'), { state: RunState.Evaluating }), FailureType.DecisionNotExpected);
    assert.equal(judge('approve', d('d1', 'bob'), { state: RunState.Dispatching }), FailureType.DecisionNotExpected);
    assert.equal(judge('requestChanges', d('d1', 'bob'), { state: RunState.VetoWindow }), FailureType.DecisionNotExpected);
    assert.equal(judge('approve', d('d1', 'bob'), { state: RunState.ChangesRequested }), FailureType.DecisionNotExpected);
    assert.equal(judge('reject', d('d1', 'bob'), { state: RunState.ChangesRequested }), 'ok');
  });

  it('refuses a decision about another action hash', function () {
    assert.equal(judge('approve', d('d1', 'bob', { actionHash: 'b'.repeat(64) })), FailureType.ActionHashMismatch);
  });

  it('refuses the requester deciding on their own run, whatever roles they claim', function () {
    assert.equal(judge('approve', d('d1', 'alice')), FailureType.SelfApprovalRefused);
    assert.equal(judge('reject', d('d1', 'alice')), FailureType.SelfApprovalRefused);
  });

  it('refuses an approver with no eligible role; a named eligible user is accepted (ids compared case-insensitively)', function () {
    const outsider = d('d1', 'Dana', { approver: { id: 'Dana', roles: ['dev'] } });
    assert.equal(judge('approve', outsider), FailureType.ApproverNotEligible);
    assert.equal(judge('approve', outsider, { eligibleUsers: ['dana'] }), 'ok');
    assert.equal(judge('approve', outsider, { eligibleUsers: ['dana'], normalizedIds: false }), FailureType.ApproverNotEligible);
  });

  it('refuses a decision that would give the approver incompatible duties', function () {
    assert.equal(judge('approve', d('d1', 'bob'), { dutyConflict: (id) => (id === 'bob' ? 'bob is amender' : undefined) }), FailureType.IncompatibleDuties);
  });

  it('under a signed rule refuses an unsigned decision before anything else about the approver', function () {
    assert.equal(judge('approve', d('d1', 'bob', { approver: { id: 'bob', roles: [] } }), { approverKeys: { bob: '00'.repeat(32) } }), FailureType.SignatureInvalid);
  });
});
