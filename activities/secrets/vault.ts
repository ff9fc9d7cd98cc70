/**
 * Per-workspace runtime credentials from HashiCorp Vault or OpenBao: KV v2 at
 * `{kvMount}/data/{kvPrefix}/{workspace}/{runtime}`, through a `VaultSession` (login, renewal, and the
 * 403 handling: a denied path is CredentialsDenied at once, an expired token logs in again). Every
 * Vault answer maps to `CredentialsDenied` (not retried) or `CredentialsUnavailable` (retried), and no
 * message ever carries a token, secret id, JWT or secret value.
 */
import { z } from 'zod';
import { FailureType, refusal } from '../../workflows/failures';
import { type Secret, type SecretStore, checkSecretIds } from './port';
import { type VaultOptions, VaultSession, vaultFailure } from './vault-session';

export { type VaultOptions, VaultSession, VaultStartupError, vaultFailure } from './vault-session';

const KvRead = z.object({ data: z.object({ data: z.record(z.string(), z.unknown()).nullable() }) });

interface VaultError {
  response?: { statusCode?: number; body?: unknown };
}

export class VaultSecretStore implements SecretStore {
  readonly kind = 'vault';
  /** The login this store reads with; the transit payload keys of the same process share it. */
  readonly session: VaultSession;
  private closed = false;

  /** `session`: one shared with other Vault users of the process (workers/codec/data-converter.ts); by default its own. */
  constructor(
    private readonly options: VaultOptions,
    session?: VaultSession,
  ) {
    this.session = (session ?? new VaultSession(options)).retain();
  }

  async read(workspaceId: string, runtime: string): Promise<Secret> {
    checkSecretIds(workspaceId, runtime);
    const path = vaultKvPath(this.options.kvMount, this.options.kvPrefix, workspaceId, runtime);
    const what = `${runtime} secret for workspace ${workspaceId}`;
    // KV v2 secrets carry no lease (lease_duration 0): nothing is cached, every dispatch reads the current version.
    const body = await this.session.read(path).catch((err: unknown) => Promise.reject(readFailure(err, what)));
    return toSecret(body, what);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

const split = (p: string) => p.split('/').filter(Boolean);

/**
 * The request path of a workspace's runtime secret: `{mount}/data/{prefix}/{workspace}/{runtime}`,
 * URL-encoded. The workspace and the runtime are one segment each, whatever they hold: Vault decodes
 * the path once, so a '/' in a runtime name (which run input allows, workflows/ids.ts) is sent as
 * `%252F` and stored as `%2F`. A runtime `team/flow` lives at `.../{workspace}/team%2Fflow`, and no
 * runtime name can reach `..` or another workspace's folder. Names without '/' are as written.
 */
export function vaultKvPath(kvMount: string, kvPrefix: string, workspaceId: string, runtime: string): string {
  const oneSegment = (s: string) => s.split('/').map(encodeURIComponent).join(encodeURIComponent('%2F'));
  return [...[...split(kvMount), 'data', ...split(kvPrefix)].map(encodeURIComponent), oneSegment(workspaceId), oneSegment(runtime)].join('/');
}

/** A deleted or destroyed version answers 404 with `data.data: null`; name it as such. */
function readFailure(err: unknown, what: string) {
  const e = err as VaultError;
  const body = e.response?.body as { data?: { data?: unknown } } | undefined;
  if (e.response?.statusCode === 404 && body?.data && body.data.data === null) return refusal(FailureType.CredentialsDenied, `vault: the ${what} is deleted or destroyed`);
  return vaultFailure(err, what);
}

/** KV v2 `data.data` as a frozen flat map of strings; a non-string value is named by key only. */
function toSecret(body: unknown, what: string): Secret {
  const parsed = KvRead.safeParse(body);
  if (!parsed.success) throw refusal(FailureType.CredentialsDenied, `vault: the ${what} is not a KV v2 secret`);
  const data = parsed.data.data.data;
  if (data === null) throw refusal(FailureType.CredentialsDenied, `vault: the ${what} is deleted or destroyed`);
  const bad = Object.keys(data).find((k) => typeof data[k] !== 'string');
  if (bad) throw refusal(FailureType.CredentialsDenied, `vault: field ${bad} of the ${what} is not a string`);
  return Object.freeze({ ...(data as Record<string, string>) });
}
