/**
 * The Activepieces runtime (wire contract: shared/reference/runtime-contracts.md, "1. Activepieces").
 * `target` is the flow id; `input` is the webhook's JSON body, to which a `portarium` object with the
 * dispatch id (`call.dispatchId`, the same 32 hex as the `x-portarium-dispatch-id` header) is added so
 * the run can be found later.
 *
 * - sync mode posts to `/api/v1/webhooks/{flow}/sync`: the flow's Return Response is the result.
 * - async mode posts to the async webhook, finds the flow run by dispatch id through the flow-runs API
 *   (platform API key plus `projectId`) and polls it to its end.
 *
 * Webhooks return no run id and Activepieces has no idempotency, so after any answer that leaves the
 * outcome open (204/408 sync timeout, a proxy's 502/503, a lost connection) the run is looked up by
 * dispatch id, never sent again; without a way to look it up the run stops as `RuntimeOutcomeUnknown`.
 * Flow runs have no cancel API: a cancelled dispatch stops waiting and the run continues remotely.
 */
import type { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { ActivepiecesConnection } from '../../policies/connections';
import { FailureType, refusal, runtimeOutcomeUnknown, runtimeRejected, runtimeUnavailable } from '../../workflows/failures';
import type { JsonValue } from '../../workflows/types';
import { type HttpResponse, TransportError } from '../http/client';
import { pause, pollRemote, previousRemoteId } from './remote-run';
import type { RuntimeAdapter, RuntimeCall, RuntimeOutcome } from './port';
import { clipUtf8 } from '../utf8';

const FLOW = /^[A-Za-z0-9_-]{1,64}$/;
const WAITING = new Set(['QUEUED', 'RUNNING', 'PAUSED']);
const HEARTBEAT_EVERY_MS = 2_000;

const ApSecret = z.object({
  /** Platform API key (`sk-…`) for the flow-runs API. */
  apiKey: z.string().min(1).optional(),
  /** Catch Webhook header auth. */
  webhookHeaderName: z.string().regex(/^[A-Za-z0-9-]{1,64}$/).optional(),
  webhookHeaderValue: z.string().optional(),
});
type ApSecret = z.infer<typeof ApSecret>;

const FlowRun = z.looseObject({
  id: z.string().min(1),
  status: z.string().min(1),
  failedStepName: z.string().nullish(),
  steps: z.record(z.string(), z.unknown()).nullish(),
});
type FlowRun = z.infer<typeof FlowRun>;
const Page = z.looseObject({ data: z.array(z.looseObject({ id: z.string().min(1) })) });

interface Ctx {
  call: RuntimeCall;
  conn: ActivepiecesConnection;
  flowId: string;
  secret: ApSecret;
  dispatchId: string;
  /**
   * Values of `portarium.dispatchId` that mark this dispatch in a trigger body: the dispatch id, and the
   * raw dispatch key that workers before the dispatch id was unified sent there (a retry here may
   * have to find a run such a worker triggered).
   */
  marks: ReadonlySet<string>;
}

/** What a retry reads back from the last heartbeat of an earlier attempt. */
interface Progress {
  remoteId?: string;
  stage?: 'calling' | 'sent';
  sentAt?: string;
  /** Set by an attempt whose request certainly never reached Activepieces. */
  notSent?: number;
}

const canLookUp = (ctx: Ctx) => Boolean(ctx.secret.apiKey && ctx.conn.projectId);
const errorText = (res: HttpResponse) => {
  const b = res.body as { message?: unknown; code?: unknown } | undefined;
  return clipUtf8(typeof b?.message === 'string' ? b.message : typeof b?.code === 'string' ? b.code : `HTTP ${res.status}`, 1000);
};

/** The one mapping of a webhook answer: an outcome, or `ambiguous` when the flow may still run. */
function webhookOutcome(res: HttpResponse, flowId: string): RuntimeOutcome | 'ambiguous' {
  const s = res.status;
  const ref = res.headers['x-webhook-id'] ? `activepieces:webhook:${res.headers['x-webhook-id']}` : undefined;
  if (s === 301) return { output: { status: 301, location: res.headers.location ?? null }, externalRef: ref };
  if (s >= 200 && s < 300 && s !== 204) return { output: { status: s, body: (res.body ?? null) as JsonValue }, externalRef: ref };
  if (s === 204 || s === 408 || s === 502 || s === 503) return 'ambiguous';
  if (s === 429) throw runtimeUnavailable(`activepieces: rate limited on flow ${flowId}`);
  const reasons: Record<number, string> = { 402: 'quota', 404: 'flow disabled', 410: 'flow not found', 413: 'payload too large' };
  if (reasons[s]) throw runtimeRejected(`activepieces: flow ${flowId}: ${reasons[s]}`, { httpStatus: s, reason: reasons[s] });
  if (s === 500 || s === 504) throw runtimeRejected(`activepieces: flow ${flowId} failed: ${errorText(res)}`, { httpStatus: s, reason: s === 504 ? 'timeout' : 'failed' });
  throw runtimeRejected(`activepieces: flow ${flowId} answered ${s}: ${errorText(res)}`, { httpStatus: s, reason: 'refused' });
}

/** A flow-runs API answer that is not a 200: auth refusals end the dispatch, server errors retry it. */
function apiFailure(res: HttpResponse): ApplicationFailure {
  if (res.status === 401 || res.status === 403) return runtimeRejected(`activepieces: flow-runs API refused the API key (${errorText(res)})`, { httpStatus: res.status, reason: 'auth' });
  if (res.status === 429 || res.status >= 500) return runtimeUnavailable(`activepieces: flow-runs API answered ${res.status}`);
  return runtimeRejected(`activepieces: flow-runs API answered ${res.status}: ${errorText(res)}`, { httpStatus: res.status });
}

async function api(ctx: Ctx, path: string, signal?: AbortSignal): Promise<HttpResponse | undefined> {
  const res = await ctx.call.http
    .request({ method: 'GET', url: `${ctx.conn.baseUrl}/api/v1${path}`, headers: { authorization: `Bearer ${ctx.secret.apiKey}` }, timeoutMs: ctx.conn.requestTimeout, signal })
    .catch((err: unknown) => {
      if (err instanceof TransportError) throw runtimeUnavailable(`activepieces: flow-runs API unreachable (${err.code})`);
      throw err;
    });
  const notFound = res.status === 404 || (res.status === 400 && /FLOW_RUN_NOT_FOUND/.test(res.text));
  if (notFound) return undefined;
  if (res.status !== 200) throw apiFailure(res);
  return res;
}

async function getRun(ctx: Ctx, id: string, signal?: AbortSignal): Promise<FlowRun | undefined> {
  const res = await api(ctx, `/flow-runs/${encodeURIComponent(id)}`, signal);
  if (!res) return undefined;
  const run = FlowRun.safeParse(res.body);
  if (!run.success) throw runtimeRejected(`activepieces: malformed flow run ${id}`);
  return run.data;
}

/** The flow run whose trigger body carries our dispatch id (or its legacy form), among runs of the flow created since `since`. */
async function findRun(ctx: Ctx, since: Date): Promise<FlowRun | undefined> {
  const q = new URLSearchParams({ projectId: ctx.conn.projectId!, flowId: ctx.flowId, createdAfter: new Date(since.getTime() - 5_000).toISOString(), limit: '50' });
  const res = await api(ctx, `/flow-runs?${q}`, ctx.call.signal);
  const page = Page.safeParse(res?.body);
  if (!page.success) return undefined;
  for (const { id } of page.data.data) {
    const run = await getRun(ctx, id, ctx.call.signal);
    const trigger = run?.steps?.trigger as { output?: { body?: { portarium?: { dispatchId?: unknown } } } } | undefined;
    const mark = trigger?.output?.body?.portarium?.dispatchId;
    if (typeof mark === 'string' && ctx.marks.has(mark)) return run;
  }
  return undefined;
}

/** Runs are created by Activepieces' workers after the webhook answers: look for a while. */
async function awaitRun(ctx: Ctx, since: Date): Promise<FlowRun | undefined> {
  for (const end = Date.now() + ctx.conn.requestTimeout; ; ) {
    const run = await findRun(ctx, since);
    if (run || Date.now() >= end || ctx.call.signal.aborted) return run;
    ctx.call.heartbeat({ stage: 'sent', sentAt: since.toISOString() } satisfies Progress);
    await pause(ctx.conn.pollInterval, ctx.call.signal);
  }
}

function runOutcome(run: FlowRun): RuntimeOutcome {
  if (run.status !== 'SUCCEEDED') {
    throw runtimeRejected(`activepieces: flow run ${run.id} ended ${run.status}${run.failedStepName ? ` at step ${run.failedStepName}` : ''}`, { status: run.status, failedStepName: run.failedStepName ?? null });
  }
  const steps = Object.fromEntries(Object.entries(run.steps ?? {}).filter(([name]) => name !== 'trigger').map(([name, step]) => [name, ((step as { output?: unknown })?.output ?? null) as JsonValue]));
  return { output: { flowRunId: run.id, status: run.status, steps }, externalRef: `activepieces:flowRun:${run.id}` };
}

/** Follow a flow run to its end. */
async function follow(ctx: Ctx, id: string): Promise<RuntimeOutcome> {
  ctx.call.heartbeat({ remoteId: id } satisfies Progress);
  const run = await pollRemote<FlowRun>({
    call: ctx.call,
    runtime: 'activepieces',
    remoteId: id,
    intervalMs: ctx.conn.pollInterval,
    deadline: Date.now() + ctx.conn.runTimeout,
    check: async () => {
      const r = await getRun(ctx, id, ctx.call.signal);
      if (!r) return { done: false, state: 'NOT_VISIBLE' };
      return WAITING.has(r.status) ? { done: false, state: r.status } : { done: true, value: r };
    },
    // No cancel API for flow runs: the run goes on in Activepieces; only the wait stops.
    stop: async () => undefined,
  });
  return runOutcome(run);
}

/** The outcome is open: find the run by dispatch id and follow it, or stop without resending. */
async function resolveAmbiguous(ctx: Ctx, since: Date, why: string): Promise<RuntimeOutcome> {
  if (!canLookUp(ctx)) throw runtimeOutcomeUnknown(`activepieces: ${why} for flow ${ctx.flowId}, and without an API key and projectId the run cannot be looked up; not resending`);
  const run = await awaitRun(ctx, since);
  if (!run) throw runtimeOutcomeUnknown(`activepieces: ${why} for flow ${ctx.flowId}, and no run with dispatch id ${ctx.dispatchId} was found; not resending`);
  return follow(ctx, run.id);
}

/** POST the webhook, heartbeating while Activepieces holds a sync call open (up to its webhook timeout). */
async function post(ctx: Ctx, sync: boolean, sentAt: Date): Promise<HttpResponse> {
  const { call, conn, flowId, secret } = ctx;
  const url = `${conn.baseUrl}/api/v1/webhooks/${flowId}${conn.draft ? '/draft' : ''}${sync ? '/sync' : ''}`;
  const headers = secret.webhookHeaderName && secret.webhookHeaderValue !== undefined ? { [secret.webhookHeaderName]: secret.webhookHeaderValue } : undefined;
  const json = { ...call.request.input, portarium: { dispatchId: ctx.dispatchId, correlationId: call.request.correlationId, workspaceId: call.request.workspaceId } };
  const beat = () => call.heartbeat({ stage: 'calling', sentAt: sentAt.toISOString() } satisfies Progress);
  beat();
  const timer = setInterval(beat, HEARTBEAT_EVERY_MS);
  try {
    return await call.http.request({ method: 'POST', url, headers, json, timeoutMs: conn.requestTimeout, signal: call.signal, followRedirects: false });
  } catch (err) {
    if (err instanceof TransportError && !err.sent) {
      call.heartbeat({ notSent: call.attempt } satisfies Progress);
      throw runtimeUnavailable(`activepieces: could not reach ${new URL(conn.baseUrl).host} (${err.code})`);
    }
    throw err;
  } finally {
    clearInterval(timer);
  }
}

async function send(ctx: Ctx, sync: boolean): Promise<RuntimeOutcome> {
  const sentAt = new Date();
  let res: HttpResponse;
  try {
    res = await post(ctx, sync, sentAt);
  } catch (err) {
    if (err instanceof TransportError) return resolveAmbiguous(ctx, sentAt, `no answer (${err.code})`);
    throw err;
  }
  // Rate limited before anything ran: a retry may send again.
  if (res.status === 429) ctx.call.heartbeat({ notSent: ctx.call.attempt } satisfies Progress);
  if (sync) {
    const outcome = webhookOutcome(res, ctx.flowId);
    return outcome === 'ambiguous' ? resolveAmbiguous(ctx, sentAt, `no flow response (HTTP ${res.status})`) : outcome;
  }
  if (res.status !== 200) {
    const outcome = webhookOutcome(res, ctx.flowId);
    if (outcome !== 'ambiguous') throw runtimeRejected(`activepieces: async webhook answered ${res.status}`, { httpStatus: res.status });
  }
  ctx.call.heartbeat({ stage: 'sent', sentAt: sentAt.toISOString() } satisfies Progress);
  return resolveAmbiguous(ctx, sentAt, 'the flow run is created after the webhook answers');
}

/** A retry never resends blindly: resume the known run, look it up, or stop. */
async function retry(ctx: Ctx, sync: boolean): Promise<RuntimeOutcome> {
  const previous = (ctx.call.previous ?? {}) as Progress;
  const known = previousRemoteId(ctx.call);
  if (known) return follow(ctx, known);
  if (previous.notSent === ctx.call.attempt - 1) return send(ctx, sync);
  const since = previous.sentAt ? new Date(previous.sentAt) : new Date(Date.now() - ctx.conn.runTimeout);
  return resolveAmbiguous(ctx, since, 'an earlier attempt may have triggered the flow');
}

/** Webhooks need no credentials; a sync flow may run without a secret (then it cannot be looked up). */
async function secretOf(call: RuntimeCall, sync: boolean): Promise<ApSecret> {
  let raw: unknown;
  try {
    raw = await call.secrets();
  } catch (err) {
    if (sync && (err as ApplicationFailure).type === FailureType.CredentialsDenied) return {};
    throw err;
  }
  const parsed = ApSecret.safeParse(raw);
  if (!parsed.success) throw refusal(FailureType.CredentialsDenied, 'activepieces: the secret has malformed fields (expected apiKey, webhookHeaderName, webhookHeaderValue)');
  return parsed.data;
}

export function createActivepiecesRuntime(): RuntimeAdapter {
  return {
    name: 'activepieces',
    async execute(call: RuntimeCall): Promise<RuntimeOutcome> {
      const flowId = call.request.target;
      if (!FLOW.test(flowId)) throw runtimeRejected(`activepieces: target must be a flow id (letters, digits, _ and -), got ${JSON.stringify(flowId.slice(0, 80))}`);
      const conn = call.connections.activepieces;
      if (!conn) throw refusal(FailureType.RuntimeNotConfigured, `workspace ${call.request.workspaceId} has no activepieces connection in its policy file`);
      const sync = (conn.flowModes?.[flowId] ?? conn.mode) === 'sync';
      const marks = new Set([call.dispatchId, call.request.dispatchKey]);
      const ctx: Ctx = { call, conn, flowId, secret: await secretOf(call, sync), dispatchId: call.dispatchId, marks };
      if (!sync && !canLookUp(ctx)) throw refusal(FailureType.RuntimeNotConfigured, `activepieces: async mode for flow ${flowId} needs projectId in the connection and apiKey in the secret`);
      return call.attempt > 1 || call.previous ? retry(ctx, sync) : send(ctx, sync);
    },
  };
}
