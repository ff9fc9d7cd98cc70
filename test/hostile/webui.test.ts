/**
 * Hostile input against what the Web UI shows of a run: its static summary and details (from the
 * start request) and its current details (from the run's state). Read as the UI reads them: the
 * start's user metadata (`describe`) and the SDK's `__temporal_workflow_metadata` query.
 */
import * as assert from 'node:assert/strict';
import { defineQuery } from '@temporalio/workflow';
import type { RunHandle } from '../../workers/client';
import { MAX_DETAILS_CHARS } from '../../workflows/run/details';
import { RunState } from '../../workflows/types';
import { alice, bob, decision, failureType, mallory, waitForState, waitForStatus, withWorker } from '../support/harness';
import { testEnv } from '../support/shared';

/** The query the Web UI sends for a run's current details (answered by the SDK, not by governedRun). */
const metadataQuery = defineQuery<{ currentDetails?: string }>('__temporal_workflow_metadata');
const currentDetails = async (run: RunHandle) => (await run.handle.query(metadataQuery)).currentDetails ?? '';

const SECRET = 'sk_live_0123456789abcdefXYZ';

describe('hostile input and the Web UI (real server)', function () {
  this.timeout(120_000);
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });

  it('a start whose reason holds a credential and Markdown: the static details mask it and stay one row; the summary is one line', async function () {
    await withWorker(opts(), async (h) => {
      const reason = `rotate now\n| injected | row |\nAuthorization: Bearer ${SECRET} and ${SECRET}`;
      const run = await h.start('write', { reason });
      await waitForState(run, RunState.AwaitingApproval);
      const d = await run.handle.describe();
      const summary = await d.staticSummary();
      const details = (await d.staticDetails()) ?? '';
      assert.equal(summary, 'test: echo write test/thing');
      assert.ok(!details.includes(SECRET), 'the credential reached the static details');
      assert.ok(!details.includes('| injected |'), 'the reason added a table row');
      assert.equal(details.split('\n').filter((l) => l.startsWith('| reason |')).length, 1);
      // The run is untouched by it: still decidable.
      const s = await run.status();
      await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      assert.equal((await run.result()).state, RunState.Succeeded);
    });
  });

  it('refused messages with Markdown and credentials in their text: details count them by type and never quote them', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write');
      const s = await waitForState(run, RunState.AwaitingApproval);
      // Self-approval (SoD) carrying a hostile rationale, by signal and by update; a foreign action hash.
      const rationale = `# pwned\n[click](http://example.invalid) token=${SECRET}`;
      await run.signalDecision('approve', decision(alice, s.actionHash, { rationale }));
      await assert.rejects(run.decide({ kind: 'approve', ...decision(alice, s.actionHash, { rationale }) }), (e: unknown) => failureType(e) === 'SelfApprovalRefused');
      await run.signalDecision('approve', decision(mallory, 'f'.repeat(64), { rationale }));
      await waitForStatus(run, (st) => (st.refusalsTotal ?? 0) >= 3);
      const details = await currentDetails(run);
      assert.ok(!details.includes(SECRET), 'a credential reached the current details');
      assert.ok(!details.includes('pwned') && !details.includes('example.invalid'), 'refused text reached the current details');
      assert.match(details, /\| refusals \| 3 \(latest: `SelfApprovalRefused` ×2/);
      assert.match(details, /AwaitingApproval/);
      // Still decidable by a real approver, and the details follow.
      await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      await run.result();
      assert.match(await currentDetails(run), /^\*\*Succeeded\*\*/);
    });
  });

  it('a flood of distinct refusals: the current details stay bounded and the run stays decidable', async function () {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write');
      const s = await waitForState(run, RunState.AwaitingApproval);
      const sends = Array.from({ length: 60 }, (_, i) => run.signalDecision('approve', decision({ id: `m${i}-${'x'.repeat(100)}`, roles: ['approver'] }, 'e'.repeat(64))));
      await Promise.all(sends);
      await waitForStatus(run, (st) => (st.refusalsTotal ?? 0) >= 60);
      const details = await currentDetails(run);
      assert.ok(details.length <= MAX_DETAILS_CHARS, `details grew to ${details.length} chars`);
      assert.match(details, /\| refusals \| 60 /);
      await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      assert.equal((await run.result()).state, RunState.Succeeded);
    });
  });
});
