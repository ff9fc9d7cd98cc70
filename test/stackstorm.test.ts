/**
 * The StackStorm adapter against a fake StackStorm (no Temporal): create then poll, the st2-context
 * header, API key and token auth (cache, reuse, re-auth after 401), every error mapping, resuming and
 * refusing blind resends, cancel, run timeout and egress denial.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { RuntimeAdapter } from '../activities/runtimes/port';
import { createStackStormRuntime, type StackStormOutput } from '../activities/runtimes/stackstorm';
import { StackStormFake } from './fakes/stackstorm-server';
import { type TestCallOptions, testCall } from './support/runtime-call';
import { failureOf, typeOf, until } from './support/failures';

const KEY = 'st2-api-key-abcdef';
const USER = 'st2admin';
const PASS = 'st2-pass-1';
const DISPATCH_ID = createHash('sha256').update(`ws1:key-1/${'a'.repeat(64)}`).digest('hex').slice(0, 32);
const RESULT = { stdout: 'Thu Jan 1 00:00:00 UTC 2026', stderr: '', return_code: 0, succeeded: true, failed: false };


const outputOf = (o: { output: unknown }) => o.output as unknown as StackStormOutput;

describe('stackstorm adapter', function () {
  let fake: StackStormFake;
  let adapter: RuntimeAdapter;

  const call = (o: Partial<TestCallOptions> & { connection?: Record<string, unknown> } = {}) =>
    testCall({
      runtime: 'stackstorm',
      target: 'core.local',
      input: { cmd: 'date' },
      connections: { stackstorm: { baseUrl: fake.url, pollInterval: '50ms', ...o.connection } },
      secret: { apiKey: KEY },
      ...o,
    });
  const tokenCall = (o: Partial<TestCallOptions> = {}) => call({ connection: { auth: 'token', authUrl: `${fake.url}/auth` }, secret: { username: USER, password: PASS }, ...o });

  beforeEach(async function () {
    fake = await new StackStormFake({ apiKey: KEY, username: USER, password: PASS }).start();
    fake.action('core.local', { result: RESULT });
    adapter = createStackStormRuntime();
  });
  afterEach(async function () {
    await fake.close();
  });

  describe('success', function () {
    it('creates an execution with the dispatch context, polls it and returns its result', async function () {
      const c = call({ input: { cmd: 'date', timeout: 60 } });
      const out = await adapter.execute(c);
      const [e] = [...fake.executions.values()];
      assert.deepEqual(outputOf(out), { executionId: e.id, status: 'succeeded', result: RESULT });
      assert.equal(out.externalRef, `stackstorm:execution:${e.id}`);
      assert.deepEqual(c.heartbeats[0], { remoteId: e.id }, 'the id is heartbeated as soon as the create answers');
      assert.ok(c.heartbeats.every((h) => (h as { remoteId?: string }).remoteId === e.id));
      const [create] = fake.creates();
      assert.equal(create.path, '/v1/executions');
      assert.equal(create.headers['st2-api-key'], KEY);
      assert.deepEqual(create.json, { action: 'core.local', parameters: { cmd: 'date', timeout: 60 } });
      assert.deepEqual(e.context, { user: USER, portarium: { dispatchId: DISPATCH_ID, workspaceId: 'ws1', correlationId: 'corr-1' } });
    });

    it('uses the API base behind nginx (/api)', async function () {
      const out = await adapter.execute(call({ connection: { baseUrl: `${fake.url}/api` } }));
      assert.equal(outputOf(out).status, 'succeeded');
      assert.ok(fake.requests.every((r) => r.path.startsWith('/api/v1/executions')));
    });

    it('keeps waiting through pending and paused', async function () {
      fake.action('core.ask', { statuses: ['requested', 'pending', 'paused', 'resuming', 'running', 'succeeded'] });
      const c = call({ target: 'core.ask' });
      await adapter.execute(c);
      assert.ok(c.heartbeats.some((h) => (h as { state?: string }).state === 'paused'));
    });
  });

  describe('token auth', function () {
    it('gets a token once and reuses it across calls', async function () {
      await adapter.execute(tokenCall());
      await adapter.execute(tokenCall());
      assert.equal(fake.tokens.length, 1);
      const [req] = fake.calls('/auth/v1/tokens', 'POST');
      assert.equal(req.headers.authorization, `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`);
      assert.deepEqual(req.json, { ttl: 3600 });
      assert.ok(fake.calls('/v1/executions').every((r) => r.headers['x-auth-token'] === fake.tokens[0].token && !r.headers['st2-api-key']));
    });

    it('drops a refused cached token and authenticates again, once', async function () {
      await adapter.execute(tokenCall());
      fake.revokeTokens();
      const out = await adapter.execute(tokenCall());
      assert.equal(outputOf(out).status, 'succeeded');
      assert.equal(fake.tokens.length, 2);
      assert.equal(fake.executions.size, 2, 'the refused create was not applied, the resent one was');
    });

    it('keeps tokens per adapter instance', async function () {
      await adapter.execute(tokenCall());
      await createStackStormRuntime().execute(tokenCall());
      assert.equal(fake.tokens.length, 2);
    });

    it('rejects wrong credentials, and needs authUrl and a username and password', async function () {
      const f = await failureOf(adapter.execute(tokenCall({ secret: { username: USER, password: 'nope' } })));
      assert.equal(f.type, 'RuntimeRejected');
      assert.deepEqual(f.details?.[0], { httpStatus: 401, reason: 'auth' });
      assert.equal(await typeOf(adapter.execute(call({ connection: { auth: 'token' }, secret: { username: USER, password: PASS } }))), 'RuntimeNotConfigured');
      assert.equal(await typeOf(adapter.execute(tokenCall({ secret: { apiKey: KEY } }))), 'CredentialsDenied');
      assert.equal(fake.creates().length, 0);
    });
  });

  describe('errors', function () {
    it('maps 401, 403, 400 (unknown action, validation), 404 and 409 to RuntimeRejected', async function () {
      fake.action('core.rbac', { forbidden: true }).action('core.bad', { invalid: "'cmd' is a required property" }).action('core.gone', { createStatus: 404 }).action('core.dup', { createStatus: 409 });
      const cases: [Partial<TestCallOptions>, number][] = [
        [{ secret: { apiKey: 'wrong-key' } }, 401],
        [{ target: 'core.rbac' }, 403],
        [{ target: 'nope.nothing' }, 400],
        [{ target: 'core.bad' }, 400],
        [{ target: 'core.gone' }, 404],
        [{ target: 'core.dup' }, 409],
      ];
      for (const [o, status] of cases) {
        const f = await failureOf(adapter.execute(call(o)));
        assert.equal(f.type, 'RuntimeRejected', JSON.stringify(o));
        assert.equal((f.details?.[0] as { httpStatus: number }).httpStatus, status, JSON.stringify(o));
      }
      assert.equal(fake.executions.size, 0);
    });

    it('rejects executions that end failed, timeout, abandoned or canceled, with the status', async function () {
      for (const final of ['failed', 'timeout', 'abandoned', 'canceled']) {
        fake.action(`core.${final}`, { final, result: { stderr: 'boom', return_code: 1 } });
        const f = await failureOf(adapter.execute(call({ target: `core.${final}` })));
        assert.equal(f.type, 'RuntimeRejected');
        assert.equal((f.details?.[0] as { status: string }).status, final);
      }
    });

    it('maps 429 and 503 on create to RuntimeUnavailable and marks the attempt as not sent', async function () {
      for (const createStatus of [429, 503]) {
        fake.action('core.busy', { createStatus });
        const c = call({ target: 'core.busy' });
        assert.equal(await typeOf(adapter.execute(c)), 'RuntimeUnavailable');
        assert.deepEqual(c.heartbeats.at(-1), { notSent: 1 });
      }
    });

    it('maps a refused connection to RuntimeUnavailable', async function () {
      const closed = await new StackStormFake().start();
      const url = closed.url;
      await closed.close();
      const c = call({ connection: { baseUrl: url } });
      assert.equal(await typeOf(adapter.execute(c)), 'RuntimeUnavailable');
      assert.deepEqual(c.heartbeats, [{ notSent: 1 }]);
    });

    it('marks the attempt as not sent when no token can be had', async function () {
      const closed = await new StackStormFake().start();
      const url = closed.url;
      await closed.close();
      const c = call({ connection: { auth: 'token', authUrl: url }, secret: { username: USER, password: PASS } });
      assert.equal(await typeOf(adapter.execute(c)), 'RuntimeUnavailable');
      assert.deepEqual(c.heartbeats, [{ notSent: 1 }]);
      assert.equal(fake.requests.length, 0);
    });

    it('maps a 5xx or a hang-up on create to RuntimeOutcomeUnknown', async function () {
      fake.action('core.e500', { createStatus: 500, butCreate: true }).action('core.e502', { createStatus: 502 }).action('core.hang', { hangUp: true, butCreate: true });
      for (const target of ['core.e500', 'core.e502', 'core.hang']) {
        const c = call({ target });
        assert.equal(await typeOf(adapter.execute(c)), 'RuntimeOutcomeUnknown', target);
        assert.equal(c.heartbeats.length, 0, 'no not-sent mark');
      }
    });

    it('tolerates a few failed polls, then gives up as RuntimeUnavailable with the id heartbeated', async function () {
      fake.action('core.flaky', { pollErrors: 2 }).action('core.down', { pollErrors: 1000 });
      await adapter.execute(call({ target: 'core.flaky' }));
      const c = call({ target: 'core.down' });
      assert.equal(await typeOf(adapter.execute(c)), 'RuntimeUnavailable');
      assert.ok(c.heartbeats.some((h) => (h as { remoteId?: string }).remoteId === [...fake.executions.keys()][1]));
    });

    it('refuses a bad target, a missing connection and a secret of the wrong shape before sending', async function () {
      for (const target of ['nodot', '.x', 'a b.c', 'pack/x.y']) assert.equal(await typeOf(adapter.execute(call({ target }))), 'RuntimeRejected', target);
      assert.equal(await typeOf(adapter.execute(testCall({ runtime: 'stackstorm', target: 'core.local', connections: {} }))), 'RuntimeNotConfigured');
      assert.equal(await typeOf(adapter.execute(call({ secret: { token: 'x' } }))), 'CredentialsDenied');
      assert.equal(fake.requests.length, 0);
    });
  });

  describe('retries', function () {
    it('resumes the heartbeated execution without creating another', async function () {
      const id = outputOf(await adapter.execute(call())).executionId;
      const out = await adapter.execute(call({ attempt: 2, previous: { remoteId: id, state: 'running' } }));
      assert.equal(outputOf(out).executionId, id);
      assert.equal(fake.creates().length, 1, 'zero new creates');
    });

    it('refuses to resend on a retry without an execution id', async function () {
      assert.equal(await typeOf(adapter.execute(call({ attempt: 2 }))), 'RuntimeOutcomeUnknown');
      assert.equal(await typeOf(adapter.execute(call({ attempt: 3, previous: { notSent: 1 } }))), 'RuntimeOutcomeUnknown');
      assert.equal(await typeOf(adapter.execute(tokenCall({ attempt: 2 }))), 'RuntimeOutcomeUnknown');
      assert.equal(fake.requests.length, 0, 'nothing sent, not even a token request');
    });

    it('sends again when the attempt just before marked its create as not sent', async function () {
      const out = await adapter.execute(call({ attempt: 2, previous: { notSent: 1 } }));
      assert.equal(outputOf(out).status, 'succeeded');
      assert.equal(fake.creates().length, 1);
    });
  });

  describe('stopping', function () {
    it('cancels the execution promptly when the dispatch is cancelled', async function () {
      fake.action('core.long', { statuses: ['requested', 'running'] });
      const c = call({ target: 'core.long' });
      const p = adapter.execute(c);
      await until(() => fake.calls('/v1/executions/', 'GET').length >= 2);
      const t0 = Date.now();
      c.controller.abort();
      await assert.rejects(p);
      assert.deepEqual(fake.cancels, [[...fake.executions.keys()][0]]);
      assert.ok(Date.now() - t0 < 1_000, 'cancel reaches StackStorm promptly');
    });

    it('cancels the execution and rejects when the run timeout passes', async function () {
      fake.action('core.long', { statuses: ['requested', 'running'] });
      const f = await failureOf(adapter.execute(call({ target: 'core.long', connection: { runTimeout: '300ms' } })));
      assert.equal(f.type, 'RuntimeRejected');
      assert.deepEqual(fake.cancels, [[...fake.executions.keys()][0]]);
    });

    it('refuses a host off the allow-list without sending anything', async function () {
      assert.equal(await typeOf(adapter.execute(call({ hosts: ['example.com'] }))), 'EgressDenied');
      assert.equal(await typeOf(adapter.execute(tokenCall({ hosts: ['example.com'] }))), 'EgressDenied');
      assert.equal(fake.requests.length, 0);
    });
  });
});
