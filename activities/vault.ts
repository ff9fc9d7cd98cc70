/**
 * Per-workspace runtime credentials from HashiCorp Vault or OpenBao, through node-vault: KV v2 at
 * `{kvMount}/data/{kvPrefix}/{workspace}/{runtime}`, with token, AppRole or Kubernetes auth. Logins are
 * lazy and shared by concurrent reads; tokens are renewed at two thirds of their lease, and when
 * renewal fails or the token lapses the store logs in again. Every Vault answer maps to
 * `CredentialsDenied` (not retried) or `CredentialsUnavailable` (retried) in one function, and no
 * message ever carries a token, secret id, JWT or secret value.
 */
import * as fs from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import nodeVault from 'node-vault';
import { z } from 'zod';
import { FailureType, refusal } from '../workflows/failures';
import { type Secret, type SecretStore, checkSecretIds } from './secrets-port';
import { clipUtf8 } from './utf8';

export interface VaultOptions {
  address: string;
  /** Sent as X-Vault-Namespace (Vault Enterprise, OpenBao). */
  namespace?: string;
  /** KV v2 mount. @default secret (set by config) */
  kvMount: string;
  /** Path under the mount that holds `{workspace}/{runtime}`. @default portarium (set by config) */
  kvPrefix: string;
  auth:
    | { method: 'token'; token: string }
    | { method: 'approle'; roleId: string; secretId: string; mount?: string }
    | { method: 'kubernetes'; role: string; jwtPath: string; mount?: string };
  /** @default 10000 */
  requestTimeoutMs?: number;
}

const KvRead = z.object({ data: z.object({ data: z.record(z.string(), z.unknown()).nullable() }) });
const AuthBlock = z.object({ auth: z.object({ client_token: z.string().min(1), lease_duration: z.number(), renewable: z.boolean() }) });
const LookupSelf = z.object({ data: z.object({ ttl: z.number(), renewable: z.boolean() }) });

interface VaultError {
  response?: { statusCode?: number; body?: unknown };
  code?: string;
}

const unavailable = (message: string) => ApplicationFailure.create({ type: FailureType.CredentialsUnavailable, message, nonRetryable: false });

/** Vault's answer (or its absence) as a typed failure. `what` names the operation, never a credential. */
export function vaultFailure(err: unknown, what: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const status = (err as VaultError).response?.statusCode;
  const errors = ((err as VaultError).response?.body as { errors?: unknown } | undefined)?.errors;
  const said = Array.isArray(errors) && typeof errors[0] === 'string' ? `: ${clipUtf8(errors[0].replace(/\s+/g, ' ').trim(), 120)}` : '';
  if (status === undefined) return unavailable(`vault unreachable during ${what} (${(err as VaultError).code ?? 'no answer'})`);
  if (status === 503) return unavailable(`vault is sealed or in maintenance during ${what}${said}`);
  if (status === 429 || status >= 500) return unavailable(`vault answered ${status} during ${what}${said}`);
  if (status === 404) return refusal(FailureType.CredentialsDenied, `vault has no ${what}`);
  return refusal(FailureType.CredentialsDenied, `vault refused ${what} (${status}${said})`);
}

export class VaultSecretStore implements SecretStore {
  readonly kind = 'vault';
  private readonly client: nodeVault.client;
  /** The token reads use is good until this time (ms); 0 means not logged in. */
  private validUntil = 0;
  private login?: Promise<void>;
  private renewTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: VaultOptions) {
    this.client = nodeVault({
      apiVersion: 'v1',
      endpoint: options.address,
      namespace: options.namespace,
      token: options.auth.method === 'token' ? options.auth.token : undefined,
      requestOptions: { timeout: options.requestTimeoutMs ?? 10_000 },
      // node-vault's debug output (DEBUG=node-vault) prints request bodies, i.e. secret ids and JWTs.
      debug: () => undefined,
    });
    // node-vault falls back to VAULT_TOKEN from the environment; only the configured token may serve.
    if (options.auth.method !== 'token') this.client.token = '';
  }

  async read(workspaceId: string, runtime: string): Promise<Secret> {
    checkSecretIds(workspaceId, runtime);
    const segments = [...split(this.options.kvMount), 'data', ...split(this.options.kvPrefix), workspaceId, runtime];
    const path = segments.map(encodeURIComponent).join('/');
    const what = `${runtime} secret for workspace ${workspaceId}`;
    await this.ensureLogin();
    const used = this.client.token;
    let body: unknown;
    try {
      body = await this.client.read(path);
    } catch (err) {
      // A lapsed or revoked token answers 403: log in once more (not possible with a static token) and retry once.
      if (status(err) !== 403 || this.options.auth.method === 'token') throw readFailure(err, what);
      if (this.client.token === used) this.validUntil = 0;
      await this.ensureLogin();
      body = await this.client.read(path).catch((e: unknown) => Promise.reject(readFailure(e, what)));
    }
    return toSecret(body, what);
  }

  /**
   * A write (POST/PUT) to another engine (transit) under the store's login, with the same one retry
   * after a lapsed login. Vault's errors are thrown as they are: the caller maps them.
   */
  async write(vaultPath: string, data: object): Promise<unknown> {
    await this.ensureLogin();
    const used = this.client.token;
    try {
      return await this.client.write(vaultPath, data);
    } catch (err) {
      if (status(err) !== 403 || this.options.auth.method === 'token') throw err;
      if (this.client.token === used) this.validUntil = 0;
      await this.ensureLogin();
      return this.client.write(vaultPath, data);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
  }

  /** One login at a time; concurrent reads wait for the same one. */
  private ensureLogin(): Promise<void> {
    if (Date.now() < this.validUntil) return Promise.resolve();
    this.login ??= this.doLogin().finally(() => (this.login = undefined));
    return this.login;
  }

  private async doLogin(): Promise<void> {
    const auth = this.options.auth;
    if (auth.method === 'token') {
      // A static token is not logged in; learn its lease once so that it can be renewed.
      let look: z.infer<typeof LookupSelf> | undefined;
      try {
        look = LookupSelf.parse(await this.client.tokenLookupSelf());
      } catch (err) {
        // Sealed or unreachable: look again on the next read. Refused: the read will say so.
        const s = status(err);
        if (s === undefined || s === 429 || s >= 500) return;
      }
      this.validUntil = Infinity;
      if (look?.data.renewable && look.data.ttl > 0) this.scheduleRenewal(look.data.ttl);
      return;
    }
    const answer =
      auth.method === 'approle'
        ? await this.client.approleLogin({ role_id: auth.roleId, secret_id: auth.secretId, mount_point: auth.mount ?? 'approle' }).catch((err: unknown) => Promise.reject(vaultFailure(err, 'approle login')))
        : await this.client.kubernetesLogin({ role: auth.role, jwt: readJwt(auth.jwtPath), mount_point: auth.mount ?? 'kubernetes' }).catch((err: unknown) => Promise.reject(vaultFailure(err, 'kubernetes login')));
    const parsed = AuthBlock.safeParse(answer);
    if (!parsed.success) throw unavailable(`vault ${auth.method} login answered without a token`);
    this.client.token = parsed.data.auth.client_token; // node-vault sets it too (tokenSource); be explicit
    this.accept(parsed.data.auth.lease_duration, parsed.data.auth.renewable);
  }

  /** A fresh lease of `seconds`: trust the token until just before it ends, renew at two thirds. */
  private accept(seconds: number, renewable: boolean): void {
    this.validUntil = seconds > 0 ? Date.now() + seconds * 1000 - 100 : Infinity;
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    if (renewable && seconds > 0) this.scheduleRenewal(seconds);
  }

  private scheduleRenewal(seconds: number): void {
    if (this.closed) return;
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.renew(), Math.max(100, (seconds * 1000 * 2) / 3));
    this.renewTimer.unref();
  }

  /** renew-self; when it fails or the token stops being renewable, the next read logs in again. */
  private async renew(): Promise<void> {
    this.renewTimer = undefined;
    const used = this.client.token;
    let parsed: ReturnType<typeof AuthBlock.safeParse> | undefined;
    try {
      parsed = AuthBlock.safeParse(await this.client.tokenRenewSelf());
    } catch {
      parsed = undefined;
    }
    if (this.closed || this.client.token !== used) return; // closed, or a new login happened meanwhile
    if (parsed?.success) {
      if (this.options.auth.method === 'token') {
        if (parsed.data.auth.renewable && parsed.data.auth.lease_duration > 0) this.scheduleRenewal(parsed.data.auth.lease_duration);
      } else {
        this.accept(parsed.data.auth.lease_duration, parsed.data.auth.renewable);
      }
      return;
    }
    if (this.options.auth.method !== 'token') this.validUntil = 0;
  }
}

const split = (p: string) => p.split('/').filter(Boolean);
const status = (err: unknown) => (err as VaultError | undefined)?.response?.statusCode;

/** A deleted or destroyed version answers 404 with `data.data: null`; name it as such. */
function readFailure(err: unknown, what: string): ApplicationFailure {
  const body = (err as VaultError).response?.body as { data?: { data?: unknown } } | undefined;
  if (status(err) === 404 && body?.data && body.data.data === null) return refusal(FailureType.CredentialsDenied, `vault: the ${what} is deleted or destroyed`);
  return vaultFailure(err, what);
}

function readJwt(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    throw unavailable(`cannot read the Kubernetes service-account token at ${file}`);
  }
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
