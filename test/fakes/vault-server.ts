/**
 * A fake Vault (HTTP API v1, shared/reference/runtime-contracts.md §5): KV v2 reads with Vault's
 * envelope and 404 shapes, AppRole and Kubernetes login, token renew-self and lookup-self, per-token
 * path policies, token expiry, and sealing. Errors are `{"errors":[...]}` as Vault sends them.
 * Transit (openbao builtin/logical/transit path_datakey.go, path_decrypt.go, path_rotate.go):
 * `datakey/{plaintext|wrapped}/{key}` (a random 256-bit key, wrapped as `vault:vN:<base64 nonce|ct>`
 * under the latest version), `decrypt/{key}`, `keys/{key}/rotate`; an unknown key answers 400
 * "encryption key not found" ("key not found" on rotate), a path outside the token's policy 403.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { HttpFake, type RecordedRequest, type Reply } from './http-fake';

interface FakeToken {
  /** Path prefixes (after /v1/) this token may read. */
  paths: string[];
  ttlSeconds: number;
  expiresAt: number;
  renewable: boolean;
}

interface KvEntry {
  data: Record<string, unknown> | null;
  version: number;
}

const DENIED: Reply = { status: 403, body: { errors: ['1 error occurred:\n\t* permission denied\n\n'] } };
const envelope = (extra: object) => ({ request_id: randomUUID(), lease_id: '', renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: null, auth: null, mount_type: 'kv', ...extra });

export class VaultFake extends HttpFake {
  readonly tokens = new Map<string, FakeToken>();
  readonly approles = new Map<string, { secretId: string; paths: string[]; ttlSeconds: number }>();
  readonly k8sRoles = new Map<string, { jwt: string; paths: string[]; ttlSeconds: number }>();
  private readonly kv = new Map<string, KvEntry>();
  /** Transit keys by `mount/name`: version N is entry N-1. */
  readonly transit = new Map<string, Buffer[]>();
  sealed = false;

  constructor() {
    let self: VaultFake | undefined;
    super((req) => self!.answer(req));
    self = this;
  }

  /** Issue a token allowed to read under `paths` (e.g. `secret/data/portarium/ws-a/`). */
  token(paths: string[], ttlSeconds = 3600, renewable = true): string {
    const token = `hvs.${randomBytes(18).toString('base64url')}`;
    this.tokens.set(token, { paths, ttlSeconds, expiresAt: Date.now() + ttlSeconds * 1000, renewable });
    return token;
  }

  /** Store a KV v2 secret at `mount/data/path` (given as `mount/path`). */
  put(mountAndPath: string, data: Record<string, unknown>): void {
    const [mount, ...rest] = mountAndPath.split('/');
    const key = `${mount}/data/${rest.join('/')}`;
    this.kv.set(key, { data, version: (this.kv.get(key)?.version ?? 0) + 1 });
  }

  /** Soft-delete the current version, as `vault kv delete` does. */
  remove(mountAndPath: string): void {
    const [mount, ...rest] = mountAndPath.split('/');
    const entry = this.kv.get(`${mount}/data/${rest.join('/')}`);
    if (entry) entry.data = null;
  }

  /** Create a transit key (as `vault write -f transit/keys/<name>` would). */
  createTransitKey(name: string, mount = 'transit'): void {
    this.transit.set(`${mount}/${name}`, [randomBytes(32)]);
  }

  seal(): void {
    this.sealed = true;
  }

  private answer(req: RecordedRequest): Reply {
    const path = decodeURIComponent(req.path.replace(/^\/v1\//, ''));
    if (path === 'sys/health') return { status: this.sealed ? 503 : 200, body: { initialized: true, sealed: this.sealed, standby: false, version: '1.17.0-fake' } };
    if (this.sealed) return { status: 503, body: { errors: ['Vault is sealed'] } };
    if (path === 'auth/approle/login' && req.method === 'POST') return this.approleLogin(req);
    if (path === 'auth/kubernetes/login' && req.method === 'POST') return this.k8sLogin(req);
    const token = this.live(req);
    if (!token) return DENIED;
    if (path === 'auth/token/lookup-self') return { status: 200, body: envelope({ data: { ttl: Math.max(0, Math.round((token.expiresAt - Date.now()) / 1000)), renewable: token.renewable, policies: ['default'] } }) };
    if (path === 'auth/token/renew-self' && req.method === 'POST') return this.renew(req, token);
    if (req.method === 'POST' || req.method === 'PUT') {
      const transit = /^(.+)\/(?:(datakey)\/([^/]+)|(decrypt))\/([^/]+)$/.exec(path) ?? /^(.+)\/keys\/([^/]+)\/(rotate)$/.exec(path);
      if (transit) {
        if (!token.paths.some((p) => path.startsWith(p))) return DENIED;
        return this.transitOp(transit, req);
      }
    }
    if (req.method !== 'GET') return { status: 405, body: { errors: ['unsupported operation'] } };
    if (!token.paths.some((p) => path.startsWith(p))) return DENIED;
    const entry = this.kv.get(path);
    if (!entry) return { status: 404, body: { errors: [] } };
    const metadata = { version: entry.version, created_time: new Date().toISOString(), deletion_time: entry.data ? '' : new Date().toISOString(), destroyed: false, custom_metadata: null };
    if (!entry.data) return { status: 404, body: envelope({ data: { data: null, metadata } }) };
    return { status: 200, body: envelope({ data: { data: entry.data, metadata } }) };
  }

  private transitOp(m: RegExpExecArray, req: RecordedRequest): Reply {
    const bad = (message: string): Reply => ({ status: 400, body: { errors: [message] } });
    const body = (req.json ?? {}) as { ciphertext?: unknown; bits?: unknown };
    if (m[3] === 'rotate') {
      const versions = this.transit.get(`${m[1]}/${m[2]}`);
      if (!versions) return bad('key not found');
      versions.push(randomBytes(32));
      const keys = Object.fromEntries(versions.map((_, i) => [String(i + 1), Math.floor(Date.now() / 1000)]));
      return { status: 200, body: envelope({ mount_type: 'transit', data: { name: m[2], type: 'aes256-gcm96', latest_version: versions.length, min_decryption_version: 1, min_encryption_version: 0, keys } }) };
    }
    const [mount, name] = [m[1], m[5]];
    const versions = this.transit.get(`${mount}/${name}`);
    if (m[2] === 'datakey') {
      if (m[3] !== 'plaintext' && m[3] !== 'wrapped') return bad("Invalid path, must be 'plaintext' or 'wrapped'");
      if (!versions) return bad('encryption key not found');
      const bits = body.bits ?? 256;
      if (bits !== 128 && bits !== 256 && bits !== 512) return bad('invalid bit length');
      const dataKey = randomBytes(bits / 8);
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', versions[versions.length - 1], nonce);
      const sealed = Buffer.concat([nonce, cipher.update(dataKey.toString('base64')), cipher.final(), cipher.getAuthTag()]);
      const data: Record<string, unknown> = { ciphertext: `vault:v${versions.length}:${sealed.toString('base64')}`, key_version: versions.length };
      if (m[3] === 'plaintext') data.plaintext = dataKey.toString('base64');
      return { status: 200, body: envelope({ mount_type: 'transit', data }) };
    }
    if (!versions) return bad('encryption key not found');
    if (typeof body.ciphertext !== 'string' || !body.ciphertext) return bad('missing ciphertext to decrypt');
    const parts = /^vault:v(\d+):([A-Za-z0-9+/=]+)$/.exec(body.ciphertext);
    if (!parts) return bad('invalid ciphertext: no prefix');
    const key = versions[Number(parts[1]) - 1];
    if (!key) return bad('invalid key version');
    const sealed = Buffer.from(parts[2], 'base64');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      const plaintext = Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]).toString('utf8');
      return { status: 200, body: envelope({ mount_type: 'transit', data: { plaintext } }) };
    } catch {
      return bad('cipher: message authentication failed');
    }
  }

  private live(req: RecordedRequest): FakeToken | undefined {
    const token = this.tokens.get(String(req.headers['x-vault-token'] ?? ''));
    return token && token.expiresAt > Date.now() ? token : undefined;
  }

  private renew(req: RecordedRequest, token: FakeToken): Reply {
    if (!token.renewable) return { status: 400, body: { errors: ['lease is not renewable'] } };
    token.expiresAt = Date.now() + token.ttlSeconds * 1000;
    return { status: 200, body: this.authBlock(String(req.headers['x-vault-token']), token) };
  }

  private authBlock(clientToken: string, token: FakeToken, metadata: object = {}) {
    return envelope({
      auth: { client_token: clientToken, accessor: randomUUID(), policies: ['default', 'portarium'], token_policies: ['default', 'portarium'], metadata, lease_duration: token.ttlSeconds, renewable: token.renewable, entity_id: randomUUID(), token_type: 'service', orphan: true, num_uses: 0 },
    });
  }

  private approleLogin(req: RecordedRequest): Reply {
    const body = (req.json ?? {}) as { role_id?: string; secret_id?: string };
    if (!body.role_id) return { status: 400, body: { errors: ['missing role_id'] } };
    if (!body.secret_id) return { status: 400, body: { errors: ['missing secret_id'] } };
    const role = this.approles.get(body.role_id);
    if (!role || role.secretId !== body.secret_id) return { status: 400, body: { errors: ['invalid role or secret ID'] } };
    const clientToken = this.token(role.paths, role.ttlSeconds);
    return { status: 200, body: this.authBlock(clientToken, this.tokens.get(clientToken)!, { role_name: body.role_id }) };
  }

  private k8sLogin(req: RecordedRequest): Reply {
    const body = (req.json ?? {}) as { role?: string; jwt?: string };
    const role = body.role ? this.k8sRoles.get(body.role) : undefined;
    if (!role) return { status: 400, body: { errors: [`invalid role name "${body.role ?? ''}"`] } };
    if (role.jwt !== body.jwt) return { status: 403, body: { errors: ['permission denied'] } };
    const clientToken = this.token(role.paths, role.ttlSeconds);
    return { status: 200, body: this.authBlock(clientToken, this.tokens.get(clientToken)!, { role: body.role, service_account_name: 'portarium', service_account_namespace: 'ops' }) };
  }
}
