/**
 * Waiting runs and the workflow thread's heap, on worker processes as deployed (`node dist/workers/main.js`)
 * with a small workflow heap (PORTARIUM_WORKFLOW_HEAP_MB): with the default cache, runs beyond it
 * are evicted and replayed when decided, and the worker lives; with a cache forced past what the heap
 * holds, the workflow thread dies and the process exits non-zero saying so, instead of lingering.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PortariumClient } from '../workers/client';
import { alice, bob, decision, TEST_POLICY_DIR, uid, waitForState } from './support/harness';
import { testEnv } from './support/shared';
import { startWorkerProcess, type WorkerProcess } from './support/worker-process';

// Small enough that a few hundred waiting runs (~0.8 MiB each) cannot all stay cached.
const HEAP_MIB = 160;

describe('workflow heap', function () {
  this.timeout(240_000);
  let dataDir: string;
  let taskQueue: string;
  let portarium: PortariumClient;
  const workers: WorkerProcess[] = [];

  beforeEach(function () {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-heap-'));
    taskQueue = uid('tq');
    portarium = new PortariumClient(testEnv().client, taskQueue);
  });
  afterEach(async function () {
    for (const w of workers.splice(0)) {
      if (w.child.exitCode === null && w.child.signalCode === null) {
        await new Promise((resolve) => {
          w.child.once('exit', resolve);
          w.child.kill('SIGKILL');
        });
      }
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const worker = async (env: Record<string, string> = {}) => {
    const w = await startWorkerProcess({
      PORTARIUM_WORKFLOW_HEAP_MB: String(HEAP_MIB),
      PORTARIUM_TASK_QUEUE: taskQueue,
      PORTARIUM_POLICY_DIR: TEST_POLICY_DIR,
      PORTARIUM_DATA_DIR: dataDir,
      PORTARIUM_ECHO_LEDGER: 'memory',
      PORTARIUM_LOG_LEVEL: 'WARN',
      PORTARIUM_SHUTDOWN_GRACE: '1s',
      ...env,
    }, 60_000);
    workers.push(w);
    return w;
  };
  const start = (i: number) =>
    portarium.startRun({
      workspaceId: 'test', correlationId: uid('corr'), requestedBy: alice,
      action: { runtime: 'echo', target: 'test/heap', operation: 'write', input: { i } },
      idempotencyKey: uid('key'), reason: 'heap test',
    });
  const waitingCount = async () =>
    Number((await testEnv().client.workflow.count(`TaskQueue = '${taskQueue}' AND PortariumState = 'AwaitingApproval'`)).count);

  it('with the default cache, a small heap holds more waiting runs than it can cache; an evicted run is decided and completes', async function () {
    const w = await worker();
    // The start line says what the cache is and where the number comes from.
    assert.match(w.output(), new RegExp(`workflow-heap=${HEAP_MIB}MiB \\(PORTARIUM_WORKFLOW_HEAP_MB\\) cache=10 runs \\(2.5 MiB per run`));
    const n = 400;
    const runs = [];
    for (let i = 0; i < n; i += 20) runs.push(...(await Promise.all(Array.from({ length: 20 }, (_, j) => start(i + j)))));
    const deadline = Date.now() + 180_000;
    while ((await waitingCount()) < n) {
      assert.equal(w.child.exitCode, null, `worker exited: ${w.output()}`);
      assert.ok(Date.now() < deadline, `only ${await waitingCount()} of ${n} runs waiting`);
      await new Promise((r) => setTimeout(r, 500));
    }
    // The first runs were evicted long ago: deciding them replays them from history.
    for (const { run } of runs.slice(0, 3)) {
      const s = await waitForState(run, 'AwaitingApproval', 30_000);
      await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      assert.equal((await run.result()).state, 'Succeeded');
    }
    assert.equal(w.child.exitCode, null, `worker exited: ${w.output()}`);
    assert.doesNotMatch(w.output(), /workflow thread died/);
  });

  it('a worker whose workflow thread runs out of heap exits non-zero and says why', async function () {
    const w = await worker({ PORTARIUM_MAX_CACHED_WORKFLOWS: '5000' });
    const exited = new Promise<number | null>((resolve) => w.child.once('exit', (code) => resolve(code)));
    let started = 0;
    const gone = () => w.child.exitCode !== null || w.child.signalCode !== null;
    // Feed runs until the thread dies; 2,000 waiting runs are far beyond what this heap holds.
    while (!gone() && started < 2000) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => start(started + j)));
      started += 20;
      await new Promise((r) => setTimeout(r, 200));
    }
    const code = await Promise.race([exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 60_000))]);
    assert.notEqual(code, 'alive', `the worker is still running after ${started} runs: ${w.output()}`);
    assert.notEqual(code, 0);
    assert.equal(code, 70, w.output());
    assert.match(w.output(), /workflow thread died \(ERR_WORKER_OUT_OF_MEMORY/);
  });
});
