/**
 * `npm run bench` (pending case): BENCH_PENDING (10000) HumanApprove governed runs waiting on ONE
 * worker process as deployed (`node dist/workers/main.js`, default cache settings, encryption on,
 * the real policies), its RSS while they wait (target ≤ 1 GiB), then every run approved (status for
 * the actionHash, then the `decide` update, as an approver would) and how long that takes, with the
 * worker's sticky-cache misses and replays from its own Prometheus metrics.
 * Runs arrive as they would, not as one burst: at most BENCH_PENDING_WINDOW (200, under the default
 * cache) are between started and waiting, or between approved and completed, so the case measures
 * holding runs, not a server queue of 10,000 first tasks (which the dev server works through slowly).
 * Knobs: BENCH_PENDING, BENCH_PENDING_CONCURRENCY (40), BENCH_PENDING_WINDOW; PORTARIUM_MAX_CACHED_WORKFLOWS is passed to
 * the worker; BENCH_WORKER_NODE_ARGS adds node flags (e.g. --max-old-space-size=512); BENCH_WORKER_LOG
 * names a file for the worker's output.
 * Results: a table, a JSON line, and the keys pendingRuns, pendingRssMiB, approveAllSecs (and the
 * others below) merged into the JSON file named by BENCH_RESULTS_FILE when it is set.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { PortariumClient, type RunHandle } from '../../workers/client';
import { PROJECT_ROOT, loadConfig } from '../../workers/config';
import { portariumDataConverter } from '../../workers/codec/data-converter';
import type { Principal } from '../../workflows/types';
import { freePort, startDevServer } from '../support/dev-server';

const PENDING = Number(process.env.BENCH_PENDING ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_PENDING_CONCURRENCY ?? 40);
const WINDOW = Number(process.env.BENCH_PENDING_WINDOW ?? 200);
const alice: Principal = { id: 'alice', roles: ['dev'] };
const bob: Principal = { id: 'bob', roles: ['approver'] };

/** Resident set of a process in MiB (Linux /proc; 0 elsewhere). */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Sum of every sample of a Prometheus metric whose name starts with `name` (counters, gauges, histogram _count). */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line.trim());
    if (m && (m[1] === name || m[1] === `${name}_total`)) sum += Number(m[3]);
  }
  return sum;
}

/**
 * Call `one(i)` for i < n, `concurrency` at a time, pausing while `done()` (a visibility count) lags
 * more than WINDOW behind the calls made.
 */
async function paced(n: number, concurrency: number, done: () => Promise<number>, one: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  let finished = 0;
  let checking: Promise<void> | undefined;
  const room = async () => {
    while (next - finished >= WINDOW) {
      checking ??= done().then((c) => void (finished = c)).finally(() => (checking = undefined));
      await checking;
      if (next - finished >= WINDOW) await new Promise((r) => setTimeout(r, 250));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (;;) {
      await room();
      if (next >= n) return;
      await one(next++);
    }
  }));
}

/** Retry a call the server may throttle or time out under a burst; a real refusal is thrown after a few tries. */
async function retried<T>(what: () => Promise<T>, tries = 8): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await what();
    } catch (err) {
      if (i >= tries) throw err;
      await new Promise((r) => setTimeout(r, 200 * i));
    }
  }
}

function startWorker(env: Record<string, string>): Promise<{ child: ChildProcess; output: () => string }> {
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, path.join(PROJECT_ROOT, 'dist', 'workers', 'main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const log = process.env.BENCH_WORKER_LOG ? fs.createWriteStream(process.env.BENCH_WORKER_LOG) : undefined;
  const keep = (d: Buffer) => {
    log?.write(d);
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (/pid=\d+ polling/.test(out)) {
        clearInterval(timer);
        resolve({ child, output: () => out });
      }
    }, 50);
    child.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`bench worker exited ${code}: ${out}`));
    });
  });
}

export interface PendingResults {
  pendingRuns: number;
  pendingRssMiB: number;
  pendingIdleRssMiB: number;
  pendingCacheSize: number;
  pendingStartSecs: number;
  approveAllSecs: number;
  approveCacheMisses: number;
  approveEvictions: number;
  pendingBenchSecs: number;
}

export async function pendingBench(): Promise<PendingResults> {
  const server = await startDevServer();
  const taskQueue = `pending-${Date.now()}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-pending-bench-'));
  const config = loadConfig({ PORTARIUM_DEV_CREATE_KEYS: '1' });
  if (config.payloadEncryption.kind !== 'keyring') throw new Error('the bench expects the keyring default');
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  const metricsUrl = `http://${metricsAddress}/metrics`;
  const worker = await startWorker({
    PATH: process.env.PATH ?? '',
    TEMPORAL_ADDRESS: server.address,
    PORTARIUM_TASK_QUEUE: taskQueue,
    PORTARIUM_DATA_DIR: dataDir,
    // The same keyring as this client's converter: encryption on, as deployed.
    PORTARIUM_KEYRING_FILE: config.payloadEncryption.file,
    PORTARIUM_DEV_CREATE_KEYS: '1',
    PORTARIUM_ECHO_LEDGER: 'memory',
    PORTARIUM_LOG_LEVEL: 'WARN',
    PORTARIUM_METRICS_ADDRESS: metricsAddress,
    ...(process.env.PORTARIUM_MAX_CACHED_WORKFLOWS && { PORTARIUM_MAX_CACHED_WORKFLOWS: process.env.PORTARIUM_MAX_CACHED_WORKFLOWS }),
  });
  const pid = worker.child.pid!;
  const client = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter: portariumDataConverter(config) });
  const portarium = new PortariumClient(client, taskQueue);
  const tag = `p${Date.now()}`;
  const input = (i: number) => ({
    workspaceId: 'demo', correlationId: `${tag}-${i}`, requestedBy: alice,
    action: { runtime: 'echo', target: 'demo/bench', operation: 'write' as const, input: { i } },
    idempotencyKey: `${tag}-${i}`, reason: 'pending benchmark',
  });
  const count = async (filter: string) => Number((await client.workflow.count(`TaskQueue = '${taskQueue}' AND ${filter}`)).count);
  const waiting = `PortariumState = 'AwaitingApproval'`;
  const closed = `ExecutionStatus = 'Completed'`;
  const waitFor = async (state: string, n: number, what: string) => {
    for (let last = -1, same = 0; ; ) {
      const c = await count(state);
      if (worker.child.exitCode !== null) throw new Error(`bench worker exited ${worker.child.exitCode} while ${what}, ${c} runs with ${state}: ${worker.output()}`);
      if (c >= n) return;
      same = c === last ? same + 1 : 0;
      if (same > 120) throw new Error(`stuck at ${c}/${n} runs with ${state} while ${what}: ${worker.output()}`);
      last = c;
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  try {
    // One run first, so the bundle and the codec are warm before the idle RSS is read.
    const warm = await portarium.startRun({ ...input(-1), idempotencyKey: `${tag}-warm` });
    await waitFor(waiting, 1, 'warming up');
    const idleRss = rssMiB(pid);
    const s0 = performance.now();
    await paced(PENDING, CONCURRENCY, async () => (await count(waiting)) - 1, (i) => retried(() => portarium.startRun(input(i))));
    await waitFor(waiting, PENDING + 1, 'starting runs');
    const startSecs = (performance.now() - s0) / 1000;
    // RSS while they wait: the highest of ten samples a second apart (GC makes it move).
    let rss = 0;
    for (let i = 0; i < 10; i++) {
      rss = Math.max(rss, rssMiB(pid));
      await new Promise((r) => setTimeout(r, 1000));
    }
    const cacheSize = await metric(metricsUrl, 'temporal_sticky_cache_size');
    const misses0 = await metric(metricsUrl, 'temporal_sticky_cache_miss');
    const evictions0 = await metric(metricsUrl, 'temporal_sticky_cache_total_forced_eviction');
    const approve = async (run: RunHandle, i: number) => {
      const { actionHash } = await retried(() => run.status());
      await retried(() => run.decide({ kind: 'approve', decisionId: `${tag}-d-${i}`, approver: bob, actionHash }));
    };
    const t0 = performance.now();
    await paced(PENDING + 1, CONCURRENCY, () => count(closed), (i) => approve(i === PENDING ? warm.run : portarium.run(`demo:${tag}-${i}`), i));
    await waitFor(closed, PENDING + 1, 'approving runs');
    const approveAllSecs = (performance.now() - t0) / 1000;
    return {
      pendingRuns: PENDING,
      pendingRssMiB: Math.round(rss),
      pendingIdleRssMiB: Math.round(idleRss),
      pendingCacheSize: cacheSize,
      pendingStartSecs: +startSecs.toFixed(1),
      approveAllSecs: +approveAllSecs.toFixed(1),
      approveCacheMisses: (await metric(metricsUrl, 'temporal_sticky_cache_miss')) - misses0,
      approveEvictions: (await metric(metricsUrl, 'temporal_sticky_cache_total_forced_eviction')) - evictions0,
      pendingBenchSecs: 0,
    };
  } finally {
    await new Promise<void>((resolve) => {
      if (worker.child.exitCode !== null || worker.child.signalCode !== null) return resolve();
      worker.child.once('exit', () => resolve());
      worker.child.kill('SIGTERM');
    });
    await client.connection.close();
    await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Merge `results` into the JSON object in `file` (created when missing). */
function mergeInto(file: string, results: object): void {
  const old = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8') || '{}') : {};
  fs.writeFileSync(file, `${JSON.stringify({ ...old, ...results }, null, 2)}\n`);
}

async function main(): Promise<void> {
  if (PENDING <= 0) return void console.log('pending case skipped (BENCH_PENDING=0)');
  const began = performance.now();
  const r = await pendingBench();
  r.pendingBenchSecs = +((performance.now() - began) / 1000).toFixed(1);
  const rows: [string, string, string][] = [
    ['runs waiting for approval on one worker', String(r.pendingRuns), ''],
    ['worker RSS while they wait (MiB)', String(r.pendingRssMiB), 'target ≤ 1024'],
    ['worker RSS with one run waiting (MiB)', String(r.pendingIdleRssMiB), ''],
    ['sticky cache size (runs)', String(r.pendingCacheSize), ''],
    ['start all, until all wait (s)', String(r.pendingStartSecs), ''],
    ['approve all, until all complete (s)', String(r.approveAllSecs), ''],
    ['sticky cache misses while approving', String(r.approveCacheMisses), ''],
    ['sticky cache evictions while approving', String(r.approveEvictions), ''],
    ['whole case (s)', String(r.pendingBenchSecs), ''],
  ];
  console.log(`\npending runs: ${r.pendingRuns} HumanApprove runs waiting on one worker process\n`);
  for (const [k, v, t] of rows) console.log(`${k.padEnd(44)} ${v.padStart(11)}  ${t}`);
  if (process.env.BENCH_RESULTS_FILE) mergeInto(process.env.BENCH_RESULTS_FILE, r);
  console.log(JSON.stringify(r));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
