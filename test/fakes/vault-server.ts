/**
 * A fake Vault following the HTTP API v1 as OpenBao 2.7.2 (and Vault 1.x) answers it
 * (shared/reference/runtime-contracts.md §5): KV v2 reads with Vault's envelope and 404 shapes,
 * AppRole and Kubernetes login, token lookup-self, renew-self and revoke-self, per-token path policies,
 * token expiry and sealing. Errors are `{"errors":[...]}` as Vault sends them.
 * Tokens as the real token store keeps them (openbao internal/vault/token_store.go, expiration.go,
 * sdk/framework/lease.go CalculateTTL):
 * - renew-self grants the token's TTL again, but never past its max TTL (`token_max_ttl`): near the
 *   end it grants only the seconds left (with Vault's warning), and the token expires at the max TTL.
 * - an expired or revoked token answers 403 `permission denied` everywhere; a path outside a live
 *   token's policy answers 403 with the ACL's multierror text.
 * - lookup-self, renew-self and revoke-self come from the `default` policy; a token created without
 *   it (`noDefaultPolicy`, like `token_no_default_policy`) is refused them.
 * - a token with TTL 0 never expires (root-like): lookup-self shows ttl 0 and expire_time null.
 * - AppRole secret ids may be use-limited (`secretIdNumUses`, like `secret_id_num_uses`): after the
 *   last use the secret id is gone and login answers 400 "invalid role or secret ID".
 * Transit (openbao builtin/logical/transit path_datakey.go, path_decrypt.go, path_rotate.go):
 * `datakey/{plaintext|wrapped}/{key}` (a random 256-bit key, wrapped as `vault:vN:<base64 nonce|ct>`
 * under the latest version), `decrypt/{key}`, `keys/{key}/rotate`; an unknown key answers 400
 * "encryption key not found" ("key not found" on rotate), a path outside the token's policy 403.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { HttpFake, type RecordedRequest, type Reply } from './http-fake';

interface FakeToken {
  /** Path prefixes (after /v1/) this token may use. */
  paths: string[];
  /** The TTL each login or renewal grants; 0: never expires. */
  ttlSeconds: number;
  expiresAt: number;
  /** The token cannot live past this (creation + max TTL); Infinity: no max. */
  maxExpiresAt: number;
  renewable: boolean;
  /** Has the `default` policy (lookup-self, renew-self, revoke-self). */
  defaultPolicy: boolean;
  createdAt: number;
}

export interface TokenOptions {
  /** Like a role's `token_max_ttl`: renewals stop there. */
  maxTtlSeconds?: number;
  /** Like `token_no_default_policy`: no lookup-self, renew-self or revoke-self unless `paths` grant them. */
  noDefaultPolicy?: boolean;
}

export interface FakeRole extends TokenOptions {
  secretId: string;
  paths: string[];
  ttlSeconds: number;
  /** Like `secret_id_num_uses`: logins one secret id serves; unset: unlimited. */
  secretIdNumUses?: number;
}

interface KvEntry {
  data: Record<string, unknown> | null;
  version: number;
}

/** A live token outside its policy: the ACL check's multierror text. */
const DENIED: Reply = { status: 403, body: { errors: ['1 error occurred:\n\t* permission denied\n\n'] } };
/** An expired, revoked or unknown token. */
const BAD_TOKEN: Reply = { status: 403, body: { errors: ['permission denied'] } };
const envelope = (extra: object) => ({ request_id: randomUUID(), lease_id: '', renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: null, auth: null, mount_type: 'kv', ...extra });

export class VaultFake extends HttpFake {
  readonly tokens = new Map<string, FakeToken>();
  readonly approles = new Map<string, FakeRole>();
  readonly k8sRoles = new Map<string, { jwt: string; paths: string[]; ttlSeconds: number } & TokenOptions>();
  /** Logins each AppRole secret id has served, by `role\0secret id`. */
  private readonly secretIdUses = new Map<string, number>();
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
  token(paths: string[], ttlSeconds = 3600, renewable = true, options: TokenOptions = {}): string {
    const token = `hvs.${randomBytes(18).toString('base64url')}`;
    const now = Date.now();
    const maxExpiresAt = options.maxTtlSeconds ? now + options.maxTtlSeconds * 1000 : Infinity;
    const expiresAt = ttlSeconds > 0 ? Math.min(now + ttlSeconds * 1000, maxExpiresAt) : Infinity;
    this.tokens.set(token, { paths, ttlSeconds, expiresAt, maxExpiresAt, renewable: ttlSeconds > 0 && renewable, defaultPolicy: !options.noDefaultPolicy, createdAt: now });
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
    if (!token) return BAD_TOKEN;
    // The default policy grants these; a token without it needs them in its own paths.
    if (/^auth\/token\/(lookup|renew|revoke)-self$/.test(path) && !token.defaultPolicy && !token.paths.some((p) => path.startsWith(p))) return DENIED;
    if (path === 'auth/token/lookup-self' && req.method === 'GET') return this.lookup(req, token);
    if (path === 'auth/token/renew-self' && (req.method === 'POST' || req.method === 'PUT')) return this.renew(req, token);
    if (path === 'auth/token/revoke-self' && (req.method === 'POST' || req.method === 'PUT')) {
      this.tokens.delete(String(req.headers['x-vault-token']));
      return { status: 204 };
    }
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

  private lookup(req: RecordedRequest, token: FakeToken): Reply {
    const forever = token.expiresAt === Infinity;
    const data = {
      accessor: 'fake-accessor', creation_time: Math.floor(token.createdAt / 1000), creation_ttl: token.ttlSeconds, display_name: 'approle', entity_id: '',
      expire_time: forever ? null : new Date(token.expiresAt).toISOString(), explicit_max_ttl: 0, id: String(req.headers['x-vault-token']),
      issue_time: new Date(token.createdAt).toISOString(), meta: null, num_uses: 0, orphan: true, path: 'auth/token/create',
      policies: token.defaultPolicy ? ['default', 'portarium'] : ['portarium'], renewable: token.renewable,
      ttl: forever ? 0 : Math.max(0, Math.floor((token.expiresAt - Date.now()) / 1000)), type: 'service',
    };
    return { status: 200, body: envelope({ mount_type: 'token', data }) };
  }

  /** CalculateTTL: the token's TTL again, capped at what its max TTL leaves (whole seconds, as Vault truncates). */
  private renew(req: RecordedRequest, token: FakeToken): Reply {
    if (!token.renewable) return { status: 400, body: { errors: ['lease is not renewable'] } };
    const now = Date.now();
    const left = Math.floor((token.maxExpiresAt - now) / 1000);
    if (left <= 0) return { status: 500, body: { errors: ['past the max TTL, cannot renew'] } };
    const granted = Math.min(token.ttlSeconds, left);
    token.expiresAt = Math.min(now + granted * 1000, token.maxExpiresAt);
    const warnings = granted < token.ttlSeconds ? [`TTL of "${token.ttlSeconds}s" exceeded the effective max_ttl of "${left}s"; TTL value is capped accordingly`] : null;
    return { status: 200, body: { ...this.authBlock(String(req.headers['x-vault-token']), token, {}, granted), warnings } };
  }

  private authBlock(clientToken: string, token: FakeToken, metadata: object = {}, leaseSeconds = token.ttlSeconds) {
    const policies = token.defaultPolicy ? ['default', 'portarium'] : ['portarium'];
    return envelope({
      auth: { client_token: clientToken, accessor: randomUUID(), policies, token_policies: policies, metadata, lease_duration: leaseSeconds, renewable: token.renewable, entity_id: randomUUID(), token_type: 'service', orphan: true, num_uses: 0 },
    });
  }

  private approleLogin(req: RecordedRequest): Reply {
    const body = (req.json ?? {}) as { role_id?: string; secret_id?: string };
    if (!body.role_id) return { status: 400, body: { errors: ['missing role_id'] } };
    if (!body.secret_id) return { status: 400, body: { errors: ['missing secret_id'] } };
    const role = this.approles.get(body.role_id);
    if (!role || role.secretId !== body.secret_id) return { status: 400, body: { errors: ['invalid role or secret ID'] } };
    // A use-limited secret id is deleted by its last use; later logins with it fail like an unknown one.
    const key = `${body.role_id}\0${body.secret_id}`;
    const used = this.secretIdUses.get(key) ?? 0;
    if (role.secretIdNumUses && used >= role.secretIdNumUses) return { status: 400, body: { errors: ['invalid role or secret ID'] } };
    this.secretIdUses.set(key, used + 1);
    const clientToken = this.token(role.paths, role.ttlSeconds, true, role);
    return { status: 200, body: this.authBlock(clientToken, this.tokens.get(clientToken)!, { role_name: body.role_id }) };
  }

  private k8sLogin(req: RecordedRequest): Reply {
    const body = (req.json ?? {}) as { role?: string; jwt?: string };
    const role = body.role ? this.k8sRoles.get(body.role) : undefined;
    if (!role) return { status: 400, body: { errors: [`invalid role name "${body.role ?? ''}"`] } };
    if (role.jwt !== body.jwt) return { status: 403, body: { errors: ['permission denied'] } };
    const clientToken = this.token(role.paths, role.ttlSeconds, true, role);
    return { status: 200, body: this.authBlock(clientToken, this.tokens.get(clientToken)!, { role: body.role, service_account_name: 'portarium', service_account_namespace: 'ops' }) };
  }
}
