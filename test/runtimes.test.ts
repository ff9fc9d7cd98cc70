/**
 * Governed runs end to end through the execution plane on a real Temporal server: each runtime's
 * fake behind the egress guard, credentials from the workspace's secrets file, cancellation reaching
 * the remote run, cross-workspace and egress refusals, and a scan of everything a run leaves behind
 * (history, status, evidence, logs) for the secret values it used.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createActivepiecesRuntime } from '../activities/runtimes/activepieces';
import { FileSecretStore } from '../activities/secrets/local-file';
import type { SecretStore } from '../activities/secrets/port';
import { VaultSecretStore } from '../activities/secrets/vault';
import { FilePayloadStore, type PayloadRef } from '../activities/payload-store';
import { createKestraRuntime } from '../activities/runtimes/kestra';
import { createLangflowRuntime } from '../activities/runtimes/langflow';
import { createStackStormRuntime } from '../activities/runtimes/stackstorm';
import { loadPolicyDir } from '../activities/policy/load';
import { PROJECT_ROOT } from '../workers/config';
import type { RunHandle } from '../workers/client';
import { RunState, type GovernedAction, type GovernedRunInput } from '../workflows/types';
import { ActivepiecesFake } from './fakes/activepieces-server';
import { KestraFake } from './fakes/kestra-server';
import { LangflowFake } from './fakes/langflow-server';
import { StackStormFake } from './fakes/stackstorm-server';
import { VaultFake } from './fakes/vault-server';
import { TEST_POLICY_DIR, alice, bob, decision, failureType, uid, waitForState, withWorker, type Harness } from './support/harness';
import { scanRunForSecrets } from './support/leak-scan';
import { testEnv } from './support/shared';

const LANGFLOW_KEY = 'sk-lf-e2e-7f3a9c1d5e2b8a4f';
const KESTRA_PASSWORD = 'kestra-e2e-pw-91c2d7';
const ST2_KEY = 'st2-e2e-key-5d81f0b3a6';

interface Fakes {
  activepieces: ActivepiecesFake;
  langflow: LangflowFake;
  kestra: KestraFake;
  st2: StackStormFake;
}

/** A policy dir with workspace `ops1` connected to the fakes, `ops2` without secrets, `ops3` without egress. */
export function writePolicies(dir: string, f: Fakes): void {
  fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
  const connections = {
    activepieces: { baseUrl: f.activepieces.url, projectId: f.activepieces.projectId, pollInterval: '100ms', requestTimeout: '5s' },
    langflow: { baseUrl: f.langflow.url, requestTimeout: '10s' },
    kestra: { baseUrl: f.kestra.url, auth: 'basic', pollInterval: '100ms', runTimeout: '30s' },
    stackstorm: { baseUrl: f.st2.url, auth: 'apiKey', pollInterval: '100ms' },
  };
  const egress = {
    activepieces: { hosts: [`127.0.0.1:${f.activepieces.port}`] },
    langflow: { hosts: [`127.0.0.1:${f.langflow.port}`] },
    kestra: { hosts: [`127.0.0.1:${f.kestra.port}`] },
    stackstorm: { hosts: [`127.0.0.1:${f.st2.port}`] },
  };
  const rules = [
    { id: 'payments', match: { runtime: 'activepieces', operation: 'pay' }, tier: 'HumanApprove', approval: { quorum: 1, eligibleRoles: ['approver'] } },
    { id: 'agents', match: { runtime: 'langflow' }, tier: 'Auto' },
    { id: 'pipelines', match: { runtime: 'kestra' }, tier: 'HumanApprove', approval: { quorum: 1, eligibleRoles: ['approver'] } },
    { id: 'ops-actions', match: { runtime: 'stackstorm' }, tier: 'Auto' },
  ];
  const defaults = { flowTools: { 'support-bot': ['kb_lookup'] }, toolClasses: { kb_lookup: 'ReadOnly' } };
  const ws = (workspace: string, extra: object) => JSON.stringify({ schemaVersion: 1, kind: 'workspace', workspace, defaults, rules, connections, ...extra });
  fs.writeFileSync(path.join(dir, 'ops1.json'), ws('ops1', { egress }));
  fs.writeFileSync(path.join(dir, 'ops2.json'), ws('ops2', { egress }));
  fs.writeFileSync(path.join(dir, 'ops3.json'), ws('ops3', {}));
}

function writeSecrets(dir: string, f: Fakes): void {
  const secrets = {
    activepieces: { apiKey: f.activepieces.apiKey },
    langflow: { apiKey: LANGFLOW_KEY },
    kestra: { username: f.kestra.options.username, password: KESTRA_PASSWORD },
    stackstorm: { apiKey: ST2_KEY },
  };
  fs.writeFileSync(path.join(dir, 'ops1.json'), JSON.stringify(secrets), { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'ops2.json'), JSON.stringify({}), { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'ops3.json'), JSON.stringify({ langflow: { apiKey: LANGFLOW_KEY } }), { mode: 0o600 });
}

async function start(h: Harness, workspaceId: string, action: Omit<GovernedAction, 'operation'> & { operation?: string }, extra: Partial<GovernedRunInput> = {}): Promise<RunHandle> {
  const started = await h.portarium.startRun({
    workspaceId,
    correlationId: uid('corr'),
    requestedBy: alice,
    action: { operation: 'run', ...action },
    idempotencyKey: uid('key'),
    reason: 'e2e',
    ...extra,
  });
  return started.run;
}

async function failedWith(run: RunHandle): Promise<string | undefined> {
  try {
    await run.result();
  } catch (err) {
    return failureType(err);
  }
  return 'no failure';
}

describe('runtimes: governed runs end to end', function () {
  this.timeout(60_000);
  const fakes = {} as Fakes;
  let policyDir: string;
  let secretsDir: string;
  // The harness worker keeps payloads under the default data dir.
  const dataDir = path.join(PROJECT_ROOT, '.data');

  before(async function () {
    fakes.activepieces = await new ActivepiecesFake().start();
    fakes.langflow = await new LangflowFake(LANGFLOW_KEY).start();
    fakes.kestra = await new KestraFake({ password: KESTRA_PASSWORD }).start();
    fakes.st2 = await new StackStormFake({ apiKey: ST2_KEY }).start();
    policyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-e2e-policies-'));
    secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-e2e-secrets-'));
    writePolicies(policyDir, fakes);
    writeSecrets(secretsDir, fakes);
  });
  after(async function () {
    await Promise.all(Object.values(fakes).map((f) => f.close()));
    fs.rmSync(policyDir, { recursive: true, force: true });
    fs.rmSync(secretsDir, { recursive: true, force: true });
  });

  const worker = <T>(fn: (h: Harness) => Promise<T>, secrets: SecretStore = new FileSecretStore(secretsDir)) => {
    const env = testEnv();
    const policies = loadPolicyDir(policyDir);
    const runtimes = [createActivepiecesRuntime(), createLangflowRuntime({ policies }), createKestraRuntime(), createStackStormRuntime()];
    return withWorker({ connection: env.nativeConnection, client: env.client, policyDir, runtimes, secrets }, fn);
  };

  it('Activepieces: an approved payment goes through the flow; a sync timeout is resolved by look-up, executed once', async function () {
    fakes.activepieces.flow('pay-flow', { respond: { status: 200, body: { paid: true } } });
    fakes.activepieces.flow('slow-pay', { syncTimeout: true, polls: 2 });
    await worker(async (h) => {
      for (const [flow, expect] of [['pay-flow', { status: 200, body: { paid: true } }], ['slow-pay', 'SUCCEEDED']] as const) {
        const run = await start(h, 'ops1', { runtime: 'activepieces', target: flow, operation: 'pay', input: { amount: 120, currency: 'EUR' } });
        const waiting = await waitForState(run, RunState.AwaitingApproval);
        await run.decide({ kind: 'approve', ...decision(bob, waiting.actionHash) });
        const result = await run.result();
        assert.equal(result.state, RunState.Succeeded);
        if (typeof expect === 'string') assert.equal((result.output as { status: string }).status, expect);
        else assert.deepEqual(result.output, expect);
        assert.equal(fakes.activepieces.executions(flow).length, 1, `${flow} executed once`);
        const scan = await scanRunForSecrets(h.client, run.workflowId, [fakes.activepieces.apiKey]);
        assert.deepEqual(scan.found, []);
      }
    });
  });

  it('Langflow: an agent run answers; the key never reaches history, status, evidence or logs, even when the flow echoes it', async function () {
    fakes.langflow.flow('support-bot', { answer: `done (key was ${LANGFLOW_KEY})` });
    await worker(async (h) => {
      const run = await start(h, 'ops1', { runtime: 'langflow', target: 'support-bot', input: { input_value: 'reset my password' }, tools: ['kb_lookup'] });
      const result = await run.result();
      assert.equal(result.state, RunState.Succeeded);
      const output = result.output as { answer: string; sessionId: string };
      assert.match(output.answer, /^done \(key was \[secret\]\)$/);
      const sent = fakes.langflow.runs().at(-1)!;
      assert.equal(sent.headers['x-api-key'], LANGFLOW_KEY);
      assert.equal(sent.headers['x-portarium-workspace'], 'ops1');
      assert.match(String(sent.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      const scan = await scanRunForSecrets(h.client, run.workflowId, [LANGFLOW_KEY], { status: await run.status(), evidence: await run.evidence() });
      assert.ok(scan.historyEvents > 5);
      assert.deepEqual(scan.found, []);
    });
  });

  it('Langflow: a tweak that turns on an undeclared tool is refused before any call', async function () {
    fakes.langflow.flow('support-bot', { answer: 'should not run' });
    const before = fakes.langflow.runs().length;
    await worker(async (h) => {
      const run = await start(h, 'ops1', { runtime: 'langflow', target: 'support-bot', input: { input_value: 'hi', tweaks: { 'ShellTool-ab12': { tool_mode: true } } }, tools: ['kb_lookup'] });
      assert.equal(await failedWith(run), 'ToolNotAllowed');
      assert.equal((await run.status()).state, RunState.Failed);
    });
    assert.equal(fakes.langflow.runs().length, before);
  });

  it('Langflow: a runtime that is briefly unavailable is retried, and the run succeeds once', async function () {
    fakes.langflow.flow('flaky', { status: 503 });
    const before = fakes.langflow.runs().length;
    await worker(async (h) => {
      const run = await start(h, 'ops1', { runtime: 'langflow', target: 'flaky', input: { input_value: 'hello' } });
      const deadline = Date.now() + 10_000;
      while (fakes.langflow.runs().length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      fakes.langflow.flow('flaky', { answer: 'back' });
      const result = await run.result();
      assert.equal((result.output as { answer: string }).answer, 'back');
    });
    assert.equal(fakes.langflow.runs().filter((r) => r.path.endsWith('/flaky')).length, 2, 'one refused call, one that ran');
  });

  it("Langflow: two runs spaced past the server's idle keep-alive close (gunicorn's 2 s) both run", async function () {
    fakes.langflow.flow('twice', { answer: 'again' });
    await worker(async (h) => {
      for (const pause of [0, 2_300]) {
        await new Promise((r) => setTimeout(r, pause));
        const run = await start(h, 'ops1', { runtime: 'langflow', target: 'twice', input: { input_value: 'hi' } });
        assert.equal((await run.result()).state, RunState.Succeeded);
      }
    });
    assert.equal(fakes.langflow.runs().filter((r) => r.path.endsWith('/twice')).length, 2);
  });

  it('an output too large for history goes to the payload store; history holds its reference and hash', async function () {
    const big = 'x'.repeat(300 * 1024);
    fakes.langflow.flow('report', { answer: big });
    await worker(async (h) => {
      const run = await start(h, 'ops1', { runtime: 'langflow', target: 'report', input: { input_value: 'full report' } });
      const result = await run.result();
      const ref = (result.output as unknown as { payloadRef: PayloadRef }).payloadRef;
      assert.match(ref.uri, /^portarium-payload:\/\/ops1\/[0-9a-f]{64}$/);
      const stored = JSON.parse((await new FilePayloadStore(path.join(dataDir, 'payloads')).get(ref)).toString()) as { answer: string };
      assert.equal(stored.answer, big);
    });
  });

  it('Kestra: an approved pipeline runs to SUCCESS and its outputs come back', async function () {
    fakes.kestra.flow('ops.team', 'restart', { states: ['CREATED', 'RUNNING', 'RUNNING', 'SUCCESS'], outputs: { restarted: 3 } });
    await worker(async (h) => {
      const run = await start(h, 'ops1', { runtime: 'kestra', target: 'ops.team/restart', input: { service: 'api', count: 3 } });
      const waiting = await waitForState(run, RunState.AwaitingApproval);
      await run.decide({ kind: 'approve', ...decision(bob, waiting.actionHash) });
      const result = await run.result();
      assert.equal(result.state, RunState.Succeeded);
      assert.deepEqual((result.output as { outputs: object }).outputs, { restarted: 3 });
      const exec = [...fakes.kestra.executions.values()].at(-1)!;
      assert.deepEqual(exec.inputs, { service: 'api', count: '3' });
      const scan = await scanRunForSecrets(h.client, run.workflowId, [KESTRA_PASSWORD], { status: await run.status() });
      assert.deepEqual(scan.found, []);
    });
  });

  it('Kestra: cancelRun during a dispatch kills the remote execution and the run ends Cancelled', async function () {
    fakes.kestra.flow('ops.team', 'long', { paused: true });
    await worker(async (h) => {
      const run = await start(h, 'ops1', { runtime: 'kestra', target: 'ops.team/long', input: {} });
      const waiting = await waitForState(run, RunState.AwaitingApproval);
      await run.decide({ kind: 'approve', ...decision(bob, waiting.actionHash) });
      await waitForState(run, RunState.Dispatching);
      const deadline = Date.now() + 10_000;
      while (![...fakes.kestra.executions.values()].some((e) => e.flowId === 'long') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const exec = [...fakes.kestra.executions.values()].find((e) => e.flowId === 'long')!;
      await run.cancel({ requestedBy: alice, reason: 'maintenance window closed' });
      const result = await run.result();
      assert.equal(result.state, RunState.Cancelled);
      assert.ok(fakes.kestra.kills.includes(exec.id), 'the kill reached Kestra');
    });
  });

  it('StackStorm: an action runs and a failing one fails the run as RuntimeRejected', async function () {
    fakes.st2.action('core.local', { result: { stdout: 'ok', return_code: 0 } });
    fakes.st2.action('core.broken', { final: 'failed', result: { stderr: 'boom' } });
    await worker(async (h) => {
      const ok = await start(h, 'ops1', { runtime: 'stackstorm', target: 'core.local', input: { cmd: 'uptime' } });
      const result = await ok.result();
      assert.deepEqual((result.output as { result: object }).result, { stdout: 'ok', return_code: 0 });
      const bad = await start(h, 'ops1', { runtime: 'stackstorm', target: 'core.broken', input: {} });
      assert.equal(await failedWith(bad), 'RuntimeRejected');
      assert.equal((await bad.status()).lastError?.type, 'RuntimeRejected');
    });
  });

  it('Vault: credentials come from KV v2 through AppRole; neither the Vault token nor the key reaches history or logs', async function () {
    const vault = await new VaultFake().start();
    const store = new VaultSecretStore({ address: vault.url, kvMount: 'secret', kvPrefix: 'portarium', auth: { method: 'approle', roleId: 'portarium-ops1', secretId: 'approle-secret-e2e-4471' } });
    try {
      vault.approles.set('portarium-ops1', { secretId: 'approle-secret-e2e-4471', paths: ['secret/data/portarium/ops1/'], ttlSeconds: 600 });
      vault.put('secret/portarium/ops1/langflow', { apiKey: LANGFLOW_KEY });
      fakes.langflow.flow('support-bot', { answer: 'from vault' });
      await worker(async (h) => {
        const run = await start(h, 'ops1', { runtime: 'langflow', target: 'support-bot', input: { input_value: 'hi' } });
        assert.equal(((await run.result()).output as { answer: string }).answer, 'from vault');
        assert.equal(fakes.langflow.runs().at(-1)!.headers['x-api-key'], LANGFLOW_KEY);
        const denied = await start(h, 'ops2', { runtime: 'langflow', target: 'support-bot', input: { input_value: 'hi' } });
        assert.equal(await failedWith(denied), 'CredentialsDenied', "ops1's Vault role cannot read ops2's path");
        const clientTokens = [...vault.tokens.keys()];
        for (const id of [run.workflowId, denied.workflowId]) {
          const scan = await scanRunForSecrets(h.client, id, [LANGFLOW_KEY, 'approle-secret-e2e-4471', ...clientTokens], { status: await h.portarium.run(id).status() });
          assert.deepEqual(scan.found, []);
        }
      }, store);
    } finally {
      await store.close();
      await vault.close();
    }
  });

  it("one workspace cannot use another's credentials, and a runtime without egress rules reaches nothing", async function () {
    fakes.langflow.flow('support-bot', { answer: 'x' });
    const before = fakes.langflow.runs().length;
    await worker(async (h) => {
      const noSecret = await start(h, 'ops2', { runtime: 'langflow', target: 'support-bot', input: { input_value: 'hi' } });
      assert.equal(await failedWith(noSecret), 'CredentialsDenied');
      const noEgress = await start(h, 'ops3', { runtime: 'langflow', target: 'support-bot', input: { input_value: 'hi' } });
      assert.equal(await failedWith(noEgress), 'EgressDenied');
    });
    assert.equal(fakes.langflow.runs().length, before);
  });
});
