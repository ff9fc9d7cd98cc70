/** Builds a Portarium worker from configuration: policies, runtimes, activities and the prebuilt bundle. */
import * as path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createEchoRuntime, FileEchoLedger, MemoryEchoLedger } from '../activities/echo';
import { FileSecretStore } from '../activities/local-secrets';
import type { EvidenceSink } from '../activities/evidence-sink';
import { FilePayloadStore } from '../activities/payload-store';
import type { RuntimeAdapter } from '../activities/runtime-port';
import type { SecretStore } from '../activities/secrets-port';
import type { PayloadKeyProvider } from '../activities/keys-port';
import { createActivepiecesRuntime } from '../activities/activepieces';
import { createKestraRuntime } from '../activities/kestra';
import { createLangflowRuntime } from '../activities/langflow';
import { createStackStormRuntime } from '../activities/stackstorm';
import { VaultSecretStore } from '../activities/vault';
import { type LoadedPolicies, loadPolicyDir } from '../policies/load';
import { SEARCH_ATTRIBUTE_KEYS } from '../workflows/search-attributes';
import { type PortariumConfig, connectionOptions } from './config';
import { prebuiltBundle } from './bundle';
import { portariumDataConverter } from './data-converter';
import { configuredEvidenceSink } from './evidence';
import { type TracingParts, tracingInterceptors, tracingSinks } from './telemetry';

export interface WorkerParts {
  connection: NativeConnection;
  /** Runtimes to register instead of the configured ones (tests, benchmarks). */
  runtimes?: RuntimeAdapter[];
  /** Secret store to use instead of the configured one (tests). */
  secrets?: SecretStore;
  /** Evidence sink to use instead of the configured one (tests). Close it when the worker stops. */
  evidence?: EvidenceSink;
  /** Tracer and span processor for activity and workflow spans (tests inject an in-memory exporter). @default the global tracer, no workflow spans */
  tracing?: TracingParts;
  /** Payload keys to use instead of the configured ones (tests). */
  keys?: PayloadKeyProvider;
}

/** Every runtime this worker can dispatch to; a workspace reaches one only through its policy file's connection and egress rules. */
export function configuredRuntimes(config: PortariumConfig, policies: LoadedPolicies): RuntimeAdapter[] {
  const ledger = config.echoLedger === 'file' ? new FileEchoLedger(path.join(config.dataDir, 'echo-ledger')) : new MemoryEchoLedger();
  return [
    createEchoRuntime(ledger),
    createActivepiecesRuntime(),
    createLangflowRuntime({ policies }),
    createKestraRuntime(),
    // One instance per worker, so its StackStorm token cache is shared by all runs.
    createStackStormRuntime(),
  ];
}

/** Vault when configured, otherwise the per-workspace secrets files. Close it when the worker stops. */
export function configuredSecretStore(config: PortariumConfig): SecretStore {
  return config.vault ? new VaultSecretStore(config.vault) : new FileSecretStore(config.secretsDir);
}

export async function createPortariumWorker(config: PortariumConfig, parts: WorkerParts): Promise<Worker> {
  const policies = loadPolicyDir(config.policyDir);
  return Worker.create({
    connection: parts.connection,
    namespace: config.temporal.namespace,
    taskQueue: config.taskQueue,
    workflowBundle: prebuiltBundle(),
    // Encrypts every payload per workspace; the same converter as the clients' and the bundle's failure converter.
    dataConverter: portariumDataConverter(config, { keys: parts.keys }),
    activities: createActivities({
      policies,
      runtimes: parts.runtimes ?? configuredRuntimes(config, policies),
      secrets: parts.secrets ?? configuredSecretStore(config),
      payloads: new FilePayloadStore(path.join(config.dataDir, 'payloads')),
      evidence: parts.evidence ?? configuredEvidenceSink(config),
    }),
    maxCachedWorkflows: config.maxCachedWorkflows,
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: config.maxConcurrentWorkflowTasks,
    maxHeartbeatThrottleInterval: config.heartbeatThrottle as `${number}s`,
    shutdownGraceTime: config.shutdownGrace as `${number}s`,
    interceptors: tracingInterceptors(parts.tracing),
    sinks: tracingSinks(parts.tracing),
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
