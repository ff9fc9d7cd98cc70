/**
 * The Langflow runtime: runs one flow through `POST /api/v1/run/{flow}?stream=false` and returns its
 * answer (wire contract: shared/reference/runtime-contracts.md, "2. Langflow").
 *
 * `/run` is synchronous and Langflow has no idempotency key and no way to look a run up, so once a
 * request may have reached the server, a failure without a clear answer is `RuntimeOutcomeUnknown`:
 * the flow (an agent, possibly with tools) may have acted, and resending could act twice.
 * Agent tools and the flow's tweak allow-list are checked before anything is sent or any secret is
 * read (`./langflow-tools`). Behaviour follows Langflow 1.13.0 as observed (runtime-contracts.md,
 * appendix): a bad body is not refused but run with empty input, so the body is validated here; the
 * only 422 is a refused (protected) tweak.
 */
import type { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { LangflowConnection } from '../../policies/connections';
import type { LoadedPolicies } from '../policy/load';
import { FailureType, refusal, runtimeOutcomeUnknown, runtimeRejected, runtimeUnavailable } from '../../workflows/failures';
import type { JsonValue } from '../../workflows/types';
import { type HttpResponse, TransportError, requestOrTransportError } from '../http/client';
import { type LangflowInput, parseLangflowAction } from './langflow-input';
import { refusedTweaks, toolRefusal } from './langflow-tools';
import type { RuntimeAdapter, RuntimeCall, RuntimeOutcome } from './port';
import { clipUtf8 } from '../utf8';

export { LangflowInput } from './langflow-input';

/** Keep the activity alive while the synchronous call runs (dispatch heartbeat timeout is 10s). */
const HEARTBEAT_EVERY_MS = 2_000;

const LangflowSecret = z.object({ apiKey: z.string().min(1) });

/** Only what is read is checked; Langflow's message fields vary by version. */
const RunResponse = z.looseObject({ session_id: z.unknown().optional(), outputs: z.array(z.unknown()) });

/** What a successful run returns into workflow history. */
export interface LangflowOutput {
  sessionId: string;
  /** Text of the first output's message, or null when the flow ends in something else. */
  answer: string | null;
  outputs: JsonValue[];
}

export interface LangflowDeps {
  /** Current policy (not the decision snapshot): tightened tool allow-lists apply to runs already decided. */
  policies: LoadedPolicies;
}

/** Heartbeat stages; a retry that finds `calling` knows an earlier attempt may have run the flow. */
type Stage = { stage: 'calling'; flow: string; sessionId: string } | { stage: 'notSent'; flow: string };

function checkTools(deps: LangflowDeps, call: RuntimeCall, flow: string, input: LangflowInput): void {
  const { defaults } = deps.policies.snapshotFor(call.request.workspaceId);
  const why = toolRefusal({ target: flow, declared: call.request.tools ?? [], tweaks: input.tweaks ?? {}, tier: call.request.tier, flowTools: defaults.flowTools, toolClasses: defaults.toolClasses });
  if (why) throw refusal(FailureType.ToolNotAllowed, `langflow: ${why}`);
}

/** Deny by default: every tweaked field must be on the flow's allow-list in the current policy. */
function checkTweaks(connection: LangflowConnection, flow: string, input: LangflowInput): void {
  const flows = connection.flows;
  const allow = flows && Object.hasOwn(flows, flow) ? flows[flow].tweaks : undefined;
  const refused = refusedTweaks(input.tweaks ?? {}, allow);
  if (!refused.length) return;
  const where = allow ? `connections.langflow.flows.${flow}.tweaks` : `no connections.langflow.flows.${flow}.tweaks, so no tweaks`;
  const named = refused.map((r) => clipUtf8(r, 200));
  throw refusal(FailureType.PolicyDenied, `langflow: the policy does not let a run of flow ${flow} tweak ${named.join(', ')} (${where})`, { reason: 'tweakNotAllowed', refused: named });
}

/** An attempt that died mid-call (worker crash, heartbeat timeout) may have run the flow: do not resend. */
function refuseBlindResend(call: RuntimeCall, flow: string): void {
  const previous = call.previous as Partial<Stage> | undefined;
  if (previous?.stage === 'calling') {
    throw runtimeOutcomeUnknown(`langflow: an earlier attempt may have run flow ${flow} (session ${previous.sessionId}); Langflow cannot look a run up, so it is not sent again`);
  }
}

async function apiKeyOf(call: RuntimeCall): Promise<string> {
  const parsed = LangflowSecret.safeParse(await call.secrets());
  // The secret's content never goes into the message.
  if (!parsed.success) throw refusal(FailureType.CredentialsDenied, `langflow: the workspace secret for langflow must hold apiKey (a non-empty string)`);
  return parsed.data.apiKey;
}

/** `detail` of a FastAPI error body, as text; 500s carry it as a JSON string with a `message`. */
function detailText(res: HttpResponse): string {
  const detail = (res.body as { detail?: unknown } | undefined)?.detail;
  let text = typeof detail === 'string' ? detail : detail !== undefined ? JSON.stringify(detail) : res.text;
  if (typeof detail === 'string' && /^\s*\{/.test(detail)) {
    try {
      const inner = JSON.parse(detail) as { message?: unknown };
      if (typeof inner.message === 'string' && inner.message) text = inner.message;
    } catch {
      // Not JSON after all: keep the raw detail.
    }
  }
  return clipUtf8(text, 1000) || `HTTP ${res.status}`;
}

/** Langflow's refusal of protected tweaks (1.12+): `{"detail": {"code": "TWEAKS_REFUSED", "message", "fields"}}`. */
const TweaksRefused = z.looseObject({ code: z.literal('TWEAKS_REFUSED'), message: z.string().optional(), fields: z.array(z.string()).optional() });

type SentTweaks = LangflowInput['tweaks'];

/** The refused fields, each with the tweak keys that set it (`code (on ChatInput-abc)`). */
function refusedFieldNames(fields: readonly string[], sent: SentTweaks): string[] {
  return fields.slice(0, 20).map((f) => {
    const keys = Object.entries(sent ?? {}).filter(([, v]) => Object.hasOwn(v, f)).map(([k]) => clipUtf8(k, 100));
    return `${clipUtf8(f, 100)}${keys.length ? ` (on ${keys.slice(0, 5).join(', ')})` : ''}`;
  });
}

/**
 * A 422: in Langflow 1.13 only a refused tweak. Older servers answered FastAPI validation lists; any
 * other body is summarised, never dumped.
 */
function unprocessable(flow: string, res: HttpResponse, sent: SentTweaks): ApplicationFailure {
  const body = res.body as { detail?: unknown } | undefined;
  const why = `langflow answered 422 for flow ${flow}`;
  for (const candidate of [body?.detail, body]) {
    const refused = TweaksRefused.safeParse(candidate);
    if (!refused.success) continue;
    const fields = refusedFieldNames(refused.data.fields ?? [], sent);
    const reason = refused.data.message ? `: ${clipUtf8(refused.data.message, 300)}` : '';
    return runtimeRejected(`${why}: Langflow refused to tweak ${fields.join(', ') || 'a field'}${reason}`, { httpStatus: 422, reason: 'tweakRefused', fields });
  }
  const detail = body?.detail;
  if (Array.isArray(detail)) {
    const errors = detail.slice(0, 20).map((d: { loc?: unknown; msg?: unknown }) => `${Array.isArray(d?.loc) ? d.loc.join('.') : '?'}: ${typeof d?.msg === 'string' ? clipUtf8(d.msg, 200) : 'invalid'}`);
    return runtimeRejected(`${why}: request refused: ${errors.join('; ')}`, { httpStatus: 422, reason: 'invalid', errors });
  }
  const text = typeof detail === 'string' ? clipUtf8(detail, 300) : 'no reason given in a form Portarium reads';
  return runtimeRejected(`${why}: request refused: ${text}`, { httpStatus: 422, reason: 'invalid' });
}

/** The one place Langflow answers and transport errors become failure types. */
function langflowFailure(flow: string, r: HttpResponse | TransportError, sent?: SentTweaks): ApplicationFailure {
  if (r instanceof TransportError) {
    if (!r.sent) return runtimeUnavailable(`langflow: flow ${flow} not sent (${r.code})`);
    return runtimeOutcomeUnknown(`langflow: no answer from flow ${flow} (${r.code}); it may have run, and Langflow cannot look a run up`);
  }
  const status = r.status;
  const why = `langflow answered ${status} for flow ${flow}`;
  switch (status) {
    case 401:
    case 403:
      return runtimeRejected(`${why}: the API key was refused: ${detailText(r)}`, { httpStatus: status, reason: 'auth' });
    case 404:
      return runtimeRejected(`${why}: flow not found: ${detailText(r)}`, { httpStatus: status, reason: 'notFound' });
    case 422:
      return unprocessable(flow, r, sent);
    case 400:
      return runtimeRejected(`${why}: ${detailText(r)}`, { httpStatus: status, reason: 'badRequest' });
    case 500:
      // The flow started and failed; an agent may already have acted, so it is not retried.
      return runtimeRejected(`${why}: the flow failed: ${detailText(r)}`, { httpStatus: status, reason: 'flowFailed' });
    case 429:
    case 503:
      // Refused before the flow ran: safe to retry.
      return runtimeUnavailable(`${why}: ${detailText(r)}`, { httpStatus: status });
  }
  // 502, 504 and other 5xx come from proxies or a dying server mid-run: the flow may have run.
  if (status >= 500) return runtimeOutcomeUnknown(`${why}: ${detailText(r)}; the flow may have run, and Langflow cannot look a run up`, { httpStatus: status });
  return runtimeRejected(`${why}: ${detailText(r)}`, { httpStatus: status, reason: 'unexpected' });
}

interface Send {
  call: RuntimeCall;
  connection: LangflowConnection;
  flow: string;
  body: LangflowInput & { session_id: string };
  apiKey: string;
}

/** One `/run` call, heartbeating while it waits. */
async function run(s: Send): Promise<HttpResponse> {
  const { call, flow } = s;
  const beat: Stage = { stage: 'calling', flow, sessionId: s.body.session_id };
  call.heartbeat(beat);
  const timer = setInterval(() => call.heartbeat(beat), HEARTBEAT_EVERY_MS);
  let failure: ApplicationFailure | undefined;
  try {
    // Cancelling aborts this HTTP request only: /run offers no way to stop the flow on the server.
    const res = await requestOrTransportError(call.http, {
      method: 'POST',
      url: `${s.connection.baseUrl}/api/v1/run/${encodeURIComponent(flow)}?stream=false`,
      headers: { 'x-api-key': s.apiKey, accept: 'application/json' },
      json: s.body,
      timeoutMs: s.connection.requestTimeout,
      signal: call.signal,
    });
    if (!(res instanceof TransportError) && res.status >= 200 && res.status < 300) return res;
    failure = langflowFailure(flow, res, s.body.tweaks);
  } finally {
    clearInterval(timer);
  }
  // Tell the retry this attempt certainly did not run the flow, so it may send again.
  if (failure.type === FailureType.RuntimeUnavailable) call.heartbeat({ stage: 'notSent', flow } satisfies Stage);
  throw failure;
}

/** The first output's message text, if the flow produced one. */
function answerOf(outputs: unknown[]): string | null {
  const first = (outputs[0] as { outputs?: unknown } | undefined)?.outputs;
  const result = Array.isArray(first) ? (first[0] as { results?: { message?: { text?: unknown } } } | null) : undefined;
  const text = result?.results?.message?.text;
  return typeof text === 'string' ? text : null;
}

/** Component ids of the results in a run response (`outputs[].outputs[].component_id`). */
function resultComponents(outputs: unknown[]): { results: number; ids: string[] } {
  let results = 0;
  const ids: string[] = [];
  for (const run of outputs) {
    const inner = (run as { outputs?: unknown } | null)?.outputs;
    if (!Array.isArray(inner)) continue;
    for (const r of inner) {
      if (r === null || r === undefined) continue;
      results++;
      const id = (r as { component_id?: unknown }).component_id;
      if (typeof id === 'string') ids.push(id);
    }
  }
  return { results, ids };
}

/**
 * Langflow answers 200 with no outputs when `output_component` names no component of the flow. The
 * flow did run (an agent may have acted), so this is not retried: it is refused, naming the component.
 */
function checkNamedOutput(outputs: unknown[], flow: string, component: string | undefined): void {
  if (!component) return;
  const { results, ids } = resultComponents(outputs);
  const missing = results === 0 || (ids.length === results && !ids.includes(component));
  if (missing) throw runtimeRejected(`langflow: flow ${flow} ran but returned no output from component ${clipUtf8(component, 256)} (output_component); check the component's node id`, { reason: 'noSuchOutput', component: clipUtf8(component, 256) });
}

function outcomeOf(res: HttpResponse, flow: string, sentSession: string, outputComponent: string | undefined): RuntimeOutcome {
  const parsed = RunResponse.safeParse(res.body);
  if (!parsed.success) throw runtimeRejected(`langflow: flow ${flow} answered ${res.status} with a body that is not a run response (no outputs list)`);
  checkNamedOutput(parsed.data.outputs, flow, outputComponent);
  const echoed = parsed.data.session_id;
  const sessionId = typeof echoed === 'string' && echoed.length > 0 && echoed.length <= 256 ? echoed : sentSession;
  const output: LangflowOutput = { sessionId, answer: answerOf(parsed.data.outputs), outputs: parsed.data.outputs as JsonValue[] };
  return { output: output as unknown as JsonValue, externalRef: `langflow:session:${sessionId}` };
}

/** The `langflow` runtime adapter. */
export function createLangflowRuntime(deps: LangflowDeps): RuntimeAdapter {
  return {
    name: 'langflow',
    async execute(call: RuntimeCall): Promise<RuntimeOutcome> {
      const { flow, input } = parseLangflowAction(call.request);
      checkTools(deps, call, flow, input);
      const connection = call.connections.langflow;
      if (!connection) throw refusal(FailureType.RuntimeNotConfigured, `langflow: workspace ${call.request.workspaceId} has no langflow connection in its policy file`);
      checkTweaks(connection, flow, input);
      refuseBlindResend(call, flow);
      const apiKey = await apiKeyOf(call);
      const body = { ...input, session_id: input.session_id ?? call.request.correlationId };
      const res = await run({ call, connection, flow, body, apiKey });
      return outcomeOf(res, flow, body.session_id, input.output_component);
    },
  };
}
