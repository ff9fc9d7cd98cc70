/**
 * The StackStorm runtime: runs one action (`target` = action ref `pack.action`, `input` = its
 * parameters) through `POST /v1/executions`, polls the execution until it completes and returns its
 * result (wire contract: shared/reference/runtime-contracts.md, "4. StackStorm").
 *
 * StackStorm has no idempotency key and no lookup by context: once a create may have reached it, the
 * only safe ways on are the heartbeated execution id or `RuntimeOutcomeUnknown`. The dispatch ids go in
 * the `st2-context` header so an operator can find the execution by hand.
 */
import type { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { StackStormConnection } from '../../policies/connections';
import { FailureType, refusal, runtimeOutcomeUnknown, runtimeRejected, runtimeUnavailable } from '../../workflows/failures';
import type { JsonValue } from '../../workflows/types';
import { type HttpRequest, type HttpResponse, TransportError, requestOrTransportError } from '../http/client';
import { pollRemote, previousRemoteId } from './remote-run';
import type { RuntimeAdapter, RuntimeCall, RuntimeOutcome } from './port';
import { clipUtf8 } from '../utf8';

const ACTION_REF = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+$/;
/** Execution ids are ObjectIds (24 hex); nothing else is built into a URL. */
const EXECUTION_ID = /^[A-Za-z0-9]{1,64}$/;
const COMPLETED = new Set(['succeeded', 'failed', 'timeout', 'canceled', 'abandoned']);
/** Consecutive failed polls tolerated before the attempt gives up; the retry resumes from the heartbeated id. */
const POLL_ERROR_BUDGET = 5;
/** Stopping a run happens while the activity is ending: do not wait long. */
const STOP_TIMEOUT_MS = 5_000;
/** Lifetime asked for new tokens, in seconds (st2's default maximum is a day). */
const TOKEN_TTL_S = 3_600;
/** A cached token is replaced this long before StackStorm says it expires. */
const TOKEN_MARGIN_MS = 60_000;
/** Bytes of a failed execution's result quoted in the failure. */
const RESULT_EXCERPT = 500;
/** Bytes of a faultstring quoted in a failure. */
const FAULT_EXCERPT = 1000;

const ApiKeySecret = z.object({ apiKey: z.string().min(1) });
const UserSecret = z.object({ username: z.string().min(1), password: z.string().min(1) });
const Token = z.looseObject({ token: z.string().min(1), expiry: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not a date') });
/** Only the fields read; `result` is shaped by the runner. */
const Execution = z.looseObject({ id: z.string().regex(EXECUTION_ID), status: z.string().min(1), result: z.unknown().optional() });
type Execution = z.infer<typeof Execution>;
const Fault = z.looseObject({ faultstring: z.string() });

/** What a successful execution returns into workflow history. */
export interface StackStormOutput {
  executionId: string;
  status: string;
  result: JsonValue;
}

type Phase = 'auth' | 'create' | 'poll' | 'cancel';

/** Tokens by (workspace, authUrl, username), held by one adapter instance. */
type TokenCache = Map<string, { token: string; expiresAt: number }>;

/** Headers that authenticate one request; `renew` after a 401 says whether one more try is worth it. */
interface Credentials {
  headers(): Promise<Record<string, string>>;
  /** Drop a token that came from the cache; true when a fresh one may succeed where it failed. */
  renew(): boolean;
}

interface Ctx {
  call: RuntimeCall;
  conn: StackStormConnection;
  action: string;
  creds: Credentials;
}

function faultOf(res: HttpResponse): string {
  const parsed = Fault.safeParse(res.body);
  return clipUtf8(parsed.success ? parsed.data.faultstring : typeof res.body === 'string' ? res.text : '', FAULT_EXCERPT) || `HTTP ${res.status}`;
}

/** The one place StackStorm answers and transport errors become failure types. */
function stackstormFailure(phase: Phase, action: string, r: HttpResponse | TransportError): ApplicationFailure {
  if (r instanceof TransportError) {
    // Only a create changes anything: everything else (token, poll, cancel) may be sent again.
    if (!r.sent || phase !== 'create') return runtimeUnavailable(`stackstorm: ${phase} for ${action} failed without an answer (${r.code})`);
    return runtimeOutcomeUnknown(`stackstorm: no answer to the execution of ${action} (${r.code}); it may have run, and StackStorm cannot look it up`);
  }
  const s = r.status;
  const why = `stackstorm answered ${s} to ${phase} for ${action}: ${faultOf(r)}`;
  switch (s) {
    case 401:
      return runtimeRejected(why, { httpStatus: s, reason: 'auth' });
    case 403:
      return runtimeRejected(why, { httpStatus: s, reason: 'forbidden' });
    case 400:
      return runtimeRejected(why, { httpStatus: s, reason: 'badRequest', faultstring: faultOf(r) });
    case 404:
      return runtimeRejected(why, { httpStatus: s, reason: 'notFound' });
    case 409:
      return runtimeRejected(why, { httpStatus: s, reason: 'conflict' });
    case 429:
    case 503:
      return runtimeUnavailable(why, { httpStatus: s });
  }
  if (s >= 500) {
    if (phase === 'create') return runtimeOutcomeUnknown(`${why}; the action may have run, and StackStorm cannot look it up`, { httpStatus: s });
    return runtimeUnavailable(why, { httpStatus: s });
  }
  return runtimeRejected(why, { httpStatus: s, reason: 'unexpected' });
}

function apiKeyCredentials(apiKey: string): Credentials {
  return { headers: async () => ({ 'st2-api-key': apiKey }), renew: () => false };
}

async function mintToken(call: RuntimeCall, conn: StackStormConnection, user: z.infer<typeof UserSecret>): Promise<{ token: string; expiresAt: number }> {
  const r = await requestOrTransportError(call.http, {
    method: 'POST',
    url: `${conn.authUrl}/v1/tokens`,
    headers: { authorization: `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`, accept: 'application/json' },
    json: { ttl: TOKEN_TTL_S },
    timeoutMs: conn.requestTimeout,
  });
  if (r instanceof TransportError || r.status !== 201) throw stackstormFailure('auth', call.request.target, r);
  // Scrubbed from here on, before it is sent or quoted ("Token with token ... not found"), even if the answer is malformed.
  const minted = (r.body as { token?: unknown } | null | undefined)?.token;
  if (typeof minted === 'string') call.registerSecret(minted);
  const parsed = Token.safeParse(r.body);
  if (!parsed.success) throw runtimeRejected(`stackstorm: the token answer is not a token: ${parsed.error.issues[0]?.message}`);
  return { token: parsed.data.token, expiresAt: Date.parse(parsed.data.expiry) };
}

function tokenCredentials(call: RuntimeCall, conn: StackStormConnection, user: z.infer<typeof UserSecret>, cache: TokenCache): Credentials {
  const key = JSON.stringify([call.request.workspaceId, conn.authUrl, user.username]);
  let used: { token: string; cached: boolean } | undefined;
  return {
    async headers() {
      const hit = cache.get(key);
      if (hit && hit.expiresAt - TOKEN_MARGIN_MS > Date.now()) {
        // Minted by an earlier dispatch: this dispatch's scrubber has not seen it yet.
        call.registerSecret(hit.token);
        used = { token: hit.token, cached: true };
      } else {
        const fresh = await mintToken(call, conn, user);
        cache.set(key, fresh);
        used = { token: fresh.token, cached: false };
      }
      return { 'x-auth-token': used.token };
    },
    renew() {
      if (!used?.cached) return false;
      // Another dispatch may already have replaced it.
      if (cache.get(key)?.token === used.token) cache.delete(key);
      used = undefined;
      return true;
    },
  };
}

async function credentialsOf(call: RuntimeCall, conn: StackStormConnection, cache: TokenCache): Promise<Credentials> {
  const secret = await call.secrets();
  // The secret's content never goes into a message.
  if (conn.auth === 'apiKey') {
    const parsed = ApiKeySecret.safeParse(secret);
    if (!parsed.success) throw refusal(FailureType.CredentialsDenied, 'stackstorm: the workspace secret for stackstorm must hold apiKey');
    return apiKeyCredentials(parsed.data.apiKey);
  }
  if (!conn.authUrl) throw refusal(FailureType.RuntimeNotConfigured, `stackstorm: token auth needs authUrl in the stackstorm connection of workspace ${call.request.workspaceId}`);
  const parsed = UserSecret.safeParse(secret);
  if (!parsed.success) throw refusal(FailureType.CredentialsDenied, 'stackstorm: the workspace secret for stackstorm must hold username and password (token auth)');
  return tokenCredentials(call, conn, parsed.data, cache);
}

/** One authenticated call; a 401 on a cached token re-authenticates once. Transport failures come back as the value. */
async function send(ctx: Ctx, req: Omit<HttpRequest, 'timeoutMs'> & { timeoutMs?: number }): Promise<HttpResponse | TransportError> {
  for (let tries = 0; ; tries++) {
    const headers = { ...req.headers, ...(await ctx.creds.headers()), accept: 'application/json' };
    const r = await requestOrTransportError(ctx.call.http, { timeoutMs: ctx.conn.requestTimeout, ...req, headers });
    // A 401 is answered before anything runs, so even a create may be sent again.
    if (r instanceof TransportError || r.status !== 401 || tries > 0 || !ctx.creds.renew()) return r;
  }
}

function executionOf(ctx: Ctx, phase: Phase, body: unknown): Execution {
  const parsed = Execution.safeParse(body);
  if (!parsed.success) throw runtimeRejected(`stackstorm: the ${phase} answer for ${ctx.action} is not an execution: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/**
 * Whether this attempt may create the execution. StackStorm cannot say whether an earlier attempt's
 * create ran, so a retry sends only when the attempt just before it recorded that its create certainly
 * did not reach StackStorm (`notSent`). That mark names its attempt: an attempt that died after creating
 * leaves an older mark (or none), which does not count.
 */
function refuseBlindResend(call: RuntimeCall, action: string): void {
  if (call.attempt <= 1 && call.previous === undefined) return;
  const notSent = (call.previous as { notSent?: unknown } | undefined)?.notSent;
  if (notSent === call.attempt - 1) return;
  throw runtimeOutcomeUnknown(`stackstorm: an earlier attempt may have run ${action} without recording its execution id; StackStorm cannot look it up, so it is not sent again`);
}

async function create(ctx: Ctx): Promise<string> {
  const { call } = ctx;
  const context = { portarium: { dispatchId: call.dispatchId, workspaceId: call.request.workspaceId, correlationId: call.request.correlationId } };
  // No abort signal: a create cut off midway could leave an execution nobody cancels. Once it answers,
  // the poll loop sees the cancel and cancels what was created.
  const r = await send(ctx, { method: 'POST', url: `${ctx.conn.baseUrl}/v1/executions`, headers: { 'st2-context': JSON.stringify(context) }, json: { action: ctx.action, parameters: call.request.input } }).catch((err: unknown) => {
    throw markNotSent(call, err); // No token could be had, so nothing was sent.
  });
  if (!(r instanceof TransportError) && (r.status === 201 || r.status === 200)) {
    const e = executionOf(ctx, 'create', r.body);
    call.heartbeat({ remoteId: e.id });
    return e.id;
  }
  throw markNotSent(call, stackstormFailure('create', ctx.action, r));
}

/** An unavailable create certainly created nothing: record that, so the retry may send again. */
function markNotSent(call: RuntimeCall, err: unknown): unknown {
  if ((err as Partial<ApplicationFailure> | undefined)?.type === FailureType.RuntimeUnavailable) call.heartbeat({ notSent: call.attempt });
  return err;
}

/** One look at the execution; tolerates a few consecutive unavailable answers. */
function checker(ctx: Ctx, id: string) {
  let errors = 0;
  return async (): Promise<{ done: true; value: Execution } | { done: false; state: string }> => {
    const r = await send(ctx, { method: 'GET', url: `${ctx.conn.baseUrl}/v1/executions/${id}`, signal: ctx.call.signal });
    if (ctx.call.signal.aborted) return { done: false, state: 'canceling' };
    if (r instanceof TransportError || r.status !== 200) {
      const failure = stackstormFailure('poll', ctx.action, r);
      if (failure.type !== FailureType.RuntimeUnavailable || ++errors >= POLL_ERROR_BUDGET) throw failure;
      return { done: false, state: 'unreachable' };
    }
    errors = 0;
    const e = executionOf(ctx, 'poll', r.body);
    return COMPLETED.has(e.status) ? { done: true, value: e } : { done: false, state: e.status };
  };
}

async function cancel(ctx: Ctx, id: string): Promise<void> {
  // The dispatch's signal has aborted by now: this call gets its own short timeout instead.
  const r = await send(ctx, { method: 'DELETE', url: `${ctx.conn.baseUrl}/v1/executions/${id}`, timeoutMs: Math.min(ctx.conn.requestTimeout, STOP_TIMEOUT_MS) });
  // 400 is "already in completed state": nothing left to stop.
  if (r instanceof TransportError || (r.status >= 300 && r.status !== 400)) throw stackstormFailure('cancel', ctx.action, r);
}

function outcomeOf(ctx: Ctx, e: Execution): RuntimeOutcome {
  const result = (e.result ?? null) as JsonValue;
  if (e.status !== 'succeeded') {
    const excerpt = clipUtf8(JSON.stringify(result), RESULT_EXCERPT);
    throw runtimeRejected(`stackstorm: execution ${e.id} of ${ctx.action} ended ${e.status}: ${excerpt}`, { executionId: e.id, status: e.status, result: excerpt });
  }
  const output: StackStormOutput = { executionId: e.id, status: e.status, result };
  return { output: output as unknown as JsonValue, externalRef: `stackstorm:execution:${e.id}` };
}

async function startOrResume(ctx: Ctx): Promise<string> {
  const previous = previousRemoteId(ctx.call);
  if (previous === undefined) {
    refuseBlindResend(ctx.call, ctx.action);
    return create(ctx);
  }
  if (!EXECUTION_ID.test(previous)) throw runtimeOutcomeUnknown(`stackstorm: an earlier attempt heartbeated a malformed execution id for ${ctx.action}`);
  return previous;
}

/** The `stackstorm` runtime adapter. Its token cache lives as long as the adapter. */
export function createStackStormRuntime(): RuntimeAdapter {
  const tokens: TokenCache = new Map();
  return {
    name: 'stackstorm',
    async execute(call: RuntimeCall): Promise<RuntimeOutcome> {
      const action = call.request.target;
      if (!ACTION_REF.test(action) || action.length > 256) throw runtimeRejected(`stackstorm: target must be an action ref pack.action, got ${JSON.stringify(action.slice(0, 260))}`);
      const conn = call.connections.stackstorm;
      if (!conn) throw refusal(FailureType.RuntimeNotConfigured, `stackstorm: workspace ${call.request.workspaceId} has no stackstorm connection in its policy file`);
      const ctx: Ctx = { call, conn, action, creds: await credentialsOf(call, conn, tokens) };
      const id = await startOrResume(ctx);
      const done = await pollRemote({
        call,
        runtime: 'stackstorm',
        remoteId: id,
        intervalMs: conn.pollInterval,
        deadline: Date.now() + conn.runTimeout,
        check: checker(ctx, id),
        stop: () => cancel(ctx, id),
      });
      return outcomeOf(ctx, done);
    },
  };
}
