/**
 * Runs a real Portarium worker (the production wiring, test policies, in-memory echo ledger) on its
 * own task queue for one test, plus helpers to start runs, wait for states and build decisions.
 */
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { createEchoRuntime, MemoryEchoLedger } from '../../activities/runtimes/echo';
import { ApplicationFailure } from '@temporalio/common';
import { FileEvidenceSink } from '../../activities/evidence/file-sink';
import type { EvidenceSink } from '../../activities/evidence/sink';
import { type TreeHeadSigner, signerFromHex } from '../../activities/evidence/tree-head-signer';
import type { RuntimeAdapter } from '../../activities/runtimes/port';
import type { SecretStore } from '../../activities/secrets/port';
import type { PayloadKeyProvider } from '../../workers/codec/keys-port';
import { PortariumClient, RunHandle } from '../../workers/client';
import { PROJECT_ROOT, loadConfig } from '../../workers/config';
import type { TracingParts } from '../../workers/telemetry';
import { DEV_KEYS } from './shared';
import { createPortariumWorker } from '../../workers/worker';
import type { Decision, GovernedRunInput, JsonValue, Principal, RunState, RunStatus } from '../../workflows/types';

export const TEST_POLICY_DIR = path.join(PROJECT_ROOT, 'test', 'policies');

export const alice: Principal = { id: 'alice', roles: ['dev'] };
export const bob: Principal = { id: 'bob', roles: ['approver'] };
export const carol: Principal = { id: 'carol', roles: ['approver'] };
export const dave: Principal = { id: 'dave', roles: ['finance'] };
export const erin: Principal = { id: 'erin', roles: ['lead'] };
export const oscar: Principal = { id: 'oscar', roles: ['operator'] };
export const mallory: Principal = { id: 'mallory', roles: ['dev'] };

export const uid = (prefix = 't') => `${prefix}-${randomUUID().slice(0, 8)}`;

export interface Harness {
  client: Client;
  portarium: PortariumClient;
  taskQueue: string;
  ledger: MemoryEchoLedger;
  /** Where this worker's evidence goes (a fresh file sink unless the test gives one). */
  evidence: EvidenceSink;
  signer: TreeHeadSigner;
  /** Start a run in workspace `test` as alice; `operation` picks the policy rule. */
  start(operation: string, extra?: Partial<GovernedRunInput> & { input?: { [k: string]: JsonValue } }): Promise<RunHandle>;
}

export interface HarnessOptions {
  connection: NativeConnection;
  client: Client;
  runtimes?: RuntimeAdapter[];
  taskQueue?: string;
  /** @default test/policies */
  policyDir?: string;
  /** @default the secrets files under the worker's data dir */
  secrets?: SecretStore;
  /** @default a file sink in a fresh temporary folder, signed with TEST_SIGNER */
  evidence?: EvidenceSink;
  /** Tracer and span processor for the worker's spans (telemetry tests). */
  tracing?: TracingParts;
  /** Payload keys of the worker (give the client the same). @default the shared test keyring */
  keys?: PayloadKeyProvider;
  /** Workflow code instead of the prebuilt bundle (a rogue workflow against the real activities). */
  workflowBundle?: { code: string };
  /** Worker configuration to override (e.g. `revocation` in test/revocation.test.ts). */
  config?: Partial<import('../../workers/config').PortariumConfig>;
}

/** A fixed test key for evidence tree heads (never used outside tests). */
export const TEST_SIGNER = signerFromHex('7e'.repeat(32));

/**
 * A file sink that answers `EvidenceUnavailable` (retryable, as a down database would) while
 * `gate.down` is true, and stores normally after.
 */
export function gatedSink(): { sink: EvidenceSink; gate: { down: boolean; refused: number } } {
  const inner = tempFileSink();
  const gate = { down: true, refused: 0 };
  const append = async (batch: Parameters<EvidenceSink['append']>[0]) => {
    if (gate.down) {
      gate.refused++;
      throw ApplicationFailure.retryable('sink down (test)', 'EvidenceUnavailable');
    }
    return inner.append(batch);
  };
  const sink = new Proxy(inner, {
    get: (target, prop) => {
      if (prop === 'append') return append;
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as EvidenceSink;
  return { sink, gate };
}

export function tempFileSink(signer = TEST_SIGNER): FileEvidenceSink {
  return new FileEvidenceSink({ dir: fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-evidence-')), signer });
}

/** `inner`, with some of its calls replaced (a sink that fails, is slow or loses an answer). */
export function wrappedSink(inner: EvidenceSink, replaced: Partial<Pick<EvidenceSink, 'append' | 'readRun'>>): EvidenceSink {
  return {
    kind: inner.kind,
    append: replaced.append ?? ((batch) => inner.append(batch)),
    readWorkspace: (ws) => inner.readWorkspace(ws),
    readRun: replaced.readRun ?? ((ws, run, execution) => inner.readRun(ws, run, execution)),
    close: () => inner.close(),
  };
}

export async function withWorker<T>(opts: HarnessOptions, fn: (h: Harness) => Promise<T>): Promise<T> {
  const taskQueue = opts.taskQueue ?? uid('tq');
  const ledger = new MemoryEchoLedger();
  // A worker on its own key provider reads a revocation registry of its own: the shared registry's
  // memo is encrypted under the suite's keyring, which that worker rightly cannot read (fails closed).
  const ownRegistry = opts.keys && !opts.config?.revocation ? { revocation: { ...loadConfig({ ...DEV_KEYS }).revocation, registryId: uid('revocations') } } : {};
  const config = loadConfig({ ...DEV_KEYS }, { taskQueue, policyDir: opts.policyDir ?? TEST_POLICY_DIR, echoLedger: 'memory', heartbeatThrottle: '200ms', shutdownGrace: '2s', ...ownRegistry, ...opts.config });
  const evidence = opts.evidence ?? tempFileSink();
  const worker = await createPortariumWorker(config, { connection: opts.connection, runtimes: opts.runtimes ?? [createEchoRuntime(ledger)], secrets: opts.secrets, evidence, tracing: opts.tracing, workflowBundle: opts.workflowBundle, keys: opts.keys });
  const portarium = new PortariumClient(opts.client, taskQueue);
  const harness: Harness = {
    client: opts.client,
    portarium,
    taskQueue,
    ledger,
    evidence,
    signer: TEST_SIGNER,
    async start(operation, extra = {}) {
      const { input, ...rest } = extra;
      const key = uid('key');
      const started = await portarium.startRun({
        workspaceId: 'test',
        correlationId: uid('corr'),
        requestedBy: alice,
        action: { runtime: 'echo', target: 'test/thing', operation, input: input ?? { n: 1 } },
        idempotencyKey: key,
        reason: `test ${operation}`,
        ...rest,
      });
      return started.run;
    },
  };
  return worker.runUntil(fn(harness));
}

/** Poll `status` until `state` (or fail with the last status seen). */
export async function waitForState(run: RunHandle, state: RunState, timeoutMs = 20_000): Promise<RunStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: RunStatus | undefined;
  while (Date.now() < deadline) {
    try {
      last = await run.status();
      if (last.state === state) return last;
    } catch {
      // The first workflow task may not have run yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`run ${run.workflowId} did not reach ${state}; last status: ${JSON.stringify(last)}`);
}

/** Poll `status` until `predicate` holds. */
export async function waitForStatus(run: RunHandle, predicate: (s: RunStatus) => boolean, timeoutMs = 20_000): Promise<RunStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: RunStatus | undefined;
  while (Date.now() < deadline) {
    last = await run.status().catch(() => undefined);
    if (last && predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`run ${run.workflowId}: condition not met; last status: ${JSON.stringify(last)}`);
}

export function decision(approver: Principal, actionHash: string, extra: Partial<Decision> = {}): Decision {
  return { decisionId: uid('dec'), approver, actionHash, ...extra };
}

/** The `type` of the ApplicationFailure behind a client error (update failure, workflow failure). */
export function failureType(err: unknown): string | undefined {
  let e: unknown = err;
  while (e && typeof e === 'object') {
    if ('type' in e && typeof (e as { type: unknown }).type === 'string') return (e as { type: string }).type;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
