/**
 * The Vault secret store (node-vault) against a fake Vault on 127.0.0.1: KV v2 reads, token, AppRole and
 * Kubernetes auth, token renewal and re-login, per-token path policies, sealing and unreachability.
 * Assertions are on `ApplicationFailure.type`, never on message text.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { type VaultOptions, VaultSecretStore } from '../activities/vault';
import { VaultFake } from './fakes/vault-server';
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

  const open = (auth: VaultOptions['auth'], extra: Partial<VaultOptions> = {}) => {
    const store = new VaultSecretStore({ address: fake.url, kvMount: 'secret', kvPrefix: 'portarium', auth, requestTimeoutMs: 3000, ...extra });
    stores.push(store);
    return store;
  };
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
    for (const rt of ['../langflow', 'lang/flow', '%2e%2e']) await denied(store.read('ws-a', rt));
    assert.equal(fake.requests.length, 0);
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

  it('on a 403 from a read (token revoked), logs in again once and retries the read once', async function () {
    const store = approle();
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    fake.tokens.clear(); // revoke every token
    assert.deepEqual(await store.read('ws-a', 'langflow'), SECRET_A);
    assert.equal(logins(), 2);
    // A path the role may never read: one re-login, one retry, then CredentialsDenied.
    const before = fake.calls('/v1/secret/data/portarium/ws-b/').length;
    await denied(store.read('ws-b', 'langflow'));
    assert.equal(fake.calls('/v1/secret/data/portarium/ws-b/').length - before, 2);
    assert.equal(logins(), 3);
  });

  it('sends the namespace header on logins and reads', async function () {
    const store = open({ method: 'approle', roleId: ROLE_ID, secretId: SECRET_ID }, { namespace: 'team-a/' });
    await store.read('ws-a', 'langflow');
    assert.ok(fake.requests.length >= 2);
    for (const r of fake.requests) assert.equal(r.headers['x-vault-namespace'], 'team-a/');
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
