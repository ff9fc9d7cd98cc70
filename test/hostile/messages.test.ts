/**
 * Hostile and sloppy messages against a governed run, on a real dev server (issue: governance that
 * holds under hostile input). Each case is something an attacker who may signal, or a careless
 * integrator, can send; each asserts what a user sees: the run still answers `status`, is still
 * decidable, dispatched nothing that policy did not allow, and recorded the refusal (with the id and
 * action hash the message named, where it could be read).
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import type { EvidenceSink } from '../../activities/evidence/sink';
import { PROJECT_ROOT } from '../../workers/config';
import type { RunHandle } from '../../workers/client';
import { hashAction } from '../../workflows/hashing';
import { decideUpdate } from '../../workflows/run/messages';
import { type SignedKind, signDecision } from '../../workflows/run/signatures';
import type { GovernedAction, Principal, RunStatus } from '../../workflows/types';
import { type Harness, alice, bob, carol, decision, failureType, gatedSink, oscar, uid, waitForState, waitForStatus, withWorker } from '../support/harness';
import { keepHistory } from '../support/histories';
import { testEnv } from '../support/shared';

const HOSTILE_POLICIES = path.join(PROJECT_ROOT, 'test', 'hostile', 'policies');
const KEYS: Record<string, string> = { bob: '11'.repeat(32), alice: '33'.repeat(32), oscar: '44'.repeat(32) };

const opts = (extra: { evidence?: EvidenceSink } = {}) => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir: HOSTILE_POLICIES, ...extra });
const start = (h: Harness, operation: string, input: Record<string, string | number> = { n: 1 }) =>
  h.start(operation, { workspaceId: 'hostile', action: { runtime: 'echo', target: 'hostile/thing', operation, input } });

/** A signal with a payload the client's converter and codec never touched. */
async function rawSignal(client: Client, workflowId: string, signalName: string, metadata: Record<string, string>, data: Buffer): Promise<void> {
  const meta: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(metadata)) meta[k] = Buffer.from(v);
  await client.workflowService.signalWorkflowExecution({
    namespace: 'default',
    workflowExecution: { workflowId },
    signalName,
    input: { payloads: [{ metadata: meta, data }] },
    identity: 'hostile-test',
  });
}

/** A v2 signature by `who` for this run (bound to its first execution). */
function sign(run: RunHandle, st: RunStatus, kind: SignedKind, id: string, who: string, actionHash = st.actionHash) {
  const signedAt = new Date().toISOString();
  const signature = signDecision({ workflowId: run.workflowId, firstExecutionRunId: st.firstExecutionRunId, actionHash, kind, decisionId: id, approverId: who, signedAt }, KEYS[who]);
  return { signature, signedAt };
}

const approveAndSucceed = async (h: Harness, run: RunHandle, approver: Principal = bob) => {
  const st = await run.status();
  await run.decide({ kind: 'approve', ...decision(approver, st.actionHash) });
  assert.equal((await run.result()).state, 'Succeeded', 'still decidable after the attack');
  assert.equal((await h.ledger.counts()).applied, 1, 'dispatched once, after the approval');
};

describe('hostile messages (real server)', function () {
  this.timeout(90_000);

  describe('payloads that do not decode', function () {
    const cases: [string, Record<string, string>, Buffer][] = [
      ['invalid JSON', { encoding: 'json/plain' }, Buffer.from('{"decisionId": "d-1", oops')],
      ['an unknown encoding', { encoding: 'application/x-hostile' }, Buffer.from('whatever')],
      ['no encoding at all', {}, Buffer.from('{}')],
      ['bad ciphertext under this workspace key id', { encoding: 'binary/encrypted', 'encryption-key-id': 'hostile/k1' }, Buffer.alloc(64, 7)],
      ['ciphertext under another workspace key', { encoding: 'binary/encrypted', 'encryption-key-id': 'test/k1' }, Buffer.alloc(64, 9)],
      ['truncated ciphertext', { encoding: 'binary/encrypted', 'encryption-key-id': 'hostile/k1' }, Buffer.alloc(3)],
    ];
    for (const [name, metadata, data] of cases) {
      it(`a signal with ${name} is refused as InvalidMessage; the run answers and is decidable`, async function () {
        await withWorker(opts(), async (h) => {
          const run = await start(h, 'write');
          await waitForState(run, 'AwaitingApproval');
          await rawSignal(h.client, run.workflowId, 'approve', metadata, data);
          const st = await waitForStatus(run, (s) => s.refusals.length > 0);
          assert.equal(st.refusals[0].type, 'InvalidMessage');
          assert.equal(st.refusals[0].via, 'approve');
          assert.equal(st.state, 'AwaitingApproval');
          const ev = await run.evidence();
          assert.ok(ev.entries.some((e) => e.event === 'RequestRefused' && e.data?.type === 'InvalidMessage'), 'recorded in evidence');
          await approveAndSucceed(h, run);
        });
      });
    }

    it('a cancelRun and a manualCompletion that do not decode are refused too; a garbage update is refused before history', async function () {
      await withWorker(opts(), async (h) => {
        const run = await start(h, 'write');
        await waitForState(run, 'AwaitingApproval');
        await rawSignal(h.client, run.workflowId, 'cancelRun', { encoding: 'json/plain' }, Buffer.from('not json'));
        await rawSignal(h.client, run.workflowId, 'manualCompletion', { encoding: 'binary/encrypted', 'encryption-key-id': 'hostile/k9' }, Buffer.alloc(40, 1));
        const st = await waitForStatus(run, (s) => s.refusals.length >= 2);
        assert.deepEqual(st.refusals.map((r) => [r.via, r.type]), [['cancelRun', 'InvalidMessage'], ['manualCompletion', 'InvalidMessage']]);
        await assert.rejects(run.decide('not an object' as never), (e) => failureType(e) === 'InvalidMessage' || /InvalidMessage|invalid/i.test(String(e)));
        await approveAndSucceed(h, run);
      });
    });
  });

  describe('bounded: floods and oversized messages', function () {
    it('three 1.8 MB bad approvals leave status small and readable, and a valid approval still succeeds', async function () {
      await withWorker(opts(), async (h) => {
        const run = await start(h, 'write');
        const s = await waitForState(run, 'AwaitingApproval');
        const hugeKey = 'k'.repeat(1_800_000);
        for (let i = 0; i < 3; i++) await run.handle.signal('approve', { ...decision(bob, s.actionHash), [`${hugeKey}${i}`]: 1 });
        const st = await waitForStatus(run, (x) => (x.refusalsTotal ?? 0) >= 3);
        assert.ok(JSON.stringify(st).length < 50_000, `status is ${JSON.stringify(st).length} characters`);
        assert.ok(st.refusals.every((r) => r.type === 'InvalidMessage' && r.message.length <= 1000));
        const ev = await run.evidence();
        assert.ok(JSON.stringify(ev).length < 100_000, 'evidence stays small');
        await approveAndSucceed(h, run);
      });
    });

    it('a flood of 300 bad decisions: refusals coalesced and counted, evidence bounded, the run still decidable', async function () {
      await withWorker(opts(), async (h) => {
        const run = await start(h, 'write');
        const s = await waitForState(run, 'AwaitingApproval');
        for (let i = 0; i < 300; i++) await run.handle.signal('approve', { ...decision(bob, s.actionHash), actionHash: 'f'.repeat(64), decisionId: `flood-${i % 2}` });
        const st = await waitForStatus(run, (x) => (x.refusalsTotal ?? 0) >= 300, 60_000);
        assert.equal(st.refusalsTotal, 300);
        assert.ok(st.refusals.length <= 20);
        const ev = await run.evidence();
        assert.ok(ev.count <= 110, `evidence holds ${ev.count} entries`);
        await approveAndSucceed(h, run);
        const after = await run.evidence();
        const summary = after.entries.find((e) => e.event === 'RequestsRefusedSummary');
        assert.ok(summary, 'the counted refusals are summarised in evidence at the next transition');
        assert.equal(summary.data?.total, 200);
      });
    });

    it('an oversized invalid start input fails InvalidRunInput at once instead of hanging', async function () {
      await withWorker(opts(), async (h) => {
        // Sent with the plain Temporal client, as the temporal CLI would: the Portarium client refuses it first.
        const workflowId = `hostile:${uid('big')}`;
        const handle = await h.client.workflow.start('governedRun', {
          taskQueue: h.taskQueue,
          workflowId,
          args: [{ workspaceId: 'hostile', correlationId: 'c', requestedBy: alice, action: { runtime: 'echo', target: 't', operation: 'write', input: {} }, idempotencyKey: 'k', reason: 'r'.repeat(1_800_000), [`x${'y'.repeat(1000)}`]: 1 }],
        });
        await assert.rejects(handle.result(), (e) => failureType(e) === 'InvalidRunInput');
      });
    });
  });

  describe('ids and lookups', function () {
    it('an approver named constructor under a signed rule is refused (no inherited roles or keys), and the run goes on', async function () {
      await withWorker(opts(), async (h) => {
        const run = await start(h, 'wire');
        const s = await waitForState(run, 'AwaitingApproval');
        for (const id of ['constructor', 'toString', 'hasOwnProperty']) {
          await run.handle.signal('approve', { ...decision({ id, roles: ['approver'] }, s.actionHash), ...sign(run, s, 'approve', uid('d'), 'bob') });
        }
        const st = await waitForStatus(run, (x) => x.refusals.length >= 3);
        assert.deepEqual(st.refusals.map((r) => r.type), ['SignatureInvalid', 'SignatureInvalid', 'SignatureInvalid']);
        const d = { ...decision(bob, s.actionHash) };
        await run.decide({ kind: 'approve', ...d, ...sign(run, s, 'approve', d.decisionId, 'bob') });
        assert.equal((await run.result()).state, 'Succeeded');
      });
    });

    it('a replayed decision id with a bad signature is refused as SignatureInvalid before the replay book is read', async function () {
      await withWorker(opts(), async (h) => {
        const run = await start(h, 'wire');
        const s = await waitForState(run, 'AwaitingApproval');
        const d = decision(bob, s.actionHash, { rationale: 'no' });
        await run.decide({ kind: 'requestChanges', ...d, ...sign(run, s, 'requestChanges', d.decisionId, 'bob') });
        await waitForState(run, 'ChangesRequested');
        // Same id, other content, forged signature: without a valid signature nothing about this id is looked up.
        await assert.rejects(run.decide({ kind: 'reject', ...d, signature: 'ab'.repeat(64), signedAt: new Date().toISOString() }), (e) => failureType(e) === 'SignatureInvalid');
        const st = await run.status();
        assert.equal(st.refusals.at(-1)?.decisionId, d.decisionId, 'the refusal names the decision id');
        assert.equal(st.refusals.at(-1)?.actionHash, s.actionHash, 'and the action hash it named');
        await run.handle.signal('cancelRun', { requestedBy: alice, reason: 'done', cancelId: 'c-1', ...sign(run, s, 'cancelRun', 'c-1', 'alice') });
        assert.equal((await run.result()).state, 'Cancelled');
      });
    });

    it('ids compare case-insensitively: Alice may not approve alice\'s run', async function () {
      await withWorker(opts(), async (h) => {
        const run = await start(h, 'write');
        const s = await waitForState(run, 'AwaitingApproval');
        await assert.rejects(run.decide({ kind: 'approve', ...decision({ id: 'Alice', roles: ['approver'] }, s.actionHash) }), (e) => failureType(e) === 'SelfApprovalRefused');
        await run.decide({ kind: 'approve', ...decision({ id: 'BOB', roles: ['approver'] }, s.actionHash) });
        const st = await run.status();
        assert.equal(st.approvals[0]?.approverId, 'bob', 'stored normalised');
        assert.equal((await run.result()).state, 'Succeeded');
      });
    });
  });

  describe('signed mode means signed everywhere', function () {
    it('an unsigned cancelRun claiming the requester is refused; a signed one by the requester cancels', async function () {
      await withWorker(opts(), async (h) => {
        const run = await start(h, 'wire');
        const s = await waitForState(run, 'AwaitingApproval');
        await run.cancel({ requestedBy: alice, reason: 'forged' });
        await run.handle.signal('cancelRun', { requestedBy: oscar, reason: 'forged operator', cancelId: 'c-x', ...sign(run, s, 'cancelRun', 'c-x', 'bob') });
        const st = await waitForStatus(run, (x) => x.refusals.length >= 2);
        assert.deepEqual(st.refusals.map((r) => r.type), ['SignatureInvalid', 'SignatureInvalid']);
        assert.equal(st.state, 'AwaitingApproval');
        await run.handle.signal('cancelRun', { requestedBy: oscar, reason: 'signed operator', cancelId: 'c-2', ...sign(run, s, 'cancelRun', 'c-2', 'oscar') });
        assert.equal((await run.result()).state, 'Cancelled');
        assert.equal((await h.ledger.counts()).applied, 0);
        await keepHistory('lean-signed-v2-cancelled', run);
      });
    });

    it('amendAction and manualCompletion need signatures under a signed rule; roles come from policy', async function () {
      await withWorker(opts(), async (h) => {
        const run = await start(h, 'wire');
        const s = await waitForState(run, 'AwaitingApproval');
        const rc = decision(bob, s.actionHash, { rationale: 'smaller please' });
        await run.decide({ kind: 'requestChanges', ...rc, ...sign(run, s, 'requestChanges', rc.decisionId, 'bob') });
        await waitForState(run, 'ChangesRequested');
        const action: GovernedAction = { runtime: 'echo', target: 'hostile/thing', operation: 'wire', input: { n: 2 } };
        await assert.rejects(run.amend({ amendmentId: 'a-1', amendedBy: alice, action, reason: 'unsigned' }), (e) => failureType(e) === 'SignatureInvalid');
        // Signed over another action than the one sent: refused too.
        const other = sign(run, s, 'amendAction', 'a-2', 'alice', hashAction({ ...action, input: { n: 3 } }));
        await assert.rejects(run.amend({ amendmentId: 'a-2', amendedBy: alice, action, reason: 'swapped', ...other }), (e) => failureType(e) === 'SignatureInvalid');
        const amended = await run.amend({ amendmentId: 'a-3', amendedBy: alice, action, reason: 'signed', ...sign(run, s, 'amendAction', 'a-3', 'alice', hashAction(action)) });
        assert.equal(amended.state, 'AwaitingApproval');
        await run.handle.signal('cancelRun', { requestedBy: alice, reason: 'done', cancelId: 'c-9', ...sign(run, amended, 'cancelRun', 'c-9', 'alice', amended.actionHash) });
        assert.equal((await run.result()).state, 'Cancelled');

        const manual = await start(h, 'wipe');
        const m = await waitForState(manual, 'AwaitingManualCompletion');
        const completion = { completionId: 'mc-1', completedBy: { id: 'oscar', roles: ['operator'] }, completedAt: new Date().toISOString(), evidenceRef: 'CHG-1', actionHash: m.actionHash };
        await manual.completeManually(completion);
        // Claimed roles do not count under a signed rule: carol is registered with none.
        await manual.completeManually({ ...completion, completionId: 'mc-2', completedBy: { id: 'carol', roles: ['operator'] } });
        const refused = await waitForStatus(manual, (x) => x.refusals.length >= 2);
        assert.deepEqual(refused.refusals.map((r) => [r.type, r.decisionId]), [['SignatureInvalid', 'mc-1'], ['SignatureInvalid', 'mc-2']]);
        await manual.completeManually({ ...completion, completionId: 'mc-3', ...sign(manual, m, 'manualCompletion', 'mc-3', 'oscar') });
        assert.equal((await manual.result()).state, 'ManuallyCompleted');
      });
    });

    it('a signed approval from a terminated execution does not count in a new execution under the same workflow id', async function () {
      await withWorker(opts(), async (h) => {
        const run = await start(h, 'wire');
        const s1 = await waitForState(run, 'AwaitingApproval');
        const d = decision(bob, s1.actionHash);
        const old = { ...d, ...sign(run, s1, 'approve', d.decisionId, 'bob') };
        await run.handle.terminate('replaced');
        const again = await h.client.workflow.start('governedRun', {
          taskQueue: h.taskQueue,
          workflowId: run.workflowId,
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          args: [{ workspaceId: 'hostile', correlationId: 'c2', requestedBy: alice, action: { runtime: 'echo', target: 'hostile/thing', operation: 'wire', input: { n: 1 } }, idempotencyKey: run.workflowId.split(':')[1], reason: 'again' }],
        });
        const run2 = h.portarium.run(again.workflowId);
        const s2 = await waitForState(run2, 'AwaitingApproval');
        assert.equal(s2.actionHash, s1.actionHash, 'same action, same hash');
        assert.notEqual(s2.firstExecutionRunId, s1.firstExecutionRunId);
        await assert.rejects(run2.decide({ kind: 'approve', ...old }), (e) => failureType(e) === 'SignatureInvalid');
        await run2.handle.terminate('done');
      });
    });
  });

  describe('freshness at the moment of dispatch', function () {
    it('a decision id re-sent after freshness voided its approval reports counted: false; a new one counts', async function () {
      await withWorker(opts(), async (h) => {
        const run = await start(h, 'migrate');
        const s = await waitForState(run, 'AwaitingApproval');
        const first = decision(bob, s.actionHash);
        assert.equal((await run.decide({ kind: 'approve', ...first })).counted, true);
        await new Promise((r) => setTimeout(r, 4500));
        // Quorum of two is met now, but bob's approval is stale: voided, the run keeps waiting.
        const second = await run.decide({ kind: 'approve', ...decision(carol, s.actionHash) });
        assert.equal(second.state, 'AwaitingApproval');
        // A fresh update id: the client helper's content-derived id would return the first outcome (an idempotent retry).
        const again = await run.handle.executeUpdate(decideUpdate, { args: [{ kind: 'approve', ...first }], updateId: uid('u') });
        assert.equal(again.counted, false, 'the voided approval is not reported as counted');
        assert.equal((await run.status()).approvals.length, 1, 'only carol counts');
        const renewed = await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
        assert.equal(renewed.counted, true);
        assert.equal((await run.result()).state, 'Succeeded');
      });
    });

    it('approvals that went stale while the evidence sink was down are voided at dispatch; nothing runs until renewed', async function () {
      const { sink: flaky, gate } = gatedSink();
      await withWorker(opts({ evidence: flaky }), async (h) => {
        const run = await start(h, 'deploy');
        const s = await waitForState(run, 'AwaitingApproval');
        await run.handle.signal('approve', decision(bob, s.actionHash));
        await new Promise((r) => setTimeout(r, 4000));
        gate.down = false;
        const back = await waitForStatus(run, (x) => x.state === 'AwaitingApproval' && x.approvals.length === 0 && (x.evidenceStored?.count ?? 0) > 0, 30_000);
        assert.equal(back.approvalsNeeded, 1);
        assert.equal((await h.ledger.counts()).applied, 0, 'nothing dispatched on the stale approval');
        const ev = await run.evidence();
        assert.ok(ev.entries.some((e) => e.event === 'ApprovalsVoided'));
        // The dispatch stored nothing and sent nothing while the sink was down; once it was back the
        // approval was judged again, found stale, and the run went back to waiting.
        const events = ev.entries.map((e) => e.event);
        assert.ok(events.lastIndexOf('ApprovalsVoided') > events.indexOf('StateDispatching'), 'voided after the dispatch attempt');
        assert.equal(events[events.length - 1], 'StateAwaitingApproval', 'waiting again');
        await run.decide({ kind: 'approve', ...decision(carol, s.actionHash) });
        assert.equal((await run.result()).state, 'Succeeded');
        assert.equal((await h.ledger.counts()).applied, 1);
        await keepHistory('lean-stale-at-dispatch-renewed', run);
      });
    });
  });

  describe('event hand-off', function () {
    it('runEventDelivery started by anyone but its run is refused before it delivers anything', async function () {
      await withWorker(opts(), async (h) => {
        const runId = `hostile:${uid('k')}`;
        const event = { specversion: '1.0', id: `${runId}/0/approved`, source: '/portarium/workspaces/hostile', type: 'com.portarium.run.approved.v1', workspaceid: 'hostile', runid: runId, data: {} };
        for (const workflowId of [`${runId}/events`, `${runId}/other`]) {
          const handle = await h.client.workflow.start('runEventDelivery', { taskQueue: h.taskQueue, workflowId, args: [{ workspaceId: 'hostile', runId, events: [event] }] });
          await assert.rejects(handle.result(), (e) => failureType(e) === 'InvalidRunInput');
          const history = await handle.fetchHistory();
          assert.ok(!history.events?.some((e) => e.activityTaskScheduledEventAttributes), 'no delivery activity was scheduled');
        }
      });
    });
  });
});
