/** Worker configuration from the environment: defaults, precedence, and errors that name the variable. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfig } from '../workers/config';

describe('config', function () {
  it('defaults to a local dev server and the portarium task queue', function () {
    const c = loadConfig({});
    assert.equal(c.temporal.address, 'localhost:7233');
    assert.equal(c.temporal.namespace, 'default');
    assert.equal(c.taskQueue, 'portarium');
    assert.equal(c.temporal.tls, undefined);
  });

  it('reads the environment; explicit overrides win; blank counts as unset', function () {
    const env = { TEMPORAL_ADDRESS: 'temporal.prod:7233', TEMPORAL_NAMESPACE: ' ', PORTARIUM_TASK_QUEUE: 'q', TEMPORAL_API_KEY: 'k' };
    const c = loadConfig(env, { taskQueue: 'explicit' });
    assert.equal(c.temporal.address, 'temporal.prod:7233');
    assert.equal(c.temporal.namespace, 'default');
    assert.equal(c.taskQueue, 'explicit');
    assert.ok(c.temporal.tls, 'an API key implies TLS');
  });

  it('names the variable, the expectation and the value given', function () {
    assert.throws(() => loadConfig({ PORTARIUM_MAX_CACHED_WORKFLOWS: 'lots' }), (e: Error) =>
      e instanceof ConfigError && /PORTARIUM_MAX_CACHED_WORKFLOWS/.test(e.message) && /"lots"/.test(e.message));
    // 1 would be raised to 2 by the SDK without a word: refused, naming what is accepted.
    assert.throws(() => loadConfig({ PORTARIUM_MAX_CACHED_WORKFLOWS: '1' }), (e: Error) =>
      e instanceof ConfigError && /PORTARIUM_MAX_CACHED_WORKFLOWS: expected 0 \(no cache\) or at least 2/.test(e.message));
    assert.throws(() => loadConfig({ PORTARIUM_MAX_CACHED_WORKFLOWS: '-5' }), /PORTARIUM_MAX_CACHED_WORKFLOWS/);
    assert.equal(loadConfig({ PORTARIUM_MAX_CACHED_WORKFLOWS: '0' }).maxCachedWorkflows, 0);
    assert.equal(loadConfig({ PORTARIUM_MAX_CACHED_WORKFLOWS: ' ' }).maxCachedWorkflows, undefined, 'blank: derived from the heap');
    assert.throws(() => loadConfig({ PORTARIUM_WORKFLOW_HEAP_MB: '16' }), (e: Error) =>
      e instanceof ConfigError && /PORTARIUM_WORKFLOW_HEAP_MB/.test(e.message) && /"16"/.test(e.message));
    assert.equal(loadConfig({ PORTARIUM_WORKFLOW_HEAP_MB: '768' }).workflowHeapMb, 768);
    assert.throws(() => loadConfig({ PORTARIUM_TASK_QUEU: 'typo' }), /unknown setting PORTARIUM_TASK_QUEU/);
    // The test tools' own settings (exported for npm run test:real, say) do not stop a worker.
    assert.equal(loadConfig({ PORTARIUM_REAL_SERVERS_DIR: '/x', PORTARIUM_TOOLS_DIR: '/y', PORTARIUM_PG_BIN: '/z' }).taskQueue, loadConfig({}).taskQueue);
    assert.throws(() => loadConfig({ TEMPORAL_TLS_CERT_PATH: '/nope.pem' }), /TEMPORAL_TLS_KEY_PATH/);
    assert.throws(() => loadConfig({ TEMPORAL_TLS_CERT_PATH: '/nope.pem', TEMPORAL_TLS_KEY_PATH: '/nope.key' }), /no file at \/nope.pem/);
  });

  it('uses the secrets files unless VAULT_ADDR is set, and builds each Vault auth method from its variables', function () {
    assert.equal(loadConfig({}).vault, undefined);
    assert.match(loadConfig({}).secretsDir, /\.data\/secrets$/);
    const token = loadConfig({ VAULT_ADDR: 'https://vault:8200', VAULT_TOKEN: 'hvs.abc' }).vault;
    assert.deepEqual(token?.auth, { method: 'token', token: 'hvs.abc' });
    assert.equal(token?.kvMount, 'secret');
    assert.equal(token?.kvPrefix, 'portarium');
    const approle = loadConfig({ VAULT_ADDR: 'https://vault:8200', PORTARIUM_VAULT_AUTH: 'approle', PORTARIUM_VAULT_ROLE_ID: 'r', PORTARIUM_VAULT_SECRET_ID: 's', PORTARIUM_VAULT_KV_MOUNT: 'kv' }).vault;
    assert.deepEqual(approle?.auth, { method: 'approle', roleId: 'r', secretId: 's', mount: undefined });
    assert.equal(approle?.kvMount, 'kv');
    // A secret id file is checked at load but read again at every login (never kept in the config).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-config-'));
    const file = path.join(dir, 'secret-id');
    fs.writeFileSync(file, 'sid-from-file-0001\n');
    const fromFile = { VAULT_ADDR: 'https://vault:8200', PORTARIUM_VAULT_AUTH: 'approle', PORTARIUM_VAULT_ROLE_ID: 'r', PORTARIUM_VAULT_SECRET_ID_FILE: file };
    assert.deepEqual(loadConfig(fromFile).vault?.auth, { method: 'approle', roleId: 'r', secretIdFile: file, mount: undefined });
    assert.throws(() => loadConfig({ ...fromFile, PORTARIUM_VAULT_SECRET_ID: 's' }), (e: Error) => e instanceof ConfigError && /set one of them/.test(e.message) && !e.message.includes('sid-from-file'));
    fs.writeFileSync(file, ' \n');
    assert.throws(() => loadConfig(fromFile), (e: Error) => e instanceof ConfigError && /PORTARIUM_VAULT_SECRET_ID_FILE/.test(e.message));
    fs.rmSync(dir, { recursive: true, force: true });
    assert.throws(() => loadConfig(fromFile), /PORTARIUM_VAULT_SECRET_ID_FILE: cannot read/);
    const k8s = loadConfig({ VAULT_ADDR: 'https://vault:8200', PORTARIUM_VAULT_AUTH: 'kubernetes', PORTARIUM_VAULT_K8S_ROLE: 'portarium' }).vault;
    assert.deepEqual(k8s?.auth, { method: 'kubernetes', role: 'portarium', jwtPath: '/var/run/secrets/kubernetes.io/serviceaccount/token', mount: undefined });
  });

  it('names the missing Vault variable, refuses Vault settings without VAULT_ADDR, and never echoes a credential', function () {
    assert.throws(() => loadConfig({ VAULT_ADDR: 'https://vault:8200', PORTARIUM_VAULT_AUTH: 'approle', PORTARIUM_VAULT_ROLE_ID: 'r' }), /PORTARIUM_VAULT_SECRET_ID/);
    assert.throws(() => loadConfig({ VAULT_ADDR: 'https://vault:8200' }), /PORTARIUM_VAULT_AUTH/);
    assert.throws(() => loadConfig({ PORTARIUM_VAULT_AUTH: 'approle' }), /VAULT_ADDR/);
    assert.throws(() => loadConfig({ VAULT_ADDR: 'vault:8200', VAULT_TOKEN: 'hvs.secret-token' }), (e: Error) => /VAULT_ADDR/.test(e.message) && !e.message.includes('hvs.secret-token'));
  });

  it('encrypts payloads with the keyring under the data dir by default, or with Vault transit, or not at all', function () {
    // Production by default: no process creates a workspace key unless PORTARIUM_DEV_CREATE_KEYS says so.
    assert.deepEqual(loadConfig({ PORTARIUM_DATA_DIR: '/srv/p' }).payloadEncryption, { kind: 'keyring', file: '/srv/p/keys/payload-keyring.json', createKeys: false });
    assert.deepEqual(loadConfig({ PORTARIUM_KEYRING_FILE: '/etc/p/ring.json' }).payloadEncryption, { kind: 'keyring', file: '/etc/p/ring.json', createKeys: false });
    assert.deepEqual(loadConfig({ PORTARIUM_KEYRING_FILE: '/etc/p/ring.json', PORTARIUM_DEV_CREATE_KEYS: '1' }).payloadEncryption, { kind: 'keyring', file: '/etc/p/ring.json', createKeys: true });
    assert.deepEqual(loadConfig({ PORTARIUM_PAYLOAD_ENCRYPTION: 'off' }).payloadEncryption, { kind: 'off' });
    const vault = { VAULT_ADDR: 'https://vault:8200', VAULT_TOKEN: 'hvs.abc', PORTARIUM_PAYLOAD_ENCRYPTION: 'vault' };
    assert.deepEqual(loadConfig(vault).payloadEncryption, { kind: 'vault', mount: 'transit' });
    assert.deepEqual(loadConfig({ ...vault, PORTARIUM_VAULT_TRANSIT_MOUNT: 'transit/tenants' }).payloadEncryption, { kind: 'vault', mount: 'transit/tenants' });
    assert.throws(() => loadConfig({ PORTARIUM_PAYLOAD_ENCRYPTION: 'vault' }), (e: Error) => e instanceof ConfigError && /PORTARIUM_PAYLOAD_ENCRYPTION: vault needs VAULT_ADDR/.test(e.message));
    assert.throws(() => loadConfig({ PORTARIUM_PAYLOAD_ENCRYPTION: 'aes' }), /PORTARIUM_PAYLOAD_ENCRYPTION.*"aes"/);
    assert.throws(() => loadConfig({ PORTARIUM_PAYLOAD_ENCRYPTION: 'off', PORTARIUM_KEYRING_FILE: '/x' }), /PORTARIUM_KEYRING_FILE is set but PORTARIUM_PAYLOAD_ENCRYPTION is off/);
    assert.throws(() => loadConfig({ PORTARIUM_VAULT_TRANSIT_MOUNT: 'transit' }), /PORTARIUM_VAULT_TRANSIT_MOUNT is set/);
    assert.throws(() => loadConfig({ ...vault, PORTARIUM_DEV_CREATE_KEYS: 'true' }), /PORTARIUM_DEV_CREATE_KEYS is set but PORTARIUM_PAYLOAD_ENCRYPTION is vault/);
    assert.throws(() => loadConfig({ ...vault, PORTARIUM_VAULT_TRANSIT_MOUNT: '../x' }), /PORTARIUM_VAULT_TRANSIT_MOUNT: expected a mount path/);
  });

  it('the codec server binds 127.0.0.1 and allows the dev Web UI origin unless told otherwise, and never echoes its token', function () {
    const c = loadConfig({}).codecServer;
    assert.equal(c.address, '127.0.0.1:8888');
    assert.deepEqual(c.corsOrigins, ['http://localhost:8233', 'http://127.0.0.1:8233']);
    assert.equal(c.token, undefined);
    const set = loadConfig({ PORTARIUM_CODEC_ADDRESS: '0.0.0.0:9000', PORTARIUM_CODEC_TOKEN: 'codec-secret-1234567', PORTARIUM_CODEC_CORS_ORIGINS: 'https://ui.example, https://ui2.example' }).codecServer;
    assert.deepEqual(set, { address: '0.0.0.0:9000', token: 'codec-secret-1234567', tokensFile: undefined, corsOrigins: ['https://ui.example', 'https://ui2.example'] });
    assert.throws(() => loadConfig({ PORTARIUM_CODEC_ADDRESS: 'localhost' }), /PORTARIUM_CODEC_ADDRESS: expected host:port/);
    assert.throws(() => loadConfig({ PORTARIUM_CODEC_TOKEN: ' ', PORTARIUM_CODEC_ADDRES: 'x:1' }), /unknown setting PORTARIUM_CODEC_ADDRES/);
  });
});
