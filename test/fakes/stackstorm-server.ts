/**
 * Fake StackStorm 3.x: `POST /auth/v1/tokens` (Basic auth), and create, get and cancel under
 * `/v1/executions` (also under `/api/v1`, as behind st2's nginx), with St2-Api-Key or X-Auth-Token auth
 * and the `{faultstring}` errors of shared/reference/runtime-contracts.md, "4. StackStorm". Tests
 * register actions and script how their executions progress: each poll advances one status, the last
 * one sticks.
 */
import { randomBytes } from 'node:crypto';
import { type CreateFaults, HttpFake, type RecordedRequest, type Reply } from './http-fake';

/** How a registered action behaves. */
export interface FakeAction extends CreateFaults {
  /** Statuses shown by the create answer and each later poll; the last sticks. @default requested, running, succeeded */
  statuses?: string[];
  /** Shorthand for statuses requested, running, `final`. */
  final?: string;
  result?: unknown;
  /** Parameter validation fails with this faultstring (400). */
  invalid?: string;
  /** RBAC refuses the caller (403). */
  forbidden?: boolean;
  /** Answer creates with this status and a faultstring instead of 201. */
  createStatus?: number;
  /** The result quotes the caller's X-Auth-Token, as an action printing its environment would. */
  echoAuth?: boolean;
}

export interface FakeExecution {
  id: string;
  action: string;
  parameters: unknown;
  /** Execution context, including what the `st2-context` header carried. */
  context: Record<string, unknown>;
  statuses: string[];
  step: number;
  polls: number;
  canceled: boolean;
  result: unknown;
}

export interface StackStormFakeOptions {
  apiKey?: string;
  username?: string;
  password?: string;
}

const COMPLETED = ['succeeded', 'failed', 'timeout', 'canceled', 'abandoned'];
const fault = (status: number, faultstring: string): Reply => ({ status, body: { faultstring } });

export class StackStormFake extends HttpFake {
  readonly executions = new Map<string, FakeExecution>();
  /** Ids of executions a cancel reached, in order. */
  readonly cancels: string[] = [];
  /** Tokens issued, in order; a revoked token is refused as expired. */
  readonly tokens: { token: string; revoked: boolean }[] = [];
  readonly options: Required<StackStormFakeOptions>;
  private readonly actions = new Map<string, FakeAction>();

  constructor(options: StackStormFakeOptions = {}) {
    let self: StackStormFake | undefined;
    super((req) => self!.answer(req));
    self = this;
    this.options = { apiKey: 'st2-key-0123456789', username: 'st2admin', password: 'st2-pass', ...options };
  }

  action(ref: string, behaviour: FakeAction = {}): this {
    this.actions.set(ref, behaviour);
    return this;
  }

  /** Refuse every token issued so far, as when they expire early. */
  revokeTokens(): void {
    for (const t of this.tokens) t.revoked = true;
  }

  /** Create requests received (answered or not). */
  creates(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && /\/v1\/executions$/.test(r.path));
  }

  private answer(req: RecordedRequest): Reply {
    if (req.path === '/auth/v1/tokens' && req.method === 'POST') return this.issueToken(req);
    const m = /^(?:\/api)?\/v1\/executions(?:\/([^/]+))?$/.exec(req.path);
    if (!m) return fault(404, 'The resource could not be found.');
    const refused = this.unauthorized(req);
    if (refused) return refused;
    if (!m[1] && req.method === 'POST') return this.create(req);
    if (m[1] && req.method === 'GET') return this.poll(m[1]);
    if (m[1] && req.method === 'DELETE') return this.cancel(m[1]);
    return fault(405, 'The method is not allowed for the requested URL.');
  }

  private issueToken(req: RecordedRequest): Reply {
    const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(String(req.headers.authorization ?? ''));
    const [user, ...rest] = m ? Buffer.from(m[1], 'base64').toString('utf8').split(':') : [];
    if (user !== this.options.username || rest.join(':') !== this.options.password) return fault(401, 'Invalid or missing credentials');
    const ttl = (req.json as { ttl?: number } | undefined)?.ttl ?? 86_400;
    if (ttl > 86_400) return fault(400, `TTL specified ${ttl} is greater than max allowed 86400.`);
    const token = randomBytes(16).toString('hex');
    this.tokens.push({ token, revoked: false });
    const expiry = new Date(Date.now() + ttl * 1000).toISOString().replace('Z', '123Z');
    return { status: 201, body: { user, token, expiry, id: randomBytes(12).toString('hex'), metadata: {} } };
  }

  private unauthorized(req: RecordedRequest): Reply | undefined {
    const key = req.headers['st2-api-key'] ?? req.query.get('st2-api-key');
    const token = req.headers['x-auth-token'] ?? req.query.get('x-auth-token');
    if (key) return key === this.options.apiKey ? undefined : fault(401, 'Unauthorized - ApiKey with key_hash=... not found.');
    if (!token) return fault(401, 'Unauthorized - One of Token or API key required.');
    const known = this.tokens.find((t) => t.token === token);
    if (!known) return fault(401, `Unauthorized - Token with token ${token} not found.`);
    return known.revoked ? fault(401, 'Unauthorized - Token has expired.') : undefined;
  }

  private create(req: RecordedRequest): Reply {
    const body = req.json as { action?: unknown; parameters?: unknown } | undefined;
    if (typeof body?.action !== 'string') return fault(400, "'action' is a required property");
    const behaviour = this.actions.get(body.action);
    if (!behaviour) return fault(400, `Action "${body.action}" cannot be found.`);
    if (behaviour.forbidden) return fault(403, `User "${this.options.username}" doesn't have required permission "action_execute" on resource "action:${body.action}"`);
    if (behaviour.invalid) return fault(400, behaviour.invalid);
    let extra: Record<string, unknown> = {};
    try {
      extra = JSON.parse(String(req.headers['st2-context'] ?? '{}')) as Record<string, unknown>;
    } catch {
      return fault(400, 'Invalid st2-context header');
    }
    const lost = behaviour.createStatus !== undefined || behaviour.hangUp;
    if (lost && !behaviour.butCreate) return behaviour.hangUp ? { status: 201, hangUp: true } : fault(behaviour.createStatus!, `Error ${behaviour.createStatus}`);
    const statuses = behaviour.final ? ['requested', 'running', behaviour.final] : behaviour.statuses?.length ? behaviour.statuses : ['requested', 'running', 'succeeded'];
    const e: FakeExecution = { id: randomBytes(12).toString('hex'), action: body.action, parameters: body.parameters ?? {}, context: { user: this.options.username, ...extra }, statuses, step: 0, polls: 0, canceled: false, result: this.resultOf(behaviour, req) };
    this.executions.set(e.id, e);
    if (behaviour.hangUp) return { status: 201, hangUp: true };
    if (behaviour.createStatus !== undefined) return fault(behaviour.createStatus, 'Internal Server Error');
    return { status: 201, body: this.view(e) };
  }

  private resultOf(behaviour: FakeAction, req: RecordedRequest): unknown {
    if (!behaviour.echoAuth) return behaviour.result ?? {};
    return { ...(behaviour.result as object | undefined), stdout: `ST2_AUTH_TOKEN=${String(req.headers['x-auth-token'])}` };
  }

  private poll(id: string): Reply {
    const e = this.executions.get(id);
    if (!e) return fault(404, `Resource with a primary key or name "${id}" not found`);
    e.polls++;
    if (e.polls <= (this.actions.get(e.action)?.pollErrors ?? 0)) return fault(500, 'Internal Server Error');
    e.step = Math.min(e.step + 1, e.statuses.length - 1);
    return { status: 200, body: this.view(e) };
  }

  private cancel(id: string): Reply {
    const e = this.executions.get(id);
    if (!e) return fault(404, `Resource with a primary key or name "${id}" not found`);
    if (COMPLETED.includes(this.status(e))) return fault(400, 'Execution is already in completed state.');
    e.canceled = true;
    this.cancels.push(id);
    return { status: 200, body: this.view(e) };
  }

  private status(e: FakeExecution): string {
    return e.canceled ? 'canceled' : e.statuses[e.step];
  }

  /** The Execution JSON of the contract. */
  private view(e: FakeExecution): Record<string, unknown> {
    const status = this.status(e);
    const done = COMPLETED.includes(status);
    return {
      id: e.id, action: { ref: e.action, runner_type: 'local-shell-cmd' }, runner: { name: 'local-shell-cmd' }, liveaction: { id: e.id, status },
      status, start_timestamp: '2026-01-01T00:00:00.000000Z', ...(done ? { end_timestamp: '2026-01-01T00:00:01.000000Z', elapsed_seconds: 1 } : {}),
      parameters: e.parameters, context: e.context, result: done ? e.result : {}, parent: null, children: [],
      log: e.statuses.slice(0, e.step + 1).map((s) => ({ timestamp: '2026-01-01T00:00:00.000000Z', status: s })), web_url: `${this.url}/#/history/${e.id}/general`,
    };
  }
}
