/** Builds a Portarium worker from configuration: policies, runtimes, activities and the prebuilt bundle. */
import * as path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Client, type ConnectionLike } from '@temporalio/client';
import { RevocationCache } from '../activities/revocation/cache';
import { readRegistry } from '../activities/revocation/fan-out';
import { createActivities } from '../activities';
import { createEchoRuntime, FileEchoLedger, MemoryEchoLedger } from '../activities/runtimes/echo';
import { FileSecretStore } from '../activities/secrets/local-file';
import type { EvidenceSink } from '../activities/evidence/sink';
import { FilePayloadStore } from '../activities/payload-store';
import type { RuntimeAdapter } from '../activities/runtimes/port';
import type { SecretStore } from '../activities/secrets/port';
import type { PayloadKeyProvider } from './codec/keys-port';
import { createActivepiecesRuntime } from '../activities/runtimes/activepieces';
import { createKestraRuntime } from '../activities/runtimes/kestra';
import { createLangflowRuntime } from '../activities/runtimes/langflow';
import { createStackStormRuntime } from '../activities/runtimes/stackstorm';
import { createMcpRuntime } from '../activities/runtimes/mcp';
import { VaultSecretStore } from '../activities/secrets/vault';
import { type LoadedPolicies, loadPolicyDir } from '../activities/policy/load';
import { SEARCH_ATTRIBUTE_KEYS } from '../workflows/search-attributes';
import { type Pool, describePool } from '../policies/isolation';
import { workspaceGuard } from '../activities/workspace-guard';
import { chooseCacheSize, workflowHeap } from './cache-size';
import { ConfigError, type PortariumConfig, connectionOptions } from './config';
import { prebuiltBundle } from './bundle';
import { payloadKeyProvider, vaultSession, workerDataConverter } from './codec/data-converter';
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
  /** Workflow code to run instead of the prebuilt bundle (tests that play a rogue workflow against the real activities). */
  workflowBundle?: { code: string };
  /** The worker identity Temporal records (workers/codec/key-check.ts adds the keyring's). @default the SDK's pid@host */
  identity?: string;
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
    // Only with PORTARIUM_MCP_SERVERS; its servers are stdio children that exit when the worker process does.
    ...(config.mcpServers ? [createMcpRuntime({ servers: config.mcpServers })] : []),
  ];
}

/** Vault when configured (sharing the process's Vault session with transit), otherwise the per-workspace secrets files. Close it when the worker stops. */
export function configuredSecretStore(config: PortariumConfig): SecretStore {
  return config.vault ? new VaultSecretStore(config.vault, vaultSession(config.vault)) : new FileSecretStore(config.secretsDir);
}

/** A served queue: the task queue, the pool it belongs to, and the workspaces routed to it. */
export interface ServedQueue {
  queue: string;
  pool: Pool;
  workspaces: string[];
}

/**
 * The queues this worker polls, from PORTARIUM_WORKSPACES / PORTARIUM_TIERS / PORTARIUM_SERVE_SHARED,
 * checked against the policies: a named workspace must be `isolation: dedicated` and a named tier must
 * have a workspace, or the worker would poll a queue no run is ever sent to.
 */
export function servedQueues(config: PortariumConfig, policies: LoadedPolicies): ServedQueue[] {
  const routing = policies.routing(config.taskQueue);
  const all = routing.queues();
  const served: ServedQueue[] = [];
  if (config.serve.shared) served.push(all.find((q) => q.pool.kind === 'shared')!);
  for (const ws of config.serve.workspaces) {
    const pool = routing.poolFor(ws);
    if (!policies.workspaces.includes(ws)) throw new ConfigError(`PORTARIUM_WORKSPACES: no policy file for workspace ${ws} in ${policies.dir}`);
    if (pool.kind !== 'workspace') {
      throw new ConfigError(`PORTARIUM_WORKSPACES: workspace ${ws} is not dedicated (its runs go to ${describePool(pool)}, queue ${routing.queueFor(ws)}); set "isolation: dedicated" in its policy file`);
    }
    served.push(all.find((q) => q.queue === routing.queueFor(ws))!);
  }
  for (const tier of config.serve.tiers) {
    const q = all.find((x) => x.pool.kind === 'tier' && x.pool.tier === tier);
    if (!q) throw new ConfigError(`PORTARIUM_TIERS: no workspace in ${policies.dir} has "isolation: { tier: ${tier} }"`);
    served.push(q);
  }
  return served;
}

/** One Temporal worker per served queue, sharing one set of activities (and so one secret store and sink). */
export async function createPortariumWorkers(config: PortariumConfig, parts: WorkerParts): Promise<{ workers: Worker[]; queues: ServedQueue[] }> {
  const policies = loadPolicyDir(config.policyDir);
  const queues = servedQueues(config, policies);
  const activities = workerActivities(config, parts, policies);
  // One key provider for all queues' workers, so they share its caches (and its Vault login).
  const shared = { ...parts, keys: parts.keys ?? payloadKeyProvider(config) };
  const workers = await Promise.all(queues.map((q) => createWorkerOn(config, shared, policies, activities, q.queue)));
  return { workers, queues };
}

/** A worker on one queue (default: the shared one); tests and benchmarks use it directly. */
export async function createPortariumWorker(config: PortariumConfig, parts: WorkerParts, taskQueue = config.taskQueue): Promise<Worker> {
  const policies = loadPolicyDir(config.policyDir);
  return createWorkerOn(config, parts, policies, workerActivities(config, parts, policies), taskQueue);
}

function workerActivities(config: PortariumConfig, parts: WorkerParts, policies: LoadedPolicies) {
  const { registryId, refreshMs } = config.revocation;
  // The registry is read with the worker's own connection and codec (its payloads are system-keyed).
  const client = new Client({ connection: parts.connection as unknown as ConnectionLike, namespace: config.temporal.namespace, dataConverter: workerDataConverter(config, { keys: parts.keys }) });
  const revocations = new RevocationCache({ load: () => readRegistry(client, registryId), refreshMs });
  return createActivities({
    revocations,
    revocationRegistry: { registryId },
    policies,
    runtimes: parts.runtimes ?? configuredRuntimes(config, policies),
    secrets: parts.secrets ?? configuredSecretStore(config),
    payloads: new FilePayloadStore(path.join(config.dataDir, 'payloads')),
    evidence: parts.evidence ?? configuredEvidenceSink(config),
  });
}

async function createWorkerOn(config: PortariumConfig, parts: WorkerParts, policies: LoadedPolicies, activities: ReturnType<typeof createActivities>, taskQueue: string): Promise<Worker> {
  const tracing = tracingInterceptors(parts.tracing);
  const { maxCachedWorkflows } = chooseCacheSize(config.maxCachedWorkflows, workflowHeap(config.workflowHeapMb));
  return Worker.create({
    connection: parts.connection,
    namespace: config.temporal.namespace,
    taskQueue,
    ...(parts.identity && { identity: parts.identity }),
    workflowBundle: parts.workflowBundle ?? prebuiltBundle(),
    // Encrypts every payload per workspace; the same converter as the clients' and the bundle's failure converter.
    dataConverter: workerDataConverter(config, { keys: parts.keys }),
    activities,
    // Sized from the heap the workflow thread really has, so runs beyond it are evicted and replayed instead of exhausting it.
    maxCachedWorkflows,
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
    // The SDK's 40, but never more than the cache holds (the SDK would lower it with a warning).
    maxConcurrentWorkflowTaskExecutions: config.maxConcurrentWorkflowTasks ?? (maxCachedWorkflows > 0 ? Math.min(40, maxCachedWorkflows) : undefined),
    maxHeartbeatThrottleInterval: config.heartbeatThrottle as `${number}s`,
    shutdownGraceTime: config.shutdownGrace as `${number}s`,
    // Tracing outermost, so a refused activity still has its span.
    interceptors: { ...tracing, activity: [...(tracing.activity ?? []), workspaceGuard(policies.routing(config.taskQueue))] },
    sinks: tracingSinks(parts.tracing),
    // The SDK stops a workflow activation after 5 s of wall time. On a starved machine a large activation
    // (a flood of signals, a long replay) passes that, and the stopped activation corrupts Node's async
    // hook stack, aborting the whole worker process (sdk-typescript#939). Our workflow code is bounded,
    // and the server's workflow task timeout still bounds how long one task may hold a run.
    ...({ isolateExecutionTimeout: ISOLATE_EXECUTION_TIMEOUT } as object),
  });
}

/** Wall-time limit of one workflow activation in the sandbox (the SDK's default is 5 s; the option is not in its public type). */
const ISOLATE_EXECUTION_TIMEOUT = '60s';

export async function connectWorker(config: PortariumConfig): Promise<NativeConnection> {
  return NativeConnection.connect(connectionOptions(config));
}

/** Names of Portarium search attributes missing on the namespace (runs would stall without them). */
export async function missingSearchAttributes(connection: NativeConnection, namespace: string): Promise<string[]> {
  const res = await connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(res.customAttributes ?? {}));
  return SEARCH_ATTRIBUTE_KEYS.map((k) => k.name).filter((n) => !have.has(n));
}
