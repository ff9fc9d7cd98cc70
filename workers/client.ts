/**
 * Client helper for services, bots and the CLI: start governed runs idempotently, send decisions,
 * read status and evidence. Checks every message with the workflow's own schemas before it is sent.
 */
import type * as otel from '@opentelemetry/api';
import {
  Client,
  type ClientInterceptors,
  Connection,
  QueryNotRegisteredError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import { tsToDate } from '@temporalio/common/lib/time';
import { executeUpdateAgain } from '../activities/update-again';
import { canonicalJson, sha256Hex } from '../workflows/hashing';
import * as msg from '../workflows/run/messages';
import {
  type FieldIssue,
  amendRequestSchema,
  cancelRequestSchema,
  check,
  decideRequestSchema,
  decisionSchema,
  describeIssues,
  governedRunInputSchema,
  manualCompletionSchema,
} from '../workflows/schemas';
import { isContinuedInput } from '../workflows/run/snapshot';
import { breakGlassRequestSchema, breakGlassReviewSchema } from '../workflows/break-glass/schemas';
import type { BreakGlassOutcome, BreakGlassRequest, BreakGlassReviewOutcome, BreakGlassReviewRequest } from '../workflows/break-glass/types';
import { CorrelationKey, StateKey, WorkspaceKey } from '../workflows/search-attributes';
import { runWorkflowId } from '../workflows/ids';
import type {
  AmendRequest,
  CancelRequest,
  DecideRequest,
  Decision,
  DecisionKind,
  DecisionOutcome,
  GovernedRunInput,
  GovernedRunResult,
  ManualCompletion,
  RunStatus,
} from '../workflows/types';
import { ApplicationFailure, type DataConverter, type LoadedDataConverter, type Payload, type QueryDefinition } from '@temporalio/common';
import { TaskQueueRouting } from '../policies/isolation';
import { loadPolicyDir } from '../activities/policy/load';
import { type PortariumConfig, connectionOptions } from './config';
import { portariumDataConverter } from './codec/data-converter';
import { type RunOrigin, staticDetailsOf, staticSummaryOf } from './run-metadata';
import { tracingClientInterceptors } from './telemetry';

export const WORKFLOW_TYPE = 'governedRun';

/** A message that failed the schema; `issues` names every bad field. */
export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
  constructor(
    what: string,
    readonly issues: FieldIssue[],
  ) {
    super(`invalid ${what}: ${describeIssues(issues)}`);
  }
}

/** The idempotency key was already used for a different action in this workspace. */
export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
}

function checked<T>(what: string, schema: Parameters<typeof check<T>>[0], value: unknown): T {
  const r = check(schema, value);
  if (!r.ok) throw new InvalidMessageError(what, r.issues);
  return r.value;
}

export { runWorkflowId } from '../workflows/ids';

/**
 * The failure `type` behind a rejected call (`decide`, `amend`, `result()` of a failed run): the first
 * typed failure in the `cause` chain, e.g. `FailureType.SelfApprovalRefused`; undefined for errors
 * that carry none (a lost connection). Compare it with `FailureType`, never the message text.
 */
export function failureTypeOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 20; e = e.cause, depth++) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
  }
  return undefined;
}

/** What makes two starts the same request: everything but the correlation id, which is tracing metadata. */
function requestHashOf(input: GovernedRunInput): string {
  return sha256Hex(canonicalJson({ ...input, correlationId: undefined }));
}

export interface StartedRun {
  workflowId: string;
  /** True when a run with this workspace and idempotency key already existed. */
  existing: boolean;
  run: RunHandle;
}

/** One line of `listRuns`. */
export interface ListedRun {
  workflowId: string;
  /** The run's State search attribute, or Temporal's status (e.g. TERMINATED) where it has none. */
  state: string;
  startTime: Date;
}

export class PortariumClient {
  private routes: TaskQueueRouting | (() => TaskQueueRouting);

  /**
   * `routing` sends each workspace's runs to its task queue (from the policies' `isolation`); a queue
   * name alone routes every workspace there (the shared-queue default). A function is called once, on
   * the first start, so clients that only decide or read never load policies.
   */
  constructor(
    readonly client: Client,
    routing: TaskQueueRouting | (() => TaskQueueRouting) | string = 'portarium',
  ) {
    this.routes = typeof routing === 'string' ? new TaskQueueRouting(routing) : routing;
  }

  /**
   * Runs of a workspace (optionally in one state), newest first, at most `limit`. Reads only ids and
   * search attributes, never memos: one run whose payloads this process cannot decode (another
   * keyring, a workspace its codec token may not read) must not hide the others.
   */
  async listRuns(q: { workspace: string; state?: string; limit?: number }): Promise<ListedRun[]> {
    const limit = q.limit ?? 100;
    const query = `${WorkspaceKey.name}="${q.workspace}"${q.state ? ` AND ${StateKey.name}="${q.state}"` : ''}`;
    const runs: ListedRun[] = [];
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await this.client.workflowService.listWorkflowExecutions({
        namespace: this.client.options.namespace, query, pageSize: Math.min(limit, 1000), nextPageToken,
      });
      for (const raw of page.executions) {
        const status = temporal.api.enums.v1.WorkflowExecutionStatus[raw.status ?? 0].replace('WORKFLOW_EXECUTION_STATUS_', '');
        const state = decodeTypedSearchAttributes(raw.searchAttributes?.indexedFields).get(StateKey) ?? status;
        runs.push({ workflowId: raw.execution?.workflowId ?? '', state, startTime: tsToDate(raw.startTime ?? {}) });
        if (runs.length >= limit) return runs;
      }
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
    return runs;
  }

  get routing(): TaskQueueRouting {
    if (typeof this.routes === 'function') this.routes = this.routes();
    return this.routes;
  }

  /**
   * Connect with the OpenTelemetry client interceptor, so a run's trace starts at its StartWorkflow
   * span, and route runs by the policies in `config.policyDir` (or `opts.routing`). When you build the
   * `Client` yourself, pass `interceptors: PortariumClient.interceptors()`.
   */
  static async connect(config: PortariumConfig, opts: { tracer?: otel.Tracer; routing?: TaskQueueRouting; dataConverter?: DataConverter } = {}): Promise<PortariumClient> {
    const routing = opts.routing ?? (() => loadPolicyDir(config.policyDir).routing(config.taskQueue));
    const connection = await Connection.connect(connectionOptions(config));
    const client = new Client({
      connection,
      namespace: config.temporal.namespace,
      interceptors: PortariumClient.interceptors(opts.tracer),
      dataConverter: opts.dataConverter ?? PortariumClient.dataConverter(config),
    });
    return new PortariumClient(client, routing);
  }

  /**
   * The data converter of workers (payload encryption per workspace, encoded failure messages). A
   * `Client` built without it sends plaintext and cannot read what workers return: pass
   * `dataConverter: PortariumClient.dataConverter(config)`.
   */
  static dataConverter(config: PortariumConfig): DataConverter {
    return portariumDataConverter(config);
  }

  /** Client interceptors that propagate the trace context into runs. @default tracer: the global one */
  static interceptors(tracer?: otel.Tracer): ClientInterceptors {
    return tracingClientInterceptors(tracer);
  }

  async close(): Promise<void> {
    await this.client.connection.close();
  }

  /**
   * Start a governed run, or return the one already started with the same key and the same request.
   * `options.memo` adds fields to the run's memo (e.g. the CloudEvent that triggered it); `requestHash` is reserved.
   * `options.origin` names where the run came from in its Web UI details.
   */
  async startRun(input: GovernedRunInput, options: { memo?: Record<string, unknown>; origin?: RunOrigin } = {}): Promise<StartedRun> {
    const valid = checked('governedRun input', governedRunInputSchema(), input);
    const workflowId = runWorkflowId(valid.workspaceId, valid.idempotencyKey);
    const requestHash = requestHashOf(valid);
    try {
      await this.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: this.routing.queueFor(valid.workspaceId),
        workflowId,
        args: [valid],
        // Running or closed, a run with this id is the same request: never start it twice.
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        memo: { ...options.memo, requestHash },
        // The Web UI's header for the run; what it waits for is in its current details.
        staticSummary: staticSummaryOf(valid),
        staticDetails: staticDetailsOf(valid, options.origin),
        typedSearchAttributes: [
          { key: WorkspaceKey, value: valid.workspaceId },
          { key: CorrelationKey, value: valid.correlationId },
          { key: StateKey, value: 'Evaluating' },
        ],
      });
      return { workflowId, existing: false, run: this.run(workflowId) };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    if ((await this.existingRequestHash(workflowId)) !== requestHash) {
      throw new IdempotencyConflictError(`idempotency key ${valid.idempotencyKey} was already used in workspace ${valid.workspaceId} for another request`);
    }
    return { workflowId, existing: true, run: this.run(workflowId) };
  }

  /** Hash of the request a run was started with: from its memo, or (raw starts) from its first event. */
  private async existingRequestHash(workflowId: string): Promise<string | undefined> {
    const handle = this.client.workflow.getHandle(workflowId);
    const { memo } = await handle.describe();
    if (typeof memo?.requestHash === 'string') return memo.requestHash;
    const history = await handle.fetchHistory();
    const raw = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    const payload = raw ? (await decodeRunPayloads(this.client, workflowId, [raw]))[0] : undefined;
    const value: unknown = payload ? this.client.options.loadedDataConverter.payloadConverter.fromPayload(payload) : undefined;
    // A run that continued as new starts with its state; the request is the input it carries.
    const request = isContinuedInput(value) && typeof value.continued === 'object' && value.continued !== null ? (value.continued as { input?: unknown }).input : value;
    const parsed = payload ? check(governedRunInputSchema(), request) : undefined;
    return parsed?.ok ? requestHashOf(parsed.value) : undefined;
  }

  run(workflowId: string): RunHandle {
    return new RunHandle(this.client.workflow.getHandle(workflowId));
  }
}

/**
 * Payloads of a run's raw history (`fetchHistory()` decodes nothing) through a client's codecs, in
 * the run's serialization context and in the SDK's order (last codec first).
 */
export async function decodeRunPayloads(
  client: { options: { loadedDataConverter: LoadedDataConverter; namespace: string } },
  workflowId: string,
  payloads: Payload[],
): Promise<Payload[]> {
  const { payloadCodecs } = client.options.loadedDataConverter;
  const context = { type: 'workflow' as const, namespace: client.options.namespace, workflowId };
  let out = payloads;
  for (let i = payloadCodecs.length - 1; i >= 0; i--) out = await payloadCodecs[i].decode(out, context);
  return out;
}

/**
 * Update id from the whole content: a retried call is deduplicated by Temporal, while the same
 * decision id with other content still reaches the workflow, which refuses it as a conflict.
 */
function contentId(kind: string, body: unknown): string {
  return `${kind}-${sha256Hex(canonicalJson(body)).slice(0, 32)}`;
}

/** One governed run, by workflow id. */
export class RunHandle {
  constructor(readonly handle: WorkflowHandle) {}

  get workflowId(): string {
    return this.handle.workflowId;
  }

  /** A run that failed before it could answer (e.g. `InvalidRunInput`) rejects with its `WorkflowFailedError`. */
  status(): Promise<RunStatus> {
    return this.query(msg.statusQuery);
  }

  evidence(): Promise<msg.EvidenceView> {
    return this.query(msg.evidenceQuery);
  }

  /**
   * A query of a run that failed before its handlers existed fails with the failure's plaintext
   * message only (`Encoded failure`: the SDK drops the encrypted failure the server sends along).
   * The run's own failure, read and decoded like `result()`, says what happened instead.
   */
  private async query<T>(def: QueryDefinition<T>): Promise<T> {
    try {
      return await this.handle.query(def);
    } catch (err) {
      if (!(err instanceof QueryNotRegisteredError)) throw err;
      const { status } = await this.handle.describe();
      if (status.name === 'RUNNING') throw err;
      const failure = await this.handle.result().then(() => undefined, (e: unknown) => e);
      throw failure instanceof WorkflowFailedError ? failure : err;
    }
  }

  result(): Promise<GovernedRunResult> {
    return this.handle.result();
  }

  /** Decide and wait for the outcome; a refusal rejects with the typed failure as `cause`. */
  async decide(req: DecideRequest): Promise<DecisionOutcome> {
    const valid = checked('decision', decideRequestSchema(), req);
    return executeUpdateAgain(this.handle, msg.decideUpdate, { args: [valid], updateId: contentId('decide', valid) });
  }

  /** Fire-and-forget decision by signal; refusals show in `status().refusals`. */
  async signalDecision(kind: DecisionKind, d: Decision): Promise<void> {
    const signal = { approve: msg.approveSignal, reject: msg.rejectSignal, requestChanges: msg.requestChangesSignal }[kind];
    return this.handle.signal(signal, checked(`${kind} decision`, decisionSchema(kind), d));
  }

  async cancel(req: CancelRequest): Promise<void> {
    return this.handle.signal(msg.cancelRunSignal, checked('cancel request', cancelRequestSchema(), req));
  }

  async completeManually(m: ManualCompletion): Promise<void> {
    return this.handle.signal(msg.manualCompletionSignal, checked('manual completion', manualCompletionSchema(), m));
  }

  async amend(req: AmendRequest): Promise<RunStatus> {
    const valid = checked('amendment', amendRequestSchema(), req);
    return executeUpdateAgain(this.handle, msg.amendActionUpdate, { args: [valid], updateId: contentId('amend', valid) });
  }

  /** Break-glass: release the run now (a holder of a break-glass role, with a reason); refusals reject typed. */
  async breakGlass(req: BreakGlassRequest): Promise<BreakGlassOutcome> {
    const valid = checked('break-glass release', breakGlassRequestSchema(), req);
    return executeUpdateAgain(this.handle, msg.breakGlassUpdate, { args: [valid], updateId: contentId('breakGlass', valid) });
  }

  /** The post-hoc review of a break-glass release: confirm or flag, with a rationale. */
  async reviewBreakGlass(req: BreakGlassReviewRequest): Promise<BreakGlassReviewOutcome> {
    const valid = checked('break-glass review', breakGlassReviewSchema(), req);
    return executeUpdateAgain(this.handle, msg.reviewBreakGlassUpdate, { args: [valid], updateId: contentId('reviewBreakGlass', valid) });
  }
}
