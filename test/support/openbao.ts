/**
 * A real OpenBao server (the Vault API) for the real-server suites: integrated (raft) storage in a temporary folder,
 * initialised with one unseal key through `sys/init` and unsealed, so a test can seal it and unseal it
 * again as an operator would. Everything else (engines, policies, AppRoles) is set up through the HTTP
 * API with the root token.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort } from './dev-server';
import { type ServerProcess, baoBinary, baseEnv, startProcess, tempDir, waitUntil } from './real-servers';

/** For the server's own slow steps (init, unseal): the test's timeout bounds them anyway. */
const SLOW_CALL_MS = 60_000;

export interface BaoAnswer {
  status: number;
  body: any; // Vault JSON, read per test
}

export class OpenBao {
  rootToken = '';
  private unsealKey = '';

  private constructor(
    readonly url: string,
    readonly proc: ServerProcess,
    private readonly dir: string,
  ) {}

  static async start(): Promise<OpenBao> {
    const dir = tempDir('portarium-openbao-');
    const [port, clusterPort] = [await freePort(), await freePort()];
    const config = path.join(dir, 'config.hcl');
    const dataDir = path.join(dir, 'data');
    fs.mkdirSync(dataDir);
    fs.writeFileSync(
      config,
      [
        `storage "raft" {\n  path = "${dataDir}"\n  node_id = "portarium-test"\n}`,
        `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  cluster_address = "127.0.0.1:${clusterPort}"\n  tls_disable = true\n}`,
        `api_addr = "http://127.0.0.1:${port}"`,
        `cluster_addr = "http://127.0.0.1:${clusterPort}"`,
        'ui = false',
      ].join('\n'),
    );
    const proc = startProcess('openbao', baoBinary(), ['server', `-config=${config}`, '-log-level=warn'], baseEnv(dir), dir);
    const bao = new OpenBao(`http://127.0.0.1:${port}`, proc, dir);
    try {
      // sys/health answers (501, not initialised) as soon as the listener is up.
      await waitUntil(proc, 'answer on sys/health', 30_000, async () => (await bao.api('GET', 'sys/health')).status > 0);
      // Not retried (a second init is refused, and the first one's keys would be lost): given time instead.
      // Raft bootstrap and key generation took over 10 s once, on a loaded 2-core machine (CI: answered 0).
      const init = await bao.api('PUT', 'sys/init', { secret_shares: 1, secret_threshold: 1 }, '', SLOW_CALL_MS);
      if (init.status !== 200) throw new Error(`sys/init answered ${init.status}: ${JSON.stringify(init.body)}`);
      bao.rootToken = init.body.root_token;
      bao.unsealKey = init.body.keys_base64[0];
      await bao.unseal();
    } catch (err) {
      await bao.stop();
      throw err;
    }
    return bao;
  }

  /** One call to the HTTP API; `token` defaults to the root token. Status 0: no answer within `timeoutMs`. */
  async api(method: string, apiPath: string, body?: unknown, token = this.rootToken, timeoutMs = 10_000): Promise<BaoAnswer> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers['x-vault-token'] = token;
    let res: Response;
    try {
      res = await fetch(`${this.url}/v1/${apiPath}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
    } catch {
      return { status: 0, body: undefined };
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: keep the text.
    }
    return { status: res.status, body: parsed };
  }

  /** The call must answer 2xx; its body. */
  async ok(method: string, apiPath: string, body?: unknown, token?: string): Promise<any> {
    const res = await this.api(method, apiPath, body, token);
    if (res.status < 200 || res.status > 299) throw new Error(`openbao ${method} ${apiPath} answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async seal(): Promise<void> {
    await this.ok('PUT', 'sys/seal');
  }

  /** Unseal with the key from init, and wait until the node is active (health 200). */
  async unseal(): Promise<void> {
    const res = await this.api('PUT', 'sys/unseal', { key: this.unsealKey }, '', SLOW_CALL_MS);
    if (res.status !== 200) throw new Error(`openbao PUT sys/unseal answered ${res.status}: ${JSON.stringify(res.body)}`);
    await waitUntil(this.proc, 'active after unseal', 30_000, async () => (await this.api('GET', 'sys/health', undefined, '')).status === 200);
  }

  /** A KV v2 write at `{mount}/data/{secretPath}`. */
  async putSecret(mount: string, secretPath: string, data: Record<string, string>): Promise<void> {
    await this.ok('POST', `${mount}/data/${secretPath}`, { data });
  }

  /** An ACL policy from HCL. */
  async policy(name: string, hcl: string): Promise<void> {
    await this.ok('PUT', `sys/policies/acl/${name}`, { policy: hcl });
  }

  /** An AppRole role (`options`: token_ttl, token_max_ttl, ...) and a fresh secret id for it. */
  async appRole(role: string, policies: string[], options: Record<string, unknown> = {}): Promise<{ roleId: string; secretId: string }> {
    await this.ok('POST', `auth/approle/role/${role}`, { token_policies: policies, ...options });
    const roleId = (await this.ok('GET', `auth/approle/role/${role}/role-id`)).data.role_id as string;
    const secretId = (await this.ok('POST', `auth/approle/role/${role}/secret-id`, {})).data.secret_id as string;
    return { roleId, secretId };
  }

  async stop(): Promise<void> {
    await this.proc.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
