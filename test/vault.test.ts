/**
 * The Vault secret store (node-vault) against a fake Vault on 127.0.0.1 that answers as OpenBao 2.7.2
 * does: KV v2 reads, token, AppRole and Kubernetes auth, token renewal (capped at the max TTL) and
 * re-login, per-token path policies, sealing and unreachability; the start-up check of the token's
 * policy; one session shared by the secret store and the transit payload keys.
 * Assertions are on `ApplicationFailure.type`, never on message text.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { type VaultOptions, VaultSecretStore, VaultSession, VaultStartupError, vaultKvPath } from '../activities/secrets/vault';
import { actionSchema } from '../workflows/schemas';
import type { VaultTransitKeyProvider } from '../workers/codec/vault-transit';
import { loadConfig } from '../workers/config';
import { payloadKeyProvider } from '../workers/codec/data-converter';
import { configuredSecretStore } from '../workers/worker';
import { VaultFake } from './fakes/vault-server';
import { startWorkerProcess } from './support/worker-process';
import { failureOf, until } from './support/failures';

const A = 'secret/data/portarium/ws-a/';
const SECRET_A = { apiKey: 'sk-aaaa-0123456789', user: 'svc-a' };
const SECRET_B = { apiKey: 'sk-bbbb-9876543210' };
const ROLE_ID = 'role-ws-a';
const SECRET_ID = 'sid-5f2c9e1a-7b3d-4c8e';
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6b3BzOnBvcnRhcml1bSJ9.c2lnbmF0dXJl';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('secrets: Vault store (node-vault)', function () {
  let fake: VaultFake;
  let stores: VaultSecretStore[];
  let tmp: string;
  /** What the sessions warned an operator about. */
  let warnings: string[];

  const options = (auth: VaultOptions['auth'], extra: Partial<VaultOptions> = {}): VaultOptions => ({ address: fake.url, kvMount: 'secret', kvPrefix: 'portarium', auth, requestTimeoutMs: 3000, ...extra });
  const session = (auth: VaultOptions['auth'], extra: Partial<VaultOptions> = {}) => new VaultSession(options(auth, extra), { warn: (m) => warnings.push(m) });
  const open = (auth: VaultOptions['auth'], extra: Partial<VaultOptions> = {}) => {
    const store = new VaultSecretStore(options(auth, extra), session(auth, extra));
    stores.push(store);
    return store;
  };
  const calls = (p: string) => fake.calls(`/v1/${p}`).length;
  const approle = (secretId = SECRET_ID) => open({ method: 'approle', roleId: ROLE_ID, secretId });
  const logins = () => fake.calls('/v1/auth/approle/login', 'POST').length;

  /** A failure's type and retryability, after checking that nothing secret leaked into it. */
  async function failure(p: Promise<unknown>, secrets: string[] = []): Promise<ApplicationFailure> {
    const err = await failureOf(p);
    const text = `${err.message}\n${JSON.stringify(err)}\n${err.stack ?? ''}\n${JSON.stringify(err.details ?? null)}`;
    for (const s of [SECRET_ID, JWT, SECRET_A.apiKey, SECRET_B.apiKey, ...[...fake.tokens.keys()], ...secrets]) assert.ok(!text.includes(s), `failure text leaks ${s.slice(0, 6)}…`);
    return err;
  }
  const denied = async (p: Promise<unknown>, secrets?: string[]) => {
    const err = await failure(p, secrets);
    assert.equal(err.type, 'CredentialsDenied');
    assert.equal(err.nonRetryable, true);
  };
  const unavailable = async (p: Promise<unknown>, secrets?: string[]) => {
    const err = await failure(p, secrets);
    assert.equal(err.type, 'CredentialsUnavailable');
    assert.equal(err.nonRetryable, false);
  };

  beforeEach(async function () {
    fake = await new VaultFake().start();
    stores = [];
    warnings = [];
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-vault-'));
    fake.put('secret/portarium/ws-a/langflow', SECRET_A);
    fake.put('secret/portarium/ws-b/langflow', SECRET_B);
    fake.approles.set(ROLE_ID, { secretId: SECRET_ID, paths: [A], ttlSeconds: 3600 });
    fake.k8sRoles.set('portarium', { jwt: JWT, paths: [A], ttlSeconds: 3600 });
  });

  afterEach(async function () {
    for (const s of stores) await s.close();
    await fake.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('reads a KV v2 secret with a static token, as a frozen flat map', async function () {
    const token = fake.token([A]);
    const store = open({ method: 'token', token });
    const secret = await store.read('ws-a', 'langflow');
    assert.deepEqual(secret, SECRET_A);
    assert.ok(Object.isFrozen(secret));
    const reads = fake.calls('/v1/secret/data/portarium/ws-a/langflow', 'GET');
    assert.equal(reads.length, 1);
    assert.equal(reads[0].headers['x-vault-token'], token);
    assert.equal(store.kind, 'vault');
  });

  it('logs in with AppRole once for several reads, and concurrent first reads share the login', async function () {
    fake.put('secret/portarium/ws-a/kestra', { token: 'k-123' });
    const store = approle();
    const all = await Promise.all([store.read('ws-a', 'langflow'), store.read('ws-a', 'kestra'), store.read('ws-a', 'langflow')]);
    assert.deepEqual(all[1], { token: 'k-123' });
    await store.read('ws-a', 'langflow');
    assert.equal(logins(), 1);
    const login = fake.calls('/v1/auth/approle/login')[0];
    assert.deepEqual(login.json, { role_id: ROLE_ID, secret_id: SECRET_ID });
    const issued = fake.calls('/v1/secret/').map((r) => r.headers['x-vault-token']);
    assert.equal(new Set(issued).size, 1);
    assert.match(String(issued[0]), /^hvs\./);
  });

  it('logs in with Kubernetes auth, reading the JWT from its file at login', async function () {
    const jwtPath = path.join(tmp, 'token');
    fs.writeFileSync(jwtPath, `${JWT}\n`);
    const store = open({ method: 'kubernetes', role: 'portarium', jwtPath });
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    const login = fake.calls('/v1/auth/kubernetes/login', 'POST');
    assert.equal(login.length, 1);
    assert.deepEqual(login[0].json, { role: 'portarium', jwt: JWT });
  });

  it('maps login failures: AppRole 400, Kubernetes unknown role 400 and JWT mismatch 403 are CredentialsDenied', async function () {
    await denied(approle('sid-wrong-000000').read('ws-a', 'langflow'), ['sid-wrong-000000']);
    const jwtPath = path.join(tmp, 'token');
    fs.writeFileSync(jwtPath, 'eyJ.bad.jwt-not-the-one');
    await denied(open({ method: 'kubernetes', role: 'portarium', jwtPath }).read('ws-a', 'langflow'), ['eyJ.bad.jwt-not-the-one']);
    await denied(open({ method: 'kubernetes', role: 'nobody', jwtPath }).read('ws-a', 'langflow'), ['eyJ.bad.jwt-not-the-one']);
    assert.equal(fake.calls('/v1/secret/').length, 0);
  });

  it("refuses another workspace's path (403), a missing secret and a deleted version as CredentialsDenied", async function () {
    const store = approle();
    await denied(store.read('ws-b', 'langflow'));
    await denied(store.read('ws-a', 'kestra'));
    fake.remove('secret/portarium/ws-a/langflow');
    await denied(store.read('ws-a', 'langflow'));
    const token = open({ method: 'token', token: fake.token([A]) });
    await denied(token.read('ws-b', 'langflow'));
    await denied(open({ method: 'token', token: 'hvs.unknown-token-xyz' }).read('ws-a', 'langflow'), ['hvs.unknown-token-xyz']);
  });

  it('refuses a secret whose values are not all strings, naming no value', async function () {
    fake.put('secret/portarium/ws-a/kestra', { user: 'svc', port: 8080 });
    await denied(approle().read('ws-a', 'kestra'), ['svc']);
  });

  it('refuses traversal ids before any request reaches Vault', async function () {
    const store = open({ method: 'token', token: fake.token([A, 'secret/data/portarium/ws-b/']) });
    for (const ws of ['../ws-b', 'ws-a/../ws-b', '%2e%2e', '..', 'ws-a%2f..%2fws-b', 'WS-A', '']) await denied(store.read(ws, 'langflow'));
    for (const rt of ['../langflow', '%2e%2e', '.', '/langflow', `r${'x'.repeat(64)}`]) await denied(store.read('ws-a', rt));
    assert.equal(fake.requests.length, 0);
  });

  // Context: the store accepted only `[a-z][a-z0-9-]{0,31}`, so a runtime that passed input validation
  // was refused at dispatch as CredentialsDenied for its name alone. Every such name is now read, and
  // a '/' in it (run input allows one) stays inside the runtime's one path segment.
  it('reads every runtime name that run input accepts, each inside its workspace, a "/" kept in its segment', async function () {
    const names = ['Langflow', '7zip', 'team.flow', 'ops:eu@prod+1', 'team/flow', `r${'x'.repeat(63)}`];
    for (const [i, rt] of names.entries()) {
      assert.ok(actionSchema().safeParse({ runtime: rt, target: 't', operation: 'o', input: {} }).success, `${rt} is valid input`);
      fake.put(`secret/portarium/ws-a/${rt.replaceAll('/', '%2F')}`, { apiKey: `sk-wide-${i}` });
    }
    const store = open({ method: 'token', token: fake.token([A, 'secret/data/portarium/ws-b/']) });
    for (const [i, rt] of names.entries()) assert.deepEqual(await store.read('ws-a', rt), { apiKey: `sk-wide-${i}` }, rt);
    // A runtime name that spells a way out (valid input: it starts with a letter) never reaches ws-b's
    // secret, although this token could read it: it is one segment under ws-a, where nothing is stored.
    const escape = 'a/../../ws-b/langflow';
    assert.ok(actionSchema().safeParse({ runtime: escape, target: 't', operation: 'o', input: {} }).success);
    await denied(store.read('ws-a', escape), [SECRET_B.apiKey]);
    assert.equal(vaultKvPath('secret', 'portarium', 'ws-a', escape), 'secret/data/portarium/ws-a/a%252F..%252F..%252Fws-b%252Flangflow');
    assert.equal(vaultKvPath('secret', 'portarium', 'ws-a', 'langflow'), 'secret/data/portarium/ws-a/langflow', 'names without "/" are where they always were');
  });

  it('answers CredentialsUnavailable (retryable) when Vault is sealed, for reads and logins', async function () {
    const token = open({ method: 'token', token: fake.token([A]) });
    const store = approle();
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    fake.seal();
    await unavailable(store.read('ws-a', 'langflow'));
    await unavailable(token.read('ws-a', 'langflow'));
    await unavailable(approle().read('ws-a', 'langflow'));
  });

  it('answers CredentialsUnavailable when Vault is unreachable', async function () {
    const port = await closedPort();
    const store = new VaultSecretStore({ address: `http://127.0.0.1:${port}`, kvMount: 'secret', kvPrefix: 'portarium', auth: { method: 'approle', roleId: ROLE_ID, secretId: SECRET_ID } });
    stores.push(store);
    await unavailable(store.read('ws-a', 'langflow'));
    const tokenStore = new VaultSecretStore({ address: `http://127.0.0.1:${port}`, kvMount: 'secret', kvPrefix: 'portarium', auth: { method: 'token', token: 'hvs.static-token-abc' } });
    stores.push(tokenStore);
    await unavailable(tokenStore.read('ws-a', 'langflow'), ['hvs.static-token-abc']);
  });

  it('answers CredentialsUnavailable when Vault does not answer within the timeout', async function () {
    const slow = new VaultFake();
    const token = slow.token([A]);
    (slow as unknown as { answer: unknown }).answer = () => ({ status: 200, delayMs: 2000, body: {} });
    await slow.start();
    try {
      const store = new VaultSecretStore({ address: slow.url, kvMount: 'secret', kvPrefix: 'portarium', auth: { method: 'token', token }, requestTimeoutMs: 300 });
      stores.push(store);
      await unavailable(store.read('ws-a', 'langflow'), [token]);
    } finally {
      await slow.close();
    }
  });

  it('renews an AppRole token before its short TTL lapses, and reads keep working past the original TTL', async function () {
    fake.approles.set(ROLE_ID, { secretId: SECRET_ID, paths: [A], ttlSeconds: 1 });
    const store = approle();
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    await until(() => fake.calls('/v1/auth/token/renew-self', 'POST').length >= 1, 1500);
    await sleep(1200);
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    assert.equal(logins(), 1);
    assert.ok(fake.calls('/v1/auth/token/renew-self', 'POST').length >= 2);
  });

  it('renews a static token that lookup-self reports as renewable', async function () {
    const token = fake.token([A], 1);
    const store = open({ method: 'token', token });
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    assert.equal(fake.calls('/v1/auth/token/lookup-self', 'GET').length, 1);
    await sleep(1300);
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    assert.ok(fake.calls('/v1/auth/token/renew-self', 'POST').length >= 1);
  });

  it('logs in again when the AppRole token is not renewable and has expired', async function () {
    fake.approles.set(ROLE_ID, { secretId: SECRET_ID, paths: [A], ttlSeconds: 1 });
    const store = approle();
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    for (const t of fake.tokens.values()) t.renewable = false; // renew-self now fails
    await sleep(1200);
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    assert.equal(logins(), 2);
  });

  it('on a 403 from a read with a revoked token, looks the token up, logs in again once and retries the read once', async function () {
    const store = approle();
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    fake.tokens.clear(); // revoke every token
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    assert.equal(logins(), 2);
    assert.equal(calls('auth/token/lookup-self'), 1);
    assert.equal(calls('auth/token/revoke-self'), 0, 'a dead token is not revoked again');
    // A static token cannot log in again: a revoked one is refused, with one lookup and no retry.
    const token = fake.token([A]);
    const tokenStore = open({ method: 'token', token });
    assert.deepEqual(await tokenStore.read('ws-a', 'langflow'), SECRET_A);
    fake.tokens.delete(token);
    await denied(tokenStore.read('ws-a', 'langflow'));
    assert.equal(fake.calls('/v1/secret/').filter((r) => r.headers['x-vault-token'] === token).length, 2);
  });

  it('a 403 storm (20 concurrent reads on a revoked token) costs one lookup-self and one login, and every read succeeds', async function () {
    const store = approle();
    await store.read('ws-a', 'langflow');
    fake.tokens.clear();
    const all = await Promise.all(Array.from({ length: 20 }, () => store.read('ws-a', 'langflow')));
    assert.ok(all.every((s) => s.apiKey === SECRET_A.apiKey));
    assert.equal(calls('auth/token/lookup-self'), 1);
    assert.equal(logins(), 2);
  });

  // Context: a real server answers 403 both for a path outside the policy and for a dead token; each denied read used to cost a login.
  it('refuses a path outside a live token\'s policy at once: one read, one lookup-self, no login, the token kept', async function () {
    const store = approle();
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    for (let i = 0; i < 3; i++) await denied(store.read('ws-b', 'langflow'));
    assert.equal(fake.calls('/v1/secret/data/portarium/ws-b/').length, 3, 'no retry of a denied read');
    assert.equal(logins(), 1);
    assert.equal(calls('auth/token/lookup-self'), 3);
    assert.equal(fake.tokens.size, 1, 'no extra token left alive');
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    const token = open({ method: 'token', token: fake.token([A]) });
    await denied(token.read('ws-b', 'langflow'));
    assert.equal(fake.calls('/v1/secret/data/portarium/ws-b/').length, 4);
  });

  it('renewal capped at token_max_ttl: logs in again before the token ends and revokes the old token with revoke-self', async function () {
    this.timeout(10_000);
    // Lease 3 s, max 5 s: the renewal at 2 s grants only the 2 whole seconds left, so the token ends at 4 s.
    fake.approles.set(ROLE_ID, { secretId: SECRET_ID, paths: [A], ttlSeconds: 3, maxTtlSeconds: 5 });
    const store = approle();
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    const first = fake.calls('/v1/auth/approle/login')[0];
    const old = [...fake.tokens.keys()][0];
    await until(() => calls('auth/token/renew-self') === 1, 3000);
    const renewal = fake.calls('/v1/auth/token/renew-self')[0];
    assert.ok(first && renewal.headers['x-vault-token'] === old);
    await sleep(1500); // past two thirds of the capped lease, before the max TTL
    assert.ok(fake.tokens.get(old)!.expiresAt > Date.now(), 'the old token is still alive');
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    assert.equal(logins(), 2);
    await until(() => calls('auth/token/revoke-self') === 1);
    assert.equal(fake.calls('/v1/auth/token/revoke-self')[0].headers['x-vault-token'], old);
    assert.ok(!fake.tokens.has(old), 'the old token is revoked');
    assert.equal(calls('auth/token/renew-self'), 1, 'no renewals of ever shorter leases');
    assert.deepEqual(warnings, []);
    await sleep(700); // past the old token's end: reads use the new one
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    assert.equal(logins(), 2);
  });

  it('says why a replaced token could not be revoked (its policy lacks revoke-self)', async function () {
    fake.approles.set(ROLE_ID, { secretId: SECRET_ID, paths: [A, 'auth/token/lookup-self'], ttlSeconds: 2, noDefaultPolicy: true });
    const store = approle();
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    await until(() => calls('auth/token/renew-self') === 1, 2500); // refused (403): log in again at the next read, while the old token lives
    // The fake counts the renewal when it receives it; the session takes the refusal when the answer
    // arrives (seen in CI: a read in between still used the old token). Reads meanwhile still answer.
    for (const deadline = Date.now() + 2_000; logins() < 2 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
      assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    }
    assert.equal(logins(), 2);
    await until(() => warnings.length === 1);
    assert.match(warnings[0], /auth\/token\/revoke-self/);
  });

  // Context: with use-limited or expiring secret ids, a secret id read once at start failed every later login until a restart.
  it('reads the AppRole secret id from its file at every login, so a rotated use-limited secret id needs no restart', async function () {
    const file = path.join(tmp, 'secret-id');
    fs.writeFileSync(file, `${SECRET_ID}\n`);
    fake.approles.set(ROLE_ID, { secretId: SECRET_ID, paths: [A], ttlSeconds: 3600, secretIdNumUses: 1 });
    const store = open({ method: 'approle', roleId: ROLE_ID, secretIdFile: file });
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    // The orchestrator issues the next secret id (the first is used up) and writes it to the file.
    const next = 'sid-0b7e44c2-91aa-4d0f';
    fake.approles.get(ROLE_ID)!.secretId = next;
    fs.writeFileSync(file, next);
    fake.tokens.clear();
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    assert.deepEqual(fake.calls('/v1/auth/approle/login').map((r) => (r.json as { secret_id: string }).secret_id), [SECRET_ID, next]);
    // The used-up secret id is refused by Vault, as a real use-limited one is.
    await denied(approle(next).read('ws-a', 'langflow'), [next]);
    // A file that cannot be read at login is retried, not a refusal.
    fs.rmSync(file);
    fake.tokens.clear();
    await unavailable(store.read('ws-a', 'langflow'));
  });

  it('start-up check: a static token whose policy lacks lookup-self or renew-self stops the start, naming the capability', async function () {
    const noLookup = session({ method: 'token', token: fake.token([A], 3600, true, { noDefaultPolicy: true }) });
    await assert.rejects(noLookup.start(), (e: Error) => e instanceof VaultStartupError && /auth\/token\/lookup-self/.test(e.message));
    const noRenew = session({ method: 'token', token: fake.token([A, 'auth/token/lookup-self'], 3600, true, { noDefaultPolicy: true }) });
    await assert.rejects(noRenew.start(), (e: Error) => e instanceof VaultStartupError && /auth\/token\/renew-self/.test(e.message));
    await assert.rejects(session({ method: 'token', token: 'hvs.unknown-token-xyz' }).start(), VaultStartupError);
    await assert.rejects(session({ method: 'approle', roleId: ROLE_ID, secretId: 'sid-wrong-000000' }).start(), (e: Error) => e instanceof VaultStartupError && !e.message.includes('sid-wrong-000000'));
    for (const s of [SECRET_ID, ...fake.tokens.keys()]) assert.ok(!warnings.join('\n').includes(s));
  });

  it('a worker process whose VAULT_TOKEN cannot look itself up exits at start, naming the capability and not the token', async function () {
    this.timeout(30_000);
    const token = fake.token([A], 3600, true, { noDefaultPolicy: true });
    const err = await startWorkerProcess({ VAULT_ADDR: fake.url, VAULT_TOKEN: token, PORTARIUM_DATA_DIR: tmp, PORTARIUM_LOG_LEVEL: 'WARN' }).then(
      (w) => {
        w.child.kill();
        return undefined;
      },
      (e: Error) => e,
    );
    assert.ok(err, 'the worker did not start');
    assert.match(err.message, /worker exited 1/);
    assert.match(err.message, /auth\/token\/lookup-self/);
    assert.ok(!err.message.includes(token));
  });

  it('start-up check: a good token starts (renewed once, no warning); a non-renewable one warns when it expires; Vault down only warns', async function () {
    const good = session({ method: 'token', token: fake.token([A]) }).retain();
    await good.start();
    assert.equal(calls('auth/token/renew-self'), 1);
    await good.release();
    const approleSession = session({ method: 'approle', roleId: ROLE_ID, secretId: SECRET_ID });
    const store = new VaultSecretStore(options({ method: 'approle', roleId: ROLE_ID, secretId: SECRET_ID }), approleSession);
    stores.push(store);
    await approleSession.start();
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    assert.equal(logins(), 1, 'the start-up login serves the reads');
    assert.deepEqual(warnings, []);
    await session({ method: 'token', token: fake.token([A], 3600, false) }).start();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /not renewable/);
    const port = await closedPort();
    await new VaultSession({ address: `http://127.0.0.1:${port}`, kvMount: 'secret', kvPrefix: 'portarium', auth: { method: 'token', token: 'hvs.static-token-abc' } }, { warn: (m) => warnings.push(m) }).start();
    assert.equal(warnings.length, 2);
  });

  // Context: a lease of 0 was taken as "forever".
  it('a ttl of 0 is "never expires" only without an expire_time: a root-like token is not renewed, an ending one is renewed at once', async function () {
    const root = fake.token([A], 0);
    const rootStore = open({ method: 'token', token: root });
    const rootSession = rootStore.session;
    await rootSession.start();
    assert.deepEqual(await rootStore.read('ws-a', 'langflow'), SECRET_A);
    assert.equal(calls('auth/token/renew-self'), 0);
    assert.deepEqual(warnings, []);
    // 1 s TTL, 0.6 s gone: lookup-self says ttl 0 with an expire_time, i.e. ending now.
    const ending = fake.token([A], 1);
    await sleep(600);
    const store = open({ method: 'token', token: ending });
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    await sleep(900);
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    assert.ok(fake.calls('/v1/auth/token/renew-self').some((r) => r.headers['x-vault-token'] === ending));
  });

  it('a KV read has no lease (lease_duration 0): nothing is cached, a new version is read at once', async function () {
    const store = approle();
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    fake.put('secret/portarium/ws-a/langflow', { apiKey: 'sk-aaaa-rotated-0001' });
    assert.deepEqual(await store.read('ws-a', 'langflow'), { apiKey: 'sk-aaaa-rotated-0001' });
    assert.equal(fake.calls('/v1/secret/data/portarium/ws-a/langflow').length, 2);
  });

  // Context: with transit payload encryption the worker held two logins and renewed two tokens.
  it('the worker wiring shares one Vault session between the secret store and the transit payload keys', async function () {
    fake.createTransitKey('portarium-ws-a');
    fake.approles.set(ROLE_ID, { secretId: SECRET_ID, paths: [A, 'transit/'], ttlSeconds: 1 });
    const config = loadConfig({ VAULT_ADDR: fake.url, PORTARIUM_VAULT_AUTH: 'approle', PORTARIUM_VAULT_ROLE_ID: ROLE_ID, PORTARIUM_VAULT_SECRET_ID: SECRET_ID, PORTARIUM_PAYLOAD_ENCRYPTION: 'vault', PORTARIUM_DATA_DIR: tmp });
    const secrets = configuredSecretStore(config);
    const keys = payloadKeyProvider(config) as VaultTransitKeyProvider;
    try {
      assert.deepEqual(await secrets.read('ws-a', 'langflow'), SECRET_A);
      assert.match((await keys.encryptionKey('ws-a')).keyId, /^ws-a\/v1-/);
      await sleep(1400);
      assert.equal(logins(), 1, 'one login for both');
      const renewers = new Set(fake.calls('/v1/auth/token/renew-self').map((r) => r.headers['x-vault-token']));
      assert.equal(renewers.size, 1, 'one token renewed');
      assert.ok(calls('auth/token/renew-self') <= 2, 'by one renewer');
      assert.equal(new Set(fake.calls('/v1/secret/').concat(fake.calls('/v1/transit/')).map((r) => r.headers['x-vault-token'])).size, 1);
      // Closing one user leaves the other working.
      await secrets.close();
      keys.forgetDataKeys();
      assert.match((await keys.encryptionKey('ws-a')).keyId, /^ws-a\/v1-/);
    } finally {
      await secrets.close();
      await keys.close();
    }
    const after = calls('auth/token/renew-self');
    await sleep(900);
    assert.equal(calls('auth/token/renew-self'), after, 'no renewal after both closed');
  });

  it('sends the namespace header on logins and reads', async function () {
    const store = open({ method: 'approle', roleId: ROLE_ID, secretId: SECRET_ID }, { namespace: 'team-a/' });
    await store.read('ws-a', 'langflow');
    assert.ok(fake.requests.length >= 2);
    for (const r of fake.requests) assert.equal(r.headers['x-vault-namespace'], 'team-a/');
  });

  it('a lease longer than 24.8 days (past the timer limit) is renewed at two thirds, not in a tight loop', async function () {
    // 40 days, under a raised max_lease_ttl: two thirds of it overflows a Node timer, which then fires at once.
    const days40 = 40 * 24 * 3600;
    fake.approles.set(ROLE_ID, { secretId: SECRET_ID, paths: [A], ttlSeconds: days40 });
    assert.deepEqual(await approle().read('ws-a', 'langflow'), SECRET_A);
    const token = fake.token([A], days40);
    assert.deepEqual(await open({ method: 'token', token }).read('ws-a', 'langflow'), SECRET_A);
    await sleep(500);
    assert.equal(fake.calls('/v1/auth/token/renew-self', 'POST').length, 0, 'no renewal is due for weeks');
  });

  it('refuses a secret id file larger than any secret id, before sending it to Vault', async function () {
    const file = path.join(tmp, 'secret-id');
    // A misconfigured path (a log, a dump): not read whole into memory, never sent as a secret id.
    fs.writeFileSync(file, `${SECRET_ID}\n`.repeat(200_000));
    await unavailable(open({ method: 'approle', roleId: ROLE_ID, secretIdFile: file }).read('ws-a', 'langflow'));
    assert.equal(logins(), 0);
  });

  it('stops renewing after close()', async function () {
    fake.approles.set(ROLE_ID, { secretId: SECRET_ID, paths: [A], ttlSeconds: 1 });
    const store = approle();
    await store.read('ws-a', 'langflow');
    await store.close();
    await sleep(900);
    assert.equal(fake.calls('/v1/auth/token/renew-self').length, 0);
  });
});
