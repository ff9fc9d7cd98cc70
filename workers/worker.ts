/** Builds a Portarium worker from configuration: policies, runtimes, activities and the prebuilt bundle. */
import * as path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createEchoRuntime, FileEchoLedger, MemoryEchoLedger } from '../activities/echo';
import { FileSecretStore } from '../activities/local-secrets';
import { FilePayloadStore } from '../activities/payload-store';
import type { RuntimeAdapter } from '../activities/runtime-port';
import type { SecretStore } from '../activities/secrets-port';
import { loadPolicyDir } from '../policies/load';
import { SEARCH_ATTRIBUTE_KEYS } from '../workflows/search-attributes';
import { type PortariumConfig, connectionOptions } from './config';
import { prebuiltBundle } from './bundle';

export interface WorkerParts {
  connection: NativeConnection;
  /** Runtimes to register instead of the configured ones (tests, benchmarks). */
  runtimes?: RuntimeAdapter[];
  /** Secret store to use instead of the configured one (tests). */
  secrets?: SecretStore;
}

export function configuredRuntimes(config: PortariumConfig): RuntimeAdapter[] {
  const ledger = config.echoLedger === 'file' ? new FileEchoLedger(path.join(config.dataDir, 'echo-ledger')) : new MemoryEchoLedger();
  return [createEchoRuntime(ledger)];
}

export async function createPortariumWorker(config: PortariumConfig, parts: WorkerParts): Promise<Worker> {
  const policies = loadPolicyDir(config.policyDir);
  return Worker.create({
    connection: parts.connection,
    namespace: config.temporal.namespace,
    taskQueue: config.taskQueue,
    workflowBundle: prebuiltBundle(),
    activities: createActivities({
      policies,
      runtimes: parts.runtimes ?? configuredRuntimes(config),
      secrets: parts.secrets ?? new FileSecretStore(config.secretsDir),
      payloads: new FilePayloadStore(path.join(config.dataDir, 'payloads')),
    }),
    maxCachedWorkflows: config.maxCachedWorkflows,
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: config.maxConcurrentWorkflowTasks,
    maxHeartbeatThrottleInterval: config.heartbeatThrottle as `${number}s`,
    shutdownGraceTime: config.shutdownGrace as `${number}s`,
  });
}

export async function connectWorker(config: PortariumConfig): Promise<NativeConnection> {
  return NativeConnection.connect(connectionOptions(config));
}

/** Names of Portarium search attributes missing on the namespace (runs would stall without them). */
export async function missingSearchAttributes(connection: NativeConnection, namespace: string): Promise<string[]> {
  const res = await connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(res.customAttributes ?? {}));
  return SEARCH_ATTRIBUTE_KEYS.map((k) => k.name).filter((n) => !have.has(n));
}
