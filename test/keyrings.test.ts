/**
 * Payload keys as operators run them: production processes create no workspace key, the worker makes
 * the system key at start, the configured codec server (which never creates keys) serves the real
 * `temporal` CLI, scoped codec tokens read their own signals, `/decode` answers per payload, and two
 * keyrings on one cluster are named as such: by the payload's key fingerprint, and at worker start.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from '@temporalio/client';
import type { Payload, SerializationContext } from '@temporalio/common';
import { KeyringKeyProvider, describeKeyring } from '../workers/codec/keyring';
import { PayloadKeyError } from '../workers/codec/keys-port';
import { VaultSession } from '../activities/secrets/vault';
import { VaultTransitKeyProvider } from '../workers/codec/vault-transit';
import { main } from '../workers/cli';
import { PortariumClient } from '../workers/client';
import { KEY_FP_METADATA, KEY_ID_METADATA, READERS_METADATA, WorkspacePayloadCodec } from '../workers/codec/codec';
import { DECODE_REFUSED_METADATA, type RunningCodecServer, startCodecServer, startConfiguredCodecServer } from '../workers/codec/server';
import { ConfigError, loadConfig } from '../workers/config';
import { payloadKeyProvider, portariumDataConverter } from '../workers/codec/data-converter';
import { prepareWorkerKeys } from '../workers/codec/key-check';
import { VaultFake } from './fakes/vault-server';
import { TEST_POLICY_DIR, alice, uid, waitForState } from './support/harness';
import { shared, testEnv } from './support/shared';
import { temporalCli } from './support/temporal-binaries';
import { type WorkerProcess, startWorkerProcess } from './support/worker-process';

const ctx = (workflowId: string): SerializationContext => ({ type: 'workflow', namespace: 'default', workflowId });
const json = (value: unknown): Payload => ({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value)) });
/** A metadata value as text, of a payload or of its wire form (base64). */
function meta(p: Payload | Wire, key: string): string {
  const v = p.metadata?.[key];
  if (v === undefined || v === null) return '';
  return (typeof v === 'string' ? Buffer.from(v, 'base64') : Buffer.from(v)).toString('utf8');
}
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-keyrings-'));
const TOKEN = 'keyrings-codec-token-0000000001';

interface Wire { metadata: Record<string, string>; data: string }
const wire = (p: Payload): Wire => ({ metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])), data: Buffer.from(p.data!).toString('base64') });
const post = async (url: string, payloads: Wire[], token: string) => {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'default', authorization: `Bearer ${token}` }, body: JSON.stringify({ payloads }) });
  return { status: res.status, body: (await res.json()) as { payloads: Wire[]; code?: string; message?: string } };
};

async function cli(env: Record<string, string>, ...argv: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => out.push(t), env });
  return { code, out: out.join('\n') };
}

function sh(script: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { env: { PATH: `${path.dirname(temporalCli())}${path.delimiter}${process.env.PATH}`, HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

async function stop(w: WorkerProcess | undefined): Promise<void> {
  if (!w || w.child.exitCode !== null) return;
  const exited = new Promise((r) => w.child.once('exit', r));
  w.child.kill('SIGTERM');
  await exited;
}

/** A production worker process (no PORTARIUM_DEV_CREATE_KEYS) on `keyring` and `queue`. */
const productionWorker = (keyring: string, queue: string) =>
  startWorkerProcess({ PORTARIUM_DATA_DIR: tempDir(), PORTARIUM_KEYRING_FILE: keyring, PORTARIUM_TASK_QUEUE: queue, PORTARIUM_POLICY_DIR: TEST_POLICY_DIR, PORTARIUM_DEV_CREATE_KEYS: '0', PORTARIUM_LOG_LEVEL: 'WARN' }, 30_000);

describe('payload keyrings across processes', function () {
  this.timeout(120_000);

  it('the configured codec server on a keyring without _system names the remedy; once a worker started, the README\'s `temporal workflow signal --name approve` works', async function () {
    const keyring = path.join(tempDir(), 'payload-keyring.json');
    const env = { PORTARIUM_KEYRING_FILE: keyring };
    // Production setup: the operator creates the workspace's key, nothing else.
    assert.equal((await cli(env, 'keys', 'create', '--workspace', 'test')).code, 0);
    let codec: RunningCodecServer | undefined;
    let worker: WorkerProcess | undefined;
    try {
      codec = await startConfiguredCodecServer(loadConfig({ ...env, PORTARIUM_CODEC_TOKEN: TOKEN }), '127.0.0.1:0');
      const refused = await post(`${codec.url}/encode`, [wire(json({ hi: 1 }))], TOKEN);
      assert.equal(refused.status, 422);
      assert.equal(refused.body.code, 'unknown_key');
      assert.match(refused.body.message ?? '', /npx portarium keys create --workspace _system/, 'the refusal names the command that fixes it');
      assert.deepEqual(describeKeyring(keyring).map((r) => r.workspace), ['test'], 'the codec server created no key');

      const queue = uid('tq-keys');
      worker = await productionWorker(keyring, queue);
      assert.match(worker.output(), /keyring=[0-9a-f]{16}/, 'the worker names its keyring');
      assert.deepEqual(describeKeyring(keyring).map((r) => r.workspace).sort(), ['_system', 'test'], 'the worker created the system key at start');

      const client = new Client({ connection: testEnv().client.connection, dataConverter: portariumDataConverter(loadConfig(env)) });
      const { run } = await new PortariumClient(client, queue).startRun({
        workspaceId: 'test', correlationId: uid('corr'), requestedBy: alice, idempotencyKey: uid('key'), reason: 'approve through the CLI',
        action: { runtime: 'echo', target: 'test/thing', operation: 'write', input: { n: 1 } },
      });
      const status = await waitForState(run, 'AwaitingApproval');
      // The README's line, as printed, with only the codec exports set.
      const readme = `temporal workflow signal --workflow-id "$ID" --name approve \\
        --input "{\\"decisionId\\":\\"bob-$ID\\",\\"approver\\":{\\"id\\":\\"bob\\",\\"roles\\":[\\"approver\\"]},\\"actionHash\\":\\"$HASH\\"}"`;
      const signalled = await sh(readme, { TEMPORAL_ADDRESS: shared.address!, TEMPORAL_CODEC_ENDPOINT: codec.url, TEMPORAL_CODEC_AUTH: `Bearer ${TOKEN}`, ID: run.workflowId, HASH: status.actionHash! });
      assert.equal(signalled.code, 0, signalled.out);
      assert.equal((await run.result()).state, 'Succeeded');
      const raw = await new Client({ connection: testEnv().client.connection }).workflow.getHandle(run.workflowId).fetchHistory();
      const signal = raw.events!.find((e) => e.workflowExecutionSignaledEventAttributes)!.workflowExecutionSignaledEventAttributes!.input!.payloads![0];
      assert.match(meta(signal, KEY_ID_METADATA), /^_system\/k1$/, 'the CLI\'s signal was stored encrypted under the system key');
    } finally {
      await stop(worker);
      await codec?.close();
    }
  });

  it('without PORTARIUM_DEV_CREATE_KEYS no process creates a workspace key: starting a run is refused with the command to run; the dev flag creates it', async function () {
    const keyring = path.join(tempDir(), 'payload-keyring.json');
    const started = await cli({ PORTARIUM_KEYRING_FILE: keyring, PORTARIUM_POLICY_DIR: TEST_POLICY_DIR }, 'run', 'start', '--workspace', 'test', '--requester', 'alice', '--roles', 'dev', '--runtime', 'echo',
      '--target', 'test/x', '--operation', 'read', '--reason', 'no key yet', '--idempotency-key', uid('k'), '--address', shared.address!, '--task-queue', uid('tq-none'));
    assert.notEqual(started.code, 0);
    assert.match(started.out, /npx portarium keys create --workspace test/);
    assert.ok(!fs.existsSync(keyring), 'nothing was written');
    const refusal = await payloadKeyProvider(loadConfig({ PORTARIUM_KEYRING_FILE: keyring }))!.encryptionKey('ops').then(() => undefined, (e: unknown) => e);
    assert.ok(refusal instanceof PayloadKeyError);
    assert.equal(refusal.code, 'unknown_key');
    const dev = await payloadKeyProvider(loadConfig({ PORTARIUM_KEYRING_FILE: keyring, PORTARIUM_DEV_CREATE_KEYS: '1' }))!.encryptionKey('ops');
    assert.equal(dev.keyId, 'ops/k1');
  });

  it('`keys create` is idempotent, `keys rotate` and `keys create` accept _system, `keys list` prints fingerprints and the keyring identity', async function () {
    const env = { PORTARIUM_KEYRING_FILE: path.join(tempDir(), 'payload-keyring.json') };
    assert.match((await cli(env, 'keys', 'create', '--workspace', '_system')).out, /created _system\/k1/);
    const again = await cli(env, 'keys', 'create', '--workspace', '_system');
    assert.equal(again.code, 0);
    assert.match(again.out, /already has a key: active _system\/k1/);
    const rotated = await cli(env, 'keys', 'rotate', '--workspace', '_system');
    assert.equal(rotated.code, 0, rotated.out);
    assert.match(rotated.out, /_system\/k2/);
    const list = await cli(env, 'keys', 'list');
    assert.match(list.out, /identity [0-9a-f]{16}/);
    assert.match(list.out, /_system: active _system\/k2; keys _system\/k1 \(.*fingerprint [0-9a-f]{16}\), _system\/k2/);
    assert.equal((await cli(env, 'keys', 'create', '--workspace', 'Not A Workspace')).code, 2);
  });

  it('/decode answers per payload: one this token may not read, or altered, comes back undecoded with why; the others decode', async function () {
    const keyring = path.join(tempDir(), 'payload-keyring.json');
    const keys = new KeyringKeyProvider(keyring, { create: true });
    const codec = new WorkspacePayloadCodec(keys);
    const [mine] = await codec.encode([json({ ws: 'test' })], ctx('test:1'));
    const [theirs] = await codec.encode([json({ ws: 'other' })], ctx('other:1'));
    const [good] = await codec.encode([json({ ws: 'test' })], ctx('test:2'));
    const altered = { ...good, data: Buffer.from(good.data!).fill(1, 20, 24) };
    const ONE = 'keyrings-token-test-only-000001';
    const server = await startCodecServer({ address: '127.0.0.1:0', tokens: [{ token: TOKEN }, { token: ONE, workspaces: ['test'] }], corsOrigins: [], namespace: 'default', keys: new KeyringKeyProvider(keyring) });
    try {
      const scoped = await post(`${server.url}/decode`, [wire(mine), wire(theirs)], ONE);
      assert.equal(scoped.status, 200);
      assert.deepEqual(JSON.parse(Buffer.from(scoped.body.payloads[0].data, 'base64').toString()), { ws: 'test' });
      assert.equal(scoped.body.payloads[1].data, wire(theirs).data, 'still encrypted');
      assert.match(meta(scoped.body.payloads[1], DECODE_REFUSED_METADATA), /^forbidden: .*workspace other/);
      const all = await post(`${server.url}/decode`, [wire(altered), wire(theirs)], TOKEN);
      assert.equal(all.status, 200);
      assert.match(meta(all.body.payloads[0], DECODE_REFUSED_METADATA), /^tampered: /);
      assert.deepEqual(JSON.parse(Buffer.from(all.body.payloads[1].data, 'base64').toString()), { ws: 'other' });
    } finally {
      await server.close();
    }
  });

  it('a token of several workspaces encodes under the system key limited to them: it and unscoped tokens read it back, a token of fewer does not, runs of its workspaces accept it', async function () {
    const keyring = path.join(tempDir(), 'payload-keyring.json');
    const keys = new KeyringKeyProvider(keyring, { create: true });
    await keys.encryptionKey('_system');
    const BOTH = 'keyrings-token-test-and-other-1';
    const ONE = 'keyrings-token-test-only-000002';
    const server = await startCodecServer({ address: '127.0.0.1:0', tokens: [{ token: TOKEN }, { token: BOTH, workspaces: ['test', 'other'] }, { token: ONE, workspaces: ['test'] }], corsOrigins: [], namespace: 'default', keys: new KeyringKeyProvider(keyring) });
    try {
      const encoded = await post(`${server.url}/encode`, [wire(json({ approve: true }))], BOTH);
      assert.equal(encoded.status, 200);
      const [signal] = encoded.body.payloads;
      assert.match(meta(signal, KEY_ID_METADATA), /^_system\//);
      assert.equal(meta(signal, READERS_METADATA), 'other,test');
      const encodingFor = async (token: string, p: Wire) => meta((await post(`${server.url}/decode`, [p], token)).body.payloads[0], 'encoding');
      assert.equal(await encodingFor(BOTH, signal), 'json/plain', 'it decodes its own signal');
      assert.equal(await encodingFor(TOKEN, signal), 'json/plain');
      assert.equal(await encodingFor(ONE, signal), 'binary/encrypted', 'a token of fewer workspaces may not read it');
      // The readers are authenticated: narrowing them to let that token in breaks the payload.
      const narrowed = { ...signal, metadata: { ...signal.metadata, [READERS_METADATA]: Buffer.from('test').toString('base64') } };
      assert.match(meta((await post(`${server.url}/decode`, [narrowed], ONE)).body.payloads[0], DECODE_REFUSED_METADATA), /^tampered: /);
      // A worker accepts it in a run of either workspace (system-keyed payloads carry no workspace data).
      const asPayload: Payload = { metadata: Object.fromEntries(Object.entries(signal.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])), data: Buffer.from(signal.data, 'base64') };
      for (const id of ['test:run-1', 'other:run-1']) assert.deepEqual(JSON.parse(Buffer.from((await new WorkspacePayloadCodec(keys).decode([asPayload], ctx(id)))[0].data!).toString()), { approve: true });
    } finally {
      await server.close();
    }
  });

  it('a payload of another keyring\'s test/k1 is refused as foreign_keyring naming both fingerprints; payloads from before fingerprints still decode', async function () {
    const [a, b] = [path.join(tempDir(), 'a.json'), path.join(tempDir(), 'b.json')];
    for (const f of [a, b]) assert.equal((await cli({ PORTARIUM_KEYRING_FILE: f }, 'keys', 'create', '--workspace', 'test')).code, 0);
    const hostA = new WorkspacePayloadCodec(new KeyringKeyProvider(a));
    const hostB = new WorkspacePayloadCodec(new KeyringKeyProvider(b));
    const [p] = await hostA.encode([json({ n: 1 })], ctx('test:1'));
    const fpA = describeKeyring(a)[0].keys[0].fingerprint;
    const fpB = describeKeyring(b)[0].keys[0].fingerprint;
    assert.equal(meta(p, KEY_FP_METADATA), fpA);
    const err = await hostB.decode([p], ctx('test:1')).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PayloadKeyError);
    assert.equal(err.code, 'foreign_keyring');
    assert.ok(err.message.includes(fpA) && err.message.includes(fpB), err.message);
    // A worker's tolerant codec hands it to the workflow as undecodable (refused, recorded), never wedging the run.
    const [marked] = await new WorkspacePayloadCodec(new KeyringKeyProvider(b), { tolerant: true }).decode([p], ctx('test:1'));
    assert.notEqual(meta(marked, 'encoding'), 'json/plain');
    // An older payload (no fingerprint) decodes on its own keyring as before.
    const old = { ...p, metadata: Object.fromEntries(Object.entries(p.metadata!).filter(([k]) => k !== KEY_FP_METADATA)) };
    assert.deepEqual(JSON.parse(Buffer.from((await hostA.decode([old], ctx('test:1')))[0].data!).toString()), { n: 1 });
    assert.equal(((await hostB.decode([old], ctx('test:1')).catch((e: unknown) => e)) as PayloadKeyError).code, 'tampered');
  });

  it('a worker refuses to start on a queue where a worker of another keyring polls; a copy of the same keyring starts', async function () {
    const dir = tempDir();
    const [a, b, copy] = [path.join(dir, 'a.json'), path.join(dir, 'b.json'), path.join(dir, 'copy.json')];
    for (const f of [a, b]) await cli({ PORTARIUM_KEYRING_FILE: f }, 'keys', 'create', '--workspace', '_system');
    fs.copyFileSync(a, copy);
    const queue = uid('tq-two-rings');
    const first = await productionWorker(a, queue);
    let twin: WorkerProcess | undefined;
    try {
      const refused = await productionWorker(b, queue).then(() => undefined, (e: Error) => e);
      assert.ok(refused, 'the worker of another keyring started');
      const idA = /keyring=([0-9a-f]{16})/.exec(first.output())![1];
      assert.match(refused.message, /exited 1/);
      assert.match(refused.message, new RegExp(`another worker \\(.*keyring=${idA}\\) polls queue ${queue}`));
      twin = await productionWorker(copy, queue);
      assert.match(twin.output(), new RegExp(`keyring=${idA}`));
    } finally {
      await stop(twin);
      await stop(first);
    }
  });

  it('a production worker refuses a keyring file that is not there instead of starting a new keyring', async function () {
    const missing = path.join(tempDir(), 'not-mounted', 'payload-keyring.json');
    const refused = await productionWorker(missing, uid('tq-missing')).then(() => undefined, (e: Error) => e);
    assert.ok(refused);
    assert.match(refused.message, /exited 1.*not found/s);
    assert.ok(!fs.existsSync(missing));
  });

  it('a Vault worker refuses to start until it can use the system transit key, naming the command', async function () {
    const vault = await new VaultFake().start();
    try {
      const token = vault.token(['transit/datakey/plaintext/portarium-_system', 'transit/decrypt/portarium-_system']);
      const config = loadConfig({ VAULT_ADDR: vault.url, VAULT_TOKEN: token, PORTARIUM_PAYLOAD_ENCRYPTION: 'vault' });
      const keys = () => new VaultTransitKeyProvider(new VaultSession({ address: vault.url, kvMount: 'secret', kvPrefix: 'portarium', auth: { method: 'token', token } }), { mount: 'transit' });
      const refused = await prepareWorkerKeys(config, keys()).then(() => undefined, (e: unknown) => e);
      assert.ok(refused instanceof ConfigError);
      assert.match(refused.message, /vault write -f transit\/keys\/portarium-_system/);
      vault.createTransitKey('portarium-_system');
      assert.equal(await prepareWorkerKeys(config, keys()), undefined);
    } finally {
      vault.close();
    }
  });
});
