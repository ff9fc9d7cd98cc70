/**
 * Compute and queue isolation: workspaces with `isolation: dedicated` or `{ tier }` run only on the
 * workers started for them; the client routes each run to its queue; the shared queue stays the default.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { createEchoRuntime, type EchoLedger, MemoryEchoLedger } from '../activities/runtimes/echo';
import { workspaceRefusal } from '../activities/workspace-guard';
import { TaskQueueRouting } from '../policies/isolation';
import { PolicyLoadError, loadPolicyDir } from '../activities/policy/load';
import { PortariumClient } from '../workers/client';
import { ConfigError, loadConfig } from '../workers/config';
import { createPortariumWorkers, servedQueues } from '../workers/worker';
import type { GovernedRunInput } from '../workflows/types';
import { alice, TEST_POLICY_DIR, tempFileSink, uid } from './support/harness';
import { DEV_KEYS, testEnv } from './support/shared';
import { startWorkerProcess } from './support/worker-process';

/** test/policies plus three isolated workspaces: one dedicated, two sharing the tier `gold`. */
function isolatedPolicyDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-iso-'));
  for (const f of fs.readdirSync(TEST_POLICY_DIR)) fs.copyFileSync(path.join(TEST_POLICY_DIR, f), path.join(dir, f));
  const ws = (id: string, isolation: string) =>
    fs.writeFileSync(path.join(dir, `${id}.yaml`), `schemaVersion: 1\nkind: workspace\nworkspace: ${id}\nisolation: ${isolation}\nrules:\n  - { id: read-auto, match: { runtime: echo, operation: read }, tier: Auto }\n`);
  ws('iso-a', 'dedicated');
  ws('iso-g1', '{ tier: gold }');
  ws('iso-g2', '{ tier: gold }');
  return dir;
}

/** Notes which runs' actions reached this worker's runtime. */
class SeeingLedger implements EchoLedger {
  readonly workflowIds: string[] = [];
  private readonly inner = new MemoryEchoLedger();
  async apply(key: string, record: { workflowId: string; attempt: number }): Promise<boolean> {
    this.workflowIds.push(record.workflowId);
    return this.inner.apply(key);
  }
  counts() {
    return this.inner.counts();
  }
}

const input = (workspaceId: string): GovernedRunInput => ({
  workspaceId,
  correlationId: uid('corr'),
  requestedBy: alice,
  action: { runtime: 'echo', target: 'iso/thing', operation: 'read', input: { n: 1 } },
  idempotencyKey: uid('key'),
  reason: 'isolation test',
});

describe('isolation: routing and pools (pure)', () => {
  const dir = isolatedPolicyDir();
  const routing = loadPolicyDir(dir).routing('portarium');

  it('routes shared, dedicated and tier workspaces to their queues; unknown workspaces to the shared one', () => {
    assert.equal(routing.queueFor('test'), 'portarium');
    assert.equal(routing.queueFor('iso-a'), 'portarium.ws.iso-a');
    assert.equal(routing.queueFor('iso-g1'), 'portarium.tier.gold');
    assert.equal(routing.queueFor('iso-g2'), 'portarium.tier.gold');
    assert.equal(routing.queueFor('nobody'), 'portarium');
    assert.deepEqual(
      routing.queues().map((q) => [q.queue, q.workspaces]),
      [['portarium', ['sod', 'test']], ['portarium.ws.iso-a', ['iso-a']], ['portarium.tier.gold', ['iso-g1', 'iso-g2']]],
    );
  });

  it('a bad isolation setting is a policy error naming the field', () => {
    const bad = isolatedPolicyDir();
    fs.writeFileSync(path.join(bad, 'iso-a.yaml'), 'schemaVersion: 1\nkind: workspace\nworkspace: iso-a\nisolation: private\nrules: []\n');
    assert.throws(() => loadPolicyDir(bad), (err: unknown) => err instanceof PolicyLoadError && err.problems.some((p) => p.path === 'isolation' && /shared, dedicated or \{ tier/.test(p.message)));
  });

  it('a worker serves only pools the policies route to, and says why otherwise', () => {
    const policies = loadPolicyDir(dir);
    const serve = (env: Record<string, string>) => servedQueues(loadConfig({ PORTARIUM_POLICY_DIR: dir, ...env }), policies).map((q) => q.queue);
    assert.deepEqual(serve({}), ['portarium']);
    assert.deepEqual(serve({ PORTARIUM_WORKSPACES: 'iso-a', PORTARIUM_TIERS: 'gold' }), ['portarium.ws.iso-a', 'portarium.tier.gold']);
    assert.deepEqual(serve({ PORTARIUM_WORKSPACES: 'iso-a', PORTARIUM_SERVE_SHARED: 'true' }), ['portarium', 'portarium.ws.iso-a']);
    assert.throws(() => serve({ PORTARIUM_WORKSPACES: 'test' }), (e: unknown) => e instanceof ConfigError && /workspace test is not dedicated .*queue portarium/.test(e.message));
    assert.throws(() => serve({ PORTARIUM_WORKSPACES: 'ghost' }), (e: unknown) => e instanceof ConfigError && /no policy file for workspace ghost/.test(e.message));
    assert.throws(() => serve({ PORTARIUM_TIERS: 'silver' }), (e: unknown) => e instanceof ConfigError && /isolation: \{ tier: silver \}/.test(e.message));
    assert.throws(() => loadConfig({ PORTARIUM_SERVE_SHARED: 'false' }), /nothing to poll/);
    assert.throws(() => loadConfig({ PORTARIUM_WORKSPACES: 'Bad Name' }), /PORTARIUM_WORKSPACES: expected comma-separated/);
  });

  it('the activity guard refuses another queue and another workspace, and admits its own', () => {
    const info = (taskQueue: string, workflowId: string) => ({ taskQueue, workflowId, activityType: 'dispatchAction' });
    assert.equal(workspaceRefusal(routing, info('portarium.ws.iso-a', 'iso-a:k1'), [{ workspaceId: 'iso-a' }]), undefined);
    assert.equal(workspaceRefusal(routing, info('portarium', 'iso-a:k1'), [{ workspaceId: 'iso-a' }])?.type, 'WrongTaskQueue');
    assert.equal(workspaceRefusal(routing, info('portarium', 'test:k1'), [{ workspaceId: 'sod' }])?.type, 'WorkspaceMismatch');
    assert.equal(workspaceRefusal(routing, info('portarium', 'test:k1'), ['sod'])?.type, 'WorkspaceMismatch');
    assert.equal(workspaceRefusal(routing, info('portarium', 'no-prefix'), [{ workspaceId: 'test' }])?.type, 'WorkspaceMismatch');
    // An array or object could be coerced into an id further down: refused, not skipped.
    assert.equal(workspaceRefusal(routing, info('portarium', 'test:k1'), [{ workspaceId: ['test'] }])?.type, 'WorkspaceMismatch');
  });
});

describe('isolation: dedicated and tier workers on a real server', function () {
  this.timeout(90_000);
  const dir = isolatedPolicyDir();

  /** Shared, dedicated (iso-a) and tier (gold) workers, each with its own echo ledger, on queues under `base`. */
  async function withPools<T>(fn: (p: { base: string; portarium: PortariumClient; ledgers: Record<'shared' | 'iso-a' | 'gold', SeeingLedger> }) => Promise<T>): Promise<T> {
    const base = uid('tq');
    const ledgers = { shared: new SeeingLedger(), 'iso-a': new SeeingLedger(), gold: new SeeingLedger() };
    const make = async (env: Record<string, string>, ledger: SeeingLedger) => {
      const config = loadConfig({ PORTARIUM_POLICY_DIR: dir, PORTARIUM_TASK_QUEUE: base, ...DEV_KEYS, ...env }, { echoLedger: 'memory', shutdownGrace: '2s' });
      return (await createPortariumWorkers(config, { connection: testEnv().nativeConnection, runtimes: [createEchoRuntime(ledger)], evidence: tempFileSink() })).workers;
    };
    const workers: Worker[] = [
      ...(await make({}, ledgers.shared)),
      ...(await make({ PORTARIUM_WORKSPACES: 'iso-a' }, ledgers['iso-a'])),
      ...(await make({ PORTARIUM_TIERS: 'gold' }, ledgers.gold)),
    ];
    const portarium = new PortariumClient(testEnv().client, loadPolicyDir(dir).routing(base));
    const running = workers.map((w) => w.run());
    try {
      return await fn({ base, portarium, ledgers });
    } finally {
      workers.forEach((w) => w.shutdown());
      await Promise.all(running);
    }
  }

  it('each run executes on its pool only: the client routes it, and no other worker sees its action', async () => {
    await withPools(async ({ base, portarium, ledgers }) => {
      const runs = await Promise.all(['test', 'iso-a', 'iso-g1', 'iso-g2'].map((ws) => portarium.startRun(input(ws))));
      for (const r of runs) assert.equal((await r.run.result()).state, 'Succeeded');
      const queueOf = async (id: string) => (await testEnv().client.workflow.getHandle(id).describe()).taskQueue;
      assert.deepEqual(await Promise.all(runs.map((r) => queueOf(r.workflowId))), [base, `${base}.ws.iso-a`, `${base}.tier.gold`, `${base}.tier.gold`]);
      const seen = (l: SeeingLedger) => l.workflowIds.map((id) => id.split(':')[0]).sort();
      assert.deepEqual(seen(ledgers.shared), ['test']);
      assert.deepEqual(seen(ledgers['iso-a']), ['iso-a']);
      assert.deepEqual(seen(ledgers.gold), ['iso-g1', 'iso-g2']);
    });
  });

  it('a dedicated workspace run started on the shared queue is refused there (WrongTaskQueue) and nothing is dispatched', async () => {
    await withPools(async ({ base, ledgers }) => {
      const i = input('iso-a');
      const handle = await testEnv().client.workflow.start('governedRun', { taskQueue: base, workflowId: `iso-a:${i.idempotencyKey}`, args: [i] });
      const err = await handle.result().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError);
      let cause: unknown = err;
      while (cause instanceof Error && !('type' in cause && cause.type)) cause = cause.cause;
      assert.equal((cause as { type?: string }).type, 'WrongTaskQueue');
      assert.match((cause as Error).message, new RegExp(`workspace iso-a runs on task queue ${base}\\.ws\\.iso-a, not ${base}$`));
      assert.equal(ledgers.shared.workflowIds.length + ledgers['iso-a'].workflowIds.length, 0);
    });
  });

  it('a worker process started for a workspace polls only its queue, and refuses a workspace that is not dedicated', async () => {
    const base = uid('tq');
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-iso-data-'));
    const env = { PORTARIUM_TASK_QUEUE: base, PORTARIUM_POLICY_DIR: dir, PORTARIUM_DATA_DIR: dataDir, PORTARIUM_LOG_LEVEL: 'WARN', PORTARIUM_CHECK_SEARCH_ATTRIBUTES: 'false' };
    const w = await startWorkerProcess({ ...env, PORTARIUM_WORKSPACES: 'iso-a', PORTARIUM_TIERS: 'gold' });
    try {
      assert.match(w.output(), new RegExp(`queue=${base}\\.ws\\.iso-a,${base}\\.tier\\.gold `));
    } finally {
      w.child.kill('SIGTERM');
      await new Promise((r) => w.child.once('exit', r));
    }
    await assert.rejects(startWorkerProcess({ ...env, PORTARIUM_WORKSPACES: 'test' }), /exited 1: .*workspace test is not dedicated/s);
  });
});

describe('isolation: the routing helper', () => {
  it('a bare queue name keeps the single shared queue for every workspace', () => {
    const r = new TaskQueueRouting('portarium');
    assert.equal(r.queueFor('anything'), 'portarium');
    assert.equal(new PortariumClient(testEnv().client).routing.queueFor('ops'), 'portarium');
  });
});
