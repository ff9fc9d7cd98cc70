/**
 * Break-glass through the real workflow on the dev server: a holder of a break-glass role releases a
 * HumanApprove run or an Assisted veto window at once (no quorum, no cooling-off), never ManualOnly
 * or a denied action; the run dispatches and then holds its mandatory post-hoc review (N eligible
 * reviewers, not the releaser, not the requester) before its result; a flagged or overdue review is
 * announced; uses are rate-limited per principal and per workspace by the workspace's ledger.
 */
import * as assert from 'node:assert/strict';
import { breakGlassLedgerStatusQuery } from '../workflows/run/messages';
import { breakGlassLedgerId } from '../workflows/break-glass/book';
import { SubscriberFake } from './fakes/subscriber-server';
import { keepHistory } from './support/histories';
import { alice, bob, carol, dave, decision, failureType, mallory, uid, waitForState, waitForStatus, withWorker } from './support/harness';
import { breakGlassPolicyDir, freshHolder, ivan, judy, release, review, stillOpen } from './support/break-glass';
import { testEnv } from './support/shared';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PortariumClient } from '../workers/client';
import { main } from '../workers/cli';
import { DEV_KEYS, shared } from './support/shared';
import { freePort } from './support/dev-server';
import { type WorkerProcess, startWorkerProcess } from './support/worker-process';

const names = (events: Record<string, unknown>[]) => events.map((e) => String(e.type).replace(/^com\.portarium\.run\.|\.v1$/g, ''));

describe('break-glass', function () {
  // One task queue for the suite: each workspace's ledger runs on the queue of the run that started it.
  const taskQueue = uid('tq-bg');
  let sub: SubscriberFake;
  let policyDir: string;
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue });

  before(async () => {
    sub = await new SubscriberFake('flow-bg').start();
    const events = { subscribers: [{ id: 'bg', url: sub.webhookUrl }], egress: { events: { hosts: [`127.0.0.1:${sub.port}`] } } };
    policyDir = breakGlassPolicyDir({ bg: {}, bgfast: { reviewers: 1, reviewWithin: '3s' }, bgmetrics: { reviewers: 1, reviewWithin: '2s' }, bgtight: { perWorkspace: { count: 2, per: '1h' }, perPrincipal: { count: 5, per: '1h' } }, bgnone: null }, events);
  });
  after(async () => sub?.close());

  const eventsOf = (runId: string) => names(sub.events().filter((e) => e.runid === runId));

  it('a break-glass holder releases a HumanApprove run at once (no quorum, no cooling-off); it dispatches, and completes only after N eligible reviewers confirm', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write', { workspaceId: 'bg' });
      const s = await waitForState(run, 'AwaitingApproval');
      assert.equal(s.approvalsNeeded, 2);
      const out = await run.breakGlass(release(ivan, s.actionHash));
      assert.equal(out.breakGlass.by, 'ivan');
      assert.equal(out.breakGlass.releasedFrom, 'AwaitingApproval');
      const done = await waitForState(run, 'Succeeded');
      assert.equal((await h.ledger.counts()).calls, 1);
      assert.equal(done.breakGlass?.review.state, 'pending');
      assert.equal(done.breakGlass?.reason, 'incident INC-42: customer data at risk');
      assert.deepEqual(done.breakGlass?.review.eligibleRoles, ['approver', 'finance']);
      assert.ok(await stillOpen(run), 'the result waits for the review');
      const first = await run.reviewBreakGlass(review(bob));
      assert.equal(first.review.state, 'pending');
      assert.ok(await stillOpen(run));
      const second = await run.reviewBreakGlass(review(dave));
      assert.equal(second.review.state, 'confirmed');
      assert.equal((await run.result()).state, 'Succeeded');
      const ev = (await run.evidence()).entries.map((e) => e.event);
      assert.ok(ev.indexOf('BreakGlassUsed') < ev.indexOf('StateDispatching'));
      assert.equal(ev.filter((e) => e === 'BreakGlassReviewed').length, 2);
      assert.ok(ev.indexOf('BreakGlassReviewed') > ev.indexOf('StateSucceeded'));
      await waitForStatus(run, (st) => (st.events?.pending ?? 1) === 0);
      assert.deepEqual(eventsOf(run.workflowId), ['requested', 'approval_needed', 'break_glass_used', 'approved', 'dispatched', 'succeeded', 'break_glass_confirmed']);
      await keepHistory('lean-break-glass-reviewed', run);
    });
  });

  it('a released run whose dispatch fails holds its review too, then fails with the runtime\'s failure type', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write', { workspaceId: 'bg', input: { fail: 'rejected' } });
      const s = await waitForState(run, 'AwaitingApproval');
      await run.breakGlass(release(freshHolder(), s.actionHash));
      const failed = await waitForState(run, 'Failed');
      assert.equal(failed.breakGlass?.review.state, 'pending');
      assert.ok(await stillOpen(run), 'the failure waits for the review');
      await run.reviewBreakGlass(review(bob));
      await run.reviewBreakGlass(review(carol));
      await assert.rejects(run.result(), (e) => failureType(e) === 'RuntimeRejected');
      assert.equal((await run.status()).breakGlass?.review.state, 'confirmed');
    });
  });

  it('an Assisted veto window is released at once', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('notify', { workspaceId: 'bg' });
      const s = await waitForState(run, 'VetoWindow');
      await run.breakGlass(release(judy, s.actionHash));
      const done = await waitForState(run, 'Succeeded');
      assert.equal(done.breakGlass?.releasedFrom, 'VetoWindow');
      assert.equal((await h.ledger.counts()).calls, 1);
    });
  });

  it('the requester (even holding the role) and a non-holder are refused; the run still waits and is decidable', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write', { workspaceId: 'bg', requestedBy: { id: 'alice', roles: ['dev', 'oncall'] } });
      const s = await waitForState(run, 'AwaitingApproval');
      await assert.rejects(run.breakGlass(release({ id: 'alice', roles: ['oncall'] }, s.actionHash)), (e) => failureType(e) === 'SelfApprovalRefused');
      await assert.rejects(run.breakGlass(release(mallory, s.actionHash)), (e) => failureType(e) === 'BreakGlassNotAllowed');
      await assert.rejects(run.breakGlass(release(bob, s.actionHash)), (e) => failureType(e) === 'BreakGlassNotAllowed', 'an approver is no break-glass holder');
      const after = await run.status();
      assert.equal(after.state, 'AwaitingApproval');
      assert.equal(after.breakGlass, undefined);
      assert.deepEqual(after.refusals.map((r) => [r.via, r.type]), [['breakGlass', 'SelfApprovalRefused'], ['breakGlass', 'BreakGlassNotAllowed'], ['breakGlass', 'BreakGlassNotAllowed']]);
      assert.equal((await h.ledger.counts()).calls, 0);
      await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      await run.decide({ kind: 'approve', ...decision(carol, s.actionHash) });
      assert.equal((await run.status()).approvals.length, 2);
      await run.cancel({ requestedBy: alice, reason: 'done testing' });
      assert.equal((await run.result()).state, 'Cancelled');
    });
  });

  it('ManualOnly is never released; a workspace without break-glass refuses it; a denied action stays denied', async function () {
    await withWorker(opts(), async (h) => {
      const manual = await h.start('wipe', { workspaceId: 'bg' });
      const m = await waitForState(manual, 'AwaitingManualCompletion');
      await assert.rejects(manual.breakGlass(release(ivan, m.actionHash)), (e) => failureType(e) === 'BreakGlassNotAllowed');
      assert.equal((await manual.status()).state, 'AwaitingManualCompletion');
      const none = await h.start('write', { workspaceId: 'bgnone' });
      const n = await waitForState(none, 'AwaitingApproval');
      await assert.rejects(none.breakGlass(release(ivan, n.actionHash)), (e) => failureType(e) === 'BreakGlassNotAllowed');
      const denied = await h.start('delete', { workspaceId: 'bg' });
      assert.equal((await denied.result()).state, 'Denied');
      await assert.rejects(denied.breakGlass(release(ivan, (await denied.status()).actionHash)));
      assert.equal((await denied.status()).state, 'Denied');
      assert.equal((await h.ledger.counts()).calls, 0);
      for (const r of [manual, none]) await r.cancel({ requestedBy: alice, reason: 'done testing' });
    });
  });

  it('the releaser, the requester, a non-eligible person and a second review by one reviewer are refused', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write', { workspaceId: 'bg' });
      const s = await waitForState(run, 'AwaitingApproval');
      await assert.rejects(run.reviewBreakGlass(review(bob)), (e) => failureType(e) === 'BreakGlassReviewRefused', 'nothing to review yet');
      await run.breakGlass(release(ivan, s.actionHash));
      await waitForState(run, 'Succeeded');
      await assert.rejects(run.reviewBreakGlass(review({ id: 'ivan', roles: ['approver'] })), (e) => failureType(e) === 'BreakGlassReviewRefused');
      await assert.rejects(run.reviewBreakGlass(review({ id: 'alice', roles: ['approver'] })), (e) => failureType(e) === 'BreakGlassReviewRefused');
      await assert.rejects(run.reviewBreakGlass(review(mallory)), (e) => failureType(e) === 'ApproverNotEligible');
      await run.reviewBreakGlass(review(bob));
      await assert.rejects(run.reviewBreakGlass(review(bob)), (e) => failureType(e) === 'BreakGlassReviewRefused', 'bob twice counts once');
      const st = await run.status();
      assert.equal(st.breakGlass?.review.state, 'pending');
      assert.deepEqual(st.breakGlass?.review.reviews.map((r) => r.reviewerId), ['bob']);
      assert.ok(await stillOpen(run));
      await run.reviewBreakGlass(review(carol));
      assert.equal((await run.result()).state, 'Succeeded');
    });
  });

  it('a flagged review ends the review at once, is announced, and stays in status and evidence', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write', { workspaceId: 'bg' });
      const s = await waitForState(run, 'AwaitingApproval');
      await run.breakGlass(release(freshHolder(), s.actionHash));
      await waitForState(run, 'Succeeded');
      const flagged = await run.reviewBreakGlass(review(carol, 'flag'));
      assert.equal(flagged.review.state, 'flagged');
      assert.equal((await run.result()).state, 'Succeeded');
      const st = await waitForStatus(run, (x) => (x.events?.pending ?? 1) === 0);
      assert.equal(st.breakGlass?.review.state, 'flagged');
      assert.equal(st.breakGlass?.review.reviews[0].rationale, 'no incident on record');
      assert.ok((await run.evidence()).entries.some((e) => e.event === 'BreakGlassReviewed' && e.data?.verdict === 'flag'));
      assert.ok(eventsOf(run.workflowId).includes('break_glass_flagged'));
    });
  });

  it('an overdue review is announced, recorded and shown in status; then the run completes', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write', { workspaceId: 'bgfast' });
      const s = await waitForState(run, 'AwaitingApproval');
      await run.breakGlass(release(ivan, s.actionHash));
      assert.equal((await waitForState(run, 'Succeeded')).breakGlass?.review.state, 'pending');
      assert.equal((await run.result()).state, 'Succeeded');
      const st = await waitForStatus(run, (x) => (x.events?.pending ?? 1) === 0);
      assert.equal(st.breakGlass?.review.state, 'overdue');
      const overdue = (await run.evidence()).entries.find((e) => e.event === 'BreakGlassReviewOverdue');
      assert.ok(overdue && Date.parse(overdue.occurredAt) >= Date.parse(st.breakGlass!.review.dueAt));
      assert.ok(eventsOf(run.workflowId).includes('break_glass_review_overdue'));
    });
  });

  it('the per-principal rate limit refuses the third use in the window; the refusal is recorded and the run still waits', async function () {
    await withWorker(opts(), async (h) => {
      const holder = freshHolder();
      const runs = await Promise.all([1, 2, 3].map(() => h.start('notify', { workspaceId: 'bg' })));
      const hashes = await Promise.all(runs.map(async (r) => (await waitForState(r, 'VetoWindow')).actionHash));
      await runs[0].breakGlass(release(holder, hashes[0]));
      const second = await runs[1].breakGlass(release(holder, hashes[1]));
      assert.equal(second.breakGlass.window.principalUses, 2);
      await assert.rejects(runs[2].breakGlass(release(holder, hashes[2])), (e) => failureType(e) === 'BreakGlassRateLimited');
      const st = await runs[2].status();
      assert.equal(st.state, 'VetoWindow');
      assert.equal(st.refusals.at(-1)?.type, 'BreakGlassRateLimited');
      assert.ok((await runs[2].evidence()).entries.some((e) => e.event === 'RequestRefused' && e.data?.type === 'BreakGlassRateLimited'));
      // Another holder is not limited by this one's uses.
      await runs[2].breakGlass(release(freshHolder(), hashes[2]));
      await waitForState(runs[2], 'Succeeded');
    });
  });

  it('the per-workspace rate limit: two runs racing for the last use get one grant and one refusal', async function () {
    await withWorker(opts(), async (h) => {
      const runs = await Promise.all([1, 2, 3].map(() => h.start('notify', { workspaceId: 'bgtight' })));
      const hashes = await Promise.all(runs.map(async (r) => (await waitForState(r, 'VetoWindow')).actionHash));
      await runs[0].breakGlass(release(freshHolder(), hashes[0]));
      const raced = await Promise.allSettled([runs[1].breakGlass(release(freshHolder(), hashes[1])), runs[2].breakGlass(release(freshHolder(), hashes[2]))]);
      assert.deepEqual(raced.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
      const lost = raced.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
      assert.equal(failureType(lost.reason), 'BreakGlassRateLimited');
      const ledger = await h.client.workflow.getHandle(breakGlassLedgerId('bgtight')).query(breakGlassLedgerStatusQuery);
      assert.equal(ledger.useCount, 2);
      assert.equal(ledger.refused, 1);
      const states = await Promise.all(runs.map(async (r) => (await r.status()).state));
      assert.equal(states.filter((x) => x === 'VetoWindow').length, 1, 'the loser still waits');
      for (const r of runs) if ((await r.status()).state === 'VetoWindow') await r.cancel({ requestedBy: alice, reason: 'done testing' });
    });
  });

  it('the CLI releases and reviews: `portarium break-glass` and `portarium break-glass review`; a refusal exits 3 with its type', async function () {
    await withWorker(opts(), async (h) => {
      const cli = async (...argv: string[]) => {
        const out: string[] = [];
        const code = await main([...argv, '--address', shared.address!, '--task-queue', taskQueue], { out: (t) => out.push(t), err: (t) => out.push(t), env: { ...DEV_KEYS } });
        return { code, out: out.join('\n') };
      };
      const run = await h.start('write', { workspaceId: 'bg' });
      const s = await waitForState(run, 'AwaitingApproval');
      const refused = await cli('break-glass', run.workflowId, '--by', 'mallory', '--roles', 'dev', '--reason', 'incident', '--action-hash', s.actionHash);
      assert.equal(refused.code, 3);
      assert.match(refused.out, /BreakGlassNotAllowed/);
      const released = await cli('break-glass', run.workflowId, '--by', 'judy', '--roles', 'oncall', '--reason', 'INC-7 outage', '--action-hash', s.actionHash);
      assert.equal(released.code, 0, released.out);
      assert.match(released.out, /by judy/);
      await waitForState(run, 'Succeeded');
      for (const reviewer of ['bob', 'carol']) {
        const r = await cli('break-glass', 'review', run.workflowId, '--reviewer', reviewer, '--roles', 'approver', '--verdict', 'confirm', '--rationale', 'INC-7 is real');
        assert.equal(r.code, 0, r.out);
      }
      assert.equal((await run.result()).state, 'Succeeded');
      assert.equal((await run.status()).breakGlass?.review.state, 'confirmed');
    });
  });

  describe('metrics of the worker process', function () {
    let worker: WorkerProcess | undefined;
    afterEach(() => worker?.child.kill('SIGTERM'));

    it('counts uses by outcome (granted, refused by type) and reviews by how they ended (overdue)', async function () {
      const port = await freePort();
      const queue = uid('tq-bg-metrics');
      worker = await startWorkerProcess({ PORTARIUM_TASK_QUEUE: queue, PORTARIUM_POLICY_DIR: policyDir, PORTARIUM_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-bg-metrics-')), PORTARIUM_METRICS_ADDRESS: `127.0.0.1:${port}` });
      const portarium = new PortariumClient(testEnv().client, queue);
      const { run } = await portarium.startRun({ workspaceId: 'bgmetrics', correlationId: uid('corr'), requestedBy: alice, action: { runtime: 'echo', target: 'test/m', operation: 'write', input: {} }, idempotencyKey: uid('key'), reason: 'metrics' });
      const s = await waitForState(run, 'AwaitingApproval');
      await assert.rejects(run.breakGlass(release(mallory, s.actionHash)), (e) => failureType(e) === 'BreakGlassNotAllowed');
      await run.breakGlass(release(ivan, s.actionHash));
      assert.equal((await run.result()).state, 'Succeeded');
      let metrics = '';
      const deadline = Date.now() + 15_000;
      while (!/portarium_break_glass_reviews\{[^}]*outcome="overdue"/.test(metrics) && Date.now() < deadline) {
        metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).catch(() => '');
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.match(metrics, /portarium_break_glass_uses\{[^}]*outcome="granted"/);
      assert.match(metrics, /portarium_break_glass_uses\{[^}]*outcome="BreakGlassNotAllowed"/);
      assert.match(metrics, /portarium_break_glass_reviews\{[^}]*outcome="overdue"/);
    });
  });
});
