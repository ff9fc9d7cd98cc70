/**
 * A fake Vault (HTTP API v1, shared/reference/runtime-contracts.md §5): KV v2 reads with Vault's
 * envelope and 404 shapes, AppRole and Kubernetes login, token renew-self and lookup-self, per-token
 * path policies, token expiry, and sealing. Errors are `{"errors":[...]}` as Vault sends them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
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
    if (req.method !== 'GET') return { status: 405, body: { errors: ['unsupported operation'] } };
    if (!token.paths.some((p) => path.startsWith(p))) return DENIED;
    const entry = this.kv.get(path);
    if (!entry) return { status: 404, body: { errors: [] } };
    const metadata = { version: entry.version, created_time: new Date().toISOString(), deletion_time: entry.data ? '' : new Date().toISOString(), destroyed: false, custom_metadata: null };
    if (!entry.data) return { status: 404, body: envelope({ data: { data: null, metadata } }) };
    return { status: 200, body: envelope({ data: { data: entry.data, metadata } }) };
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
