/**
 * Worker process entry: `node dist/workers/main.js` (what `./temporal-dev.sh workers` runs).
 * SIGINT/SIGTERM start a graceful shutdown: no new tasks are taken, running activities get
 * PORTARIUM_SHUTDOWN_GRACE to finish, then the process exits.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig } from './config';
import { payloadKeyProvider } from './data-converter';
import { configuredEvidenceSink } from './evidence';
import { jsonLogger } from './logging';
import { startTelemetry } from './telemetry';
import { configuredSecretStore, connectWorker, createPortariumWorkers, missingSearchAttributes } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  Runtime.install({
    logger: config.logFormat === 'json' ? jsonLogger(config.logLevel) : new DefaultLogger(config.logLevel),
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    // Temporal's worker metrics and Portarium's own (workflow and activity metric meters) on /metrics.
    ...(config.metricsAddress && { telemetryOptions: { metrics: { prometheus: { bindAddress: config.metricsAddress } } } }),
  });
  // Traces only when OTEL_* asks for them; otherwise nothing is started or exported.
  const telemetry = startTelemetry();
  const connection = await connectWorker(config);
  if (config.checkSearchAttributes) {
    const missing = await missingSearchAttributes(connection, config.temporal.namespace);
    if (missing.length) {
      throw new Error(
        `search attributes missing on namespace ${config.temporal.namespace}: ${missing.join(', ')}. Register them with:\n` +
          missing.map((n) => `  temporal operator search-attribute create --namespace ${config.temporal.namespace} --name ${n} --type Keyword`).join('\n'),
      );
    }
  }
  const secrets = configuredSecretStore(config);
  const evidence = configuredEvidenceSink(config);
  // Created here, like the secret store, so it is closed (its Vault login and renewal) when the workers stop.
  const keys = payloadKeyProvider(config);
  const { workers, queues } = await createPortariumWorkers(config, { connection, secrets, evidence, keys, tracing: telemetry });
  // temporal-dev.sh waits for `pid=<pid> polling` in this line: keep those words together.
  console.log(`portarium worker pid=${process.pid} polling ${config.temporal.address} namespace=${config.temporal.namespace} queue=${queues.map((q) => q.queue).join(',')} secrets=${secrets.kind} evidence=${evidence.kind}` +
    `${config.metricsAddress ? ` metrics=http://${config.metricsAddress}/metrics` : ''} traces=${telemetry.enabled ? 'otel' : 'off'}`);
  // One worker per served queue; a shutdown signal stops them all, and the process ends when all have.
  await Promise.all(workers.map((w) => w.run()));
  await secrets.close();
  await keys?.close();
  await evidence.close();
  await telemetry.shutdown();
  await connection.close();
  console.log(`portarium worker pid=${process.pid} stopped`);
}

main().catch((err) => {
  console.error(`portarium worker failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
