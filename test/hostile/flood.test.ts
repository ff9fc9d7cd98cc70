/**
 * A flood of bad messages against a waiting governed run, on a real dev server (issue 14, "bounded
 * everything"). Every signal is one history event, and the server closes a run at its history limits;
 * the run continues as new while it waits, carrying its whole state, so it stays readable and
 * decidable. Each case asserts what a user sees: `status` answers with the same action and the
 * approvals given before, every refusal is counted, a valid decision still completes the run (one
 * dispatch), and the evidence verifies end to end across executions.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from '@temporalio/worker';
import { FileEvidenceSink } from '../../activities/evidence/file-sink';
import { prebuiltBundle } from '../../workers/bundle';
import { main } from '../../workers/cli';
import { PROJECT_ROOT } from '../../workers/config';
import type { RunHandle } from '../../workers/client';
import { verifyChain } from '../../workflows/evidence-chain';
import { chainsOf, verifyWorkspaceLog } from '../../activities/evidence/log';
import { type SignedKind, signDecision } from '../../workflows/run/signatures';
import type { RunStatus } from '../../workflows/types';
import { type Harness, TEST_SIGNER, alice, bob, carol, decision, failureType, oscar, uid, waitForState, waitForStatus, withWorker } from '../support/harness';
import { testDataConverter, testEnv } from '../support/shared';

const HOSTILE_POLICIES = path.join(PROJECT_ROOT, 'test', 'hostile', 'policies');
const KEYS: Record<string, string> = { bob: '11'.repeat(32), oscar: '44'.repeat(32) };
/** Three times the run's history bound (4,000 events): it must continue as new more than once. */
const FLOOD = 12_000;
/**
 * Signals in flight at once (a few hundred a second on a shared test machine). A worker that falls
 * behind passes the SDK's default 5 s activation limit; workers/worker.ts raises it, since a stopped
 * activation aborts the worker (test/hostile/stall.test.ts).
 */
const FLOOD_CONCURRENCY = 4;

const start = (h: Harness, operation: string) =>
  h.start(operation, { workspaceId: 'hostile', action: { runtime: 'echo', target: 'hostile/thing', operation, input: { n: 1 } } });

/**
 * Send `n` messages, `concurrency` at a time, as a bot hammering the run would; returns how many the
 * server took. It takes at most 10,000 signals per execution (dev server default) and refuses more
 * until the run has continued as new: those never reach the run, and are not counted by it.
 */
async function flood(n: number, send: (i: number) => Promise<unknown>, concurrency = FLOOD_CONCURRENCY): Promise<number> {
  let next = 0;
  let accepted = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      try {
        await send(next++);
        accepted++;
      } catch (err) {
        if (!/limit for signal events/.test(String((err as Error).cause ?? err))) throw err;
      }
    }
  }));
  return accepted;
}

function sign(run: RunHandle, st: RunStatus, kind: SignedKind, id: string, who: string) {
  const signedAt = new Date().toISOString();
  const signature = signDecision({ workflowId: run.workflowId, firstExecutionRunId: st.firstExecutionRunId, actionHash: st.actionHash, kind, decisionId: id, approverId: who, signedAt }, KEYS[who]);
  return { signature, signedAt };
}

async function cli(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The run's stored evidence verifies from the sink, and its last execution's chain is the whole run. */
async function assertEvidenceEndToEnd(run: RunHandle, dir: string, sink: FileEvidenceSink): Promise<void> {
  const view = await run.evidence();
  assert.ok(verifyChain(view.entries, { workspaceId: 'hostile', runId: run.workflowId }).ok, 'the workflow chain verifies from genesis');
  const log = await sink.readWorkspace('hostile');
  assert.ok(verifyWorkspaceLog(log, { publicKey: TEST_SIGNER.publicKey }).ok, 'the workspace log verifies');
  const chains = [...chainsOf(log.entries).values()].filter((c) => c.runId === run.workflowId);
  const last = chains.sort((a, b) => a.lastWsSeq - b.lastWsSeq)[chains.length - 1];
  assert.deepEqual(last.entries.map((e) => e.hash), view.entries.map((e) => e.hash), 'one chain from the request to the outcome, across executions');
  assert.equal(last.entries[0].event, 'RunRequested');
  const verified = await cli({ PORTARIUM_EVIDENCE_DIR: dir }, 'evidence', 'verify', 'run', run.workflowId, '--workspace', 'hostile', '--public-key', TEST_SIGNER.publicKey);
  assert.equal(verified.code, 0, verified.err);
}

/** Every execution of the run (those that continued as new and the last) replays against the code. */
async function assertReplays(run: RunHandle): Promise<void> {
  const client = run.handle.client;
  let ids: string[] = [];
  // Visibility is eventually consistent: wait until it lists the executions.
  for (let i = 0; i < 50 && ids.length < 2; i++) {
    ids = [];
    for await (const w of client.list({ query: `WorkflowId = '${run.workflowId}'` })) ids.push(w.runId);
    if (ids.length < 2) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(ids.length >= 2, `executions listed: ${ids.join(', ')}`);
  for (const runId of ids) {
    const history = await client.getHandle(run.workflowId, runId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: prebuiltBundle(), dataConverter: testDataConverter() }, history, run.workflowId);
  }
}

describe('hostile floods (real server)', function () {
  this.timeout(600_000);
  const opts = (evidence: FileEvidenceSink) => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir: HOSTILE_POLICIES, evidence });
  const tempSink = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-flood-'));
    return { dir, sink: new FileEvidenceSink({ dir, signer: TEST_SIGNER }) };
  };

  it(`${FLOOD} bad approvals: the run continues as new, keeps its approvals and state, counts every refusal, and is still decidable`, async function () {
    const { dir, sink } = tempSink();
    await withWorker(opts(sink), async (h) => {
      const input = { workspaceId: 'hostile', correlationId: uid('corr'), requestedBy: alice, action: { runtime: 'echo', target: 'hostile/thing', operation: 'flood', input: { n: 1 } }, idempotencyKey: uid('key'), reason: 'flood' };
      const { run } = await h.portarium.startRun(input);
      const s0 = await waitForState(run, 'AwaitingApproval');
      const firstRunId = (await run.handle.describe()).runId;
      const before = await run.decide({ kind: 'approve', ...decision(bob, s0.actionHash) });
      assert.equal(before.approvalsNeeded, 1);

      const accepted = await flood(FLOOD, (i) => run.handle.signal('approve', { ...decision(carol, 'f'.repeat(64)), decisionId: `junk-${i}` }));
      assert.ok(accepted > 8_000, `${accepted} of ${FLOOD} signals taken`);
      const st = await waitForStatus(run, (s) => s.refusalsTotal === accepted && (s.continuations ?? 0) >= 1, 300_000);
      const now = await run.handle.describe();
      assert.notEqual(now.runId, firstRunId, 'the run continued as new');
      assert.ok((st.continuations ?? 0) >= 1);
      assert.ok(now.historyLength < 51_200);
      assert.equal(st.state, 'AwaitingApproval');
      assert.equal(st.actionHash, s0.actionHash);
      assert.equal(st.policyHash, s0.policyHash);
      assert.deepEqual(st.deadlines, s0.deadlines, 'deadlines are absolute and unchanged');
      assert.equal(st.firstExecutionRunId, firstRunId);
      assert.deepEqual(st.approvals.map((a) => a.approverId), ['bob'], 'the approval given before the flood still counts');
      assert.equal(st.approvalsNeeded, 1);
      assert.ok(st.refusals.length <= 20 && st.refusals.every((r) => r.type === 'ActionHashMismatch'));
      assert.equal((await h.ledger.counts()).applied, 0, 'nothing dispatched');
      assert.equal((await h.portarium.startRun(input)).existing, true, 'the same request still finds its run');

      const after = await run.decide({ kind: 'approve', ...decision(carol, st.actionHash) });
      assert.equal(after.counted, true);
      assert.equal((await run.result()).state, 'Succeeded');
      assert.equal((await h.ledger.counts()).applied, 1, 'dispatched once');
      await assertEvidenceEndToEnd(run, dir, sink);
      const ev = await run.evidence();
      assert.ok(ev.entries.some((e) => e.event === 'ApprovalRecorded' && e.actor.id === 'bob'));
      assert.equal(ev.entries.filter((e) => e.event === 'StateAwaitingApproval').length, 1, 'the wait is entered once, not again per execution');
      const summary = ev.entries.filter((e) => e.event === 'RequestsRefusedSummary').reduce((n, e) => n + Number(e.data?.total ?? 0), 0);
      assert.equal(ev.entries.filter((e) => e.event === 'RequestRefused').length + summary, accepted, 'every refusal is in evidence, one by one or counted');
    });
  });

  it('a signed approval given before continue-as-new still counts (and replays as counted); one signed after it verifies', async function () {
    const { dir, sink } = tempSink();
    await withWorker(opts(sink), async (h) => {
      const run = await start(h, 'flood-signed');
      const s0 = await waitForState(run, 'AwaitingApproval');
      const firstRunId = (await run.handle.describe()).runId;
      const d = decision(bob, s0.actionHash);
      const bobs = { kind: 'approve' as const, ...d, ...sign(run, s0, 'approve', d.decisionId, 'bob') };
      assert.equal((await run.decide(bobs)).counted, true);

      // Unsigned approvals: each refused SignatureInvalid.
      const accepted = await flood(6_000, (i) => run.handle.signal('approve', { ...decision(oscar, s0.actionHash), decisionId: `unsigned-${i}` }));
      const st = await waitForStatus(run, (s) => s.refusalsTotal === accepted && (s.continuations ?? 0) >= 1, 300_000);
      assert.notEqual((await run.handle.describe()).runId, firstRunId, 'the run continued as new');
      assert.equal(st.firstExecutionRunId, firstRunId, 'signatures stay bound to the first execution');
      assert.deepEqual(st.approvals.map((a) => a.approverId), ['bob']);
      const again = await run.decide(bobs);
      assert.equal(again.counted, true, 'the decision id and its verdict were carried');

      const o = decision(oscar, st.actionHash);
      const late = await run.decide({ kind: 'approve', ...o, ...sign(run, st, 'approve', o.decisionId, 'oscar') });
      assert.equal(late.counted, true);
      assert.equal((await run.result()).state, 'Succeeded');
      assert.equal((await h.ledger.counts()).applied, 1);
      await assertEvidenceEndToEnd(run, dir, sink);
    });
  });

  it('a run continued while changes were requested takes the amendment, judged by the policy it started with, and completes', async function () {
    const { dir, sink } = tempSink();
    await withWorker(opts(sink), async (h) => {
      const run = await start(h, 'flood');
      const s0 = await waitForState(run, 'AwaitingApproval');
      const firstRunId = (await run.handle.describe()).runId;
      await run.decide({ kind: 'requestChanges', ...decision(bob, s0.actionHash, { rationale: 'smaller please' }) });
      const asked = await waitForState(run, 'ChangesRequested');
      const accepted = await flood(5_000, (i) => run.handle.signal('approve', { ...decision(carol, s0.actionHash), decisionId: `late-${i}` }));
      const st = await waitForStatus(run, (s) => s.refusalsTotal === accepted && (s.continuations ?? 0) >= 1, 300_000);
      assert.notEqual((await run.handle.describe()).runId, firstRunId, 'the run continued as new');
      assert.equal(st.state, 'ChangesRequested');
      assert.deepEqual(st.deadlines, asked.deadlines);
      const amended = await run.amend({ amendmentId: 'a-1', amendedBy: alice, action: { runtime: 'echo', target: 'hostile/thing', operation: 'flood', input: { n: 2 } }, reason: 'smaller' });
      assert.equal(amended.state, 'AwaitingApproval');
      assert.equal(amended.policyHash, s0.policyHash, 'the same policy decides the amendment');
      assert.equal(amended.approvalsNeeded, 2, 'a new round: two approvals for the amended action');
      await run.decide({ kind: 'approve', ...decision(carol, amended.actionHash) });
      await run.decide({ kind: 'approve', ...decision({ id: 'dan', roles: ['approver'] }, amended.actionHash) });
      assert.equal((await run.result()).state, 'Succeeded');
      assert.equal((await h.ledger.counts()).applied, 1);
      await assertEvidenceEndToEnd(run, dir, sink);
      await assertReplays(run);
    });
  });

  it('runs continued in a veto window and awaiting manual completion keep their deadlines and still take the release and the report', async function () {
    const { dir, sink } = tempSink();
    await withWorker(opts(sink), async (h) => {
      const assisted = await start(h, 'flood-assisted');
      const manual = await start(h, 'flood-manual');
      const [a0, m0] = await Promise.all([waitForState(assisted, 'VetoWindow'), waitForState(manual, 'AwaitingManualCompletion')]);
      const junk = (run: RunHandle, hash: string) => flood(4_500, (i) => run.handle.signal('approve', { ...decision(carol, hash), actionHash: 'e'.repeat(64), decisionId: `j-${i}` }), 2);
      const [na, nm] = await Promise.all([junk(assisted, a0.actionHash), junk(manual, m0.actionHash)]);
      const [a1, m1] = await Promise.all([
        waitForStatus(assisted, (s) => s.refusalsTotal === na && (s.continuations ?? 0) >= 1, 300_000),
        waitForStatus(manual, (s) => s.refusalsTotal === nm && (s.continuations ?? 0) >= 1, 300_000),
      ]);
      assert.equal(a1.state, 'VetoWindow');
      assert.deepEqual(a1.deadlines, a0.deadlines, 'the veto window ends when it always did');
      assert.equal(m1.state, 'AwaitingManualCompletion');
      assert.deepEqual(m1.deadlines, m0.deadlines);
      await assisted.decide({ kind: 'approve', ...decision(bob, a1.actionHash) });
      assert.equal((await assisted.result()).state, 'Succeeded');
      await manual.completeManually({ completionId: 'mc-1', completedBy: oscar, completedAt: new Date().toISOString(), evidenceRef: 'CHG-1', actionHash: m1.actionHash });
      assert.equal((await manual.result()).state, 'ManuallyCompleted');
      assert.equal((await h.ledger.counts()).applied, 1, 'only the released run dispatched');
      await assertEvidenceEndToEnd(assisted, dir, sink);
      await assertEvidenceEndToEnd(manual, dir, sink);
    });
  });

  it('a start with a forged continued state (not a continued run) fails InvalidRunInput and dispatches nothing', async function () {
    const { sink } = tempSink();
    await withWorker(opts(sink), async (h) => {
      const input = { workspaceId: 'hostile', correlationId: 'c', requestedBy: alice, action: { runtime: 'echo', target: 'hostile/thing', operation: 'flood', input: { n: 1 } }, idempotencyKey: uid('k'), reason: 'forged' };
      const forged = {
        continued: {
          schemaVersion: 1,
          input,
          state: 'AwaitingApproval',
          tier: 'HumanApprove',
          approvals: { approvals: [{ decisionId: 'd-1', approverId: 'bob', approverRoles: ['approver'], at: '2026-01-01T00:00:00.000Z', countsFrom: '2026-01-01T00:00:00.000Z' }, { decisionId: 'd-2', approverId: 'carol', approverRoles: ['approver'], at: '2026-01-01T00:00:00.000Z', countsFrom: '2026-01-01T00:00:00.000Z' }], seen: [] },
          policy: { effect: 'Allow', tier: 'Auto', quorum: 0, eligibleRoles: [], escalation: [] },
        },
      };
      const handle = await h.client.workflow.start('governedRun', { taskQueue: h.taskQueue, workflowId: `hostile:${uid('forged')}`, args: [forged] });
      await assert.rejects(handle.result(), (e) => failureType(e) === 'InvalidRunInput');
      assert.equal((await h.ledger.counts()).applied, 0);
    });
  });
});
