/**
 * Worker and client configuration from the environment, checked with one strict zod schema.
 * Precedence: explicit overrides, then the environment, then defaults. A bad value throws a
 * `ConfigError` naming the variable, what was expected and what was given; an unknown `PORTARIUM_*`
 * variable is refused too (it is almost always a typo). Load once at the entry point and pass it down.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { WORKSPACE_ID_PATTERN } from '../workflows/ids';
import type { VaultOptions } from '../activities/secrets/vault';
import { type McpServerConfig, mcpServersFileSchema } from '../activities/runtimes/mcp';

/** Repository root (dist/workers/ or workers/ -> root). */
export const PROJECT_ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');

const blankIsUnset = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const str = () => z.preprocess(blankIsUnset, z.string().trim().optional());
const posInt = () => z.preprocess(blankIsUnset, z.coerce.number().int().positive().optional());
const bool = () =>
  z.preprocess(blankIsUnset, z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1').optional());
const list = () =>
  z.preprocess(
    blankIsUnset,
    z.string().transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean))
      // Workspace ids, and isolation tier names (policies/isolation.ts), which are a subset of them.
      .pipe(z.array(z.string().regex(WORKSPACE_ID_PATTERN, 'expected comma-separated lower-case names (letters, digits, _ or -)'))).optional(),
  );
const duration = () => z.preprocess(blankIsUnset, z.string().regex(/^\d+(ms|s|m|h)$/, 'expected e.g. 500ms, 30s, 5m').optional());

const EnvSchema = z.object({
  TEMPORAL_ADDRESS: str(),
  TEMPORAL_NAMESPACE: str(),
  TEMPORAL_API_KEY: str(),
  TEMPORAL_TLS: bool(),
  TEMPORAL_TLS_CERT_PATH: str(),
  TEMPORAL_TLS_KEY_PATH: str(),
  TEMPORAL_TLS_CA_PATH: str(),
  TEMPORAL_TLS_SERVER_NAME: str(),
  PORTARIUM_TASK_QUEUE: str(),
  // Isolation: which pools this worker serves (policies/isolation.ts). Unset: the shared queue only.
  PORTARIUM_WORKSPACES: list(),
  PORTARIUM_TIERS: list(),
  PORTARIUM_SERVE_SHARED: bool(),
  PORTARIUM_POLICY_DIR: str(),
  PORTARIUM_DATA_DIR: str(),
  PORTARIUM_SECRETS_DIR: str(),
  PORTARIUM_ECHO_LEDGER: z.preprocess(blankIsUnset, z.enum(['memory', 'file']).optional()),
  // 0 turns the sticky cache off (every task replays); 1 is refused rather than silently raised to 2 by the SDK.
  PORTARIUM_MAX_CACHED_WORKFLOWS: z.preprocess(
    blankIsUnset,
    z.coerce.number().int().min(0).max(1_000_000).refine((n) => n !== 1, 'expected 0 (no cache) or at least 2').optional(),
  ),
  // The workflow thread's V8 heap in MiB (workers/cache-size.ts); the sticky cache is sized from it.
  PORTARIUM_WORKFLOW_HEAP_MB: z.preprocess(blankIsUnset, z.coerce.number().int().min(64).max(65_536).optional()),
  PORTARIUM_MAX_CONCURRENT_ACTIVITIES: posInt(),
  PORTARIUM_MAX_CONCURRENT_WORKFLOW_TASKS: posInt(),
  PORTARIUM_SHUTDOWN_GRACE: duration(),
  PORTARIUM_HEARTBEAT_THROTTLE: duration(),
  PORTARIUM_LOG_LEVEL: z.preprocess(blankIsUnset, z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).optional()),
  PORTARIUM_CHECK_SEARCH_ATTRIBUTES: bool(),
  // Observability: Temporal's and Portarium's metrics on a Prometheus endpoint; log lines as JSON or text.
  PORTARIUM_METRICS_ADDRESS: z.preprocess(
    blankIsUnset,
    z.string().trim().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9464')
      .refine((a) => Number(a.slice(a.lastIndexOf(':') + 1)) <= 65535, 'port must be at most 65535').optional(),
  ),
  PORTARIUM_LOG_FORMAT: z.preprocess(blankIsUnset, z.enum(['json', 'text']).optional()),
  // Evidence: append-only files under the data dir, or PostgreSQL; tree heads signed with an Ed25519 key.
  PORTARIUM_EVIDENCE_SINK: z.preprocess(blankIsUnset, z.enum(['file', 'postgres']).optional()),
  PORTARIUM_EVIDENCE_DIR: str(),
  PORTARIUM_EVIDENCE_DATABASE_URL: str(),
  PORTARIUM_EVIDENCE_KEY_FILE: str(),
  // Vault: the standard VAULT_* names, plus Portarium's choices of auth method and KV location.
  VAULT_ADDR: str(),
  VAULT_TOKEN: str(),
  VAULT_NAMESPACE: str(),
  PORTARIUM_VAULT_AUTH: z.preprocess(blankIsUnset, z.enum(['token', 'approle', 'kubernetes']).optional()),
  PORTARIUM_VAULT_ROLE_ID: str(),
  PORTARIUM_VAULT_SECRET_ID: str(),
  PORTARIUM_VAULT_SECRET_ID_FILE: str(),
  PORTARIUM_VAULT_K8S_ROLE: str(),
  PORTARIUM_VAULT_K8S_TOKEN_PATH: str(),
  PORTARIUM_VAULT_AUTH_MOUNT: str(),
  PORTARIUM_VAULT_KV_MOUNT: str(),
  PORTARIUM_VAULT_KV_PREFIX: str(),
  // Payload encryption: the local keyring file (embedded default), Vault transit data keys, or off.
  PORTARIUM_PAYLOAD_ENCRYPTION: z.preprocess(blankIsUnset, z.enum(['keyring', 'vault', 'off']).optional()),
  PORTARIUM_KEYRING_FILE: str(),
  // Development only: create a missing workspace key on first use (one machine, one keyring).
  PORTARIUM_DEV_CREATE_KEYS: bool(),
  PORTARIUM_VAULT_TRANSIT_MOUNT: str(),
  // The optional codec server (portarium codec-server): where it listens, its tokens and the Web UI origin.
  PORTARIUM_CODEC_ADDRESS: z.preprocess(
    blankIsUnset,
    z.string().trim().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8888').optional(),
  ),
  PORTARIUM_CODEC_TOKEN: str(),
  PORTARIUM_CODEC_TOKENS_FILE: str(),
  PORTARIUM_CODEC_CORS_ORIGINS: str(),
  // Emergency revocation: how often workers re-read the registry, and its workflow id (one per namespace).
  PORTARIUM_REVOCATION_REFRESH: duration(),
  // The `mcp` runtime: a JSON file `{"mcpServers": {...}}` naming the MCP servers this worker may call.
  PORTARIUM_MCP_SERVERS: str(),
  PORTARIUM_REVOCATION_REGISTRY: z.preprocess(blankIsUnset, z.string().trim().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/, 'expected a workflow id without : or /').optional()),
});

export interface PortariumConfig {
  temporal: {
    address: string;
    namespace: string;
    apiKey?: string;
    tls?: { serverNameOverride?: string; caPath?: string; certPath?: string; keyPath?: string };
  };
  /** The shared task queue, and the base of the dedicated and tier queues (`<base>.ws.<id>`, `<base>.tier.<name>`). */
  taskQueue: string;
  /** The pools this worker polls; the client ignores it. */
  serve: ServeConfig;
  policyDir: string;
  dataDir: string;
  /** Embedded secret store: one `<workspace>.json` per workspace (when Vault is not configured). */
  secretsDir: string;
  echoLedger: 'memory' | 'file';
  /** Runs kept in the sticky cache; unset: derived from the workflow heap (workers/cache-size.ts). */
  maxCachedWorkflows?: number;
  /** Heap limit of the workflow thread in MiB; unset: V8's default, at most 1024 (workers/cache-size.ts). */
  workflowHeapMb?: number;
  maxConcurrentActivities?: number;
  maxConcurrentWorkflowTasks?: number;
  shutdownGrace: string;
  heartbeatThrottle: string;
  logLevel: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** Refuse to start when the Portarium search attributes are not registered on the namespace. */
  checkSearchAttributes: boolean;
  /** `host:port` of the Prometheus endpoint (`/metrics`); off when unset. */
  metricsAddress?: string;
  /** Worker log lines: one JSON object each (default), or Temporal's text format. */
  logFormat: 'json' | 'text';
  /** Per-workspace runtime credentials from Vault; when absent, the secrets files in `secretsDir` serve. */
  vault?: VaultOptions;
  evidence: EvidenceConfig;
  /** How Temporal payloads are encrypted (workers/codec/codec.ts). */
  payloadEncryption: PayloadEncryptionConfig;
  /** The optional codec server for the Web UI and CLI (off unless started). */
  codecServer: CodecServerConfig;
  /** Emergency revocation (docs/operators.md#emergency-revocation). */
  revocation: RevocationConfig;
  /** MCP servers of the `mcp` runtime (PORTARIUM_MCP_SERVERS); unset: no `mcp` runtime. */
  mcpServers?: Record<string, McpServerConfig>;
}

export interface RevocationConfig {
  /** Workflow id of the namespace's revocation registry. @default portarium.revocations */
  registryId: string;
  /** How often a dispatching worker re-reads the registry, in ms (PORTARIUM_REVOCATION_REFRESH). @default 2000 */
  refreshMs: number;
}

export type PayloadEncryptionConfig =
  /**
   * `createKeys`: create a workspace's first key on its first payload. Off (production) unless
   * PORTARIUM_DEV_CREATE_KEYS says so: keys are made once with `portarium keys create` and the one
   * keyring is shared, because two processes that each created `ops/k1` cannot read each other's payloads.
   */
  | { kind: 'keyring'; file: string; createKeys: boolean }
  | { kind: 'vault'; mount: string }
  | { kind: 'off' };

export interface CodecServerConfig {
  /** @default 127.0.0.1:8888 */
  address: string;
  /** Bearer token for every workspace (never echoed). */
  token?: string;
  /** JSON file `{"tokens":[{"token","workspaces":["a"]}]}`: tokens scoped to workspaces. */
  tokensFile?: string;
  /** Origins allowed by CORS. @default http://localhost:8233 and http://127.0.0.1:8233 */
  corsOrigins: string[];
}

export interface ServeConfig {
  /** Workspaces whose policy says `isolation: dedicated`, served on their own queues. */
  workspaces: string[];
  /** Isolation tiers (`isolation: { tier }`), each one queue. */
  tiers: string[];
  /** Also poll the shared queue. @default true when no workspaces or tiers are named, else false */
  shared: boolean;
}

export interface EvidenceConfig {
  sink: { kind: 'file'; dir: string } | { kind: 'postgres'; url: string };
  /** Ed25519 seed (hex) that signs tree heads; the embedded default creates it on first start. */
  keyFile: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const KNOWN = new Set(Object.keys(EnvSchema.shape));
/** Settings of the development tools (temporal-dev.sh, the test harness), not of a worker: a shell that
 * exports them for the tests must still start workers and the CLI. */
const TOOLING = new Set(['PORTARIUM_TOOLS_DIR', 'PORTARIUM_REAL_SERVERS_DIR', 'PORTARIUM_PG_BIN']);

/** Parse configuration from `env` (default `process.env`), with `overrides` winning over it. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<PortariumConfig> = {}): PortariumConfig {
  const unknown = Object.keys(env).filter((k) => k.startsWith('PORTARIUM_') && !KNOWN.has(k) && !TOOLING.has(k));
  if (unknown.length) throw new ConfigError(`unknown setting ${unknown.join(', ')} (known: ${[...KNOWN].filter((k) => k.startsWith('PORTARIUM_')).join(', ')})`);
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const name = String(i.path[0]);
      // Credentials are never echoed back, even when malformed.
      const given = /TOKEN|SECRET|KEY|URL/.test(name) ? '(hidden)' : JSON.stringify(env[name]);
      return `${name}: ${i.message} (given ${given})`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  const wantsTls = e.TEMPORAL_TLS ?? Boolean(e.TEMPORAL_API_KEY || e.TEMPORAL_TLS_CERT_PATH || e.TEMPORAL_TLS_CA_PATH);
  if (Boolean(e.TEMPORAL_TLS_CERT_PATH) !== Boolean(e.TEMPORAL_TLS_KEY_PATH)) {
    throw new ConfigError('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH: set both for mTLS, or neither');
  }
  for (const name of ['TEMPORAL_TLS_CERT_PATH', 'TEMPORAL_TLS_KEY_PATH', 'TEMPORAL_TLS_CA_PATH'] as const) {
    const file = e[name];
    if (file && !fs.existsSync(file)) throw new ConfigError(`${name}: no file at ${file}`);
  }
  const vault = vaultOptions(e);
  const dataDir = path.resolve(e.PORTARIUM_DATA_DIR ?? path.join(PROJECT_ROOT, '.data'));
  return {
    temporal: {
      address: e.TEMPORAL_ADDRESS ?? 'localhost:7233',
      namespace: e.TEMPORAL_NAMESPACE ?? 'default',
      apiKey: e.TEMPORAL_API_KEY,
      tls: wantsTls
        ? { serverNameOverride: e.TEMPORAL_TLS_SERVER_NAME, caPath: e.TEMPORAL_TLS_CA_PATH, certPath: e.TEMPORAL_TLS_CERT_PATH, keyPath: e.TEMPORAL_TLS_KEY_PATH }
        : undefined,
    },
    taskQueue: e.PORTARIUM_TASK_QUEUE ?? 'portarium',
    serve: serveConfig(e),
    policyDir: path.resolve(e.PORTARIUM_POLICY_DIR ?? path.join(PROJECT_ROOT, 'policies', 'sets')),
    dataDir,
    secretsDir: path.resolve(e.PORTARIUM_SECRETS_DIR ?? path.join(dataDir, 'secrets')),
    echoLedger: e.PORTARIUM_ECHO_LEDGER ?? 'file',
    maxCachedWorkflows: e.PORTARIUM_MAX_CACHED_WORKFLOWS,
    workflowHeapMb: e.PORTARIUM_WORKFLOW_HEAP_MB,
    maxConcurrentActivities: e.PORTARIUM_MAX_CONCURRENT_ACTIVITIES,
    maxConcurrentWorkflowTasks: e.PORTARIUM_MAX_CONCURRENT_WORKFLOW_TASKS,
    shutdownGrace: e.PORTARIUM_SHUTDOWN_GRACE ?? '30s',
    heartbeatThrottle: e.PORTARIUM_HEARTBEAT_THROTTLE ?? '1s',
    logLevel: e.PORTARIUM_LOG_LEVEL ?? 'INFO',
    checkSearchAttributes: e.PORTARIUM_CHECK_SEARCH_ATTRIBUTES ?? true,
    metricsAddress: e.PORTARIUM_METRICS_ADDRESS,
    logFormat: e.PORTARIUM_LOG_FORMAT ?? 'json',
    vault,
    evidence: evidenceConfig(e, dataDir),
    payloadEncryption: payloadEncryptionConfig(e, dataDir, vault),
    codecServer: {
      address: e.PORTARIUM_CODEC_ADDRESS ?? '127.0.0.1:8888',
      token: e.PORTARIUM_CODEC_TOKEN,
      tokensFile: e.PORTARIUM_CODEC_TOKENS_FILE && path.resolve(e.PORTARIUM_CODEC_TOKENS_FILE),
      corsOrigins: e.PORTARIUM_CODEC_CORS_ORIGINS ? e.PORTARIUM_CODEC_CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean) : ['http://localhost:8233', 'http://127.0.0.1:8233'],
    },
    revocation: {
      registryId: e.PORTARIUM_REVOCATION_REGISTRY ?? 'portarium.revocations',
      refreshMs: e.PORTARIUM_REVOCATION_REFRESH ? durationToMs(e.PORTARIUM_REVOCATION_REFRESH) : 2_000,
    },
    ...(e.PORTARIUM_MCP_SERVERS && { mcpServers: readMcpServers(e.PORTARIUM_MCP_SERVERS) }),
    ...overrides,
  };
}

/** `500ms`, `2s`, `5m`, `1h` in ms (the `duration()` schema checked the form). */
function durationToMs(d: string): number {
  const [, n, unit] = /^(\d+)(ms|s|m|h)$/.exec(d)!;
  return Number(n) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
}

type Env = z.infer<typeof EnvSchema>;

function serveConfig(e: Env): ServeConfig {
  const workspaces = [...new Set(e.PORTARIUM_WORKSPACES ?? [])];
  const tiers = [...new Set(e.PORTARIUM_TIERS ?? [])];
  const shared = e.PORTARIUM_SERVE_SHARED ?? (workspaces.length === 0 && tiers.length === 0);
  if (!shared && !workspaces.length && !tiers.length) throw new ConfigError('PORTARIUM_SERVE_SHARED=false leaves this worker nothing to poll: name PORTARIUM_WORKSPACES or PORTARIUM_TIERS');
  return { workspaces, tiers, shared };
}

function evidenceConfig(e: Env, dataDir: string): EvidenceConfig {
  const kind = e.PORTARIUM_EVIDENCE_SINK ?? (e.PORTARIUM_EVIDENCE_DATABASE_URL ? 'postgres' : 'file');
  const keyFile = path.resolve(e.PORTARIUM_EVIDENCE_KEY_FILE ?? path.join(dataDir, 'keys', 'evidence-ed25519.key'));
  if (kind === 'file') {
    if (e.PORTARIUM_EVIDENCE_DATABASE_URL) throw new ConfigError('PORTARIUM_EVIDENCE_DATABASE_URL is set but PORTARIUM_EVIDENCE_SINK is file');
    return { sink: { kind, dir: path.resolve(e.PORTARIUM_EVIDENCE_DIR ?? path.join(dataDir, 'evidence')) }, keyFile };
  }
  const url = need(e, 'PORTARIUM_EVIDENCE_DATABASE_URL', 'for the postgres evidence sink');
  // Never echo the URL back: it usually carries the password.
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError('PORTARIUM_EVIDENCE_DATABASE_URL: expected a postgres:// URL (given value hidden)');
  return { sink: { kind, url }, keyFile };
}

function payloadEncryptionConfig(e: Env, dataDir: string, vault: VaultOptions | undefined): PayloadEncryptionConfig {
  const kind = e.PORTARIUM_PAYLOAD_ENCRYPTION ?? 'keyring';
  if (kind !== 'keyring' && e.PORTARIUM_KEYRING_FILE) throw new ConfigError(`PORTARIUM_KEYRING_FILE is set but PORTARIUM_PAYLOAD_ENCRYPTION is ${kind}`);
  if (kind !== 'vault' && e.PORTARIUM_VAULT_TRANSIT_MOUNT) throw new ConfigError(`PORTARIUM_VAULT_TRANSIT_MOUNT is set but PORTARIUM_PAYLOAD_ENCRYPTION is ${kind}`);
  if (kind !== 'keyring' && e.PORTARIUM_DEV_CREATE_KEYS) throw new ConfigError(`PORTARIUM_DEV_CREATE_KEYS is set but PORTARIUM_PAYLOAD_ENCRYPTION is ${kind} (only the local keyring creates keys)`);
  if (kind === 'off') return { kind };
  if (kind === 'keyring') return { kind, file: path.resolve(e.PORTARIUM_KEYRING_FILE ?? path.join(dataDir, 'keys', 'payload-keyring.json')), createKeys: e.PORTARIUM_DEV_CREATE_KEYS ?? false };
  if (!vault) throw new ConfigError('PORTARIUM_PAYLOAD_ENCRYPTION: vault needs VAULT_ADDR and a Vault login (see docs/encryption.md)');
  const mount = e.PORTARIUM_VAULT_TRANSIT_MOUNT ?? 'transit';
  if (!/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/.test(mount)) throw new ConfigError(`PORTARIUM_VAULT_TRANSIT_MOUNT: expected a mount path like transit (given ${JSON.stringify(mount)})`);
  return { kind, mount };
}

function need(e: Env, name: keyof Env, why: string): string {
  const v = e[name];
  if (typeof v !== 'string' || !v) throw new ConfigError(`${name}: required ${why}`);
  return v;
}

/** Vault settings, or undefined when VAULT_ADDR is unset (the embedded secrets files then serve). */
function vaultOptions(e: Env): VaultOptions | undefined {
  if (!e.VAULT_ADDR) {
    const stray = (['PORTARIUM_VAULT_AUTH', 'PORTARIUM_VAULT_ROLE_ID', 'PORTARIUM_VAULT_K8S_ROLE'] as const).find((k) => e[k]);
    if (stray) throw new ConfigError(`${stray} is set but VAULT_ADDR is not; set VAULT_ADDR to use Vault`);
    return undefined;
  }
  if (!/^https?:\/\/[^\s/]+/.test(e.VAULT_ADDR)) throw new ConfigError(`VAULT_ADDR: expected an http(s) URL (given ${JSON.stringify(e.VAULT_ADDR)})`);
  const method = e.PORTARIUM_VAULT_AUTH ?? (e.VAULT_TOKEN ? 'token' : undefined);
  const base = { address: e.VAULT_ADDR, namespace: e.VAULT_NAMESPACE, kvMount: e.PORTARIUM_VAULT_KV_MOUNT ?? 'secret', kvPrefix: e.PORTARIUM_VAULT_KV_PREFIX ?? 'portarium' };
  const mount = e.PORTARIUM_VAULT_AUTH_MOUNT;
  switch (method) {
    case 'token':
      return { ...base, auth: { method, token: need(e, 'VAULT_TOKEN', 'for token auth') } };
    case 'approle': {
      const roleId = need(e, 'PORTARIUM_VAULT_ROLE_ID', 'for approle auth');
      // A file is checked now and read again at every login, so a rotated or use-limited secret id needs no restart.
      if (e.PORTARIUM_VAULT_SECRET_ID_FILE) {
        if (e.PORTARIUM_VAULT_SECRET_ID) throw new ConfigError('PORTARIUM_VAULT_SECRET_ID and PORTARIUM_VAULT_SECRET_ID_FILE: set one of them');
        const secretIdFile = path.resolve(e.PORTARIUM_VAULT_SECRET_ID_FILE);
        readSecretFile(secretIdFile);
        return { ...base, auth: { method, roleId, secretIdFile, mount } };
      }
      return { ...base, auth: { method, roleId, secretId: need(e, 'PORTARIUM_VAULT_SECRET_ID', 'for approle auth (or PORTARIUM_VAULT_SECRET_ID_FILE)'), mount } };
    }
    case 'kubernetes':
      return { ...base, auth: { method, role: need(e, 'PORTARIUM_VAULT_K8S_ROLE', 'for kubernetes auth'), jwtPath: e.PORTARIUM_VAULT_K8S_TOKEN_PATH ?? '/var/run/secrets/kubernetes.io/serviceaccount/token', mount } };
    default:
      throw new ConfigError('PORTARIUM_VAULT_AUTH: required with VAULT_ADDR (token, approle or kubernetes), or set VAULT_TOKEN');
  }
}

/** The servers file of the `mcp` runtime, checked now so a bad one stops the start. */
export function readMcpServers(file: string): Record<string, McpServerConfig> {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`PORTARIUM_MCP_SERVERS: cannot read ${file} as JSON (${(err as Error).message.slice(0, 200)})`);
  }
  const parsed = mcpServersFileSchema.safeParse(json);
  // Paths only, never values: a server's env may hold credentials.
  if (!parsed.success) throw new ConfigError(`PORTARIUM_MCP_SERVERS: ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ').slice(0, 1000)}`);
  return parsed.data.mcpServers;
}

function readSecretFile(file: string): void {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch {
    throw new ConfigError(`PORTARIUM_VAULT_SECRET_ID_FILE: cannot read ${file}`);
  }
  if (!text) throw new ConfigError(`PORTARIUM_VAULT_SECRET_ID_FILE: ${file} is empty`);
}

/** Connection options shared by the worker's NativeConnection and the client's Connection. */
export function connectionOptions(config: PortariumConfig) {
  const { address, apiKey, tls } = config.temporal;
  const read = (file?: string) => (file ? fs.readFileSync(file) : undefined);
  return {
    address,
    apiKey,
    tls: tls
      ? {
          serverNameOverride: tls.serverNameOverride,
          serverRootCACertificate: read(tls.caPath),
          clientCertPair: tls.certPath && tls.keyPath ? { crt: read(tls.certPath)!, key: read(tls.keyPath)! } : undefined,
        }
      : undefined,
  };
}
