/**
 * Fake Langflow 1.x: `POST /api/v1/run/{flow}` (synchronous, `x-api-key` auth) and `GET /health`, with
 * the bodies and status codes of shared/reference/runtime-contracts.md, "2. Langflow". Tests register
 * flows and say how each behaves.
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
}

const RUN = /^\/api\/v1\/run\/([^/]+)$/;
const INPUT_TYPES = ['chat', 'text', 'any'];
const OUTPUT_TYPES = ['chat', 'text', 'any', 'debug'];

/** FastAPI's 422 body. */
function validationError(errors: { loc: (string | number)[]; msg: string; type: string; input?: unknown }[]): Reply {
  return { status: 422, body: { detail: errors.map((e) => ({ type: e.type, loc: e.loc, msg: e.msg, input: e.input ?? null })) } };
}

/** Checks `SimplifiedAPIRequest` the way pydantic would (fields are optional, types are not). */
function checkBody(json: unknown): Reply | undefined {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return validationError([{ loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', type: 'model_attributes_type', input: json }]);
  }
  const b = json as Record<string, unknown>;
  const errors: Parameters<typeof validationError>[0] = [];
  for (const f of ['input_value', 'output_component', 'session_id']) {
    if (b[f] !== undefined && b[f] !== null && typeof b[f] !== 'string') errors.push({ loc: ['body', f], msg: 'Input should be a valid string', type: 'string_type', input: b[f] });
  }
  if (b.input_type !== undefined && !INPUT_TYPES.includes(b.input_type as string)) errors.push({ loc: ['body', 'input_type'], msg: "Input should be 'chat', 'text' or 'any'", type: 'literal_error', input: b.input_type });
  if (b.output_type !== undefined && !OUTPUT_TYPES.includes(b.output_type as string)) errors.push({ loc: ['body', 'output_type'], msg: "Input should be 'chat', 'text', 'any' or 'debug'", type: 'literal_error', input: b.output_type });
  if (b.tweaks !== undefined && b.tweaks !== null && (typeof b.tweaks !== 'object' || Array.isArray(b.tweaks))) errors.push({ loc: ['body', 'tweaks'], msg: 'Input should be a valid dictionary', type: 'dict_type', input: b.tweaks });
  return errors.length ? validationError(errors) : undefined;
}

/** Langflow refuses a chat input_value together with a ChatInput tweak that sets one (`validate_input_and_tweaks`). */
function conflictingInput(b: Record<string, unknown>): Reply | undefined {
  const tweaks = (b.tweaks ?? {}) as Record<string, unknown>;
  const chatTweak = Object.entries(tweaks).find(([k, v]) => k.startsWith('ChatInput') && v && typeof v === 'object' && 'input_value' in v);
  if (!chatTweak || typeof b.input_value !== 'string' || (b.input_type ?? 'chat') !== 'chat') return undefined;
  return { status: 400, body: { detail: `If you pass an input_value to the chat input, you cannot pass a tweak with the same name (${chatTweak[0]}).` } };
}

/** `RunResponse` with one chat output, as `lfx/graph/schema.py` builds it. */
function runResponse(flowId: string, sessionId: string, input: string, text: string): unknown {
  const message = { text, sender: 'Machine', sender_name: 'AI', session_id: sessionId, timestamp: new Date().toISOString(), flow_id: flowId, files: [], properties: {} };
  const result = {
    results: { message },
    artifacts: { message: text, type: 'text' },
    outputs: { message: { message: text, type: 'text' } },
    logs: { 'ChatOutput-fake': [] },
    messages: [{ message: text, sender: 'Machine', sender_name: 'AI', session_id: sessionId, component_id: 'ChatOutput-fake' }],
    timedelta: 0.01,
    duration: '0.01 seconds',
    component_display_name: 'Chat Output',
    component_id: 'ChatOutput-fake',
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
  if (status === 422) return validationError([{ loc: ['body', 'input_value'], msg: 'Field required', type: 'missing' }]);
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
  const invalid = checkBody(req.json) ?? conflictingInput(req.json as Record<string, unknown>);
  if (invalid) return invalid;
  if (flow.fail !== undefined) return { ...failureReply(flow.fail), ...timing };
  const b = req.json as { input_value?: string; session_id?: string };
  const input = b.input_value ?? '';
  return { status: 200, body: runResponse(id, b.session_id ?? randomUUID(), input, flow.answer ?? input), ...timing };
}
