/**
 * Where a workspace's actions may go: its connection to each external runtime and the egress
 * allow-list the guarded HTTP client enforces (default deny). Part of the workspace policy file, but
 * not of the decision snapshot: activities read the worker's current copy, so revoking a host takes
 * effect for runs already started. No secrets here; credentials come from Vault or the secrets file.
 * MAINTENANCE: keep README "Runtimes" and docs/runtimes.md in sync.
 */
import { z } from 'zod';
import { RUNTIME_NAME_PATTERN } from './vocabulary';
import { DURATION_PATTERN, durationMs } from './duration';
import { parseCidr } from './ip';
import { LangflowFlowPolicy } from './langflow-tweaks';

/** A duration string turned into milliseconds, bounded. */
const ms = (max: number) =>
  z
    .string()
    .regex(DURATION_PATTERN, 'expected a duration such as 500ms, 30s, 5m or 2h')
    .transform((d) => durationMs(d))
    .refine((v) => v > 0 && v <= max, `must be more than 0 and at most ${max / 1000}s`);

const baseUrl = z
  .string()
  .url()
  .refine((u) => /^https?:$/.test(new URL(u).protocol), 'expected an http or https URL')
  .refine((u) => !new URL(u).username && !new URL(u).password, 'credentials do not belong in the URL; use the secret store')
  .transform((u) => u.replace(/\/+$/, ''));

const HOUR = 3_600_000;
/** Timing every runtime shares. Values are milliseconds after parsing. */
const timing = {
  /** Longest one HTTP call may take. @default 30s */
  requestTimeout: ms(HOUR).default(30_000),
  /** Pause between polls of a remote run. @default 2s */
  pollInterval: ms(10 * 60_000).default(2_000),
  /** Longest a remote run may take before Portarium stops it (where the runtime can) and fails the run. @default 1h */
  runTimeout: ms(7 * 24 * HOUR).default(HOUR),
};

export const ActivepiecesConnection = z.strictObject({
  /** Frontend URL; the API is under `/api/v1`. */
  baseUrl,
  /** Project of the flows; needed to look runs up through the flow-runs API (platform API key). */
  projectId: z.string().min(1).max(64).optional(),
  /** `sync`: the flow ends in Return Response and its answer is the result. `async`: webhook then poll. @default sync */
  mode: z.enum(['sync', 'async']).default('sync'),
  /** Per flow id, a mode other than `mode`. */
  flowModes: z.record(z.string(), z.enum(['sync', 'async'])).optional(),
  /** Run the latest (draft) version instead of the published one. @default false */
  draft: z.boolean().default(false),
  ...timing,
});
export type ActivepiecesConnection = z.infer<typeof ActivepiecesConnection>;

export const LangflowConnection = z.strictObject({
  /** Server URL; the API is under `/api/v1`. */
  baseUrl,
  ...timing,
  /** Flows run synchronously and agents can be slow. @default 300s */
  requestTimeout: ms(HOUR).default(300_000),
  /**
   * Per flow (the action target, as sent: a flow's UUID and its endpoint name are different keys),
   * what a run's tweaks may change. A flow without an entry takes no tweaks. See policies/langflow-tweaks.ts.
   */
  flows: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'expected a flow id or endpoint name'), LangflowFlowPolicy).optional(),
});
export type LangflowConnection = z.infer<typeof LangflowConnection>;

export const KestraConnection = z.strictObject({
  /** Server URL; paths are `/api/v1/{tenant}/...`. */
  baseUrl,
  /** `main` for OSS 0.23+, the tenant id on EE, empty for 0.22 and older. @default main */
  tenant: z.union([z.literal(''), z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected a tenant id')]).default('main'),
  /** `basic` (OSS: username and password) or `bearer` (EE API token). @default basic */
  auth: z.enum(['basic', 'bearer']).default('basic'),
  ...timing,
});
export type KestraConnection = z.infer<typeof KestraConnection>;

export const StackStormConnection = z.strictObject({
  /** API URL, e.g. `https://st2.example.com/api` or `http://127.0.0.1:9101`; executions are under `/v1`. */
  baseUrl,
  /** Auth API URL for `token` auth, e.g. `https://st2.example.com/auth`. */
  authUrl: baseUrl.optional(),
  /** `apiKey` (St2-Api-Key) or `token` (X-Auth-Token from username and password). @default apiKey */
  auth: z.enum(['apiKey', 'token']).default('apiKey'),
  ...timing,
});
export type StackStormConnection = z.infer<typeof StackStormConnection>;

export const Connections = z.strictObject({
  activepieces: ActivepiecesConnection.optional(),
  langflow: LangflowConnection.optional(),
  kestra: KestraConnection.optional(),
  stackstorm: StackStormConnection.optional(),
});
export type Connections = z.infer<typeof Connections>;

/**
 * `host`, `host:port` or `*.domain[:port]`; port `*` allows any port. Lower case. Addresses and CIDR
 * ranges too: `10.0.0.5:7860`, `10.0.0.0/8:*`, `[::1]:*`, `[fd00::/8]:443`.
 */
const HOST_PATTERN = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(\/\d{1,2})?(:(\d{1,5}|\*))?$|^\[[0-9a-f:.]+(\/\d{1,3})?\](:(\d{1,5}|\*))?$/;

/** The host part of an entry that names a range must be a network address (`10.0.0.0/8`, not `10.0.0.5/8`). */
const rangeIsValid = (entry: string) => {
  const host = entry.startsWith('[') ? entry.slice(0, entry.indexOf(']') + 1) : entry.split(':')[0];
  return !host.includes('/') || parseCidr(host) !== undefined;
};

export const EgressRule = z.strictObject({
  /** Hosts this runtime may reach for this workspace. Anything else is refused. */
  hosts: z
    .array(z.string().regex(HOST_PATTERN, 'expected host, host:port, *.domain or an address range such as 10.0.0.0/8 (lower case)').refine(rangeIsValid, 'expected a network address before the /, such as 10.0.0.0/8'))
    .min(1),
  /**
   * Addresses and CIDR ranges this runtime may never reach (`10.1.0.0/16`, `fd00::/8`), checked on the
   * URL's address and on every address a host name resolves to, IPv6 forms of IPv4 included. Wins
   * over `hosts` and `allowLinkLocal`.
   */
  deny: z.array(z.string().refine((c) => parseCidr(c) !== undefined, 'expected an address or a CIDR range such as 10.1.0.0/16 or fd00::/8')).max(1000).optional(),
  /** Allow link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, 168.63.129.16, 192.0.0.0/24, ...). @default false */
  allowLinkLocal: z.boolean().default(false),
});
export type EgressRule = z.infer<typeof EgressRule>;

/** Per runtime name (any name `action.runtime` accepts). A runtime without an entry may reach nothing. */
export const Egress = z.record(z.string().regex(RUNTIME_NAME_PATTERN, 'expected a runtime name'), EgressRule);
export type Egress = z.infer<typeof Egress>;

/** What activities get for one workspace. */
export interface WorkspaceConnections {
  workspaceId: string;
  connections: Connections;
  egress: Egress;
}
