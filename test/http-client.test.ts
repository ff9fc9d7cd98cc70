/**
 * Not sent or maybe sent, for every runtime: the guarded client against servers that close idle
 * keep-alive connections like gunicorn (a request that lands on a connection as the server closes it is
 * reset unread). A call that never reached the server must not stop a run as `RuntimeOutcomeUnknown`,
 * and a call that may have reached it must never be sent again.
 */
import * as assert from 'node:assert/strict';
import { createActivepiecesRuntime } from '../activities/runtimes/activepieces';
import { TransportError, createGuardedHttp, type HttpRequest } from '../activities/http/client';
import { createLangflowRuntime } from '../activities/runtimes/langflow';
import { createStackStormRuntime } from '../activities/runtimes/stackstorm';
import type { LoadedPolicies } from '../activities/policy/load';
import { ActivepiecesFake } from './fakes/activepieces-server';
import { HttpFake, type IdleClose } from './fakes/http-fake';
import { LangflowFake } from './fakes/langflow-server';
import { StackStormFake } from './fakes/stackstorm-server';
import { typeOf } from './support/failures';
import { testCall } from './support/runtime-call';

/** Short in tests: connections idle for 150 ms are being closed, and reset any request, for 3 s. */
const IDLE: IdleClose = { afterMs: 150, raceMs: 3_000 };
/** Past the idle close, inside the race window. */
const SPACING_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const client = (extra: Partial<Parameters<typeof createGuardedHttp>[0]> = {}) =>
  createGuardedHttp({ workspaceId: 'ws1', runtime: 'langflow', rule: { hosts: ['127.0.0.1:*', 'localhost:*', 'runtime.internal:*'], allowLinkLocal: false }, ...extra });

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    const res = (await p) as { status: number };
    return `HTTP ${res.status}`;
  } catch (err) {
    if (err instanceof TransportError) return `${err.code}:${err.sent ? 'maybe sent' : 'not sent'}`;
    return (err as { type?: string }).type ?? String(err);
  }
}

describe('http client: not sent or maybe sent', function () {
  this.timeout(20_000);
  let fake: HttpFake;
  beforeEach(async function () {
    fake = await new HttpFake((req) => (req.path === '/drop' ? { status: 200, hangUp: true } : { status: 200, body: { ok: true } }), IDLE).start();
  });
  afterEach(async function () {
    await fake.close();
  });

  it('a POST after the server closed the idle connection is answered (a fresh connection each time)', async function () {
    const http = client();
    const post: HttpRequest = { method: 'POST', url: `${fake.url}/start`, json: { n: 1 }, timeoutMs: 2_000 };
    assert.equal(await outcome(http.request(post)), 'HTTP 200');
    await sleep(SPACING_MS);
    assert.equal(await outcome(http.request(post)), 'HTTP 200');
    assert.equal(fake.requests.length, 2);
    assert.equal(fake.resets, 0, 'no POST landed on a connection the server was closing');
    assert.equal(fake.requests[0].headers.connection, 'close', 'the server is told the connection ends with the answer');
  });

  it('a GET that loses the race on a pooled connection is sent again once, on a fresh one', async function () {
    const http = client();
    const get: HttpRequest = { method: 'GET', url: `${fake.url}/poll`, timeoutMs: 2_000 };
    assert.equal(await outcome(http.request(get)), 'HTTP 200');
    await sleep(SPACING_MS);
    assert.equal(await outcome(http.request(get)), 'HTTP 200');
    assert.equal(fake.resets, 1, 'the second GET reused the connection and was reset unread');
    assert.equal(fake.requests.length, 2);
  });

  it('a pooled connection idle for over a second is not reused', async function () {
    const http = client();
    const get: HttpRequest = { method: 'GET', url: `${fake.url}/poll`, timeoutMs: 2_000 };
    assert.equal(await outcome(http.request(get)), 'HTTP 200');
    await sleep(1_300);
    assert.equal(await outcome(http.request(get)), 'HTTP 200');
    assert.equal(fake.resets, 0);
  });

  it('a reset after the server read the request on a fresh connection is maybe sent, and not sent again', async function () {
    for (const method of ['POST', 'GET'] as const) {
      const before = fake.requests.length;
      assert.equal(await outcome(client().request({ method, url: `${fake.url}/drop`, json: method === 'POST' ? {} : undefined, timeoutMs: 2_000 })), 'ECONNRESET:maybe sent', method);
      assert.equal(fake.requests.length - before, 1, `${method} reached the server once`);
    }
  });

  it('a refused connection, a name that never resolves and a cancel before connecting are not sent', async function () {
    const closed = await new HttpFake(() => ({ status: 200 })).start();
    const port = closed.port;
    await closed.close();
    assert.equal(await outcome(client().request({ method: 'POST', url: `http://127.0.0.1:${port}/`, json: {}, timeoutMs: 1_000 })), 'ECONNREFUSED:not sent');
    const hanging = client({ resolve: () => new Promise(() => undefined) });
    assert.equal(await outcome(hanging.request({ method: 'POST', url: `http://runtime.internal:${fake.port}/`, json: {}, timeoutMs: 200 })), 'TIMEOUT:not sent');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    assert.equal(await outcome(hanging.request({ method: 'POST', url: `http://runtime.internal:${fake.port}/`, json: {}, timeoutMs: 5_000, signal: ac.signal })), 'ABORTED:not sent');
    assert.equal(fake.requests.length, 0);
  });

  it('a POST answered with a redirect is maybe sent, even when the redirected GET never connects', async function () {
    // 303 after a POST is "done, see there": the server may have acted on the POST.
    const seeOther = await new HttpFake((req) => (req.method === 'POST' ? { status: 303, headers: { location: '/result' } } : { status: 200, body: { ok: true } })).start();
    try {
      let lookups = 0;
      // The first connection resolves; the redirected GET's lookup never answers, so it never connects.
      const flaky = client({ resolve: () => (++lookups === 1 ? Promise.resolve([{ address: '127.0.0.1', family: 4 }]) : new Promise(() => undefined)) });
      const post: HttpRequest = { method: 'POST', url: `http://runtime.internal:${seeOther.port}/start`, json: { n: 1 }, timeoutMs: 300 };
      assert.equal(await outcome(flaky.request(post)), 'TIMEOUT:maybe sent');
      assert.equal(seeOther.requests.length, 1, 'the POST reached the server');
    } finally {
      await seeOther.close();
    }
  });

  it("a pooled connection is never shared between clients, so each workspace's address checks apply", async function () {
    const loopback = async () => [{ address: '127.0.0.1', family: 4 }];
    const open = client({ resolve: loopback });
    const strict = client({ resolve: loopback, workspaceId: 'ws2', rule: { hosts: ['localhost:*'], deny: ['127.0.0.0/8'], allowLinkLocal: false } });
    const url = `http://localhost:${fake.port}/poll`;
    assert.equal(await outcome(open.request({ method: 'GET', url, timeoutMs: 1_000 })), 'HTTP 200');
    assert.equal(await outcome(strict.request({ method: 'GET', url, timeoutMs: 1_000 })), 'EgressDenied');
    assert.equal(fake.requests.length, 1);
  });
});

describe('runtimes behind a server that closes idle connections', function () {
  this.timeout(20_000);
  const policies = { snapshotFor: () => ({ defaults: { flowTools: {}, toolClasses: {} } }) } as unknown as LoadedPolicies;

  describe('langflow', function () {
    const KEY = 'sk-test-abcdefghijklmnop';
    let lf: LangflowFake;
    const adapter = createLangflowRuntime({ policies });
    const call = (target = 'f1', baseUrl = lf.url) =>
      testCall({ runtime: 'langflow', target, input: { input_value: 'hi' }, connections: { langflow: { baseUrl } }, secret: { apiKey: KEY } });
    beforeEach(async function () {
      lf = new LangflowFake(KEY);
      assert.ok(lf.idleClose, 'the Langflow fake closes idle connections by default, like gunicorn');
      lf.idleClose = IDLE;
      await lf.start();
      lf.flow('f1', { answer: 'ok' }).flow('drop', { hangUp: true });
    });
    afterEach(async function () {
      await lf.close();
    });

    it('two runs spaced past the idle close both run', async function () {
      await adapter.execute(call());
      await sleep(SPACING_MS);
      const out = await adapter.execute(call());
      assert.equal((out.output as { answer: string }).answer, 'ok');
      assert.equal(lf.runs().length, 2);
    });

    it('a reset after the request was read is RuntimeOutcomeUnknown, sent once', async function () {
      assert.equal(await typeOf(adapter.execute(call('drop'))), 'RuntimeOutcomeUnknown');
      assert.equal(lf.runs().length, 1);
    });

    it('a refused connection is RuntimeUnavailable (not sent)', async function () {
      const closed = await new LangflowFake(KEY).start();
      const url = closed.url;
      await closed.close();
      const c = call('f1', url);
      assert.equal(await typeOf(adapter.execute(c)), 'RuntimeUnavailable');
      assert.deepEqual(c.heartbeats.at(-1), { stage: 'notSent', flow: 'f1' });
    });
  });

  describe('activepieces (sync webhook, no look-up possible)', function () {
    let ap: ActivepiecesFake;
    const adapter = createActivepiecesRuntime();
    const call = (target = 'f1', baseUrl = ap.url) =>
      testCall({ runtime: 'activepieces', target, input: { amount: 5 }, connections: { activepieces: { baseUrl, mode: 'sync', requestTimeout: '2s' } } });
    beforeEach(async function () {
      ap = new ActivepiecesFake();
      ap.idleClose = IDLE;
      await ap.start();
      ap.flow('f1', { respond: { status: 200, body: { paid: true } } }).flow('drop', { hangUp: true });
    });
    afterEach(async function () {
      await ap.close();
    });

    it('two runs spaced past the idle close both run', async function () {
      await adapter.execute(call());
      await sleep(SPACING_MS);
      const out = await adapter.execute(call());
      assert.deepEqual(out.output, { status: 200, body: { paid: true } });
      assert.equal(ap.executions('f1').length, 2);
    });

    it('a reset after the request was read is RuntimeOutcomeUnknown, sent once', async function () {
      assert.equal(await typeOf(adapter.execute(call('drop'))), 'RuntimeOutcomeUnknown');
      assert.equal(ap.webhookCalls().length, 1);
    });

    it('a refused connection is RuntimeUnavailable (not sent)', async function () {
      const closed = await new ActivepiecesFake().start();
      const url = closed.url;
      await closed.close();
      assert.equal(await typeOf(adapter.execute(call('f1', url))), 'RuntimeUnavailable');
    });
  });

  describe('stackstorm', function () {
    const KEY = 'st2-api-key-abcdef';
    let st2: StackStormFake;
    const adapter = createStackStormRuntime();
    const call = (target = 'core.local') =>
      testCall({ runtime: 'stackstorm', target, input: { cmd: 'date' }, connections: { stackstorm: { baseUrl: st2.url, pollInterval: '50ms' } }, secret: { apiKey: KEY } });
    beforeEach(async function () {
      st2 = new StackStormFake({ apiKey: KEY });
      st2.idleClose = IDLE;
      await st2.start();
      st2.action('core.local', { result: { succeeded: true } });
    });
    afterEach(async function () {
      await st2.close();
    });

    it('two runs spaced past the idle close both run', async function () {
      await adapter.execute(call());
      await sleep(SPACING_MS);
      await adapter.execute(call());
      assert.equal(st2.creates().length, 2);
    });
  });
});
