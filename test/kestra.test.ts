/**
 * The Kestra adapter against a fake Kestra (no Temporal): create then poll, tenant paths, labels and
 * multipart inputs, every error mapping, resuming and looking up earlier attempts' executions, cancel,
 * run timeout and egress denial.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createKestraRuntime, type KestraOutput } from '../activities/runtimes/kestra';
import type { RuntimeAdapter } from '../activities/runtimes/port';
import { type FakeFlow, KestraFake, type KestraFakeOptions } from './fakes/kestra-server';
import { type TestCallOptions, testCall } from './support/runtime-call';
import { failureOf, typeOf, until } from './support/failures';

const USER = 'ops@example.com';
const PASS = 'kestra-pass-1';
const TOKEN = 'kestra-api-token-1';
const HEX = createHash('sha256').update(`ws1:key-1/${'a'.repeat(64)}`).digest('hex').slice(0, 32);


const remoteIds = (beats: unknown[]) => beats.map((b) => (b as { remoteId?: string }).remoteId);

describe('kestra adapter', function () {
  let fake: KestraFake;
  let adapter: RuntimeAdapter;

  async function startFake(options: KestraFakeOptions = {}, flow: FakeFlow = { outputs: { greeting: 'hello Ada' } }) {
    await fake?.close();
    fake = await new KestraFake({ username: USER, password: PASS, token: TOKEN, ...options }).start();
    fake.flow('company.team', 'hello', flow);
  }

  const call = (o: Partial<TestCallOptions> & { connection?: Record<string, unknown> } = {}) =>
    testCall({
      runtime: 'kestra',
      target: 'company.team/hello',
      input: { name: 'Ada' },
      connections: { kestra: { baseUrl: fake.url, pollInterval: '50ms', ...o.connection } },
      secret: { username: USER, password: PASS },
      ...o,
    });

  beforeEach(async function () {
    await startFake();
    adapter = createKestraRuntime();
  });
  afterEach(async function () {
    await fake.close();
  });

  describe('success', function () {
    it('creates an execution, polls it to SUCCESS and returns its outputs', async function () {
      const c = call({ input: { name: 'Ada', count: 3, tags: ['a', 'b'], skip: null } });
      const out = await adapter.execute(c);
      const [e] = [...fake.executions.values()];
      const output = out.output as unknown as KestraOutput;
      assert.deepEqual({ ...output, url: undefined }, { executionId: e.id, state: 'SUCCESS', outputs: { greeting: 'hello Ada' }, url: undefined });
      assert.match(output.url ?? '', new RegExp(`/ui/main/executions/company.team/hello/${e.id}$`));
      assert.equal(out.externalRef, `kestra:execution:${e.id}`);
      assert.deepEqual(c.heartbeats[0], { remoteId: e.id }, 'the id is heartbeated as soon as the create answers');
      assert.ok(remoteIds(c.heartbeats).every((id) => id === e.id));
      const [create] = fake.creates();
      assert.equal(create.path, '/api/v1/main/executions/company.team/hello');
      assert.deepEqual(create.query.getAll('labels'), [`portarium_dispatch:${HEX}`, 'portarium_workspace:ws1']);
      assert.equal(create.query.get('wait'), null);
      assert.equal(create.headers.authorization, `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`);
      assert.deepEqual(e.inputs, { name: 'Ada', count: '3', tags: '["a","b"]' }, 'non-strings are JSON, null is left out');
    });

    it('builds paths for the legacy (no tenant), main and other tenants', async function () {
      for (const tenant of ['', 'main', 'acme']) {
        await startFake({ tenant });
        const out = await adapter.execute(call({ connection: { tenant } }));
        assert.equal((out.output as unknown as KestraOutput).state, 'SUCCESS');
        const prefix = tenant ? `/api/v1/${tenant}/executions/` : '/api/v1/executions/';
        assert.ok(fake.requests.every((r) => r.path.startsWith(prefix)), `tenant ${JSON.stringify(tenant)}`);
      }
    });

    it('treats WARNING as success', async function () {
      fake.flow('company.team', 'warn', { final: 'WARNING', outputs: { n: 1 } });
      const out = await adapter.execute(call({ target: 'company.team/warn' }));
      assert.equal((out.output as unknown as KestraOutput).state, 'WARNING');
    });

    it('keeps waiting while the execution is PAUSED', async function () {
      fake.flow('company.team', 'approve', { states: ['CREATED', 'PAUSED', 'PAUSED', 'PAUSED', 'RUNNING', 'SUCCESS'] });
      const c = call({ target: 'company.team/approve' });
      await adapter.execute(c);
      assert.ok(c.heartbeats.some((h) => (h as { state?: string }).state === 'PAUSED'));
    });

    it('sends a bearer token, and an empty form for no inputs', async function () {
      const out = await adapter.execute(call({ connection: { auth: 'bearer' }, secret: { token: TOKEN }, input: {} }));
      assert.equal((out.output as unknown as KestraOutput).state, 'SUCCESS');
      assert.equal(fake.creates()[0].headers.authorization, `Bearer ${TOKEN}`);
      assert.deepEqual([...fake.executions.values()][0].inputs, {}, 'a flow without inputs gets an empty form');
    });
  });

  describe('errors', function () {
    it('maps refused credentials (401) to RuntimeRejected with reason auth', async function () {
      const f = await failureOf(adapter.execute(call({ secret: { username: USER, password: 'wrong' } })));
      assert.equal(f.type, 'RuntimeRejected');
      assert.deepEqual(f.details?.[0], { httpStatus: 401, reason: 'auth' });
      assert.equal(fake.executions.size, 0);
    });

    it('rejects a missing flow (404), a disabled flow (409) and bad inputs (422)', async function () {
      fake.flow('company.team', 'off', { disabled: true }).flow('company.team', 'strict', { requiredInputs: ['count'] });
      for (const [target, status] of [['company.team/nope', 404], ['company.team/off', 409], ['company.team/strict', 422]] as const) {
        const f = await failureOf(adapter.execute(call({ target })));
        assert.equal(f.type, 'RuntimeRejected', target);
        assert.equal((f.details?.[0] as { httpStatus: number }).httpStatus, status, target);
      }
      assert.equal(fake.executions.size, 0);
    });

    it('rejects executions that end FAILED, KILLED or CANCELLED, with the state', async function () {
      for (const final of ['FAILED', 'KILLED', 'CANCELLED']) {
        fake.flow('company.team', final, { final });
        const f = await failureOf(adapter.execute(call({ target: `company.team/${final}` })));
        assert.equal(f.type, 'RuntimeRejected');
        assert.equal((f.details?.[0] as { state: string }).state, final);
      }
    });

    it('maps 429 and 503 on create to RuntimeUnavailable', async function () {
      for (const createStatus of [429, 503]) {
        fake.flow('company.team', 'busy', { createStatus });
        assert.equal(await typeOf(adapter.execute(call({ target: 'company.team/busy' }))), 'RuntimeUnavailable');
      }
    });

    it('after a 500 on create, looks the execution up: none found is RuntimeUnavailable', async function () {
      fake.flow('company.team', 'err', { createStatus: 500 });
      assert.equal(await typeOf(adapter.execute(call({ target: 'company.team/err' }))), 'RuntimeUnavailable');
      assert.equal(fake.calls('/api/v1/main/executions/search').length, 1);
      assert.equal(fake.executions.size, 0);
    });

    it('after a 500 or a hang-up on a create that did create, resumes that execution', async function () {
      fake.flow('company.team', 'lost500', { createStatus: 500, butCreate: true }).flow('company.team', 'lostHang', { hangUp: true, butCreate: true });
      for (const target of ['company.team/lost500', 'company.team/lostHang']) {
        const c = call({ target });
        const out = await adapter.execute(c);
        assert.equal((out.output as unknown as KestraOutput).state, 'SUCCESS', target);
      }
      assert.equal(fake.executions.size, 2, 'exactly one execution each');
      assert.equal(fake.creates().length, 2);
    });

    it('tolerates a few failed polls, then gives up as RuntimeUnavailable with the id heartbeated', async function () {
      fake.flow('company.team', 'flaky', { pollErrors: 2 }).flow('company.team', 'down', { pollErrors: 1000 });
      await adapter.execute(call({ target: 'company.team/flaky' }));
      const c = call({ target: 'company.team/down' });
      assert.equal(await typeOf(adapter.execute(c)), 'RuntimeUnavailable');
      assert.ok(remoteIds(c.heartbeats).includes([...fake.executions.values()][1].id));
    });

    it('refuses a bad target, a missing connection and a secret of the wrong shape before sending', async function () {
      assert.equal(await typeOf(adapter.execute(call({ target: 'no-slash' }))), 'RuntimeRejected');
      assert.equal(await typeOf(adapter.execute(call({ target: 'a/b/c' }))), 'RuntimeRejected');
      assert.equal(await typeOf(adapter.execute(testCall({ runtime: 'kestra', target: 'company.team/hello', connections: {} }))), 'RuntimeNotConfigured');
      assert.equal(await typeOf(adapter.execute(call({ secret: { token: TOKEN } }))), 'CredentialsDenied');
      assert.equal(await typeOf(adapter.execute(call({ connection: { auth: 'bearer' } }))), 'CredentialsDenied');
      assert.equal(fake.requests.length, 0);
    });
  });

  describe('retries', function () {
    it('resumes the heartbeated execution without creating another', async function () {
      const first = await adapter.execute(call());
      const id = (first.output as unknown as KestraOutput).executionId;
      const c = call({ attempt: 2, previous: { remoteId: id, state: 'RUNNING' } });
      const out = await adapter.execute(c);
      assert.equal((out.output as unknown as KestraOutput).executionId, id);
      assert.equal(fake.creates().length, 1, 'zero new creates');
      assert.equal(fake.calls('/api/v1/main/executions/search').length, 0);
    });

    it('finds by label the execution of an attempt that died before heartbeating', async function () {
      const crashing = call({ target: 'company.team/hello' });
      crashing.heartbeat = () => {
        throw new Error('worker lost');
      };
      await assert.rejects(adapter.execute(crashing), /worker lost/);
      const c = call({ attempt: 2 });
      const out = await adapter.execute(c);
      assert.equal(fake.executions.size, 1, 'exactly one execution');
      assert.equal(fake.creates().length, 1);
      assert.equal((out.output as unknown as KestraOutput).executionId, [...fake.executions.keys()][0]);
      assert.deepEqual(c.heartbeats[0], { remoteId: [...fake.executions.keys()][0] });
    });

    it('creates on retry when the search finds nothing, and trusts only its own label', async function () {
      const other = call({ dispatchKey: 'ws1:other/key' });
      await adapter.execute(other);
      fake.searchIgnoresLabels = true;
      await adapter.execute(call({ attempt: 2 }));
      assert.equal(fake.executions.size, 2, 'another dispatch\'s execution is not resumed');
      assert.equal(fake.calls('/api/v1/main/executions/search').length, 1);
    });

    it('does not resend when the search cannot be run', async function () {
      await fake.close();
      fake = await new KestraFake({ username: USER, password: PASS, tenant: 'acme' }).start();
      // The search goes to a path this server does not serve (404): the lookup proves nothing.
      const c = call({ attempt: 2, connection: { tenant: 'main' } });
      assert.equal(await typeOf(adapter.execute(c)), 'RuntimeOutcomeUnknown');
      assert.equal(fake.creates().length, 0);
    });
  });

  describe('stopping', function () {
    it('kills the execution promptly when the dispatch is cancelled', async function () {
      fake.flow('company.team', 'long', { states: ['CREATED', 'RUNNING'] });
      const c = call({ target: 'company.team/long' });
      const p = adapter.execute(c);
      await until(() => fake.calls('/api/v1/main/executions/', 'GET').length >= 2);
      const t0 = Date.now();
      c.controller.abort();
      await assert.rejects(p);
      const [e] = [...fake.executions.values()];
      assert.deepEqual(fake.kills, [e.id]);
      assert.ok(Date.now() - t0 < 1_000, 'kill reaches Kestra promptly');
    });

    it('kills the execution and rejects when the run timeout passes', async function () {
      fake.flow('company.team', 'long', { paused: true });
      const f = await failureOf(adapter.execute(call({ target: 'company.team/long', connection: { runTimeout: '300ms' } })));
      assert.equal(f.type, 'RuntimeRejected');
      assert.deepEqual(fake.kills, [[...fake.executions.keys()][0]]);
    });

    it('refuses a host off the allow-list without sending anything', async function () {
      assert.equal(await typeOf(adapter.execute(call({ hosts: ['example.com'] }))), 'EgressDenied');
      assert.equal(await typeOf(adapter.execute(call({ hosts: ['example.com'], attempt: 2 }))), 'EgressDenied');
      assert.equal(fake.requests.length, 0);
    });
  });
});
