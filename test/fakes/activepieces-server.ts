/**
 * A fake Activepieces (shared/reference/runtime-contracts.md §1): webhook routes (async, sync, draft),
 * flow runs created after the webhook answers and advancing QUEUED → RUNNING → final over polls, the
 * flow-runs API behind a platform API key, and the documented error answers.
 */
import { randomBytes } from 'node:crypto';
import { HttpFake, type RecordedRequest, type Reply } from './http-fake';

export interface FakeFlow {
  /** Sync: the Return Response answer. @default 200 with `{ok: true}` */
  respond?: { status?: number; body?: unknown; headers?: Record<string, string> };
  /** Sync: the flow fails (500 with Activepieces' message); the run ends FAILED. */
  fail?: boolean;
  /** Sync: Activepieces gives up waiting (204), but the run still ends `final`. */
  syncTimeout?: boolean;
  /** Sync: Return Response of type redirect (301 with Location). */
  redirect?: string;
  disabled?: boolean;
  quotaExceeded?: boolean;
  /** Final status of the run. @default SUCCEEDED */
  final?: string;
  /** Polls a run spends QUEUED/RUNNING before `final`. @default 2 */
  polls?: number;
  delayMs?: number;
  /** Drop the connection after executing (the run still happens). */
  hangUp?: boolean;
}

export interface FakeRun {
  id: string;
  flowId: string;
  body: unknown;
  created: string;
  polls: number;
  behaviour: FakeFlow;
}

const WEBHOOK = /^\/api\/v1\/webhooks\/([^/]+)(\/draft)?(\/sync)?$/;
const RUN = /^\/api\/v1\/flow-runs\/([^/]+)$/;

export class ActivepiecesFake extends HttpFake {
  readonly runs = new Map<string, FakeRun>();
  readonly flows = new Map<string, FakeFlow>();
  /** Largest webhook body accepted before 413. */
  maxBodyBytes = 64 * 1024;

  constructor(readonly apiKey = `sk-${'a'.repeat(61)}`, readonly projectId = 'proj-1') {
    let self: ActivepiecesFake | undefined;
    super((req) => self!.answer(req));
    self = this;
  }

  flow(id: string, behaviour: FakeFlow = {}): this {
    this.flows.set(id, behaviour);
    return this;
  }

  /** Runs a flow has executed. */
  executions(flowId: string): FakeRun[] {
    return [...this.runs.values()].filter((r) => r.flowId === flowId);
  }

  webhookCalls(): RecordedRequest[] {
    return this.calls('/api/v1/webhooks/');
  }

  private answer(req: RecordedRequest): Reply {
    const hook = WEBHOOK.exec(req.path);
    if (hook) return this.webhook(req, hook[1], Boolean(hook[3]));
    if (!req.path.startsWith('/api/v1/flow-runs')) return { status: 404, body: { code: 'ENTITY_NOT_FOUND', params: {} } };
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) return { status: 401, body: { code: 'INVALID_API_KEY', params: {} } };
    const one = RUN.exec(req.path);
    if (one) return this.getRun(decodeURIComponent(one[1]));
    if (req.query.get('projectId') !== this.projectId) return { status: 409, body: { code: 'VALIDATION', params: { message: 'projectId is required' } } };
    const after = Date.parse(req.query.get('createdAfter') ?? '1970-01-01');
    const data = [...this.runs.values()].filter((r) => r.flowId === req.query.get('flowId') && Date.parse(r.created) >= after).map((r) => this.view(r, false));
    return { status: 200, body: { data, next: null, previous: null } };
  }

  private webhook(req: RecordedRequest, flowId: string, sync: boolean): Reply {
    const flow = this.flows.get(flowId);
    if (!flow) return { status: 410, body: {} };
    if (flow.disabled) return { status: 404, body: {} };
    if (flow.quotaExceeded) return { status: 402, body: { code: 'QUOTA_EXCEEDED', params: { metric: 'tasks' } } };
    if (Buffer.byteLength(req.text) > this.maxBodyBytes) return { status: 413, body: { message: 'Payload too large' } };
    const requestId = randomBytes(8).toString('hex');
    const run: FakeRun = { id: randomBytes(16).toString('base64url').slice(0, 21), flowId, body: req.json ?? req.text, created: new Date().toISOString(), polls: 0, behaviour: flow };
    this.runs.set(run.id, run);
    const timing = { delayMs: flow.delayMs, hangUp: flow.hangUp };
    const headers = { 'x-webhook-id': requestId };
    if (!sync) return { status: 200, body: {}, headers, ...timing };
    if (flow.syncTimeout) return { status: 204, body: {}, headers, ...timing };
    run.polls = Number.MAX_SAFE_INTEGER;
    if (flow.fail) return { status: 500, body: { message: 'The flow has failed and there is no response returned' }, headers, ...timing };
    if (flow.redirect) return { status: 301, body: '', headers: { ...headers, location: flow.redirect }, ...timing };
    const r = flow.respond ?? {};
    return { status: r.status ?? 200, body: r.body ?? { ok: true }, headers: { ...headers, ...r.headers }, ...timing };
  }

  private getRun(id: string): Reply {
    const run = this.runs.get(id);
    if (!run) return { status: 404, body: { code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow_run', entityId: id } } };
    run.polls++;
    return { status: 200, body: this.view(run, true) };
  }

  private status(run: FakeRun): string {
    const b = run.behaviour;
    const polls = b.polls ?? 2;
    if (run.polls <= polls) return run.polls <= 1 ? 'QUEUED' : 'RUNNING';
    return b.fail ? 'FAILED' : b.final ?? 'SUCCEEDED';
  }

  private view(run: FakeRun, full: boolean) {
    const status = this.status(run);
    const done = !['QUEUED', 'RUNNING', 'PAUSED'].includes(status);
    const steps = { trigger: { status: 'SUCCEEDED', output: { method: 'POST', headers: {}, body: run.body, queryParams: {} } }, step_1: { status: done ? status : 'RUNNING', output: done ? { sent: true } : null } };
    return {
      id: run.id, created: run.created, updated: new Date().toISOString(), projectId: this.projectId, flowId: run.flowId, flowVersionId: 'v1', flowDisplayName: run.flowId,
      status, startTime: run.created, finishTime: done ? new Date().toISOString() : null, duration: 10, tasks: 2, environment: 'PRODUCTION', tags: [], parentRunId: null,
      failParentOnFailure: true, logsFileId: null, failedStepName: status === 'FAILED' ? 'step_1' : null, ...(full ? { steps } : {}),
    };
  }
}
