/**
 * Fake Langflow, following **Langflow 1.13.0** as observed against a real server (shared/reference/
 * runtime-contracts.md, "2. Langflow" and its appendix): `POST /api/v1/run/{flow}` (synchronous,
 * `x-api-key` auth) and `GET /health`. As 1.13 does, a body with a bad field is not refused: the flow
 * runs with empty input and answers 200. The only 422 is a refused (protected) tweak, with 1.13's
 * `{"detail": {"error", "code": "TWEAKS_REFUSED", "message", "fields"}}` body; an `output_component`
 * that names no output gives 200 with `outputs: []`. Tests register flows and say how each behaves.
 */
import { randomUUID } from 'node:crypto';
import { GUNICORN_IDLE, HttpFake, type RecordedRequest, type Reply } from './http-fake';

/** How a registered flow answers. */
export interface FakeFlow {
  /** Text of the chat output. @default the input_value, echoed */
  answer?: string;
  /** Fail the run with this message: 500 with the JSON-string `detail` of Langflow's APIException. */
  fail?: string;
  /** Answer after this long. */
  delayMs?: number;
  /** Drop the connection without answering (after `delayMs`). */
  hangUp?: boolean;
  /** Answer with this status (and `body`, or a default body shaped like Langflow's or a proxy's). */
  status?: number;
  body?: unknown;
  /** Node id of the flow's chat output; `output_component` must name it. @default ChatOutput-fake */
  outputComponent?: string;
  /** Extra fields of the answer's message (e.g. `token_usage` of an LLM flow). */
  message?: Record<string, unknown>;
}

const RUN = /^\/api\/v1\/run\/([^/]+)$/;
const INPUT_TYPES = ['chat', 'text', 'any'];
const OUTPUT_TYPES = ['chat', 'text', 'any', 'debug'];
/** Fields 1.13 refuses to tweak: component code and the code or sandbox fields of code-running components. */
const PROTECTED = new Set(['code', 'python_code', 'function_code', 'tool_code', 'global_imports', 'allow_dangerous_code']);

/** 1.13's refused-tweak body; `fields` sorted, as Langflow sends them. */
function tweaksRefused(fields: string[]): Reply {
  const detail = { error: 'Refused tweaks', code: 'TWEAKS_REFUSED', message: 'The field is protected and keeps the value set by the flow author.', fields: [...new Set(fields)].sort() };
  return { status: 422, body: { detail } };
}

/** Whether the body is a `SimplifiedAPIRequest` pydantic would accept (fields optional, types not). */
function validBody(json: unknown): json is Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return false;
  const b = json as Record<string, unknown>;
  const text = (f: string) => b[f] === undefined || b[f] === null || typeof b[f] === 'string';
  const tweaks = b.tweaks === undefined || b.tweaks === null || (typeof b.tweaks === 'object' && !Array.isArray(b.tweaks));
  return ['input_value', 'output_component', 'session_id'].every(text) && tweaks && (b.input_type === undefined || INPUT_TYPES.includes(b.input_type as string)) && (b.output_type === undefined || OUTPUT_TYPES.includes(b.output_type as string));
}

/** A request with one protected field is refused whole: nothing runs. */
function protectedTweaks(b: Record<string, unknown>): Reply | undefined {
  const fields = Object.values((b.tweaks ?? {}) as Record<string, unknown>).flatMap((v) => (v && typeof v === 'object' ? Object.keys(v).filter((f) => PROTECTED.has(f)) : []));
  return fields.length ? tweaksRefused(fields) : undefined;
}

/** Langflow refuses a chat input_value together with a ChatInput tweak that sets one (`validate_input_and_tweaks`). */
function conflictingInput(b: Record<string, unknown>): Reply | undefined {
  const tweaks = (b.tweaks ?? {}) as Record<string, unknown>;
  const chatTweak = Object.entries(tweaks).find(([k, v]) => k.startsWith('ChatInput') && v && typeof v === 'object' && 'input_value' in v);
  if (!chatTweak || typeof b.input_value !== 'string' || (b.input_type ?? 'chat') !== 'chat') return undefined;
  return { status: 400, body: { detail: `If you pass an input_value to the chat input, you cannot pass a tweak with the same name (${chatTweak[0]}).` } };
}

/** `RunResponse` with one chat output, as `lfx/graph/schema.py` builds it. */
function runResponse(flowId: string, sessionId: string, input: string, text: string, flow: FakeFlow): unknown {
  const output = flow.outputComponent ?? 'ChatOutput-fake';
  const message = { text, sender: 'Machine', sender_name: 'AI', session_id: sessionId, timestamp: new Date().toISOString(), flow_id: flowId, files: [], properties: {}, ...flow.message };
  const result = {
    results: { message },
    artifacts: { message: text, type: 'text' },
    outputs: { message: { message: text, type: 'text' } },
    logs: { [output]: [] },
    messages: [{ message: text, sender: 'Machine', sender_name: 'AI', session_id: sessionId, component_id: output }],
    timedelta: 0.01,
    duration: '0.01 seconds',
    component_display_name: 'Chat Output',
    component_id: output,
    used_frozen_result: false,
  };
  return { session_id: sessionId, outputs: [{ inputs: { input_value: input }, outputs: [result] }] };
}

function failureReply(message: string): Reply {
  const inner = { message, traceback: null, description: null, code: null, suggestion: null, source: 'internal' };
  return { status: 500, body: { detail: JSON.stringify(inner) } };
}

function statusReply(status: number, body: unknown): Reply {
  if (body !== undefined) return { status, body };
  if (status === 422) return tweaksRefused(['code']);
  if (status === 502 || status === 504) return { status, body: `<html><body>${status} Gateway error</body></html>` };
  return { status, body: { detail: status === 429 ? 'Too Many Requests' : status === 503 ? 'Service Unavailable' : `error ${status}` } };
}

export class LangflowFake extends HttpFake {
  private readonly flows: Map<string, FakeFlow>;

  /** @param apiKey the only key accepted. */
  constructor(readonly apiKey = 'sk-fake-0123456789abcdef') {
    const flows = new Map<string, FakeFlow>();
    // Langflow runs under gunicorn, which closes idle keep-alive connections.
    super((req) => answer(req, flows, apiKey), { ...GUNICORN_IDLE });
    this.flows = flows;
  }

  /** Register a flow under its id or endpoint name. */
  flow(id: string, behaviour: FakeFlow = {}): this {
    this.flows.set(id, behaviour);
    return this;
  }

  /** Requests that reached `/api/v1/run`. */
  runs(): RecordedRequest[] {
    return this.calls('/api/v1/run/', 'POST');
  }
}

function answer(req: RecordedRequest, flows: Map<string, FakeFlow>, apiKey: string): Reply {
  if (req.method === 'GET' && req.path === '/health') return { status: 200, body: { status: 'ok' } };
  const m = RUN.exec(req.path);
  if (!m || req.method !== 'POST') return { status: 404, body: { detail: 'Not Found' } };
  const key = (req.headers['x-api-key'] as string | undefined) ?? req.query.get('x-api-key');
  if (!key) return { status: 403, body: { detail: 'An API key must be passed as query or header' } };
  if (key !== apiKey) return { status: 403, body: { detail: 'Invalid or missing API key' } };
  const id = decodeURIComponent(m[1]);
  const flow = flows.get(id);
  if (!flow) return { status: 404, body: { detail: `Flow identifier ${id} not found` } };
  const timing = { delayMs: flow.delayMs, hangUp: flow.hangUp };
  if (flow.status !== undefined) return { ...statusReply(flow.status, flow.body), ...timing };
  // 1.13 runs a bad body as if it were empty: no input, no tweaks.
  const b: Record<string, unknown> = validBody(req.json) ? req.json : {};
  const refused = protectedTweaks(b) ?? conflictingInput(b);
  if (refused) return refused;
  if (flow.fail !== undefined) return { ...failureReply(flow.fail), ...timing };
  const input = (b.input_value as string | undefined) ?? '';
  const sessionId = (b.session_id as string | undefined) ?? randomUUID();
  const named = b.output_component as string | undefined;
  if (named && named !== (flow.outputComponent ?? 'ChatOutput-fake')) return { status: 200, body: { session_id: sessionId, outputs: [] }, ...timing };
  return { status: 200, body: runResponse(id, sessionId, input, flow.answer ?? input, flow), ...timing };
}
