/**
 * Payload encryption against the suite's real Temporal server: what the server stores holds no
 * plaintext of inputs, signals, updates, results, memo or failure messages; one workspace's keys
 * cannot read another's payloads, a payload moved between workspaces or altered is refused; a key
 * rotation keeps old runs readable; Vault transit data keys (against the fake); the codec server.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from '@temporalio/client';
import { ApplicationFailure, type Payload, type SerializationContext } from '@temporalio/common';
import { KeyringKeyProvider, createKeyring, rotateKeyring } from '../workers/codec/keyring';
import { PayloadKeyError, type PayloadKeyProvider } from '../workers/codec/keys-port';
import type { RuntimeAdapter } from '../activities/runtimes/port';
import { VaultSession } from '../activities/secrets/vault';
import { VaultTransitKeyProvider, WRAPPED_KEY_METADATA } from '../workers/codec/vault-transit';
import { main } from '../workers/cli';
import { KEY_ID_METADATA, KEY_SALT_METADATA, WorkspacePayloadCodec } from '../workers/codec/codec';
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { spawn } from 'node:child_process';
import { DECODE_REFUSED_METADATA, type RunningCodecServer, codecTokens, startCodecServer } from '../workers/codec/server';
import { ConfigError, PROJECT_ROOT, loadConfig } from '../workers/config';
import { portariumDataConverter } from '../workers/codec/data-converter';
import { VaultFake } from './fakes/vault-server';
import { alice, bob, decision, uid, waitForState, withWorker } from './support/harness';
import { decodedHistory, payloadsIn, textOf } from './support/leak-scan';
import { testEnv, testKeyringFile } from './support/shared';

const ctx = (workflowId: string): SerializationContext => ({ type: 'workflow', namespace: 'default', workflowId });
const json = (value: unknown): Payload => ({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value)) });
const meta = (p: Payload, key: string) => Buffer.from(p.metadata?.[key] ?? new Uint8Array()).toString('utf8');
const tempKeyring = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-keys-')), 'payload-keyring.json');

/** The PayloadKeyError behind an error (the SDK may wrap it), or undefined. */
function keyError(err: unknown): PayloadKeyError | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof PayloadKeyError || e.name === 'PayloadKeyError') return e as PayloadKeyError;
  return undefined;
}

/** A client whose codec uses `keys` (not the suite's keyring). */
function clientWith(keys: PayloadKeyProvider): Client {
  return new Client({ connection: testEnv().client.connection, dataConverter: portariumDataConverter(loadConfig({}), { keys }) });
}

/** Raw (server-side) history of a run: fetched by a client without any codec. */
async function rawHistory(workflowId: string) {
  return new Client({ connection: testEnv().client.connection }).workflow.getHandle(workflowId).fetchHistory();
}

const startInput = (h: Awaited<ReturnType<typeof rawHistory>>) => h.events![0].workflowExecutionStartedEventAttributes!.input!.payloads![0];

describe('payload encryption', function () {
  this.timeout(60_000);

  it('the server stores no plaintext of the input, memo, update, signal, result or failure message', async function () {
    const tag = uid('plain');
    const values = {
      input: `${tag}-input-note`,
      memo: `${tag}-memo-note`,
      update: `${tag}-update-rationale`,
      amended: `${tag}-amended-note`,
      signal: `${tag}-signal-rationale`,
      result: `${tag}-receipt`,
      failure: `${tag}-failure-message`,
    };
    // Succeeds with a receipt, or fails with the message it is asked to fail with.
    const runtime: RuntimeAdapter = {
      name: 'echo',
      async execute(call) {
        const failWith = call.request.input.failWith;
        if (typeof failWith === 'string') throw ApplicationFailure.create({ type: 'RuntimeRejected', message: failWith, nonRetryable: true });
        return { output: { receipt: values.result } };
      },
    };
    await withWorker({ connection: testEnv().nativeConnection, client: testEnv().client, runtimes: [runtime] }, async (h) => {
      const { run } = await h.portarium.startRun(
        { workspaceId: 'test', correlationId: uid('corr'), requestedBy: alice, action: { runtime: 'echo', target: 'test/thing', operation: 'write', input: { note: values.input } }, idempotencyKey: uid('key'), reason: 'encryption' },
        { memo: { note: values.memo } },
      );
      const s = await waitForState(run, 'AwaitingApproval');
      await run.decide({ kind: 'requestChanges', ...decision(bob, s.actionHash, { rationale: values.update }) });
      const amended = await run.amend({ amendmentId: uid('am'), amendedBy: alice, action: { runtime: 'echo', target: 'test/thing', operation: 'write', input: { note: values.amended } }, reason: 'as asked' });
      await run.signalDecision('approve', decision(bob, amended.actionHash, { rationale: values.signal }));
      assert.equal((await run.result()).state, 'Succeeded');

      const failing = await h.start('read', { input: { failWith: values.failure } });
      await assert.rejects(failing.result(), (e: Error) => (e.cause as ApplicationFailure | undefined)?.message === values.failure || textOf(e).includes(values.failure));

      for (const id of [run.workflowId, failing.workflowId]) {
        const raw = await rawHistory(id);
        const decoded = textOf(await decodedHistory(h.client, id, raw));
        const stored = textOf(raw);
        const expected = id === run.workflowId ? Object.entries(values).filter(([k]) => k !== 'failure') : [['failure', values.failure]];
        for (const [what, v] of expected) {
          assert.ok(decoded.includes(v), `the decoded history holds the ${what} (the check can see it)`);
          assert.ok(!stored.includes(v), `the server's history holds the ${what} in plaintext`);
        }
        // Every payload but search attributes, headers and core's own marker data is encrypted, under the run's workspace key.
        // Core writes its own bookkeeping in plain JSON: patch markers, and a local activity marker's
        // `data` (seq, activity type, times). The activity's result in the marker is ours: encrypted.
        const payloads = payloadsIn(raw.events!.map((e) => {
          const marker = e.markerRecordedEventAttributes;
          if (marker?.markerName === 'core_patch') return undefined;
          return marker?.markerName === 'core_local_activity' ? marker.details?.result : e;
        }));
        assert.ok(payloads.length > 5);
        for (const p of payloads) {
          assert.equal(meta(p, 'encoding'), 'binary/encrypted', `${Buffer.from(p.data ?? []).toString()} in ${JSON.stringify(raw.events?.find((e) => payloadsIn(e).includes(p)))?.slice(0, 600)}`);
          assert.match(meta(p, KEY_ID_METADATA), /^test\/k\d+$/);
        }
      }
    });
  });

  it('another workspace\'s keys cannot read a run: a typed refusal without key material', async function () {
    const otherFile = tempKeyring();
    await rotateKeyring(otherFile, 'other');
    await withWorker({ connection: testEnv().nativeConnection, client: testEnv().client }, async (h) => {
      const run = await h.start('read', { input: { note: uid('cross') } });
      assert.equal((await run.result()).state, 'Succeeded');
      const outsider = clientWith(new KeyringKeyProvider(otherFile, { create: false }));
      const refused = await outsider.workflow.getHandle(run.workflowId).result().then(() => undefined, (e: unknown) => e);
      const err = keyError(refused);
      assert.ok(err, `expected a PayloadKeyError, got ${String(refused)}`);
      assert.equal(err.code, 'unknown_key');
      assert.match(err.message, /test\/k\d+/);
      const ring = JSON.parse(fs.readFileSync(testKeyringFile(), 'utf8')) as { workspaces: Record<string, { keys: Record<string, { key: string }> }> };
      for (const k of Object.values(ring.workspaces.test.keys)) assert.ok(!err.message.includes(k.key) && !String(err.stack).includes(k.key));

      // The worker's own codec, given the payload in another workspace's run, refuses it before any key is used.
      const payload = startInput(await rawHistory(run.workflowId));
      const codec = new WorkspacePayloadCodec(new KeyringKeyProvider(testKeyringFile()));
      for (const c of [ctx('other:run-1'), { type: 'activity', namespace: 'default', workflowId: 'other:run-1', isLocal: false } as const, ctx('no-workspace-id')]) {
        await assert.rejects(codec.decode([payload], c), (e: unknown) => keyError(e)?.code === 'wrong_workspace');
      }
      assert.equal((await codec.decode([payload], ctx(run.workflowId)))[0].metadata?.encoding?.toString(), 'json/plain');
    });
  });

  it('a payload moved to another workspace fails authentication even with the same key and a rewritten key id; tampering is detected', async function () {
    const file = tempKeyring();
    await rotateKeyring(file, 'alpha');
    // Give beta the very same key material as alpha: only the authenticated workspace tells them apart.
    const ring = JSON.parse(fs.readFileSync(file, 'utf8'));
    ring.workspaces.beta = ring.workspaces.alpha;
    fs.writeFileSync(file, JSON.stringify(ring), { mode: 0o600 });
    const codec = new WorkspacePayloadCodec(new KeyringKeyProvider(file));
    const [enc] = await codec.encode([json({ secret: 'moved' })], ctx('alpha:1'));
    assert.equal(meta(enc, KEY_ID_METADATA), 'alpha/k1');
    assert.ok(!Buffer.from(enc.data!).toString('utf8').includes('moved'));
    await assert.rejects(codec.decode([enc], ctx('beta:1')), (e: unknown) => keyError(e)?.code === 'wrong_workspace');
    const rewritten = { ...enc, metadata: { ...enc.metadata, [KEY_ID_METADATA]: Buffer.from('beta/k1') } };
    await assert.rejects(codec.decode([rewritten], ctx('beta:1')), (e: unknown) => keyError(e)?.code === 'tampered');
    const flipped = Buffer.from(enc.data!);
    flipped[20] ^= 1;
    await assert.rejects(codec.decode([{ ...enc, data: flipped }], ctx('alpha:1')), (e: unknown) => keyError(e)?.code === 'tampered');
    await assert.rejects(codec.decode([{ ...enc, data: flipped.subarray(0, 10) }], ctx('alpha:1')), (e: unknown) => keyError(e)?.code === 'malformed');
    assert.deepEqual(JSON.parse(Buffer.from((await codec.decode([enc], ctx('alpha:1')))[0].data!).toString()), { secret: 'moved' });
    // Plaintext decodes as it is (raw `temporal workflow signal`, histories from before encryption).
    const plain = json({ hello: 1 });
    assert.equal((await codec.decode([plain], ctx('beta:1')))[0], plain);
  });

  it('every payload has its own subkey (salt), and payloads from before subkeys still decrypt under the workspace key', async function () {
    const file = tempKeyring();
    await rotateKeyring(file, 'alpha');
    const codec = new WorkspacePayloadCodec(new KeyringKeyProvider(file));
    const [a, b] = await codec.encode([json({ n: 1 }), json({ n: 1 })], ctx('alpha:1'));
    assert.equal(a.metadata?.[KEY_SALT_METADATA]?.length, 16);
    assert.notDeepEqual(Buffer.from(a.metadata![KEY_SALT_METADATA]), Buffer.from(b.metadata![KEY_SALT_METADATA]));
    // A legacy payload: AES-256-GCM directly under the workspace key, no salt in its metadata.
    const master = Buffer.from(JSON.parse(fs.readFileSync(file, 'utf8')).workspaces.alpha.keys.k1.key, 'base64');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', master, iv);
    cipher.setAAD(Buffer.from('portarium-payload/v1/alpha'));
    const body = Buffer.concat([cipher.update(temporal.api.common.v1.Payload.encode(json({ legacy: true })).finish()), cipher.final()]);
    const legacy = { metadata: { encoding: Buffer.from('binary/encrypted'), [KEY_ID_METADATA]: Buffer.from('alpha/k1') }, data: Buffer.concat([iv, body, cipher.getAuthTag()]) };
    assert.deepEqual(JSON.parse(Buffer.from((await codec.decode([legacy], ctx('alpha:1')))[0].data!).toString()), { legacy: true });
    // A payload an earlier worker encrypted under a subkey from node's hkdfSync still decrypts.
    const salt = randomBytes(16);
    const sub = Buffer.from(hkdfSync('sha256', master, salt, Buffer.from('portarium-payload/v1/alpha'), 32));
    const iv2 = randomBytes(12);
    const c2 = createCipheriv('aes-256-gcm', sub, iv2);
    c2.setAAD(Buffer.from('portarium-payload/v1/alpha'));
    const body2 = Buffer.concat([c2.update(temporal.api.common.v1.Payload.encode(json({ hkdf: true })).finish()), c2.final()]);
    const older = { metadata: { encoding: Buffer.from('binary/encrypted'), [KEY_ID_METADATA]: Buffer.from('alpha/k1'), [KEY_SALT_METADATA]: salt }, data: Buffer.concat([iv2, body2, c2.getAuthTag()]) };
    assert.deepEqual(JSON.parse(Buffer.from((await codec.decode([older], ctx('alpha:1')))[0].data!).toString()), { hkdf: true });
    // A salt from another payload does not open this one.
    await assert.rejects(codec.decode([{ ...a, metadata: { ...a.metadata, [KEY_SALT_METADATA]: b.metadata![KEY_SALT_METADATA] } }], ctx('alpha:1')), (e: unknown) => keyError(e)?.code === 'tampered');
  });

  it('keys rotate: a run started before still decodes after it; new payloads use the new key', async function () {
    const file = tempKeyring();
    // Production: the operator creates the workspace's key once; no process creates one on the fly.
    assert.equal(await main(['keys', 'create', '--workspace', 'test'], { out: () => undefined, err: () => undefined, env: { PORTARIUM_KEYRING_FILE: file } }), 0);
    const keys = new KeyringKeyProvider(file);
    const client = clientWith(new KeyringKeyProvider(file));
    await withWorker({ connection: testEnv().nativeConnection, client, keys }, async (h) => {
      const run = await h.start('write', { input: { note: uid('rot') } });
      const before = await waitForState(run, 'AwaitingApproval');
      assert.equal(meta(startInput(await rawHistory(run.workflowId)), KEY_ID_METADATA), 'test/k1');
      const out: string[] = [];
      assert.equal(await main(['keys', 'rotate', '--workspace', 'test'], { out: (t) => out.push(t), err: (t) => out.push(t), env: { PORTARIUM_KEYRING_FILE: file } }), 0);
      assert.match(out.join('\n'), /test\/k2/);
      assert.equal((await run.status()).actionHash, before.actionHash, 'status still decodes');
      await run.signalDecision('approve', decision(bob, before.actionHash));
      assert.equal((await run.result()).state, 'Succeeded');
      const raw = await rawHistory(run.workflowId);
      const ids = (attributes: string) => [...new Set(payloadsIn(raw.events!.map((e) => (e as Record<string, unknown>)[attributes]).filter(Boolean)).map((p) => meta(p, KEY_ID_METADATA)))];
      assert.deepEqual(ids('workflowExecutionStartedEventAttributes'), ['test/k1']);
      assert.deepEqual(ids('workflowExecutionSignaledEventAttributes'), ['test/k2'], 'the client encrypts with the new key');
      assert.deepEqual(ids('workflowExecutionCompletedEventAttributes'), ['test/k2'], 'the worker encrypts with the new key');
      const list: string[] = [];
      await main(['keys', 'list'], { out: (t) => list.push(t), err: (t) => list.push(t), env: { PORTARIUM_KEYRING_FILE: file } });
      assert.match(list.join('\n'), /test: active test\/k2; keys test\/k1 .*test\/k2/);
      assert.ok(!list.join('\n').includes(JSON.parse(fs.readFileSync(file, 'utf8')).workspaces.test.keys.k1.key), 'no key material printed');
    });
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  describe('Vault transit data keys (fake Vault)', function () {
    let vault: VaultFake;
    let root: string;
    const store = (token: string) => new VaultSession({ address: vault.url, kvMount: 'secret', kvPrefix: 'portarium', auth: { method: 'token', token } });
    const wsToken = (ws: string) => vault.token([`transit/datakey/plaintext/portarium-${ws}`, `transit/decrypt/portarium-${ws}`]);

    beforeEach(async () => {
      vault = await new VaultFake().start();
      vault.createTransitKey('portarium-alpha');
      vault.createTransitKey('portarium-test');
      root = vault.token(['transit/']);
    });
    afterEach(() => vault.close());

    it('encrypts with a cached data key, unwraps it to decrypt, and keeps old data keys readable after a rotation', async function () {
      const token = wsToken('alpha');
      const provider = new VaultTransitKeyProvider(store(token), { mount: 'transit' });
      const codec = new WorkspacePayloadCodec(provider);
      const [a] = await codec.encode([json({ n: 1 })], ctx('alpha:1'));
      const [b] = await codec.encode([json({ n: 2 })], ctx('alpha:2'));
      assert.equal(vault.calls('/v1/transit/datakey/plaintext/portarium-alpha', 'POST').length, 1, 'one data key serves both');
      assert.match(meta(a, WRAPPED_KEY_METADATA), /^vault:v1:/);
      assert.match(meta(a, KEY_ID_METADATA), /^alpha\/v1-[0-9a-f]{12}$/);
      assert.equal(meta(a, KEY_ID_METADATA), meta(b, KEY_ID_METADATA));

      // A fresh process (no cache) unwraps the data key through transit/decrypt.
      const reader = new WorkspacePayloadCodec(new VaultTransitKeyProvider(store(token), { mount: 'transit' }));
      assert.deepEqual(JSON.parse(Buffer.from((await reader.decode([a, b], ctx('alpha:1')))[1].data!).toString()), { n: 2 });
      assert.equal(vault.calls('/v1/transit/decrypt/portarium-alpha', 'POST').length, 1, 'the unwrapped key is cached');

      const rotated = await fetch(`${vault.url}/v1/transit/keys/portarium-alpha/rotate`, { method: 'POST', headers: { 'x-vault-token': root } });
      assert.equal(rotated.status, 200);
      assert.equal(((await rotated.json()) as { data: { latest_version: number } }).data.latest_version, 2);
      provider.forgetDataKeys();
      const [c] = await codec.encode([json({ n: 3 })], ctx('alpha:3'));
      assert.match(meta(c, WRAPPED_KEY_METADATA), /^vault:v2:/);
      assert.match(meta(c, KEY_ID_METADATA), /^alpha\/v2-/);
      const fresh = new WorkspacePayloadCodec(new VaultTransitKeyProvider(store(token), { mount: 'transit' }));
      const decoded = await fresh.decode([a, c], ctx('alpha:1'));
      assert.deepEqual(decoded.map((p) => JSON.parse(Buffer.from(p.data!).toString()).n), [1, 3]);
    });

    it('maps Vault refusals to typed errors without tokens or keys: 403 outside the policy (retried), 400 for an unknown key or altered wrapped key', async function () {
      const token = wsToken('alpha');
      const codec = new WorkspacePayloadCodec(new VaultTransitKeyProvider(store(token), { mount: 'transit' }));
      const denied = await codec.encode([json({})], ctx('beta:1')).then(() => undefined, (e: unknown) => e);
      // Retried, not permanent: a token's policy is fixed by an operator, and a good payload must not become undecodable.
      assert.equal(keyError(denied)?.code, 'unavailable');
      assert.match(String((denied as Error).message), /403/);
      assert.ok(!String((denied as Error).message).includes(token));
      const unknown = await new WorkspacePayloadCodec(new VaultTransitKeyProvider(store(wsToken('beta')), { mount: 'transit' })).encode([json({})], ctx('beta:1')).then(() => undefined, (e: unknown) => e);
      assert.equal(keyError(unknown)?.code, 'unknown_key');
      assert.match(String((unknown as Error).message), /400: encryption key not found/);

      const [enc] = await codec.encode([json({ x: 1 })], ctx('alpha:1'));
      const wrapped = meta(enc, WRAPPED_KEY_METADATA);
      const altered = wrapped.slice(0, -4) + (wrapped.endsWith('AAA=') ? 'BBB=' : 'AAA=');
      const other = new WorkspacePayloadCodec(new VaultTransitKeyProvider(store(token), { mount: 'transit' }));
      const bad = await other.decode([{ ...enc, metadata: { ...enc.metadata, [WRAPPED_KEY_METADATA]: Buffer.from(altered) } }], ctx('alpha:1')).then(() => undefined, (e: unknown) => e);
      assert.equal(keyError(bad)?.code, 'unknown_key');
      assert.match(String((bad as Error).message), /400/);
      vault.seal();
      const sealed = await other.decode([enc], ctx('alpha:1')).then(() => undefined, (e: unknown) => e);
      assert.equal(keyError(sealed)?.code, 'unavailable');
    });

    it('a worker and client on Vault data keys run a governed run end to end', async function () {
      const token = wsToken('test');
      const keys = new VaultTransitKeyProvider(store(token), { mount: 'transit' });
      const client = clientWith(new VaultTransitKeyProvider(store(token), { mount: 'transit' }));
      await withWorker({ connection: testEnv().nativeConnection, client, keys }, async (h) => {
        const note = uid('vault-note');
        const run = await h.start('read', { input: { note } });
        assert.equal((await run.result()).state, 'Succeeded');
        const raw = await rawHistory(run.workflowId);
        assert.ok(!textOf(raw).includes(note));
        assert.match(meta(startInput(raw), WRAPPED_KEY_METADATA), /^vault:v1:/);
        assert.match(meta(startInput(raw), KEY_ID_METADATA), /^test\/v1-/);
      });
    });
  });

  describe('codec server', function () {
    const ALL = 'codec-token-all-workspaces-0001';
    const OTHER = 'codec-token-other-workspace-001';
    let server: RunningCodecServer;
    let payload: Payload;
    let note: string;
    const wire = (p: Payload) => ({ metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])), data: Buffer.from(p.data!).toString('base64') });
    const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'default', ...headers }, body: JSON.stringify(body) });

    before(async function () {
      server = await startCodecServer({
        address: '127.0.0.1:0',
        tokens: [{ token: ALL }, { token: OTHER, workspaces: ['other'] }],
        corsOrigins: ['http://localhost:8233'],
        namespace: 'default',
        keys: new KeyringKeyProvider(testKeyringFile()),
      });
      // What an operator (or a worker's start, for _system) sets up once: the codec server never creates keys.
      for (const scope of ['_system', 'other']) await createKeyring(testKeyringFile(), scope);
      note = uid('codec-note');
      await withWorker({ connection: testEnv().nativeConnection, client: testEnv().client }, async (h) => {
        const run = await h.start('read', { input: { note } });
        await run.result();
        payload = startInput(await rawHistory(run.workflowId));
      });
    });
    after(() => server?.close());

    it('refuses without a valid token (401), decodes with a bearer or path token, and a workspace-scoped token gets another workspace\'s payload back undecoded', async function () {
      const body = { payloads: [wire(payload)] };
      assert.equal((await post(`${server.url}/decode`, body)).status, 401);
      assert.equal((await post(`${server.url}/decode`, body, { authorization: 'Bearer wrong-token-0000000000' })).status, 401);
      for (const res of [await post(`${server.url}/decode`, body, { authorization: `Bearer ${ALL}` }), await post(`${server.url}/t/${ALL}/decode`, body), await post(`${server.url}/t/${ALL}/default/decode`, body)]) {
        assert.equal(res.status, 200, await res.clone().text());
        const out = (await res.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
        assert.equal(Buffer.from(out.payloads[0].metadata.encoding, 'base64').toString(), 'json/plain');
        assert.equal((JSON.parse(Buffer.from(out.payloads[0].data, 'base64').toString()) as { action: { input: { note: string } } }).action.input.note, note);
      }
      const scoped = await post(`${server.url}/decode`, body, { authorization: `Bearer ${OTHER}` });
      assert.equal(scoped.status, 200);
      const refusal = ((await scoped.json()) as { payloads: ReturnType<typeof wire>[] }).payloads[0];
      assert.equal(refusal.data, body.payloads[0].data, 'handed back as it was: still encrypted');
      assert.match(Buffer.from(refusal.metadata[DECODE_REFUSED_METADATA], 'base64').toString(), /^forbidden: /);
      assert.ok(!JSON.stringify(refusal).includes(note));
      assert.equal((await post(`${server.url}/decode`, body, { authorization: `Bearer ${ALL}`, 'x-namespace': 'elsewhere' })).status, 404);
      assert.equal((await post(`${server.url}/decode`, { payloads: 'x' }, { authorization: `Bearer ${ALL}` })).status, 400);
      assert.equal((await post(`${server.url}/t/%E0%A4%A/decode`, body)).status, 400, 'a bad escape in the path');
      // A UI that forwards its own OIDC bearer token still gets in with the path token.
      assert.equal((await post(`${server.url}/t/${ALL}/decode`, body, { authorization: 'Bearer some-oidc-access-token' })).status, 200);
      // The temporal CLI sends `{}` (protojson of no payloads) for a query without arguments.
      assert.deepEqual(await (await post(`${server.url}/encode`, {}, { authorization: `Bearer ${ALL}` })).json(), { payloads: [] });

      // /encode (the Web UI or CLI sending a signal) encrypts: under the system key for an unscoped token
      // (any workspace's run accepts it, only unscoped tokens read it back), under its workspace's key for a scoped one.
      const encode = async (token: string) => {
        const res = await post(`${server.url}/encode`, { payloads: [wire(json({ hi: 1 }))] }, { authorization: `Bearer ${token}` });
        assert.equal(res.status, 200);
        return ((await res.json()) as { payloads: ReturnType<typeof wire>[] }).payloads;
      };
      const bySystem = await encode(ALL);
      assert.equal(Buffer.from(bySystem[0].metadata[KEY_ID_METADATA], 'base64').toString().split('/')[0], '_system');
      const byOther = await encode(OTHER);
      assert.equal(Buffer.from(byOther[0].metadata[KEY_ID_METADATA], 'base64').toString().split('/')[0], 'other');
      const decodedBy = async (token: string, payloads: ReturnType<typeof wire>[]) => {
        const res = await post(`${server.url}/decode`, { payloads }, { authorization: `Bearer ${token}` });
        assert.equal(res.status, 200);
        return ((await res.json()) as { payloads: ReturnType<typeof wire>[] }).payloads.map((p) => Buffer.from(p.metadata.encoding, 'base64').toString());
      };
      assert.deepEqual(await decodedBy(OTHER, bySystem), ['binary/encrypted'], 'an unscoped token\'s signal may concern any workspace');
      assert.deepEqual(await decodedBy(OTHER, byOther), ['json/plain']);
      assert.deepEqual(await decodedBy(ALL, bySystem), ['json/plain']);
    });

    it('takes its tokens from PORTARIUM_CODEC_TOKEN and a 0600 tokens file, refuses to start without one, and never echoes them', function () {
      assert.throws(() => codecTokens(loadConfig({})), (e: Error) => e instanceof ConfigError && /PORTARIUM_CODEC_TOKEN or PORTARIUM_CODEC_TOKENS_FILE/.test(e.message));
      assert.throws(() => codecTokens(loadConfig({ PORTARIUM_CODEC_TOKEN: 'short-secret' })), (e: Error) => /at least 16/.test(e.message) && !e.message.includes('short-secret'));
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-codec-')), 'tokens.json');
      fs.writeFileSync(file, JSON.stringify({ tokens: [{ token: OTHER, workspaces: ['other'] }, { token: 'tiny', workspaces: ['a'] }] }), { mode: 0o600 });
      assert.throws(() => codecTokens(loadConfig({ PORTARIUM_CODEC_TOKENS_FILE: file })), (e: Error) => /tokens\.1\.token/.test(e.message) && !e.message.includes('tiny'));
      fs.writeFileSync(file, JSON.stringify({ tokens: [{ token: OTHER, workspaces: ['other'] }] }));
      assert.deepEqual(codecTokens(loadConfig({ PORTARIUM_CODEC_TOKEN: ALL, PORTARIUM_CODEC_TOKENS_FILE: file })), [{ token: ALL }, { token: OTHER, workspaces: ['other'] }]);
      fs.chmodSync(file, 0o644);
      assert.throws(() => codecTokens(loadConfig({ PORTARIUM_CODEC_TOKENS_FILE: file })), /readable by other users/);
    });

    it('runs as its own process: `portarium codec-server`, token required', async function () {
      const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'workers', 'cli.js'), 'codec-server', '--listen', '127.0.0.1:0'], {
        env: { PATH: process.env.PATH, PORTARIUM_KEYRING_FILE: testKeyringFile(), PORTARIUM_CODEC_TOKEN: ALL },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        let out = '';
        const url = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`codec server not ready: ${out}`)), 15_000);
          child.stdout.on('data', (d) => {
            out += String(d);
            const m = /listening (http:\/\/\S+)/.exec(out);
            if (m) clearTimeout(timer), resolve(m[1]);
          });
          child.stderr.on('data', (d) => (out += String(d)));
        });
        assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
        assert.ok(!out.includes(ALL), 'the token is not printed');
        assert.equal((await post(`${url}/decode`, { payloads: [wire(payload)] })).status, 401);
        assert.equal((await post(`${url}/decode`, { payloads: [wire(payload)] }, { authorization: `Bearer ${ALL}` })).status, 200);
      } finally {
        child.kill('SIGTERM');
      }
      const code = await new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
      assert.equal(code, 0);
    });

    it('answers CORS preflights for the Web UI origin only', async function () {
      const pre = await fetch(`${server.url}/decode`, { method: 'OPTIONS', headers: { origin: 'http://localhost:8233', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' } });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get('access-control-allow-origin'), 'http://localhost:8233');
      assert.match(pre.headers.get('access-control-allow-headers') ?? '', /x-namespace/);
      const foreign = await fetch(`${server.url}/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
      assert.equal(foreign.headers.get('access-control-allow-origin'), null);
    });
  });
});
