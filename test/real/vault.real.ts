/**
 * The Vault secret store and transit payload keys against a real Vault API server: OpenBao (pinned,
 * .tools/openbao, file storage, initialised and unsealed by the suite), set up through its HTTP API
 * with a KV v2 mount, per-workspace ACL policies, AppRoles with short token TTLs and a transit engine.
 * Every check goes through real governed runs on the suite's Temporal server; the runtime the runs
 * call is the Langflow fake (a real HTTP server), which records the API key that came out of Vault.
 * Run with `npm run test:real` (not part of `npm test`).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from '@temporalio/client';
import { createLangflowRuntime } from '../../activities/runtimes/langflow';
import type { SecretStore } from '../../activities/secrets/port';
import { VaultSecretStore, VaultSession } from '../../activities/secrets/vault';
import { VaultTransitKeyProvider, WRAPPED_KEY_METADATA } from '../../workers/codec/vault-transit';
import { loadPolicyDir } from '../../activities/policy/load';
import type { RunHandle } from '../../workers/client';
import { loadConfig } from '../../workers/config';
import { KEY_ID_METADATA } from '../../workers/codec/codec';
import { portariumDataConverter } from '../../workers/codec/data-converter';
import { RunState } from '../../workflows/types';
import { LangflowFake } from '../fakes/langflow-server';
import { TEST_POLICY_DIR, alice, bob, decision, failureType, uid, waitForState, withWorker, type Harness } from '../support/harness';
import { scanRunForSecrets, textOf } from '../support/leak-scan';
import { OpenBao } from '../support/openbao';
import { dispatchAttempts, tempDir } from '../support/real-servers';
import { testEnv } from '../support/shared';

const KEY = 'sk-lf-real-vault-3c9e71d2a8';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Workspaces ops1 and ops2, both calling the Langflow fake with no approval. */
function writePolicies(dir: string, langflow: LangflowFake): void {
  fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
  for (const workspace of ['ops1', 'ops2']) {
    const ws = {
      schemaVersion: 1,
      kind: 'workspace',
      workspace,
      rules: [{ id: 'agents', match: { runtime: 'langflow' }, tier: 'Auto' }],
      connections: { langflow: { baseUrl: langflow.url, requestTimeout: '10s' } },
      egress: { langflow: { hosts: [`127.0.0.1:${langflow.port}`] } },
    };
    fs.writeFileSync(path.join(dir, `${workspace}.json`), JSON.stringify(ws));
  }
}

async function failedWith(run: RunHandle): Promise<string | undefined> {
  try {
    await run.result();
  } catch (err) {
    return failureType(err);
  }
  return 'no failure';
}

/** The failure type of the dispatch activity's last attempt while it is still being retried. */
async function pendingFailureType(client: Client, workflowId: string): Promise<string | undefined> {
  const d = await client.workflow.getHandle(workflowId).describe();
  return d.raw.pendingActivities?.[0]?.lastFailure?.applicationFailureInfo?.type ?? undefined;
}

describe('real OpenBao: secrets and payload keys through governed runs', function () {
  this.timeout(120_000);
  let bao: OpenBao;
  let langflow: LangflowFake;
  let policyDir: string;
  /** Every store and key provider a test opened, closed after the suite (they renew tokens on timers). */
  const opened: { close(): Promise<void> }[] = [];

  const store = (auth: { roleId: string; secretId: string }) => {
    const s = new VaultSecretStore({ address: bao.url, kvMount: 'secret', kvPrefix: 'portarium', auth: { method: 'approle', ...auth }, requestTimeoutMs: 5000 });
    opened.push(s);
    return s;
  };
  const worker = <T>(secrets: SecretStore, fn: (h: Harness) => Promise<T>) => {
    const env = testEnv();
    return withWorker({ connection: env.nativeConnection, client: env.client, policyDir, runtimes: [createLangflowRuntime({ policies: loadPolicyDir(policyDir) })], secrets }, fn);
  };
  const start = async (h: Harness, workspaceId: string): Promise<RunHandle> =>
    (await h.portarium.startRun({ workspaceId, correlationId: uid('corr'), requestedBy: alice, action: { runtime: 'langflow', target: 'support-bot', operation: 'run', input: { input_value: 'hi' } }, idempotencyKey: uid('key'), reason: 'real vault' })).run;

  before(async function () {
    bao = await OpenBao.start();
    await bao.ok('POST', 'sys/mounts/secret', { type: 'kv', options: { version: '2' } });
    await bao.ok('POST', 'sys/auth/approle', { type: 'approle' });
    await bao.ok('POST', 'sys/mounts/transit', { type: 'transit' });
    for (const ws of ['ops1', 'ops2']) {
      await bao.policy(`portarium-${ws}`, `path "secret/data/portarium/${ws}/*" {\n  capabilities = ["read"]\n}`);
      await bao.putSecret('secret', `portarium/${ws}/langflow`, { apiKey: KEY });
    }
    langflow = await new LangflowFake(KEY).start();
    langflow.flow('support-bot', { answer: 'from vault' });
    policyDir = tempDir('portarium-real-vault-policies-');
    writePolicies(policyDir, langflow);
  });

  after(async function () {
    for (const s of opened) await s.close();
    await langflow?.close();
    await bao?.stop();
    if (policyDir) fs.rmSync(policyDir, { recursive: true, force: true });
  });

  it('a run reads its runtime key from KV v2 through AppRole; the key, secret id and token stay out of history, status, evidence and logs', async function () {
    const role = await bao.appRole('ops1', ['portarium-ops1']);
    await worker(store(role), async (h) => {
      const run = await start(h, 'ops1');
      const result = await run.result();
      assert.equal(result.state, RunState.Succeeded);
      assert.equal((result.output as { answer: string }).answer, 'from vault');
      assert.equal(langflow.runs().at(-1)!.headers['x-api-key'], KEY, 'the key Vault holds reached the runtime');
      const scan = await scanRunForSecrets(h.client, run.workflowId, [KEY, role.secretId], { status: await run.status(), evidence: await run.evidence() });
      assert.deepEqual(scan.found, []);
    });
  });

  it("per-workspace isolation: ops1's AppRole cannot read ops2's path (CredentialsDenied, nothing sent); ops2's own role can", async function () {
    const ops1 = await bao.appRole('ops1', ['portarium-ops1']);
    const ops2 = await bao.appRole('ops2', ['portarium-ops2']);
    const before = langflow.runs().length;
    await worker(store(ops1), async (h) => {
      const denied = await start(h, 'ops2');
      assert.equal(await failedWith(denied), 'CredentialsDenied');
      assert.equal((await denied.status()).lastError?.type, 'CredentialsDenied');
    });
    assert.equal(langflow.runs().length, before, 'nothing reached the runtime');
    await worker(store(ops2), async (h) => {
      assert.equal((await (await start(h, 'ops2')).result()).state, RunState.Succeeded);
    });
  });

  it('a wrong AppRole secret id fails the run as CredentialsDenied without retrying, and leaks nothing', async function () {
    const role = await bao.appRole('ops1', ['portarium-ops1']);
    const wrong = { roleId: role.roleId, secretId: '5e2f0c1a-0000-4000-8000-00000000beef' };
    const before = langflow.runs().length;
    await worker(store(wrong), async (h) => {
      const run = await start(h, 'ops1');
      assert.equal(await failedWith(run), 'CredentialsDenied');
      assert.equal(await dispatchAttempts(h.client, run.workflowId), 1);
      const scan = await scanRunForSecrets(h.client, run.workflowId, [wrong.secretId, role.secretId, KEY], { status: await run.status() });
      assert.deepEqual(scan.found, []);
    });
    assert.equal(langflow.runs().length, before);
  });

  it('a sealed Vault: the dispatch is retried as CredentialsUnavailable, and the run succeeds once an operator unseals it', async function () {
    const role = await bao.appRole('ops1', ['portarium-ops1']);
    const s = store(role);
    await worker(s, async (h) => {
      assert.equal((await (await start(h, 'ops1')).result()).state, RunState.Succeeded, 'logged in before the seal');
      await bao.seal();
      try {
        const run = await start(h, 'ops1');
        const deadline = Date.now() + 20_000;
        let seen: string | undefined;
        while (seen === undefined && Date.now() < deadline) {
          seen = await pendingFailureType(h.client, run.workflowId);
          if (seen === undefined) await sleep(100);
        }
        assert.equal(seen, 'CredentialsUnavailable');
        assert.equal((await run.status()).state, RunState.Dispatching, 'the run waits, it does not fail');
        await bao.unseal();
        const result = await run.result();
        assert.equal(result.state, RunState.Succeeded);
        assert.ok((await dispatchAttempts(h.client, run.workflowId)) >= 2, 'succeeded on a retry');
      } finally {
        if ((await bao.api('GET', 'sys/seal-status', undefined, '')).body?.sealed) await bao.unseal();
      }
    });
  });

  it('token renewal up to token_max_ttl, then a new login: runs keep reading after the first token expired', async function () {
    this.timeout(60_000);
    // Short leases: renewable every 2 s, never past 5 s; the secret id counts logins.
    const role = await bao.appRole('ops1-short', ['portarium-ops1'], { token_ttl: '2s', token_max_ttl: '5s', secret_id_num_uses: 50 });
    const usesLeft = async () => (await bao.ok('POST', 'auth/approle/role/ops1-short/secret-id/lookup', { secret_id: role.secretId })).data.secret_id_num_uses as number;
    await worker(store(role), async (h) => {
      const started = Date.now();
      assert.equal((await (await start(h, 'ops1')).result()).state, RunState.Succeeded);
      assert.equal(await usesLeft(), 49, 'one login');
      // Runs 3 s apart for longer than token_max_ttl, each must read the secret.
      while (Date.now() - started < 11_000) {
        await sleep(3_000);
        const run = await start(h, 'ops1');
        assert.equal((await run.result()).state, RunState.Succeeded, `run at ${Math.round((Date.now() - started) / 1000)} s`);
      }
      assert.ok((await usesLeft()) < 49, 'logged in again once the first token reached its max TTL');
    });
  });

  describe('transit payload keys', function () {
    const TRANSIT = 'portarium-transit-test';
    let token: string;

    before(async function () {
      await bao.ok('POST', 'transit/keys/portarium-test', {});
      await bao.policy(TRANSIT, ['datakey/plaintext', 'decrypt'].map((p) => `path "transit/${p}/portarium-test" {\n  capabilities = ["update"]\n}`).join('\n'));
      token = (await bao.ok('POST', 'auth/token/create', { policies: [TRANSIT], ttl: '1h' })).auth.client_token;
    });

    const keys = () => {
      const provider = new VaultTransitKeyProvider(new VaultSession({ address: bao.url, kvMount: 'secret', kvPrefix: 'portarium', auth: { method: 'token', token } }), { mount: 'transit' });
      opened.push(provider);
      return provider;
    };
    const clientWith = (provider: VaultTransitKeyProvider) => new Client({ connection: testEnv().client.connection, dataConverter: portariumDataConverter(loadConfig({}), { keys: provider }) });
    const rawStartInput = async (workflowId: string) => {
      const history = await new Client({ connection: testEnv().client.connection }).workflow.getHandle(workflowId).fetchHistory();
      return { history, input: history.events![0].workflowExecutionStartedEventAttributes!.input!.payloads![0] };
    };
    const meta = (p: { metadata?: Record<string, Uint8Array | null> | null }, k: string) => Buffer.from(p.metadata?.[k] ?? new Uint8Array()).toString('utf8');

    it('runs are encrypted under transit data keys; after a key rotation new payloads use v2, and a run from before still decodes and completes', async function () {
      const workerKeys = keys();
      const clientKeys = keys();
      await withWorker({ connection: testEnv().nativeConnection, client: clientWith(clientKeys), keys: workerKeys }, async (h) => {
        const note1 = uid('transit-note');
        const first = await h.start('write', { input: { note: note1 } });
        const waiting = await waitForState(first, RunState.AwaitingApproval);
        const raw1 = await rawStartInput(first.workflowId);
        assert.ok(!textOf(raw1.history).includes(note1), 'no plaintext on the server');
        assert.match(meta(raw1.input, WRAPPED_KEY_METADATA), /^vault:v1:/);
        assert.match(meta(raw1.input, KEY_ID_METADATA), /^test\/v1-[0-9a-f]{12}$/);

        await bao.ok('POST', 'transit/keys/portarium-test/rotate', {});
        assert.equal((await bao.ok('GET', 'transit/keys/portarium-test')).data.latest_version, 2);
        workerKeys.forgetDataKeys();
        clientKeys.forgetDataKeys();

        const note2 = uid('transit-note');
        const second = await h.start('read', { input: { note: note2 } });
        assert.equal((await second.result()).state, RunState.Succeeded);
        const raw2 = await rawStartInput(second.workflowId);
        assert.ok(!textOf(raw2.history).includes(note2));
        assert.match(meta(raw2.input, WRAPPED_KEY_METADATA), /^vault:v2:/);

        // A fresh client (no cached keys) unwraps the v1 data key through transit/decrypt.
        const fresh = clientWith(keys());
        assert.equal((await fresh.workflow.getHandle(first.workflowId).query<{ actionHash: string }>('status')).actionHash, waiting.actionHash);
        await first.decide({ kind: 'approve', ...decision(bob, waiting.actionHash) });
        assert.equal((await first.result()).state, RunState.Succeeded);
        const done = (await rawStartInput(first.workflowId)).history.events!.find((e) => e.workflowExecutionCompletedEventAttributes)!;
        assert.match(meta(done.workflowExecutionCompletedEventAttributes!.result!.payloads![0], WRAPPED_KEY_METADATA), /^vault:v2:/, 'its result is under the new key version');
      });
    });
  });
});
