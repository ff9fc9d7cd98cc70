/**
 * Worker processes (`node dist/workers/main.js`, as deployed) share one task queue, and a run
 * survives its worker being killed: a new worker replays it from history and dispatches exactly once,
 * counted at the runtime's own ledger on disk.
 */
import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PortariumClient } from '../workers/client';
import { PROJECT_ROOT } from '../workers/config';
import { alice, bob, decision, TEST_POLICY_DIR, uid, waitForState } from './support/harness';
import { DEV_KEYS, shared, testEnv, testKeyringFile } from './support/shared';

function startWorkerProcess(taskQueue: string, dataDir: string): ChildProcess {
  const env = {
    PATH: process.env.PATH,
    TEMPORAL_ADDRESS: shared.address,
    PORTARIUM_TASK_QUEUE: taskQueue,
    PORTARIUM_POLICY_DIR: TEST_POLICY_DIR,
    PORTARIUM_DATA_DIR: dataDir,
    PORTARIUM_KEYRING_FILE: testKeyringFile(),
    ...DEV_KEYS,
    PORTARIUM_ECHO_LEDGER: 'file',
    PORTARIUM_LOG_LEVEL: 'WARN',
    // Two slots each, so one process cannot take every task of a burst.
    PORTARIUM_MAX_CONCURRENT_ACTIVITIES: '2',
  };
  return spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'workers', 'main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function ledgerLines(dataDir: string): { key: string; pid: number }[] {
  const file = path.join(dataDir, 'echo-ledger', 'calls.log');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const appliedCount = (dataDir: string) => fs.readdirSync(path.join(dataDir, 'echo-ledger', 'applied')).length;

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

describe('worker processes', function () {
  this.timeout(90_000);
  let dataDir: string;
  let taskQueue: string;
  let portarium: PortariumClient;
  const children: ChildProcess[] = [];

  beforeEach(function () {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-wp-'));
    taskQueue = uid('tq');
    portarium = new PortariumClient(testEnv().client, taskQueue);
  });
  afterEach(async function () {
    await Promise.all(children.splice(0).map((c) => stop(c, 'SIGKILL')));
  });

  const start = (operation: string, input: Record<string, number> = {}) =>
    portarium.startRun({
      workspaceId: 'test',
      correlationId: uid('corr'),
      requestedBy: alice,
      action: { runtime: 'echo', target: 'test/restart', operation, input },
      idempotencyKey: uid('key'),
      reason: 'restart test',
    });

  it('announces that it polls with the line temporal-dev.sh waits for', async function () {
    const worker = startWorkerProcess(taskQueue, dataDir);
    children.push(worker);
    let out = '';
    worker.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!out.includes('polling') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // MAINTENANCE: temporal-dev.sh `start_workers` greps for exactly `pid=<pid> polling`.
    assert.ok(out.includes(`pid=${worker.pid} polling`), out);
  });

  it('a run survives its worker being killed while it waits; the new worker dispatches exactly once', async function () {
    const first = startWorkerProcess(taskQueue, dataDir);
    children.push(first);
    const { run } = await start('write');
    const s = await waitForState(run, 'AwaitingApproval', 30_000);
    await stop(first, 'SIGKILL');
    children.push(startWorkerProcess(taskQueue, dataDir));
    await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
    assert.equal((await run.result()).state, 'Succeeded');
    assert.equal(appliedCount(dataDir), 1);
    assert.equal(ledgerLines(dataDir).length, 1);
  });

  it('a worker killed mid-dispatch: the retry on a new worker applies the action once', async function () {
    const first = startWorkerProcess(taskQueue, dataDir);
    children.push(first);
    const { run } = await start('read', { delayMs: 1500 });
    await waitForState(run, 'Dispatching', 30_000);
    await stop(first, 'SIGKILL');
    children.push(startWorkerProcess(taskQueue, dataDir));
    const result = await run.result();
    assert.equal(result.state, 'Succeeded');
    assert.equal(appliedCount(dataDir), 1, 'applied exactly once at the runtime');
  });

  it('several worker processes on one task queue share the work; SIGTERM stops them cleanly', async function () {
    const workers = [startWorkerProcess(taskQueue, dataDir), startWorkerProcess(taskQueue, dataDir)];
    children.push(...workers);
    const runs = await Promise.all(Array.from({ length: 24 }, () => start('read', { delayMs: 300 })));
    const results = await Promise.all(runs.map((r) => r.run.result()));
    assert.ok(results.every((r) => r.state === 'Succeeded'));
    assert.equal(appliedCount(dataDir), 24);
    const pids = new Set(ledgerLines(dataDir).map((l) => l.pid));
    assert.equal(pids.size, 2, 'both processes executed dispatches');
    const codes = await Promise.all(
      workers.map((w) => new Promise<number | null>((resolve) => { w.once('exit', (code) => resolve(code)); w.kill('SIGTERM'); })),
    );
    assert.deepEqual(codes, [0, 0], 'graceful shutdown exits 0');
  });
});
