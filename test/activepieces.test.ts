/**
 * The Activepieces adapter against a fake that follows the wire contract: sync verdicts, the async
 * webhook followed through the flow-runs API, every documented answer mapped, and no blind resend
 * after an answer that leaves the outcome open.
 */
import * as assert from 'node:assert/strict';
import { createActivepiecesRuntime } from '../activities/runtimes/activepieces';
import { ActivepiecesFake } from './fakes/activepieces-server';
import { HttpFake } from './fakes/http-fake';
import { typeOf, until } from './support/failures';
import { TEST_DISPATCH_KEY, type TestCallOptions, testCall } from './support/runtime-call';

describe('activepieces runtime', function () {
  let ap: ActivepiecesFake;
  const runtime = createActivepiecesRuntime();
  const secret = () => ({ apiKey: ap.apiKey });
  const call = (o: Partial<TestCallOptions> & { mode?: 'sync' | 'async'; lookup?: boolean }) =>
    testCall({
      runtime: 'activepieces',
      target: 'f1',
      input: { amount: 5 },
      connections: { activepieces: { baseUrl: ap.url, mode: o.mode ?? 'sync', pollInterval: '50ms', requestTimeout: '2s', runTimeout: '5s', ...(o.lookup === false ? {} : { projectId: ap.projectId }) } },
      secret: o.lookup === false ? {} : secret(),
      ...o,
    });

  beforeEach(async function () {
    ap = await new ActivepiecesFake().start();
  });
  afterEach(async function () {
    await ap.close();
  });

  it('sync: the Return Response is the result, and the body carries the dispatch id', async function () {
    ap.flow('f1', { respond: { status: 201, body: { verdict: 'approved' } } });
    const c = call({ secret: { ...secret(), webhookHeaderName: 'x-hook-auth', webhookHeaderValue: 'hook-secret-1' } });
    const out = await runtime.execute(c);
    assert.deepEqual(out.output, { status: 201, body: { verdict: 'approved' } });
    assert.match(out.externalRef ?? '', /^activepieces:webhook:[0-9a-f]+$/);
    const sent = ap.webhookCalls()[0];
    assert.equal(sent.path, '/api/v1/webhooks/f1/sync');
    assert.equal(sent.headers['x-hook-auth'], 'hook-secret-1');
    assert.deepEqual(sent.json, { amount: 5, portarium: { dispatchId: c.dispatchId, correlationId: 'corr-1', workspaceId: 'ws1' } });
  });

  it('sync: a redirect response is a result, not followed; draft flows use the draft route', async function () {
    ap.flow('f1', { redirect: 'https://example.com/done' });
    const out = await runtime.execute(call({ connections: { activepieces: { baseUrl: ap.url, draft: true } } }));
    assert.deepEqual(out.output, { status: 301, location: 'https://example.com/done' });
    assert.equal(ap.webhookCalls()[0].path, '/api/v1/webhooks/f1/draft/sync');
  });

  it('sync timeout (204): the run is looked up by dispatch id and followed, never sent twice', async function () {
    ap.flow('f1', { syncTimeout: true, polls: 2 });
    const c = call({});
    const out = await runtime.execute(c);
    assert.equal((out.output as { status: string }).status, 'SUCCEEDED');
    assert.equal(ap.webhookCalls().length, 1);
    assert.equal(ap.executions('f1').length, 1);
    assert.ok(c.heartbeats.some((h) => (h as { remoteId?: string }).remoteId === ap.executions('f1')[0].id));
  });

  it('sync timeout without a way to look the run up stops as RuntimeOutcomeUnknown', async function () {
    ap.flow('f1', { syncTimeout: true });
    assert.equal(await typeOf(runtime.execute(call({ lookup: false }))), 'RuntimeOutcomeUnknown');
    assert.equal(ap.webhookCalls().length, 1);
  });

  it('maps documented refusals to RuntimeRejected and rate limits to RuntimeUnavailable', async function () {
    ap.flow('failing', { fail: true }).flow('off', { disabled: true }).flow('broke', { quotaExceeded: true });
    ap.flow('slow', { respond: { status: 504, body: { message: 'The request took too long to reply' } } });
    ap.flow('limited', { respond: { status: 429, body: {} } });
    for (const target of ['failing', 'off', 'broke', 'slow', 'missing']) assert.equal(await typeOf(runtime.execute(call({ target }))), 'RuntimeRejected', target);
    ap.flow('f1', {});
    ap.maxBodyBytes = 10;
    assert.equal(await typeOf(runtime.execute(call({}))), 'RuntimeRejected', '413');
    ap.maxBodyBytes = 64 * 1024;
    assert.equal(await typeOf(runtime.execute(call({ target: 'limited' }))), 'RuntimeUnavailable');
  });

  it('a refused connection is retryable; a lost connection after sending is resolved by look-up', async function () {
    const closed = await new HttpFake(() => ({ status: 200 })).start();
    const port = closed.port;
    await closed.close();
    const c = call({ connections: { activepieces: { baseUrl: `http://127.0.0.1:${port}` } } });
    assert.equal(await typeOf(runtime.execute(c)), 'RuntimeUnavailable');
    assert.deepEqual(c.heartbeats.at(-1), { notSent: 1 });
    ap.flow('f1', { hangUp: true });
    const out = await runtime.execute(call({}));
    assert.equal((out.output as { status: string }).status, 'SUCCEEDED');
    assert.equal(ap.executions('f1').length, 1);
  });

  it('async: the run is found by dispatch id and polled to SUCCEEDED; a failed run is RuntimeRejected', async function () {
    ap.flow('f1', { polls: 3 }).flow('bad', { final: 'FAILED' });
    const c = call({ mode: 'async' });
    const out = await runtime.execute(c);
    const run = ap.executions('f1')[0];
    assert.deepEqual(out.output, { flowRunId: run.id, status: 'SUCCEEDED', steps: { step_1: { sent: true } } });
    assert.equal(out.externalRef, `activepieces:flowRun:${run.id}`);
    assert.equal(ap.webhookCalls()[0].path, '/api/v1/webhooks/f1');
    assert.ok(c.heartbeats.some((h) => (h as { remoteId?: string }).remoteId === run.id));
    assert.equal(await typeOf(runtime.execute(call({ mode: 'async', target: 'bad' }))), 'RuntimeRejected');
  });

  it('async without an API key or projectId is refused before anything is sent; a wrong key is RuntimeRejected', async function () {
    ap.flow('f1', {});
    assert.equal(await typeOf(runtime.execute(call({ mode: 'async', lookup: false }))), 'RuntimeNotConfigured');
    assert.equal(ap.requests.length, 0);
    assert.equal(await typeOf(runtime.execute(call({ mode: 'async', secret: { apiKey: 'sk-wrong' } }))), 'RuntimeRejected');
  });

  it('a retry resumes the run an earlier attempt heartbeated, without a new webhook call', async function () {
    ap.flow('f1', { polls: 1 });
    await runtime.execute(call({ mode: 'async' }));
    const id = ap.executions('f1')[0].id;
    const out = await runtime.execute(call({ mode: 'async', attempt: 2, previous: { remoteId: id } }));
    assert.equal((out.output as { flowRunId: string }).flowRunId, id);
    assert.equal(ap.webhookCalls().length, 1);
  });

  it('a retry finds the run an older worker triggered with the raw dispatch key in the body, and only that run', async function () {
    // Context: workers before the dispatch id was unified sent the raw dispatch key as
    // `portarium.dispatchId`; a retry on a newer worker must still find that run, not resend.
    ap.flow('f1', { polls: 1 });
    const sentAt = new Date().toISOString();
    const trigger = (dispatchId: string) =>
      fetch(`${ap.url}/api/v1/webhooks/f1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount: 5, portarium: { dispatchId, correlationId: 'corr-1', workspaceId: 'ws1' } }) });
    assert.equal((await trigger(`ws1:other/${'b'.repeat(64)}`)).status, 200, "another dispatch's run, also in the old form");
    assert.equal((await trigger(TEST_DISPATCH_KEY)).status, 200);
    const ours = ap.executions('f1')[1].id;
    const out = await runtime.execute(call({ mode: 'async', attempt: 2, previous: { stage: 'sent', sentAt } }));
    assert.equal((out.output as { flowRunId: string }).flowRunId, ours);
    assert.equal(ap.webhookCalls().length, 2, 'not sent again');
  });

  it('a retry after an attempt that may have sent never resends blindly', async function () {
    ap.flow('f1', {});
    assert.equal(await typeOf(runtime.execute(call({ attempt: 2, previous: { stage: 'calling', sentAt: new Date().toISOString() }, lookup: false }))), 'RuntimeOutcomeUnknown');
    assert.equal(await typeOf(runtime.execute(call({ attempt: 2, previous: { stage: 'sent', sentAt: new Date().toISOString() } }))), 'RuntimeOutcomeUnknown', 'looked up, not found');
    assert.equal(ap.webhookCalls().length, 0);
    const out = await runtime.execute(call({ attempt: 2, previous: { notSent: 1 } }));
    assert.equal((out.output as { status: number }).status, 200, 'an attempt that certainly sent nothing may send');
  });

  it('cancel stops the wait promptly; a run that outlives runTimeout is RuntimeRejected', async function () {
    ap.flow('f1', { polls: 1_000 });
    const c = call({ mode: 'async' });
    const pending = runtime.execute(c);
    await until(() => ap.executions('f1').length === 1 && ap.executions('f1')[0].polls > 1);
    const t = Date.now();
    c.controller.abort();
    await assert.rejects(pending);
    assert.ok(Date.now() - t < 1000);
    const timed = call({ mode: 'async', connections: { activepieces: { baseUrl: ap.url, mode: 'async', projectId: ap.projectId, pollInterval: '50ms', runTimeout: '300ms' } } });
    assert.equal(await typeOf(runtime.execute(timed)), 'RuntimeRejected');
  });

  it('the egress guard refuses a host off the allow-list before any request', async function () {
    ap.flow('f1', {});
    assert.equal(await typeOf(runtime.execute(call({ hosts: ['example.com'] }))), 'EgressDenied');
    assert.equal(ap.requests.length, 0);
  });
});
