/**
 * Fake Kestra: create (multipart, `labels=k:v`), get, search by label and kill executions under
 * `/api/v1/{tenant}` (or `/api/v1` for a pre-0.23 server), with Basic (email user) or Bearer auth and
 * the status codes and bodies of shared/reference/runtime-contracts.md, "3. Kestra". Tests register
 * flows and script how their executions progress: each poll advances one state, the last one sticks.
 */
import { randomBytes } from 'node:crypto';
import { type CreateFaults, HttpFake, type RecordedRequest, type Reply } from './http-fake';

/** How a registered flow behaves. */
export interface FakeFlow extends CreateFaults {
  /** States shown by the create answer and each later poll; the last sticks. @default CREATED, RUNNING, SUCCESS */
  states?: string[];
  /** Shorthand for states CREATED, RUNNING, `final`. */
  final?: string;
  /** Shorthand for states CREATED, PAUSED (until killed). */
  paused?: boolean;
  outputs?: Record<string, unknown>;
  /** Creates answer 409, as for a disabled flow. */
  disabled?: boolean;
  /** Inputs that must be given, else 422. */
  requiredInputs?: string[];
  /** Answer creates with this status and a Kestra-shaped error instead of 200. */
  createStatus?: number;
}

export interface FakeExecution {
  id: string;
  namespace: string;
  flowId: string;
  labels: { key: string; value: string }[];
  /** Multipart text parts received, by name. */
  inputs: Record<string, string>;
  states: string[];
  step: number;
  polls: number;
  killed: boolean;
  outputs: Record<string, unknown>;
  startDate: string;
}

export interface KestraFakeOptions {
  /** '' serves the pre-0.23 paths. @default main */
  tenant?: string;
  /** Must be an email, as Kestra's basic auth requires. */
  username?: string;
  password?: string;
  /** Accepted as `Bearer <token>` when set. */
  token?: string;
}

const TERMINAL = ['FAILED', 'WARNING', 'SUCCESS', 'KILLED', 'CANCELLED', 'RETRIED', 'SKIPPED'];

function statesOf(f: FakeFlow): string[] {
  if (f.paused) return ['CREATED', 'PAUSED'];
  if (f.final) return ['CREATED', 'RUNNING', f.final];
  return f.states?.length ? f.states : ['CREATED', 'RUNNING', 'SUCCESS'];
}

/** Micronaut JsonError. */
function error(status: number, message: string, req: RecordedRequest, errors?: string[]): Reply {
  const embedded = errors ? { _embedded: { errors: errors.map((m) => ({ message: m })) } } : {};
  return { status, body: { message, _links: { self: { href: req.path, templated: false } }, ...embedded } };
}

/** Text parts of a multipart/form-data body. */
function multipart(req: RecordedRequest): Record<string, string> | undefined {
  const m = /^multipart\/form-data;.*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(String(req.headers['content-type'] ?? ''));
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const part of req.text.split(`--${m[1] ?? m[2]}`)) {
    const split = part.indexOf('\r\n\r\n');
    const name = /name="([^"]*)"/.exec(part.slice(0, split))?.[1];
    if (split >= 0 && name !== undefined) out[name] = part.slice(split + 4).replace(/\r\n$/, '');
  }
  return out;
}

/** `labels=k:v` as Kestra parses it: exactly one `:`. */
function labelsOf(values: string[]): { key: string; value: string }[] | undefined {
  const pairs = values.map((v) => v.split(':'));
  return pairs.every((p) => p.length === 2 && p[0] && p[1]) ? pairs.map(([key, value]) => ({ key, value })) : undefined;
}

export class KestraFake extends HttpFake {
  readonly executions = new Map<string, FakeExecution>();
  /** Ids of executions a kill reached, in order. */
  readonly kills: string[] = [];
  /** Answer every search with all executions, as a server that ignores the label filter would. */
  searchIgnoresLabels = false;
  private readonly flows = new Map<string, FakeFlow>();
  readonly options: Required<KestraFakeOptions>;

  constructor(options: KestraFakeOptions = {}) {
    let self: KestraFake | undefined;
    super((req) => self!.answer(req));
    self = this;
    this.options = { tenant: 'main', username: 'admin@example.com', password: 'kestra-pass', token: '', ...options };
  }

  flow(namespace: string, flowId: string, behaviour: FakeFlow = {}): this {
    this.flows.set(`${namespace}/${flowId}`, behaviour);
    return this;
  }

  /** Create requests received (answered or not). */
  creates(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && /\/executions\/[^/]+\/[^/]+$/.test(r.path));
  }

  private authorized(req: RecordedRequest): boolean {
    const h = String(req.headers.authorization ?? '');
    if (this.options.token && h === `Bearer ${this.options.token}`) return true;
    const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(h);
    if (!m) return false;
    const [user, ...rest] = Buffer.from(m[1], 'base64').toString('utf8').split(':');
    return user.includes('@') && user === this.options.username && rest.join(':') === this.options.password;
  }

  private answer(req: RecordedRequest): Reply {
    const prefix = this.options.tenant ? `/api/v1/${this.options.tenant}/executions` : '/api/v1/executions';
    if (!req.path.startsWith(`${prefix}/`)) return error(404, 'Not Found', req);
    if (!this.authorized(req)) return { status: 401, headers: { 'www-authenticate': 'Basic realm="Kestra"' } };
    const parts = req.path.slice(prefix.length + 1).split('/').map(decodeURIComponent);
    if (req.method === 'GET' && parts.length === 1 && parts[0] === 'search') return this.search(req);
    if (req.method === 'GET' && parts.length === 1) return this.poll(req, parts[0]);
    if (req.method === 'POST' && parts.length === 2) return this.create(req, parts[0], parts[1]);
    if (req.method === 'DELETE' && parts.length === 2 && parts[1] === 'kill') return this.kill(req, parts[0]);
    return error(404, 'Not Found', req);
  }

  private create(req: RecordedRequest, namespace: string, flowId: string): Reply {
    const flow = this.flows.get(`${namespace}/${flowId}`);
    if (!flow) return error(404, 'Not Found: Requested Flow is not found.', req);
    if (flow.disabled) return error(409, 'Illegal state: Requested Flow is disabled.', req);
    const inputs = multipart(req);
    if (!inputs) return error(415, 'Unsupported Media Type', req);
    const labels = labelsOf(req.query.getAll('labels'));
    if (!labels) return error(422, 'Invalid queryString parameter: labels', req);
    const missing = (flow.requiredInputs ?? []).filter((i) => !(i in inputs));
    if (missing.length) return error(422, `Invalid entity: ${missing.map((i) => `inputs.${i}: missing required input`).join(', ')}`, req, missing.map((i) => `Invalid input for \`${i}\`, missing required input`));
    const lost = flow.createStatus !== undefined || flow.hangUp;
    if (lost && !flow.butCreate) return flow.hangUp ? { status: 200, hangUp: true } : error(flow.createStatus!, `Error ${flow.createStatus}`, req);
    const e: FakeExecution = { id: randomBytes(11).toString('base64url'), namespace, flowId, labels, inputs, states: statesOf(flow), step: 0, polls: 0, killed: false, outputs: flow.outputs ?? {}, startDate: new Date().toISOString() };
    this.executions.set(e.id, e);
    if (flow.hangUp) return { status: 200, hangUp: true };
    if (flow.createStatus !== undefined) return error(flow.createStatus, 'Internal Server Error: lost the answer', req);
    return { status: 200, body: { ...this.view(e), url: `${this.url}/ui/${this.options.tenant || 'main'}/executions/${namespace}/${flowId}/${e.id}` } };
  }

  private poll(req: RecordedRequest, id: string): Reply {
    const e = this.executions.get(id);
    if (!e) return error(404, 'Not Found', req);
    e.polls++;
    if (e.polls <= (this.flows.get(`${e.namespace}/${e.flowId}`)?.pollErrors ?? 0)) return error(500, 'Internal Server Error: repository unavailable', req);
    e.step = Math.min(e.step + 1, e.states.length - 1);
    return { status: 200, body: this.view(e) };
  }

  private search(req: RecordedRequest): Reply {
    const wanted = labelsOf(req.query.getAll('labels'));
    if (!wanted) return error(422, 'Invalid queryString parameter: labels', req);
    const hits = [...this.executions.values()].filter((e) => this.searchIgnoresLabels || wanted.every((w) => e.labels.some((l) => l.key === w.key && l.value === w.value)));
    return { status: 200, body: { results: hits.map((e) => this.view(e)), total: hits.length } };
  }

  private kill(req: RecordedRequest, id: string): Reply {
    const e = this.executions.get(id);
    if (!e) return error(404, 'Not Found', req);
    if (TERMINAL.includes(this.state(e))) return error(409, 'Illegal state: Execution is already finished, cannot kill it.', req);
    e.killed = true;
    this.kills.push(id);
    return { status: 202 };
  }

  private state(e: FakeExecution): string {
    return e.killed ? 'KILLED' : e.states[e.step];
  }

  /** The Execution JSON of the contract. */
  private view(e: FakeExecution): Record<string, unknown> {
    const current = this.state(e);
    const histories = [...e.states.slice(0, e.step + 1), ...(e.killed ? ['KILLING', 'KILLED'] : [])].map((state) => ({ state, date: e.startDate }));
    return {
      id: e.id, namespace: e.namespace, flowId: e.flowId, flowRevision: 1, tenantId: this.options.tenant || null,
      labels: e.labels, inputs: e.inputs, outputs: current === 'SUCCESS' || current === 'WARNING' ? e.outputs : {}, variables: {},
      state: { current, histories, duration: 'PT0.1S', startDate: e.startDate, ...(TERMINAL.includes(current) || current === 'PAUSED' ? { endDate: new Date().toISOString() } : {}) },
      taskRunList: null, trigger: null, parentId: null, originalId: e.id, deleted: false, metadata: { attemptNumber: 1 }, scheduleDate: null,
    };
  }
}
