/**
 * The Vault secret store against a fake Vault that follows the HTTP API: each auth method, token
 * renewal and re-login, per-workspace path policies, traversal refused before any request, every
 * error class mapped to its failure type, and no credential in any error.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VaultSecretStore, type VaultOptions } from '../activities/vault';
import { VaultFake } from './fakes/vault-server';
import { failureOf, typeOf } from './support/failures';

const A_PATHS = ['secret/data/portarium/ws-a/'];

describe('vault secret store', function () {
  let vault: VaultFake;
  let stores: VaultSecretStore[];
  const store = (auth: VaultOptions['auth'], extra: Partial<VaultOptions> = {}) => {
    const s = new VaultSecretStore({ address: extra.address ?? vault.url, kvMount: 'secret', kvPrefix: 'portarium', auth, requestTimeoutMs: 2000, ...extra });
    stores.push(s);
    return s;
  };

  beforeEach(async function () {
    vault = await new VaultFake().start();
    stores = [];
    vault.put('secret/portarium/ws-a/langflow', { apiKey: 'sk-vault-aaaaaaaa' });
    vault.put('secret/portarium/ws-b/langflow', { apiKey: 'sk-vault-bbbbbbbb' });
    vault.approles.set('role-a', { secretId: 'secret-id-a-123456', paths: A_PATHS, ttlSeconds: 3600 });
  });
  afterEach(async function () {
    await Promise.all(stores.map((s) => s.close()));
    await vault.close();
  });

  it('reads a workspace secret with a token', async function () {
    const s = store({ method: 'token', token: vault.token(A_PATHS) });
    assert.deepEqual(await s.read('ws-a', 'langflow'), { apiKey: 'sk-vault-aaaaaaaa' });
    assert.equal(vault.calls('/v1/secret/data/portarium/ws-a/langflow', 'GET').length, 1);
  });

  it('logs in with AppRole once for many reads, concurrent ones included', async function () {
    const s = store({ method: 'approle', roleId: 'role-a', secretId: 'secret-id-a-123456' });
    await Promise.all([1, 2, 3, 4].map(() => s.read('ws-a', 'langflow')));
    await s.read('ws-a', 'langflow');
    assert.equal(vault.calls('/v1/auth/approle/login').length, 1);
  });

  it('logs in with Kubernetes auth, reading the service-account token from its file', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-k8s-'));
    try {
      fs.writeFileSync(path.join(dir, 'token'), 'eyJhbGciOi.k8s-jwt.sig\n');
      vault.k8sRoles.set('portarium', { jwt: 'eyJhbGciOi.k8s-jwt.sig', paths: A_PATHS, ttlSeconds: 3600 });
      assert.deepEqual(await store({ method: 'kubernetes', role: 'portarium', jwtPath: path.join(dir, 'token') }).read('ws-a', 'langflow'), { apiKey: 'sk-vault-aaaaaaaa' });
      fs.writeFileSync(path.join(dir, 'token'), 'another-service-account');
      assert.equal(await typeOf(store({ method: 'kubernetes', role: 'portarium', jwtPath: path.join(dir, 'token') }).read('ws-a', 'langflow')), 'CredentialsDenied', '403: JWT mismatch');
      assert.equal(await typeOf(store({ method: 'kubernetes', role: 'nope', jwtPath: path.join(dir, 'token') }).read('ws-a', 'langflow')), 'CredentialsDenied', '400: unknown role');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses another workspace's secret (Vault policy) and ids that could reach it (before any request)", async function () {
    const s = store({ method: 'approle', roleId: 'role-a', secretId: 'secret-id-a-123456' });
    assert.equal(await typeOf(s.read('ws-b', 'langflow')), 'CredentialsDenied');
    const before = vault.requests.length;
    for (const ws of ['../ws-b', 'ws-a/../ws-b', '%2e%2e', 'ws-a/x']) assert.equal(await typeOf(s.read(ws, 'langflow')), 'CredentialsDenied', ws);
    assert.equal(await typeOf(s.read('ws-a', '../../ws-b/langflow')), 'CredentialsDenied');
    assert.equal(vault.requests.length, before);
  });

  it('maps missing, deleted, malformed, sealed and unreachable', async function () {
    const s = store({ method: 'token', token: vault.token(A_PATHS) });
    assert.equal(await typeOf(s.read('ws-a', 'kestra')), 'CredentialsDenied', 'missing');
    vault.put('secret/portarium/ws-a/kestra', { password: 42 });
    assert.equal(await typeOf(s.read('ws-a', 'kestra')), 'CredentialsDenied', 'not a string map');
    vault.remove('secret/portarium/ws-a/langflow');
    assert.equal(await typeOf(s.read('ws-a', 'langflow')), 'CredentialsDenied', 'deleted');
    vault.seal();
    const sealed = await failureOf(s.read('ws-a', 'langflow'));
    assert.equal(sealed.type, 'CredentialsUnavailable');
    assert.equal(sealed.nonRetryable, false, 'a sealed Vault is retried');
    const port = vault.port;
    await vault.close();
    assert.equal(await typeOf(store({ method: 'token', token: 'hvs.x' }, { address: `http://127.0.0.1:${port}` }).read('ws-a', 'langflow')), 'CredentialsUnavailable');
  });

  it('refuses bad AppRole credentials, and no error carries a token, secret id or secret value', async function () {
    const bad = await failureOf(store({ method: 'approle', roleId: 'role-a', secretId: 'wrong-secret-id-999' }).read('ws-a', 'langflow'));
    assert.equal(bad.type, 'CredentialsDenied');
    const token = vault.token(['secret/data/portarium/ws-z/']);
    const denied = await failureOf(store({ method: 'token', token }).read('ws-a', 'langflow'));
    vault.put('secret/portarium/ws-a/st2', { apiKey: 'st2-value-123456', n: 5 });
    const malformed = await failureOf(store({ method: 'token', token: vault.token(A_PATHS) }).read('ws-a', 'st2'));
    for (const e of [bad, denied, malformed]) {
      const text = `${e.message} ${JSON.stringify(e)}`;
      for (const secret of ['wrong-secret-id-999', token, 'st2-value-123456', 'sk-vault-aaaaaaaa']) assert.ok(!text.includes(secret), `${e.type} leaks ${secret}`);
    }
  });

  it('renews its token before the lease ends and keeps reading past the original TTL', async function () {
    this.timeout(15_000);
    vault.approles.set('short', { secretId: 'secret-id-short-1', paths: A_PATHS, ttlSeconds: 1 });
    const s = store({ method: 'approle', roleId: 'short', secretId: 'secret-id-short-1' });
    await s.read('ws-a', 'langflow');
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(vault.calls('/v1/auth/token/renew-self').length >= 2, 'renewed at two thirds of each lease');
    assert.deepEqual(await s.read('ws-a', 'langflow'), { apiKey: 'sk-vault-aaaaaaaa' });
    assert.equal(vault.calls('/v1/auth/approle/login').length, 1, 'no new login was needed');
  });

  it('logs in again when its token has lapsed (renewal refused)', async function () {
    this.timeout(15_000);
    vault.approles.set('short', { secretId: 'secret-id-short-1', paths: A_PATHS, ttlSeconds: 1 });
    const s = store({ method: 'approle', roleId: 'short', secretId: 'secret-id-short-1' });
    await s.read('ws-a', 'langflow');
    for (const t of vault.tokens.values()) t.renewable = false;
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await s.read('ws-a', 'langflow'), { apiKey: 'sk-vault-aaaaaaaa' });
    assert.equal(vault.calls('/v1/auth/approle/login').length, 2);
  });

  it('sends the namespace header when configured', async function () {
    await store({ method: 'token', token: vault.token(A_PATHS) }, { namespace: 'team-a/' }).read('ws-a', 'langflow');
    assert.equal(vault.calls('/v1/secret/').at(-1)?.headers['x-vault-namespace'], 'team-a/');
  });
});
