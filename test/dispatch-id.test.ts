/**
 * One dispatch, one dispatch id: every runtime (its header, Activepieces' body, Kestra's label,
 * StackStorm's context, echo's reference) gets the value `dispatchIdOf` gives for the dispatch key,
 * through the real dispatch activity. A request recorded by an older worker (the dispatch key under
 * its old name, `idempotencyKey`) is still dispatched as the same dispatch.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { FilePayloadStore } from '../activities/payload-store';
import { loadPolicyDir } from '../activities/policy/load';
import { createActivepiecesRuntime } from '../activities/runtimes/activepieces';
import { createDispatchActivities } from '../activities/runtimes/dispatch';
import { type LegacyDispatchRequest, dispatchIdOf } from '../activities/runtimes/dispatch-key';
import { MemoryEchoLedger, createEchoRuntime } from '../activities/runtimes/echo';
import { createKestraRuntime } from '../activities/runtimes/kestra';
import { createLangflowRuntime } from '../activities/runtimes/langflow';
import { createStackStormRuntime } from '../activities/runtimes/stackstorm';
import type { EvidenceSink } from '../activities/evidence/sink';
import type { SecretStore } from '../activities/secrets/port';
import type { DispatchRequest, DispatchResult } from '../workflows/types';
import { ActivepiecesFake } from './fakes/activepieces-server';
import { KestraFake } from './fakes/kestra-server';
import { LangflowFake } from './fakes/langflow-server';
import { StackStormFake } from './fakes/stackstorm-server';
import type { RecordedRequest } from './fakes/http-fake';
import { typeOf } from './support/failures';
import { TEST_POLICY_DIR } from './support/harness';

const KEY = `ws1:run-7/${'b'.repeat(64)}`;
const LANGFLOW_KEY = 'sk-lf-dispatch-id-1';
const ST2_KEY = 'st2-dispatch-id-key';

describe('dispatch id: one value for one dispatch, on every runtime', function () {
  let ap: ActivepiecesFake;
  let kestra: KestraFake;
  let st2: StackStormFake;
  let langflow: LangflowFake;
  let dir: string;
  let ledger: MemoryEchoLedger;
  let dispatch: ReturnType<typeof createDispatchActivities>['dispatchAction'];

  before(async function () {
    ap = await new ActivepiecesFake().start();
    kestra = await new KestraFake().start();
    st2 = await new StackStormFake({ apiKey: ST2_KEY }).start();
    langflow = await new LangflowFake(LANGFLOW_KEY).start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-dispatch-id-'));
    const policyDir = path.join(dir, 'policies');
    fs.mkdirSync(policyDir);
    fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(policyDir, 'defaults.json'));
    const connections = {
      activepieces: { baseUrl: ap.url, projectId: ap.projectId, pollInterval: '50ms', requestTimeout: '5s' },
      langflow: { baseUrl: langflow.url, requestTimeout: '10s' },
      kestra: { baseUrl: kestra.url, auth: 'basic', pollInterval: '50ms', runTimeout: '30s' },
      stackstorm: { baseUrl: st2.url, auth: 'apiKey', pollInterval: '50ms' },
    };
    const egress = Object.fromEntries(Object.entries({ activepieces: ap, langflow, kestra, stackstorm: st2 }).map(([k, f]) => [k, { hosts: [`127.0.0.1:${f.port}`] }]));
    const rules = [{ id: 'all', match: { runtime: 'echo' }, tier: 'Auto' }];
    fs.writeFileSync(path.join(policyDir, 'ws1.json'), JSON.stringify({ schemaVersion: 1, kind: 'workspace', workspace: 'ws1', rules, connections, egress }));
    const policies = loadPolicyDir(policyDir);
    const secretOf: Record<string, Record<string, string>> = {
      activepieces: { apiKey: ap.apiKey },
      langflow: { apiKey: LANGFLOW_KEY },
      kestra: { username: kestra.options.username!, password: kestra.options.password! },
      stackstorm: { apiKey: ST2_KEY },
      echo: {},
    };
    const secrets: SecretStore = { kind: 'test', read: async (_ws, runtime) => secretOf[runtime]!, close: async () => undefined };
    ledger = new MemoryEchoLedger();
    const runtimes = [createActivepiecesRuntime(), createKestraRuntime(), createStackStormRuntime(), createLangflowRuntime({ policies }), createEchoRuntime(ledger)];
    const acts = createDispatchActivities({ runtimes, policies, secrets, payloads: new FilePayloadStore(path.join(dir, 'payloads')), evidence: {} as EvidenceSink });
    dispatch = acts.dispatchAction;
  });
  after(async function () {
    await Promise.all([ap, kestra, st2, langflow].map((f) => f.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const request = (runtime: string, target: string, key = KEY): DispatchRequest => ({
    workspaceId: 'ws1', correlationId: 'corr-7', workflowId: 'ws1:run-7', runtime, target, operation: 'run', input: runtime === 'langflow' ? { input_value: 'hi' } : {}, tier: 'Auto', actionHash: 'b'.repeat(64), dispatchKey: key,
  });
  const legacy = (runtime: string, target: string): LegacyDispatchRequest => {
    const { dispatchKey, ...rest } = request(runtime, target);
    return { ...rest, idempotencyKey: dispatchKey };
  };
  const run = (req: DispatchRequest | LegacyDispatchRequest) => new MockActivityEnvironment().run(dispatch, req) as Promise<DispatchResult>;
  const header = (r: RecordedRequest | undefined) => r?.headers['x-portarium-dispatch-id'];
  const last = <T>(xs: T[]) => xs[xs.length - 1];

  it('every runtime receives the dispatch id dispatchIdOf gives, in its header and in its own field', async function () {
    const id = dispatchIdOf(KEY);
    assert.match(id, /^[0-9a-f]{32}$/);
    ap.flow('pay', { respond: { status: 200, body: { ok: true } } });
    kestra.flow('ops.team', 'restart', { states: ['CREATED', 'SUCCESS'] });
    st2.action('core.local', { result: { stdout: 'ok' } });
    langflow.flow('bot', { answer: 'hi' });

    await run(request('activepieces', 'pay'));
    const hook = last(ap.webhookCalls());
    assert.equal(header(hook), id, 'activepieces header');
    assert.equal((hook?.json as { portarium: { dispatchId: string } }).portarium.dispatchId, id, 'activepieces body: the same id as its header, not the raw key');

    await run(request('kestra', 'ops.team/restart'));
    const exec = last([...kestra.executions.values()]);
    assert.equal(header(last(kestra.requests.filter((r) => r.method === 'POST'))), id, 'kestra header');
    assert.deepEqual(exec?.labels.find((l) => l.key === 'portarium_dispatch')?.value, id, 'kestra label');

    await run(request('stackstorm', 'core.local'));
    const e = last([...st2.executions.values()]);
    assert.equal(header(last(st2.requests.filter((r) => r.method === 'POST' && r.path === '/v1/executions'))), id, 'stackstorm header');
    assert.equal((e?.context.portarium as { dispatchId: string }).dispatchId, id, 'stackstorm context');

    await run(request('langflow', 'bot'));
    assert.equal(header(last(langflow.runs())), id, 'langflow header');

    const echoed = await run(request('echo', 't'));
    assert.equal(echoed.externalRef, `echo:${id.slice(0, 16)}`, 'echo reference');
  });

  it('a request an older worker recorded (the key as idempotencyKey) is the same dispatch: same id, applied once', async function () {
    const key = `ws1:run-8/${'c'.repeat(64)}`;
    const id = dispatchIdOf(key);
    const fresh = await run(request('echo', 't', key));
    const { dispatchKey: _k, ...rest } = request('echo', 't', key);
    const old = await run({ ...rest, idempotencyKey: key });
    assert.equal(old.externalRef, fresh.externalRef);
    assert.equal(old.externalRef, `echo:${id.slice(0, 16)}`);
    assert.deepEqual(old.output, { echoed: {}, firstApplication: false }, 'the old-named retry is recognised as the dispatch already applied');

    ap.flow('legacy', { respond: { status: 200, body: { ok: true } } });
    await run(legacy('activepieces', 'legacy'));
    const hook = last(ap.webhookCalls());
    assert.equal(header(hook), dispatchIdOf(KEY));
    assert.equal((hook?.json as { portarium: { dispatchId: string } }).portarium.dispatchId, dispatchIdOf(KEY));
  });

  it('a request with no dispatch key under either name is refused and nothing is sent', async function () {
    const { dispatchKey: _k, ...keyless } = request('activepieces', 'pay');
    const before = ap.requests.length;
    assert.equal(await typeOf(run(keyless as DispatchRequest)), 'InvalidMessage');
    assert.equal(await typeOf(run({ ...keyless, dispatchKey: 42 } as unknown as DispatchRequest)), 'InvalidMessage');
    assert.equal(ap.requests.length, before);
  });
});
