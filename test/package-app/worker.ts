/**
 * A worker process built against the packed package (test/package.test.ts): the package's wiring and
 * its prebuilt workflow bundle, found inside node_modules. Prints the bundle it uses, then polls until
 * SIGTERM. Imports only the package's public entry points.
 */
import { connectWorker, createPortariumWorkers, loadConfig, prebuiltBundle } from 'portarium-worker/worker';

async function main(): Promise<void> {
  const config = loadConfig();
  const connection = await connectWorker(config);
  const { workers, queues } = await createPortariumWorkers(config, { connection });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => workers.forEach((w) => w.shutdown()));
  console.log(JSON.stringify({ polling: queues.map((q) => q.queue), bundle: prebuiltBundle().codePath }));
  await Promise.all(workers.map((w) => w.run()));
  await connection.close();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
