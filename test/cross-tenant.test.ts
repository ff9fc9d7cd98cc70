/**
 * Every crossing between workspaces we know of, tried against a real server and the real worker
 * wiring: each is refused with a typed failure and leaves a record (the run's refusals and evidence,
 * the failed workflow's history, or the worker's `cross-workspace refusal` log line).
 * Payload keys are tried in test/encryption.test.ts.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { Secret, SecretStore } from '../activities/secrets/port';
import type { GovernedRunInput } from '../workflows/types';
import { alice, bob, decision, failureType, uid, waitForState, waitForStatus, withWorker } from './support/harness';
import { capturedLogs, testEnv } from './support/shared';
import { bundleTestWorkflows } from './support/test-bundle';

const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });

const input = (over: Partial<GovernedRunInput> = {}): GovernedRunInput => ({
  workspaceId: 'test',
  correlationId: uid('corr'),
  requestedBy: alice,
  action: { runtime: 'echo', target: 'test/thing', operation: 'write', input: { n: 1 } },
  idempotencyKey: uid('key'),
  reason: 'cross-tenant test',
  ...over,
});

/** The innermost ApplicationFailure type of a failed workflow. */
async function failedWith(p: Promise<unknown>): Promise<{ type?: string; message: string }> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof WorkflowFailedError, `expected the run to fail, got ${String(err)}`);
  let e: unknown = err;
  while (e instanceof Error && e.cause && !('type' in e && (e as { type?: string }).type)) e = e.cause;
  return { type: (e as { type?: string }).type, message: (e as Error).message };
}

/** Remembers which workspaces' secrets were asked for. */
class WatchedSecrets implements SecretStore {
  readonly kind = 'watched';
  readonly reads: string[] = [];
  async read(workspaceId: string, runtime: string): Promise<Secret> {
    this.reads.push(`${workspaceId}/${runtime}`);
    return { token: `secret-of-${workspaceId}` };
  }
  async close(): Promise<void> {}
}

describe('cross-tenant refusals', function () {
  this.timeout(120_000);

  it('a run whose workflow id names another workspace than its input is refused before it decides anything', async () => {
    await withWorker(opts(), async (h) => {
      const i = input({ action: { runtime: 'echo', target: 't', operation: 'read', input: {} } });
      const handle = await h.client.workflow.start('governedRun', { taskQueue: h.taskQueue, workflowId: `sod:${i.idempotencyKey}`, args: [i] });
      const f = await failedWith(handle.result());
      assert.equal(f.type, 'WorkspaceMismatch');
      assert.match(f.message, /belongs to workspace sod, but the input names workspace test/);
      assert.equal((await h.ledger.counts()).calls, 0);
      // Recorded: the refusal is the run's closing event in its history.
      const history = await handle.fetchHistory();
      assert.ok(history.events?.some((e) => e.workflowExecutionFailedEventAttributes?.failure?.applicationFailureInfo?.type === 'WorkspaceMismatch'));
    });
  });

  it('a run without a workspace prefix, or requested by a principal of another workspace, is refused', async () => {
    await withWorker(opts(), async (h) => {
      const bare = input();
      const a = await h.client.workflow.start('governedRun', { taskQueue: h.taskQueue, workflowId: bare.idempotencyKey, args: [bare] });
      assert.equal((await failedWith(a.result())).type, 'WorkspaceMismatch');
      const foreign = input({ requestedBy: { ...alice, workspaceId: 'sod' } });
      const b = await h.client.workflow.start('governedRun', { taskQueue: h.taskQueue, workflowId: `test:${foreign.idempotencyKey}`, args: [foreign] });
      const f = await failedWith(b.result());
      assert.equal(f.type, 'WorkspaceMismatch');
      assert.match(f.message, /requester alice acts for workspace sod, not test/);
    });
  });

  it('an approver of workspace sod cannot decide in workspace test, by update or by signal; the refusals are in status and evidence', async () => {
    await withWorker(opts(), async (h) => {
      const run = await h.start('write');
      const s = await waitForState(run, 'AwaitingApproval');
      const outsider = { ...bob, workspaceId: 'sod' };
      await assert.rejects(run.decide({ kind: 'approve', ...decision(outsider, s.actionHash) }), (e: unknown) => failureType(e) === 'WorkspaceMismatch');
      await run.signalDecision('reject', decision(outsider, s.actionHash, { rationale: 'not yours' }));
      await run.cancel({ requestedBy: { id: 'oscar', roles: ['operator'], workspaceId: 'sod' }, reason: 'cross-workspace cancel' });
      const after = await waitForStatus(run, (x) => x.refusals.length >= 3);
      assert.equal(after.state, 'AwaitingApproval');
      assert.deepEqual(after.refusals.map((r) => [r.via, r.type]), [['decide', 'WorkspaceMismatch'], ['reject', 'WorkspaceMismatch'], ['cancelRun', 'WorkspaceMismatch']]);
      const ev = await run.evidence();
      const refused = ev.entries.filter((e) => e.event === 'RequestRefused' && e.data?.type === 'WorkspaceMismatch');
      assert.equal(refused.length, 3);
      assert.match(refused[0].summary, /bob acts for workspace sod, not test/);
      // The same approver, acting for the run's workspace, is counted.
      await run.decide({ kind: 'approve', ...decision({ ...bob, workspaceId: 'test' }, s.actionHash) });
      assert.equal((await run.result()).state, 'Succeeded');
    });
  });

  describe('a rogue workflow in workspace test asking the real activities for workspace sod', () => {
    let dir: string;
    let code: string;
    before(async function () {
      this.timeout(120_000);
      // Workflow code we do not ship: it asks for another workspace's policy, secrets and evidence.
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-rogue-'));
      const workflowsPath = path.join(dir, 'rogue.js');
      fs.writeFileSync(workflowsPath, [
        "const { proxyActivities } = require('@temporalio/workflow');",
        "const acts = proxyActivities({ startToCloseTimeout: '10s', retry: { maximumAttempts: 1 } });",
        'const typeOf = (p) => p.then(() => "allowed", (e) => (e.cause && e.cause.type) || String(e));',
        'exports.rogue = async function rogue(target) {',
        '  return {',
        '    policy: await typeOf(acts.loadPolicySnapshot(target)),',
        "    dispatch: await typeOf(acts.dispatchAction({ workspaceId: target, correlationId: 'c', workflowId: 'x', runtime: 'echo', target: 't', operation: 'read', input: {}, tier: 'Auto', actionHash: '0'.repeat(64), dispatchKey: 'k' })),",
        '    evidence: await typeOf(acts.persistEvidence({ workspaceId: target, runId: target + ":forged", entries: [] })),',
        "    own: await typeOf(acts.loadPolicySnapshot('test')),",
        '  };',
        '};',
      ].join('\n'));
      code = await bundleTestWorkflows(workflowsPath);
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('is refused policy, secrets and evidence of sod (WorkspaceMismatch), logged, while its own workspace is served', async () => {
      const secrets = new WatchedSecrets();
      await withWorker({ ...opts(), secrets, workflowBundle: { code } }, async (h) => {
        const before = capturedLogs.length;
        const workflowId = `test:${uid('rogue')}`;
        const verdicts = await h.client.workflow.execute('rogue', { taskQueue: h.taskQueue, workflowId, args: ['sod'] });
        assert.deepEqual(verdicts, { policy: 'WorkspaceMismatch', dispatch: 'WorkspaceMismatch', evidence: 'WorkspaceMismatch', own: 'allowed' });
        assert.deepEqual(secrets.reads, []);
        assert.deepEqual(await h.evidence.readRun('sod', 'sod:forged'), []);
        const logged = capturedLogs.slice(before).filter((l) => l.message === 'cross-workspace refusal' && l.meta?.workflowId === workflowId);
        assert.deepEqual(logged.map((l) => l.meta?.refusal), ['WorkspaceMismatch', 'WorkspaceMismatch', 'WorkspaceMismatch']);
        assert.match(String(logged[1].meta?.reason), /dispatchAction: a run of workspace test asked for workspace sod/);
      });
    });
  });
});
