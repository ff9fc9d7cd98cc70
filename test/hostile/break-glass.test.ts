/**
 * Hostile break-glass messages on a real dev server: malformed, oversized, foreign, forged, replayed
 * and racing `breakGlass` and `reviewBreakGlass` updates. Each asserts what a user sees: a typed
 * refusal, the run still answers `status` and can still be released, nothing dispatched that policy
 * and break-glass did not allow, and governance refusals recorded.
 */
import * as assert from 'node:assert/strict';
import type { RunHandle } from '../../workers/client';
import { breakGlassLedgerStatusQuery, breakGlassUpdate, reviewBreakGlassUpdate } from '../../workflows/run/messages';
import { breakGlassLedgerId } from '../../workflows/break-glass/book';
import { publicKeyFromPrivate, signDecision } from '../../workflows/run/signatures';
import type { Harness } from '../support/harness';
import { bob, decision, failureType, gatedSink, uid, waitForState, waitForStatus, withWorker } from '../support/harness';
import { breakGlassPolicyDir, freshHolder, release, review } from '../support/break-glass';
import { testEnv } from '../support/shared';

const KEYS = { ivan: '55'.repeat(32), carol: '66'.repeat(32) };

describe('hostile break-glass messages (real server)', function () {
  this.timeout(60_000);
  const taskQueue = uid('tq-bgh');
  let policyDir: string;
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue });

  before(() => {
    const signed = { defaults: { approverKeys: { ivan: publicKeyFromPrivate(KEYS.ivan), carol: publicKeyFromPrivate(KEYS.carol) }, approverRoles: { ivan: ['oncall'], carol: ['approver'] } } };
    policyDir = breakGlassPolicyDir({ bgh: { reviewers: 1 }, bgsigned: { reviewers: 1 } }, {}, { bgsigned: signed });
  });

  const waiting = async (h: Harness, ws = 'bgh') => {
    const run = await h.start('notify', { workspaceId: ws });
    return { run, st: await waitForState(run, 'VetoWindow') };
  };
  /** The run was not wedged: a proper release still goes through, once. */
  const stillReleasable = async (h: Harness, run: RunHandle, actionHash: string) => {
    assert.equal((await run.status()).state, 'VetoWindow');
    await run.breakGlass(release(freshHolder(), actionHash));
    await waitForState(run, 'Succeeded');
    assert.equal((await h.ledger.counts()).calls, 1);
  };
  const raw = (run: RunHandle, body: unknown) => run.handle.executeUpdate(breakGlassUpdate, { args: [body as never] });

  const malformed: [string, (hash: string) => unknown][] = [
    ['no reason', (hash) => ({ decisionId: 'd1', by: { id: 'x', roles: ['oncall'] }, actionHash: hash })],
    ['a blank reason', (hash) => ({ decisionId: 'd1', by: { id: 'x', roles: ['oncall'] }, reason: '   ', actionHash: hash })],
    ['a 100 kB reason', (hash) => ({ decisionId: 'd1', by: { id: 'x', roles: ['oncall'] }, reason: 'x'.repeat(100_000), actionHash: hash })],
    ['an unknown field', (hash) => ({ decisionId: 'd1', by: { id: 'x', roles: ['oncall'] }, reason: 'r', actionHash: hash, bypassRateLimit: true })],
    ['a __proto__ field', (hash) => JSON.parse(`{"decisionId":"d1","by":{"id":"x","roles":["oncall"]},"reason":"r","actionHash":"${hash}","__proto__":{"admin":true}}`)],
    ['roles that are not a list', (hash) => ({ decisionId: 'd1', by: { id: 'x', roles: 'oncall' }, reason: 'r', actionHash: hash })],
    ['null', () => null],
    ['a string', () => 'release it'],
  ];
  for (const [name, body] of malformed) {
    it(`a breakGlass with ${name} is refused as InvalidMessage; the run still waits and can be released`, async function () {
      await withWorker(opts(), async (h) => {
        const { run, st } = await waiting(h);
        await assert.rejects(raw(run, body(st.actionHash)), (e) => failureType(e) === 'InvalidMessage');
        assert.equal((await run.status()).breakGlass, undefined);
        await stillReleasable(h, run, st.actionHash);
      });
    });
  }

  it('a release for another action hash is refused as ActionHashMismatch and recorded', async function () {
    await withWorker(opts(), async (h) => {
      const { run, st } = await waiting(h);
      await assert.rejects(run.breakGlass(release(freshHolder(), 'ab'.repeat(32))), (e) => failureType(e) === 'ActionHashMismatch');
      assert.equal((await run.status()).refusals.at(-1)?.via, 'breakGlass');
      await stillReleasable(h, run, st.actionHash);
    });
  });

  it('a holder acting for another workspace is refused as WorkspaceMismatch', async function () {
    await withWorker(opts(), async (h) => {
      const { run, st } = await waiting(h);
      await assert.rejects(run.breakGlass(release({ ...freshHolder(), workspaceId: 'test' }, st.actionHash)), (e) => failureType(e) === 'WorkspaceMismatch');
      await stillReleasable(h, run, st.actionHash);
    });
  });

  it('two holders racing to release one run: one release, one refusal, one use counted', async function () {
    await withWorker(opts(), async (h) => {
      const { run, st } = await waiting(h);
      const [a, b] = [freshHolder(), freshHolder()];
      const raced = await Promise.allSettled([run.breakGlass(release(a, st.actionHash)), run.breakGlass(release(b, st.actionHash))]);
      assert.deepEqual(raced.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
      assert.equal(failureType((raced.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason), 'BreakGlassNotAllowed');
      await waitForState(run, 'Succeeded');
      assert.equal((await h.ledger.counts()).calls, 1);
      const ledger = await h.client.workflow.getHandle(breakGlassLedgerId('bgh')).query(breakGlassLedgerStatusQuery);
      assert.equal(ledger.uses.filter((u) => u.runId === run.workflowId).length, 1);
    });
  });

  it('a repeated release (same id, same content) answers as the first and counts once', async function () {
    await withWorker(opts(), async (h) => {
      const { run, st } = await waiting(h);
      const r = release(freshHolder(), st.actionHash);
      const first = await run.breakGlass(r);
      const again = await run.handle.executeUpdate(breakGlassUpdate, { args: [r], updateId: uid('retry') });
      assert.equal(again.breakGlass.decisionId, first.breakGlass.decisionId);
      assert.equal(again.breakGlass.window.principalUses, 1);
      await waitForState(run, 'Succeeded');
      assert.equal((await h.ledger.counts()).calls, 1);
    });
  });

  it('under a signed rule: no signature, a claimed role without registration, or a signature by another key are refused; a signed release by a registered holder goes through', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('signed', { workspaceId: 'bgsigned' });
      const st = await waitForState(run, 'AwaitingApproval');
      const ivan = { id: 'ivan', roles: ['oncall'] };
      await assert.rejects(run.breakGlass(release(ivan, st.actionHash)), (e) => failureType(e) === 'SignatureInvalid');
      const signAs = (who: keyof typeof KEYS, id: string, kind: 'breakGlass' | 'reviewBreakGlass', approverId: string) => {
        const signedAt = new Date().toISOString();
        return { signedAt, signature: signDecision({ workflowId: run.workflowId, firstExecutionRunId: st.firstExecutionRunId, actionHash: st.actionHash, kind, decisionId: id, approverId, signedAt }, KEYS[who]) };
      };
      const forged = release(ivan, st.actionHash);
      await assert.rejects(run.breakGlass({ ...forged, ...signAs('carol', forged.decisionId, 'breakGlass', 'ivan') }), (e) => failureType(e) === 'SignatureInvalid');
      // carol's key is hers, but her registered roles hold no break-glass role, whatever she claims.
      const claimed = release({ id: 'carol', roles: ['oncall'] }, st.actionHash);
      await assert.rejects(run.breakGlass({ ...claimed, ...signAs('carol', claimed.decisionId, 'breakGlass', 'carol') }), (e) => failureType(e) === 'BreakGlassNotAllowed');
      assert.equal((await h.ledger.counts()).calls, 0);
      const good = release(ivan, st.actionHash);
      await run.breakGlass({ ...good, ...signAs('ivan', good.decisionId, 'breakGlass', 'ivan') });
      await waitForState(run, 'Succeeded');
      const unsigned = review({ id: 'carol', roles: ['approver'] });
      await assert.rejects(run.reviewBreakGlass(unsigned), (e) => failureType(e) === 'SignatureInvalid');
      const rv = review({ id: 'carol', roles: ['approver'] });
      const done = await run.reviewBreakGlass({ ...rv, ...signAs('carol', rv.reviewId, 'reviewBreakGlass', 'carol') });
      assert.equal(done.review.state, 'confirmed');
      assert.equal((await run.result()).state, 'Succeeded');
    });
  });

  it('malformed reviews are refused as InvalidMessage and never wedge the review', async function () {
    await withWorker(opts(), async (h) => {
      const { run, st } = await waiting(h);
      await run.breakGlass(release(freshHolder(), st.actionHash));
      await waitForState(run, 'Succeeded');
      const bodies: unknown[] = [null, { ...review(bob), verdict: 'maybe' }, { ...review(bob), rationale: '' }, { ...review(bob), rationale: 'y'.repeat(50_000) }, { ...review(bob), extra: 1 }];
      for (const b of bodies) await assert.rejects(run.handle.executeUpdate(reviewBreakGlassUpdate, { args: [b as never] }), (e) => failureType(e) === 'InvalidMessage');
      assert.equal((await run.status()).breakGlass?.review.state, 'pending');
      assert.equal((await run.reviewBreakGlass(review(bob))).review.state, 'confirmed');
      assert.equal((await run.result()).state, 'Succeeded');
    });
  });

  it('a change request that lands after a release, while the evidence sink holds the dispatch, cannot send the run back round', async function () {
    // Context: a released run sent back by requestChanges would be released again at once, looping without end.
    const { sink, gate } = gatedSink();
    await withWorker({ ...opts(), evidence: sink }, async (h) => {
      const run = await h.start('write', { workspaceId: 'bgh' });
      const st = await waitForState(run, 'AwaitingApproval');
      await run.breakGlass(release(freshHolder(), st.actionHash));
      await waitForState(run, 'Dispatching');
      // The hold is in place once the sink refuses a second time: the dispatch attempt failed, and
      // the store the run waits on is scheduled in the same workflow task that holds decisions.
      for (let i = 0; i < 200 && gate.refused < 2; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(gate.refused >= 2, 'the run waits for the sink');
      await h.client.workflow.getHandle(run.workflowId).signal('requestChanges', { ...decision(bob, st.actionHash), rationale: 'wait' });
      // Taken: while the dispatch is held, decisions are judged as in the state it was decided in.
      await waitForStatus(run, (s) => s.evidenceCount > 0 && s.refusals.length === 0 && s.state === 'Dispatching');
      const taken = async () => (await run.evidence()).entries.some((e) => e.event === 'ChangesRequested');
      for (let i = 0; i < 100 && !(await taken()); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(await taken(), 'the change request was accepted');
      assert.equal((await h.ledger.counts()).calls, 0, 'nothing sent while the sink is down');
      gate.down = false;
      await waitForState(run, 'Succeeded');
      assert.equal((await h.ledger.counts()).calls, 1);
      const events = (await run.evidence()).entries.map((e) => e.event);
      assert.equal(events.filter((e) => e === 'StateAwaitingApproval').length, 1, 'never sent back to wait');
    });
  });
});
