/**
 * Worker process entry: `node dist/workers/main.js` (what `./temporal-dev.sh workers` runs).
 * SIGINT/SIGTERM start a graceful shutdown: no new tasks are taken, running activities get
 * PORTARIUM_SHUTDOWN_GRACE to finish, then the process exits.
 * If the workflow thread dies (e.g. its heap is exhausted), the process cannot run workflows any
 * more: it logs why and exits with EXIT_WORKFLOW_THREAD_DIED, so a supervisor starts a fresh one.
 */
import type { Worker as Thread } from 'node:worker_threads';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { applyWorkflowHeap, chooseCacheSize, describeCacheChoice, workflowHeap } from './cache-size';
import { loadConfig } from './config';
import { payloadKeyProvider, vaultSession } from './codec/data-converter';
import { configuredEvidenceSink } from './evidence';
import { checkQueueKeyrings, prepareWorkerKeys, workerIdentity } from './codec/key-check';
import { jsonLogger } from './logging';
import { HISTOGRAM_BUCKETS } from './metric-buckets';
import { startTelemetry } from './telemetry';
import { SEARCH_ATTRIBUTE_KEYS, cliTypeOf } from '../workflows/search-attributes';
import { configuredSecretStore, connectWorker, createPortariumWorkers, missingSearchAttributes } from './worker';

/** Exit code of a worker whose workflow thread died (EX_SOFTWARE); 1 is any other failure. */
const EXIT_WORKFLOW_THREAD_DIED = 70;
const SHUTTING_DOWN = new Set(['STOPPING', 'DRAINING', 'DRAINED', 'STOPPED', 'FAILED']);

let stopping = false;
let threadDied = false;
const workers: Worker[] = [];

/**
 * The SDK runs workflows in worker threads it creates in Worker.create. If one dies, Temporal's worker
 * only notices at its next workflow task and then drains slowly; a process that cannot run workflows
 * should go at once, so watch every thread this process starts and exit on an unplanned end.
 */
function watchWorkflowThreads(graceMs: number): void {
  process.on('worker', (thread: Thread) => {
    let error: (Error & { code?: string }) | undefined;
    thread.on('error', (err) => (error = err));
    thread.on('exit', (code) => {
      // Threads end on a shutdown (signal, or the SDK stopping after a failure); only an unplanned end is a death.
      if (stopping || workers.some((w) => SHUTTING_DOWN.has(w.getState()))) return;
      threadDied = true;
      const why = error ? `${error.code ?? error.name}: ${error.message}` : `exit code ${code}`;
      console.error(`portarium worker pid=${process.pid} workflow thread died (${why}); exiting with code ${EXIT_WORKFLOW_THREAD_DIED} ` +
        'so it is restarted (its runs are kept by Temporal and continue on the next worker)');
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      // Activities in flight get the shutdown grace; then the process goes even if the SDK is still draining.
      setTimeout(() => process.exit(EXIT_WORKFLOW_THREAD_DIED), graceMs + 2000);
    });
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => (stopping = true));
  watchWorkflowThreads(durationMs(config.shutdownGrace));
  Runtime.install({
    logger: config.logFormat === 'json' ? jsonLogger(config.logLevel) : new DefaultLogger(config.logLevel),
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    // Temporal's worker metrics and Portarium's own (workflow and activity metric meters) on /metrics.
    ...(config.metricsAddress && { telemetryOptions: { metrics: { prometheus: { bindAddress: config.metricsAddress, histogramBucketOverrides: HISTOGRAM_BUCKETS } } } }),
  });
  // Traces only when OTEL_* asks for them; otherwise nothing is started or exported.
  const telemetry = startTelemetry();
  const connection = await connectWorker(config);
  if (config.checkSearchAttributes) {
    const missing = await missingSearchAttributes(connection, config.temporal.namespace);
    if (missing.length) {
      throw new Error(
        `search attributes missing on namespace ${config.temporal.namespace}: ${missing.join(', ')}. Register them with:\n` +
          missing.map((n) => `  temporal operator search-attribute create --namespace ${config.temporal.namespace} --name ${n} --type ${cliTypeOf(SEARCH_ATTRIBUTE_KEYS.find((k) => k.name === n)!)}`).join('\n'),
      );
    }
  }
  const secrets = configuredSecretStore(config);
  const evidence = configuredEvidenceSink(config);
  // Created here, like the secret store, so it is closed (its Vault login and renewal) when the workers stop.
  const keys = payloadKeyProvider(config);
  // One login for both; a token whose policy cannot look itself up or renew stops the start here, not every read later.
  if (config.vault) await vaultSession(config.vault).start();
  // The system key exists (created here in a keyring: the one key a worker makes) before anything is encoded.
  const keyringId = await prepareWorkerKeys(config, keys);
  // Before the workers exist: their workflow threads take this heap, and the cache is sized from it.
  const heap = workflowHeap(config.workflowHeapMb);
  applyWorkflowHeap(heap);
  const created = await createPortariumWorkers(config, { connection, secrets, evidence, keys, tracing: telemetry, identity: workerIdentity(keyringId) });
  const { queues } = created;
  // Before polling: a worker of another keyring on these queues would make payloads only one of them reads.
  const unchecked = keyringId ? await checkQueueKeyrings(connection, config.temporal.namespace, queues.map((q) => q.queue), keyringId) : [];
  if (unchecked.length) console.error(`portarium worker pid=${process.pid}: could not compare keyrings with the other workers of ${unchecked.join(', ')}; one keyring per cluster (docs/encryption.md)`);
  workers.push(...created.workers);
  // temporal-dev.sh waits for `pid=<pid> polling` in this line: keep those words together.
  console.log(`portarium worker pid=${process.pid} polling ${config.temporal.address} namespace=${config.temporal.namespace} queue=${queues.map((q) => q.queue).join(',')} secrets=${secrets.kind} evidence=${evidence.kind}${keyringId ? ` keyring=${keyringId}` : ''} ${describeCacheChoice(chooseCacheSize(config.maxCachedWorkflows, heap))}` +
    `${config.metricsAddress ? ` metrics=http://${config.metricsAddress}/metrics` : ''} traces=${telemetry.enabled ? 'otel' : 'off'}`);
  // One worker per served queue; a shutdown signal stops them all, and the process ends when all have.
  await Promise.all(workers.map((w) => w.run()));
  stopping = true;
  await secrets.close();
  await keys?.close();
  await evidence.close();
  await telemetry.shutdown();
  await connection.close();
  console.log(`portarium worker pid=${process.pid} stopped`);
}

/** `30s`, `500ms`, `5m`, `1h` (the forms config.ts accepts) in milliseconds. */
function durationMs(d: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d);
  return m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'] : 30_000;
}

main().catch((err) => {
  console.error(`portarium worker failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(threadDied ? EXIT_WORKFLOW_THREAD_DIED : 1);
});
