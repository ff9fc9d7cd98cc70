/**
 * The Kestra runtime: starts one execution of a flow (`target` = `namespace/flowId`, `input` = the
 * flow's inputs), polls it to a terminal state and returns its outputs (wire contract:
 * shared/reference/runtime-contracts.md, "3. Kestra").
 *
 * Kestra has no idempotency key. Every execution is labelled with the dispatch id (`call.dispatchId`),
 * and a retry that has no heartbeated execution id looks that label up before it creates anything.
 * `wait=true` is never used: it can hold a connection for up to an hour.
 */
import type { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { KestraConnection } from '../../policies/connections';
import { FailureType, refusal, runtimeOutcomeUnknown, runtimeRejected, runtimeUnavailable } from '../../workflows/failures';
import type { JsonValue } from '../../workflows/types';
import { type HttpRequest, type HttpResponse, TransportError, requestOrTransportError } from '../http/client';
import { pollRemote, previousRemoteId } from './remote-run';
import type { RuntimeAdapter, RuntimeCall, RuntimeOutcome } from './port';
import { clipUtf8 } from '../utf8';

const NAME_PART = /^[A-Za-z0-9._-]{1,150}$/;
/** Kestra ids are short base62 UUIDs; nothing else is built into a URL. */
const EXECUTION_ID = /^[A-Za-z0-9_-]{1,64}$/;
const TERMINAL = new Set(['FAILED', 'WARNING', 'SUCCESS', 'KILLED', 'CANCELLED', 'RETRIED', 'SKIPPED']);
const SUCCEEDED = new Set(['SUCCESS', 'WARNING']);
/** Consecutive failed polls tolerated before the attempt gives up; the retry resumes from the heartbeated id. */
const POLL_ERROR_BUDGET = 5;
/** Stopping a run happens while the activity is ending: do not wait long. */
const STOP_TIMEOUT_MS = 5_000;
/** Label keys; Kestra splits `labels=k:v` on `:`, so values are hex or workspace ids, which have none. */
const DISPATCH_LABEL = 'portarium_dispatch';
const WORKSPACE_LABEL = 'portarium_workspace';

const BasicSecret = z.object({ username: z.string().min(1), password: z.string().min(1) });
const BearerSecret = z.object({ token: z.string().min(1) });

/** Only the fields read; Kestra adds fields between versions. */
const Execution = z.looseObject({
  id: z.string().regex(EXECUTION_ID),
  labels: z.array(z.looseObject({ key: z.string(), value: z.string() })).nullish(),
  state: z.looseObject({ current: z.string().min(1) }),
  outputs: z.record(z.string(), z.unknown()).nullish(),
  url: z.string().max(2048).optional(),
});
type Execution = z.infer<typeof Execution>;

/**
 * Assumed answer of `GET /executions/search` (a PagedResults). The contract notes call the search syntax
 * unverified for newer versions, so every hit is checked again for our label before it is trusted.
 */
const SearchResults = z.looseObject({ results: z.array(z.unknown()), total: z.number().optional() });

/** Micronaut's JsonError; `_embedded.errors` carries validation messages when present. */
const KestraError = z.looseObject({
  message: z.string().optional(),
  _embedded: z.looseObject({ errors: z.array(z.looseObject({ message: z.string().optional() })).optional() }).optional(),
});

/** What a successful execution returns into workflow history. */
export interface KestraOutput {
  executionId: string;
  state: string;
  outputs: { [k: string]: JsonValue };
  /** UI link, when the create answer carried one. */
  url?: string;
}

type Phase = 'create' | 'search' | 'poll' | 'kill';

interface Ctx {
  call: RuntimeCall;
  conn: KestraConnection;
  /** `{baseUrl}/api/v1/{tenant}`, or `{baseUrl}/api/v1` before tenants (0.22 and older). */
  base: string;
  namespace: string;
  flowId: string;
  /** `namespace/flowId`, for messages. */
  ref: string;
  authorization: string;
  /** The dispatch id (`call.dispatchId`): the value of the dispatch label. */
  dispatchHex: string;
}

function parseTarget(target: string): { namespace: string; flowId: string } {
  const [namespace, flowId, ...rest] = target.split('/');
  if (rest.length || !NAME_PART.test(namespace ?? '') || !NAME_PART.test(flowId ?? '')) {
    throw runtimeRejected(`kestra: target must be namespace/flowId (letters, digits, . _ -, at most 150 each), got ${JSON.stringify(target.slice(0, 320))}`);
  }
  return { namespace, flowId };
}

async function authorizationOf(call: RuntimeCall, conn: KestraConnection): Promise<string> {
  const secret = await call.secrets();
  // The secret's content never goes into a message.
  if (conn.auth === 'bearer') {
    const parsed = BearerSecret.safeParse(secret);
    if (!parsed.success) throw refusal(FailureType.CredentialsDenied, 'kestra: the workspace secret for kestra must hold token (bearer auth)');
    return `Bearer ${parsed.data.token}`;
  }
  const parsed = BasicSecret.safeParse(secret);
  if (!parsed.success) throw refusal(FailureType.CredentialsDenied, 'kestra: the workspace secret for kestra must hold username and password (basic auth)');
  return `Basic ${Buffer.from(`${parsed.data.username}:${parsed.data.password}`).toString('base64')}`;
}

function errorText(res: HttpResponse): string {
  const parsed = KestraError.safeParse(res.body);
  const parts = parsed.success ? [parsed.data.message, ...(parsed.data._embedded?.errors ?? []).map((e) => e.message)] : [];
  const text = parts.filter((p): p is string => !!p).join('; ') || (typeof res.body === 'string' ? res.text : '');
  return clipUtf8(text, 1000) || `HTTP ${res.status}`;
}

/** The one place Kestra answers and transport errors become failure types. */
function kestraFailure(phase: Phase, ref: string, r: HttpResponse | TransportError): ApplicationFailure {
  if (r instanceof TransportError) {
    if (!r.sent) return runtimeUnavailable(`kestra: ${phase} for ${ref} not sent (${r.code})`);
    // Only a create can have been applied; its caller looks the execution up before deciding.
    if (phase === 'create') return runtimeOutcomeUnknown(`kestra: no answer to the create for ${ref} (${r.code})`);
    return runtimeUnavailable(`kestra: no answer to ${phase} for ${ref} (${r.code})`);
  }
  const s = r.status;
  const why = `kestra answered ${s} to ${phase} for ${ref}`;
  // A search Kestra will not run (newer filter syntax?) cannot prove an execution absent: never resend on it.
  if (phase === 'search' && (s === 400 || s === 404 || s === 422)) {
    return runtimeOutcomeUnknown(`${why}: the execution cannot be looked up (${errorText(r)})`, { httpStatus: s });
  }
  switch (s) {
    case 401:
      return runtimeRejected(`${why}: credentials refused`, { httpStatus: s, reason: 'auth' });
    case 403:
      return runtimeRejected(`${why}: forbidden: ${errorText(r)}`, { httpStatus: s, reason: 'forbidden' });
    case 404:
      return runtimeRejected(`${why}: not found: ${errorText(r)}`, { httpStatus: s, reason: 'notFound' });
    case 409:
      return runtimeRejected(`${why}: ${errorText(r)}`, { httpStatus: s, reason: 'conflict' });
    case 422:
      return runtimeRejected(`${why}: invalid inputs or labels: ${errorText(r)}`, { httpStatus: s, reason: 'invalid', message: errorText(r) });
    case 429:
    case 503:
      return runtimeUnavailable(`${why}: ${errorText(r)}`, { httpStatus: s });
  }
  if (s >= 500) {
    if (phase === 'create') return runtimeOutcomeUnknown(`${why}: ${errorText(r)}; the execution may exist`, { httpStatus: s });
    return runtimeUnavailable(`${why}: ${errorText(r)}`, { httpStatus: s });
  }
  return runtimeRejected(`${why}: unexpected answer: ${errorText(r)}`, { httpStatus: s, reason: 'unexpected' });
}

/** One call to Kestra; a transport failure comes back as the value so callers map it in one place. */
function send(ctx: Ctx, req: Omit<HttpRequest, 'headers' | 'timeoutMs'> & { timeoutMs?: number }): Promise<HttpResponse | TransportError> {
  return requestOrTransportError(ctx.call.http, { timeoutMs: ctx.conn.requestTimeout, ...req, headers: { authorization: ctx.authorization, accept: 'application/json' } });
}

function executionOf(ctx: Ctx, phase: Phase, body: unknown): Execution {
  const parsed = Execution.safeParse(body);
  if (!parsed.success) throw runtimeRejected(`kestra: the ${phase} answer for ${ctx.ref} is not an execution: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** Text parts, one per input; null means "not given", so Kestra applies the input's default. */
function formOf(input: { [k: string]: JsonValue }): FormData {
  const form = new FormData();
  for (const [k, v] of Object.entries(input)) if (v !== null) form.append(k, typeof v === 'string' ? v : JSON.stringify(v));
  return form;
}

/** The execution an earlier attempt created for this dispatch, found by its label. */
async function findExisting(ctx: Ctx): Promise<Execution | undefined> {
  const label = encodeURIComponent(`${DISPATCH_LABEL}:${ctx.dispatchHex}`);
  const r = await send(ctx, { method: 'GET', url: `${ctx.base}/executions/search?labels=${label}`, signal: ctx.call.signal });
  if (r instanceof TransportError || r.status !== 200) throw kestraFailure('search', ctx.ref, r);
  const page = SearchResults.safeParse(r.body);
  if (!page.success) throw runtimeOutcomeUnknown(`kestra: the search answer for ${ctx.ref} is not a result page; the execution cannot be looked up`);
  for (const hit of page.data.results) {
    const e = Execution.safeParse(hit);
    // A server that ignores the filter returns other executions: trust only our own label.
    if (e.success && e.data.labels?.some((l) => l.key === DISPATCH_LABEL && l.value === ctx.dispatchHex)) return e.data;
  }
  return undefined;
}

function started(ctx: Ctx, e: Pick<Execution, 'id' | 'url'>): { id: string; url?: string } {
  ctx.call.heartbeat({ remoteId: e.id });
  return { id: e.id, url: e.url };
}

async function create(ctx: Ctx): Promise<{ id: string; url?: string }> {
  const { call } = ctx;
  const labels = [`${DISPATCH_LABEL}:${ctx.dispatchHex}`, `${WORKSPACE_LABEL}:${call.request.workspaceId}`];
  const url = `${ctx.base}/executions/${ctx.namespace}/${ctx.flowId}?${labels.map((l) => `labels=${encodeURIComponent(l)}`).join('&')}`;
  // No abort signal: a create cut off midway could leave an execution nobody stops. Once it answers, the
  // poll loop sees the cancel and kills what was created.
  const r = await send(ctx, { method: 'POST', url, form: formOf(call.request.input) });
  if (!(r instanceof TransportError) && r.status >= 200 && r.status < 300) return started(ctx, executionOf(ctx, 'create', r.body));
  const failure = kestraFailure('create', ctx.ref, r);
  if (failure.type !== FailureType.RuntimeOutcomeUnknown) throw failure;
  // Kestra creates synchronously (the execution exists before the create answers), so a create that got
  // no clear answer and left no execution is safe to resend, but only after a search says none exists.
  // Not resent here: the retry searches again after its backoff (time for a slow create or a lagging
  // search index to show it) and only then sends.
  const found = await findExisting(ctx);
  if (found) return started(ctx, found);
  throw runtimeUnavailable(`kestra: the create for ${ctx.ref} failed and left no execution; it is sent again on retry`);
}

/** Resume what an earlier attempt started, or create the execution. */
async function startOrResume(ctx: Ctx): Promise<{ id: string; url?: string }> {
  const previous = previousRemoteId(ctx.call);
  if (previous !== undefined) {
    if (!EXECUTION_ID.test(previous)) throw runtimeOutcomeUnknown(`kestra: an earlier attempt heartbeated a malformed execution id for ${ctx.ref}`);
    return { id: previous };
  }
  // An earlier attempt may have created the execution and died before heartbeating its id.
  if (ctx.call.attempt > 1 || ctx.call.previous !== undefined) {
    const found = await findExisting(ctx);
    if (found) return started(ctx, found);
  }
  return create(ctx);
}

/** One look at the execution; tolerates a few consecutive unavailable answers. */
function checker(ctx: Ctx, id: string) {
  let errors = 0;
  return async (): Promise<{ done: true; value: Execution } | { done: false; state: string }> => {
    const r = await send(ctx, { method: 'GET', url: `${ctx.base}/executions/${id}`, signal: ctx.call.signal });
    if (ctx.call.signal.aborted) return { done: false, state: 'CANCELLING' };
    if (r instanceof TransportError || r.status !== 200) {
      const failure = kestraFailure('poll', ctx.ref, r);
      if (failure.type !== FailureType.RuntimeUnavailable || ++errors >= POLL_ERROR_BUDGET) throw failure;
      return { done: false, state: 'UNREACHABLE' };
    }
    errors = 0;
    const e = executionOf(ctx, 'poll', r.body);
    return TERMINAL.has(e.state.current) ? { done: true, value: e } : { done: false, state: e.state.current };
  };
}

async function kill(ctx: Ctx, id: string): Promise<void> {
  // The dispatch's signal has aborted by now: this call gets its own short timeout instead.
  const r = await send(ctx, { method: 'DELETE', url: `${ctx.base}/executions/${id}/kill`, timeoutMs: Math.min(ctx.conn.requestTimeout, STOP_TIMEOUT_MS) });
  // 404 (gone) and 409 (already ended) leave nothing to stop.
  if (r instanceof TransportError || (r.status >= 300 && r.status !== 404 && r.status !== 409)) throw kestraFailure('kill', ctx.ref, r);
}

function outcomeOf(ctx: Ctx, e: Execution, url: string | undefined): RuntimeOutcome {
  const state = e.state.current;
  if (!SUCCEEDED.has(state)) throw runtimeRejected(`kestra: execution ${e.id} of ${ctx.ref} ended ${state}`, { executionId: e.id, state });
  const output: KestraOutput = { executionId: e.id, state, outputs: (e.outputs ?? {}) as KestraOutput['outputs'], ...(url ? { url } : {}) };
  return { output: output as unknown as JsonValue, externalRef: `kestra:execution:${e.id}` };
}

function contextOf(call: RuntimeCall, conn: KestraConnection, target: { namespace: string; flowId: string }, authorization: string): Ctx {
  const { namespace, flowId } = target;
  const base = conn.tenant ? `${conn.baseUrl}/api/v1/${conn.tenant}` : `${conn.baseUrl}/api/v1`;
  return { call, conn, base, namespace, flowId, ref: `${namespace}/${flowId}`, authorization, dispatchHex: call.dispatchId };
}

/** The `kestra` runtime adapter. */
export function createKestraRuntime(): RuntimeAdapter {
  return {
    name: 'kestra',
    async execute(call: RuntimeCall): Promise<RuntimeOutcome> {
      const target = parseTarget(call.request.target);
      const conn = call.connections.kestra;
      if (!conn) throw refusal(FailureType.RuntimeNotConfigured, `kestra: workspace ${call.request.workspaceId} has no kestra connection in its policy file`);
      const ctx = contextOf(call, conn, target, await authorizationOf(call, conn));
      const run = await startOrResume(ctx);
      const done = await pollRemote({
        call,
        runtime: 'kestra',
        remoteId: run.id,
        intervalMs: conn.pollInterval,
        deadline: Date.now() + conn.runTimeout,
        check: checker(ctx, run.id),
        stop: () => kill(ctx, run.id),
      });
      return outcomeOf(ctx, done, run.url ?? done.url);
    },
  };
}
