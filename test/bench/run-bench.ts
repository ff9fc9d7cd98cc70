/**
 * `npm run bench`: on one dev server and one worker with the same settings, governed Auto runs per
 * second vs a bare workflow calling the same no-op activity; history events per run for both; and
 * decision → dispatch latency for HumanApprove runs. Last line: one JSON object with the results.
 * Knobs: BENCH_RUNS (300), BENCH_CONCURRENCY (30), BENCH_LATENCY_RUNS (100), and BENCH_SKIP=bare|governed
 * to measure (or profile with --cpu-prof) one kind alone.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileSecretStore } from '../../activities/secrets/local-file';
import { FilePayloadStore } from '../../activities/payload-store';
import { FileEvidenceSink } from '../../activities/evidence/file-sink';
import { signerFromHex } from '../../activities/evidence/tree-head-signer';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { loadPolicyDir } from '../../activities/policy/load';
import { PRELOADED_MODULES, WORKFLOW_CLOCK_MODULE } from '../../workers/bundle';
import { PortariumClient } from '../../workers/client';
import { PROJECT_ROOT, loadConfig } from '../../workers/config';
import { FAILURE_CONVERTER_PATH, portariumDataConverter } from '../../workers/codec/data-converter';
import type { Principal } from '../../workflows/types';
import { startDevServer } from '../support/dev-server';
import { benchActivities, timingRuntime } from './bench-activities';
import { policyEvalMicros } from './policy-bench';
import { type GrowthCase, awaitingActionHash, measureGrowth, writeGrowthPolicy } from './growth-bench';

const RUNS = Number(process.env.BENCH_RUNS ?? 300);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 30);
const LATENCY_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 100);
const GROWTH_RUNS = Number(process.env.BENCH_GROWTH_RUNS ?? 30);
const TASK_QUEUE = 'bench';
const alice: Principal = { id: 'alice', roles: ['dev'] };
const bob: Principal = { id: 'bob', roles: ['approver'] };

/** CPU seconds used so far by this process and by the server process (Linux /proc; 0 elsewhere). */
function cpuNow(serverPid?: number): { self: number; server: number } {
  const u = process.cpuUsage();
  let server = 0;
  try {
    const fields = fs.readFileSync(`/proc/${serverPid}/stat`, 'utf8').split(') ')[1].split(' ');
    server = (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    // Not Linux, or no server pid: report 0.
  }
  return { self: (u.user + u.system) / 1e6, server };
}

/** Mean time between WorkflowTaskStarted and WorkflowTaskCompleted in a history. */
function meanWorkflowTaskMs(events: { eventType?: unknown; eventTime?: { seconds?: unknown; nanos?: number | null } | null }[]): number {
  const num = (v: unknown) => (v && typeof v === 'object' && 'toNumber' in v ? (v as { toNumber(): number }).toNumber() : Number(v ?? 0));
  const ms = (e: (typeof events)[number]) => num(e.eventTime?.seconds) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
  const durations: number[] = [];
  events.forEach((e, i) => {
    const next = events[i + 1];
    if (String(e.eventType) === '6' && next && String(next.eventType) === '7') durations.push(ms(next) - ms(e));
  });
  return durations.reduce((a, b) => a + b, 0) / Math.max(1, durations.length);
}

async function inBatches(n: number, concurrency: number, one: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await one(next++);
  }));
  return (performance.now() - t0) / 1000;
}

/** verifyRatioNode measured in a process of its own, as `portarium evidence verify` runs. */
function verifyRatioNodeFresh(): number {
  const out = execFileSync(process.execPath, [path.join(__dirname, 'evidence-bench.js'), '--verify-ratio'], { encoding: 'utf8' });
  return +(JSON.parse(out.trim().split('\n').pop()!) as { verifyRatioNode: number }).verifyRatioNode.toFixed(3);
}

/** A history event's type by name, for BENCH_EVENTS=1. */
const eventName = (t: unknown) => temporal.api.enums.v1.EventType[Number(t)] ?? String(t);

const ratioText = (a: number, b: number) => `${b > 0 ? (a / b).toFixed(2) : '–'}×`;

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];

function governedInput(tag: string, i: number, operation: 'read' | 'write') {
  return {
    workspaceId: 'demo', correlationId: `${tag}-${i}`, requestedBy: alice,
    action: { runtime: 'echo', target: 'demo/bench', operation, input: { i } },
    idempotencyKey: `${tag}-${i}`, reason: 'benchmark',
  };
}

/** The shipped policy sets plus the growth cases' workspace, in a temporary folder. */
function benchPolicyDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-bench-policies-'));
  const shipped = path.join(PROJECT_ROOT, 'policies', 'sets');
  for (const f of fs.readdirSync(shipped)) fs.copyFileSync(path.join(shipped, f), path.join(dir, f));
  writeGrowthPolicy(dir);
  return dir;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const server = await startDevServer();
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  // Encryption on, as deployed: the benchmark includes the codec's cost.
  const dataConverter = portariumDataConverter(loadConfig({ PORTARIUM_DEV_CREATE_KEYS: '1' }));
  const client = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter });
  const portarium = new PortariumClient(client, TASK_QUEUE);
  const dispatched = new Map<string, (t: number) => void>();
  const bundle = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'bench-workflows.js'),
    logger: new DefaultLogger('ERROR'),
    preloadModules: PRELOADED_MODULES,
    // The run clock's interceptor, which governed runs need; not the tracing ones (no tracer here).
    workflowInterceptorModules: [WORKFLOW_CLOCK_MODULE],
    failureConverterPath: FAILURE_CONVERTER_PATH,
  });
  const worker = await Worker.create({
    connection: nativeConnection, taskQueue: TASK_QUEUE, workflowBundle: bundle, dataConverter,
    activities: {
      ...createActivities({
        policies: loadPolicyDir(benchPolicyDir()),
        runtimes: [timingRuntime((id) => dispatched.get(id)?.(performance.now()))],
        secrets: new FileSecretStore(path.join(os.tmpdir(), 'portarium-bench-secrets')),
        payloads: new FilePayloadStore(path.join(os.tmpdir(), 'portarium-bench-payloads')),
        evidence: new FileEvidenceSink({ dir: fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-bench-evidence-')), signer: signerFromHex('b'.repeat(64)) }),
      }),
      ...benchActivities,
    },
  });
  const tag = `b${Date.now()}`;
  const results = await worker.runUntil(async () => {
    const bare = (i: number, t: string) => client.workflow.execute('bareRun', { taskQueue: TASK_QUEUE, workflowId: `${t}-bare-${i}`, args: [{ n: i }] });
    const governed = (i: number, t: string) => portarium.startRun(governedInput(`${t}-gov`, i, 'read')).then((s) => s.run.result());
    // Warm both paths, then measure each.
    await inBatches(CONCURRENCY, CONCURRENCY, (i) => bare(i, `${tag}-warm`));
    await inBatches(CONCURRENCY, CONCURRENCY, (i) => governed(i, `${tag}-warm`));
    const c0 = cpuNow(server.process.pid);
    const bareSecs = process.env.BENCH_SKIP === 'bare' ? 1 : await inBatches(RUNS, CONCURRENCY, (i) => bare(i, tag));
    const c1 = cpuNow(server.process.pid);
    const govSecs = process.env.BENCH_SKIP === 'governed' ? 1 : await inBatches(RUNS, CONCURRENCY, (i) => governed(i, tag));
    const c2 = cpuNow(server.process.pid);
    const cpuMs = (a: number, b: number) => +(((b - a) * 1000) / RUNS).toFixed(2);
    const cpu = {
      bareWorker: cpuMs(c0.self, c1.self), bareServer: cpuMs(c0.server, c1.server),
      govWorker: cpuMs(c1.self, c2.self), govServer: cpuMs(c1.server, c2.server),
    };
    // A kind skipped (to profile the other alone) is counted on its warm-up runs.
    const measured = (kind: string) => (process.env.BENCH_SKIP === kind ? `${tag}-warm` : tag);
    const bareEvents = (await client.workflow.getHandle(`${measured('bare')}-bare-0`).fetchHistory()).events?.length ?? 0;
    const governedHistory = (await client.workflow.getHandle(`demo:${measured('governed')}-gov-0`).fetchHistory()).events ?? [];
    const governedEvents = governedHistory.length;
    if (process.env.BENCH_EVENTS) console.log(governedHistory.map((e) => `${eventName(e.eventType)} ${Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}).join(',')}`).join('\n'));
    const latencies: number[] = [];
    for (let i = 0; i < LATENCY_RUNS; i++) {
      const { run, workflowId } = await portarium.startRun(governedInput(`${tag}-lat`, i, 'write'));
      const actionHash = await awaitingActionHash(run);
      const arrived = new Promise<number>((resolve) => dispatched.set(workflowId, resolve));
      const t0 = performance.now();
      await run.decide({ kind: 'approve', decisionId: `d-${i}`, approver: bob, actionHash });
      latencies.push((await arrived) - t0);
      await run.result();
    }
    // Task duration from a run made alone (the latency runs are sequential), so queueing is not counted.
    const lone = await client.workflow.getHandle(`demo:${tag}-lat-${LATENCY_RUNS - 1}`).fetchHistory();
    const taskMs = meanWorkflowTaskMs(lone.events ?? []);
    const growth: GrowthCase[] = GROWTH_RUNS > 0
      ? await measureGrowth(portarium, {
        tag, runs: GROWTH_RUNS, concurrency: Math.min(CONCURRENCY, 10), cpu: () => cpuNow(server.process.pid),
        events: async (id) => (await client.workflow.getHandle(id).fetchHistory()).events?.length ?? 0,
      })
      : [];
    return { bareSecs, govSecs, bareEvents, governedEvents, latencies, cpu, taskMs, growth };
  });
  await nativeConnection.close();
  await client.connection.close();
  await server.stop();

  const barePerSec = RUNS / results.bareSecs;
  const governedPerSec = RUNS / results.govSecs;
  const summary = {
    governedPerSec: +governedPerSec.toFixed(1),
    barePerSec: +barePerSec.toFixed(1),
    ratio: +(governedPerSec / barePerSec).toFixed(3),
    governedEvents: results.governedEvents,
    bareEvents: results.bareEvents,
    decisionToDispatchP50Ms: +percentile(results.latencies, 50).toFixed(1),
    decisionToDispatchP99Ms: +percentile(results.latencies, 99).toFixed(1),
    policyEvalUs10: +policyEvalMicros(10).toFixed(2),
    policyEvalUs100: +policyEvalMicros(100).toFixed(2),
    policyEvalUs1000: +policyEvalMicros(1000).toFixed(2),
    workflowTaskMs: +results.taskMs.toFixed(2),
    policyShareOfTaskPct1000: 0,
    serverCpuMsGoverned: results.cpu.govServer,
    serverCpuMsBare: results.cpu.bareServer,
    workerCpuMsGoverned: results.cpu.govWorker,
    workerCpuMsBare: results.cpu.bareWorker,
    verifyRatioNode: verifyRatioNodeFresh(),
    growth: Object.fromEntries(results.growth.map((g) => [g.name, { events: g.events, workerCpuMs: g.workerCpuMs, serverCpuMs: g.serverCpuMs }])),
  };
  // Keys the earlier parts of `npm run bench` left (the pending case), so the last line holds them all.
  const earlier = process.env.BENCH_RESULTS_FILE && fs.existsSync(process.env.BENCH_RESULTS_FILE)
    ? (JSON.parse(fs.readFileSync(process.env.BENCH_RESULTS_FILE, 'utf8')) as Record<string, unknown>)
    : {};
  Object.assign(summary, earlier, { ...summary });
  summary.policyShareOfTaskPct1000 = +((summary.policyEvalUs1000 / 1000 / results.taskMs) * 100).toFixed(2);
  const rows: [string, string, string][] = [
    ['runs per second (governed Auto)', String(summary.governedPerSec), ''],
    ['runs per second (bare workflow)', String(summary.barePerSec), ''],
    ['ratio governed / bare', String(summary.ratio), 'target ≥ 0.65'],
    ['history events per run (governed)', String(summary.governedEvents), 'target ≤ 18'],
    ['history events per run (bare)', String(summary.bareEvents), ''],
    ['CPU ms per run, worker+client (gov/bare)', `${results.cpu.govWorker}/${results.cpu.bareWorker}`, `target ≤ 2 × bare (${ratioText(results.cpu.govWorker, results.cpu.bareWorker)})`],
    ['CPU ms per run, Temporal server (gov/bare)', `${results.cpu.govServer}/${results.cpu.bareServer}`, `target ≤ 1.5 × bare (${ratioText(results.cpu.govServer, results.cpu.bareServer)})`],
    ['decision → dispatch p50 (ms)', String(summary.decisionToDispatchP50Ms), ''],
    ['decision → dispatch p99 (ms)', String(summary.decisionToDispatchP99Ms), 'target ≤ 60'],
    ['policy evaluation, 10 rules (µs)', String(summary.policyEvalUs10), ''],
    ['policy evaluation, 100 rules (µs)', String(summary.policyEvalUs100), ''],
    ['policy evaluation, 1,000 rules (µs)', String(summary.policyEvalUs1000), ''],
    ['workflow task, governed run (ms, mean)', String(summary.workflowTaskMs), ''],
    ['policy share of a task at 1,000 rules (%)', String(summary.policyShareOfTaskPct1000), 'target < 1'],
    ['evidence verification ÷ raw node:crypto SHA-256', String(summary.verifyRatioNode), 'target ≥ 0.5'],
  ];
  const pending = summary as unknown as { pendingRuns?: number; pendingRssMiB?: number; approveAllSecs?: number };
  if (pending.pendingRuns) {
    rows.push([`worker RSS with ${pending.pendingRuns} runs waiting (MiB)`, String(pending.pendingRssMiB), 'target ≤ 1024']);
    rows.push([`approving all ${pending.pendingRuns} (s)`, String(pending.approveAllSecs), '']);
  }
  for (const g of results.growth) rows.push([`HumanApprove, ${g.name}: events, CPU ms worker/server`, `${g.events}, ${g.workerCpuMs}/${g.serverCpuMs}`, '']);
  console.log(`\nbenchmark: ${RUNS} runs per kind, concurrency ${CONCURRENCY}, ${LATENCY_RUNS} HumanApprove runs, ${GROWTH_RUNS} runs per growth case\n`);
  for (const [k, v, t] of rows) console.log(`${k.padEnd(44)} ${v.padStart(11)}  ${t}`);
  console.log(JSON.stringify(summary));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
