/**
 * One authenticated session with HashiCorp Vault or OpenBao (node-vault as the HTTP layer), shared by
 * everything in a process that talks to Vault: the KV secret store and the transit payload keys log
 * in once and renew one token.
 *
 * What real servers do, and what this session does about it (OpenBao 2.x / Vault 1.x API):
 * - 403 means both "this path is outside the token's policy" and "this token is expired or revoked".
 *   On a 403 the session asks `auth/token/lookup-self`: a live token means a denial (the caller's
 *   refusal, no login); a dead one means log in again once (AppRole, Kubernetes) and retry once.
 * - Renewal is capped at the token's max TTL: renew-self then grants only the time left. A renewal
 *   shorter than the token's full lease means it is near its end, so the session logs in again
 *   before it expires and revokes the old token (revoke-self), instead of renewing ever shorter.
 * - A lease of 0 is "no expiry" only for a token whose `expire_time` is null (a root-like token).
 * - An AppRole secret id read from a file is read again at every login, so a rotated, use-limited
 *   or expiring secret id is picked up without a restart.
 * No message ever carries a token, secret id or JWT.
 */
import * as fs from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import nodeVault from 'node-vault';
import { z } from 'zod';
import { FailureType, refusal } from '../../workflows/failures';
import { clipUtf8 } from '../utf8';

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
    /** The secret id itself, or a file it is read from at every login (rotated by an agent or orchestrator). */
    | ({ method: 'approle'; roleId: string; mount?: string } & ({ secretId: string } | { secretIdFile: string }))
    | { method: 'kubernetes'; role: string; jwtPath: string; mount?: string };
  /** @default 10000 */
  requestTimeoutMs?: number;
}

export interface VaultSessionHooks {
  /** Where warnings an operator must act on go (a token that will expire unrenewed, a token not revoked). @default console.warn */
  warn?: (message: string) => void;
}

/** The token or its policy cannot work, found at start-up (`VaultSession.start`). */
export class VaultStartupError extends Error {
  override readonly name = 'VaultStartupError';
}

const AuthBlock = z.object({ auth: z.object({ client_token: z.string().min(1), lease_duration: z.number(), renewable: z.boolean() }) });
const LookupSelf = z.object({ data: z.object({ ttl: z.number(), renewable: z.boolean(), expire_time: z.string().nullable().optional() }) });

interface VaultError {
  response?: { statusCode?: number; body?: unknown };
  code?: string;
}

/** What lookup-self says about a token: when it ends (Infinity: never) and whether it can be renewed. */
interface Lookup {
  ttl: number;
  renewable: boolean;
  expiresAt: number;
}

const unavailable = (message: string) => ApplicationFailure.create({ type: FailureType.CredentialsUnavailable, message, nonRetryable: false });
const status = (err: unknown) => (err as VaultError | undefined)?.response?.statusCode;
/** Sealed, rate-limited, failing or unreachable: worth asking again later. */
const transient = (err: unknown) => {
  if (err instanceof ApplicationFailure) return !err.nonRetryable;
  const s = status(err);
  return s === undefined || s === 429 || s >= 500;
};
const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : 'never');
/** Longest delay a Node timer takes (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Larger than any secret id or service-account JWT: a bigger file is the wrong file. */
const MAX_CREDENTIAL_FILE_BYTES = 64 * 1024;
/** Reads trust a token until a little before Vault ends it. */
const margin = (seconds: number) => Math.min(5000, (seconds * 1000) / 10);

/**
 * Vault's answer (or its absence) as a typed failure. `what` names the operation, never a credential;
 * `hide` lists credentials the answer might echo (a login's secret id), which are cut from the text.
 */
export function vaultFailure(err: unknown, what: string, hide: string[] = []): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const code = status(err);
  const errors = ((err as VaultError).response?.body as { errors?: unknown } | undefined)?.errors;
  let text = Array.isArray(errors) && typeof errors[0] === 'string' ? errors[0] : '';
  for (const h of hide) if (h) text = text.split(h).join('(hidden)');
  const said = text ? `: ${clipUtf8(text.replace(/\s+/g, ' ').trim(), 120)}` : '';
  if (code === undefined) return unavailable(`vault unreachable during ${what} (${(err as VaultError).code ?? 'no answer'})`);
  if (code === 503) return unavailable(`vault is sealed or in maintenance during ${what}${said}`);
  if (code === 429 || code >= 500) return unavailable(`vault answered ${code} during ${what}${said}`);
  if (code === 404) return refusal(FailureType.CredentialsDenied, `vault has no ${what}`);
  return refusal(FailureType.CredentialsDenied, `vault refused ${what} (${code}${said})`);
}

export class VaultSession {
  private readonly client: nodeVault.client;
  private readonly warn: (message: string) => void;
  /** The token in use; '' before the first login. */
  private token = '';
  /** Requests trust the token until this time (ms); 0: log in (or look the static token up) first. */
  private validUntil = 0;
  /** When Vault ends the token (ms); Infinity: never; 0: unknown or already dead (nothing to revoke). */
  private expiresAt = 0;
  /** The token's full lease (s): a renewal granting less means it reached its max TTL. */
  private fullLease = 0;
  private login?: Promise<void>;
  private renewTimer?: NodeJS.Timeout;
  private users = 0;
  private closed = false;
  private readonly lookups = new Map<string, Promise<boolean>>();
  private readonly revoking = new Set<Promise<void>>();
  private readonly warned = new Set<string>();

  constructor(
    readonly options: VaultOptions,
    hooks: VaultSessionHooks = {},
  ) {
    this.warn = hooks.warn ?? ((m) => console.warn(`portarium vault: ${m}`));
    this.client = nodeVault({
      apiVersion: 'v1',
      endpoint: options.address,
      namespace: options.namespace,
      requestOptions: { timeout: options.requestTimeoutMs ?? 10_000 },
      // node-vault's debug output (DEBUG=node-vault) prints request bodies, i.e. secret ids and JWTs.
      debug: () => undefined,
    });
    // Every request names its token itself; node-vault must not fall back to VAULT_TOKEN from the environment.
    this.client.token = '';
  }

  /** One more user (a secret store, a key provider); each calls `release` once when it closes. */
  retain(): this {
    this.users++;
    this.closed = false;
    return this;
  }

  /** The last user's release stops renewal and waits for revocations under way. */
  async release(): Promise<void> {
    if (this.users > 0 && --this.users > 0) return;
    this.closed = true;
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    await Promise.allSettled([...this.revoking]);
  }

  /** GET `path` with the session's token; see `call` for 403 handling. Vault's errors are thrown as they are. */
  read(path: string): Promise<unknown> {
    return this.call((opts) => this.client.read(path, opts));
  }

  /** POST `data` to `path` (transit) with the session's token; see `call`. */
  write(path: string, data: object): Promise<unknown> {
    return this.call((opts) => this.client.write(path, data, opts));
  }

  /**
   * Start-up check: log in (or look the static token up) and make sure the token can do what the
   * session needs later, so a policy gap stops the worker now instead of failing every read when the
   * token lapses. Vault unreachable or sealed only warns (reads retry); a refusal throws VaultStartupError.
   */
  async start(): Promise<void> {
    const auth = this.options.auth;
    const who = auth.method === 'token' ? 'VAULT_TOKEN' : `the ${auth.method} login's token`;
    if (auth.method !== 'token') {
      try {
        await this.ensureLogin();
      } catch (err) {
        if (transient(err)) return this.warn(`could not log in at start (${describe(err)}); reads will try again`);
        throw new VaultStartupError(`vault ${auth.method} login refused at start: ${describe(err)}`);
      }
    }
    const token = auth.method === 'token' ? auth.token : this.token;
    let look: Lookup;
    try {
      look = await this.lookup(token);
    } catch (err) {
      if (transient(err)) return this.warn(`could not check ${who} at start (${describe(err)}); reads will try again`);
      throw new VaultStartupError(
        `vault refused lookup-self for ${who} (${describe(err)}): the token is invalid or expired, or its policy lacks "read" on auth/token/lookup-self, ` +
          'which Portarium needs to tell a denied path from an expired token and to plan renewal (see the token policy in docs/runtimes.md)',
      );
    }
    if (auth.method !== 'token') return;
    this.adopt(token, look);
    if (look.expiresAt === Infinity) return; // non-expiring: nothing to renew
    if (!look.renewable) return this.warnOnce('static', `VAULT_TOKEN is not renewable and expires at ${iso(look.expiresAt)}; a static token cannot log in again: replace it and restart before then`);
    try {
      this.applyRenewal(token, await this.renewSelf(token));
    } catch (err) {
      if (transient(err)) return this.warn(`could not renew VAULT_TOKEN at start (${describe(err)}); renewal will try again`);
      throw new VaultStartupError(
        `vault refused renew-self for VAULT_TOKEN (${describe(err)}): its policy lacks "update" on auth/token/renew-self, so it would expire at ` +
          `${iso(look.expiresAt)} and every read fail after that (see the token policy in docs/runtimes.md)`,
      );
    }
  }

  /**
   * Run `op` under the current token. On a 403, lookup-self tells a live token (a permission denial:
   * thrown as it is, no login) from a dead one (log in again once and retry once; a static token
   * cannot log in, so that is CredentialsDenied).
   */
  private async call<T>(op: (opts: object) => Promise<T>): Promise<T> {
    await this.ensureLogin();
    const used = this.token;
    try {
      return await op(this.as(used));
    } catch (err) {
      if (status(err) !== 403) throw err;
      // Another request may have logged in again meanwhile: then just retry with the new token.
      if (this.token === used) {
        if (await this.alive(used)) throw err;
        if (this.options.auth.method === 'token') throw refusal(FailureType.CredentialsDenied, 'the vault token (VAULT_TOKEN) is expired or revoked, or cannot look itself up');
        if (this.token === used) {
          this.validUntil = 0;
          this.expiresAt = 0; // dead: nothing to revoke
        }
      }
      await this.ensureLogin();
      return op(this.as(this.token));
    }
  }

  /**
   * Whether `token` still exists (lookup-self answers 200); concurrent 403s share one lookup. A "dead"
   * answer is kept until the next login replaces the token, so 403s that arrive while that login runs
   * do not look the same dead token up again.
   */
  private alive(token: string): Promise<boolean> {
    let p = this.lookups.get(token);
    if (!p) {
      const settled = this.lookup(token).then(
        () => true,
        (err: unknown) => (status(err) === 403 ? false : Promise.reject(vaultFailure(err, 'token lookup'))),
      );
      p = settled.then(
        (live) => {
          // A static token is never replaced: it is looked up again at its next 403.
          if (live || this.options.auth.method === 'token') this.lookups.delete(token);
          return live;
        },
        (err: unknown) => {
          this.lookups.delete(token);
          throw err;
        },
      );
      this.lookups.set(token, p);
    }
    return p;
  }

  private async lookup(token: string): Promise<Lookup> {
    const parsed = LookupSelf.safeParse(await this.client.read('auth/token/lookup-self', this.as(token)));
    if (!parsed.success) throw unavailable('vault answered lookup-self without a ttl');
    const { ttl, renewable, expire_time } = parsed.data.data;
    // ttl 0 means "never expires" only with no expire_time (a root-like token); with one, the token is ending now.
    if (expire_time === null || expire_time === undefined) return { ttl, renewable, expiresAt: ttl > 0 ? Date.now() + ttl * 1000 : Infinity };
    const at = Date.parse(expire_time);
    return { ttl, renewable, expiresAt: Number.isFinite(at) ? at : Date.now() + ttl * 1000 };
  }

  /** One login at a time; concurrent requests wait for the same one. */
  private ensureLogin(): Promise<void> {
    if (Date.now() < this.validUntil) return Promise.resolve();
    this.login ??= this.doLogin().finally(() => (this.login = undefined));
    return this.login;
  }

  private async doLogin(): Promise<void> {
    const auth = this.options.auth;
    if (auth.method === 'token') {
      // A static token is not logged in; learn its lease so that it can be renewed.
      let look: Lookup | undefined;
      try {
        look = await this.lookup(auth.token);
      } catch (err) {
        this.token = auth.token;
        if (transient(err)) return; // sealed or unreachable: look again on the next request
        // Refused: requests go on with it and say what Vault says; start() names the missing capability.
        this.validUntil = Infinity;
        return this.warnOnce('lookup', 'lookup-self is refused for VAULT_TOKEN (it is invalid or expired, or its policy lacks "read" on auth/token/lookup-self): its expiry is unknown and it is not renewed (see the token policy in docs/runtimes.md)');
      }
      this.adopt(auth.token, look);
      if (look.expiresAt !== Infinity && !look.renewable) this.warnOnce('static', `VAULT_TOKEN is not renewable and expires at ${iso(look.expiresAt)}; a static token cannot log in again: replace it before then`);
      return;
    }
    const previous = { token: this.token, expiresAt: this.expiresAt };
    const mount = (auth.mount ?? auth.method).split('/').filter(Boolean).map(encodeURIComponent).join('/');
    let body: object;
    let hide: string[];
    if (auth.method === 'approle') {
      const secretId = 'secretIdFile' in auth ? readCredential(auth.secretIdFile, 'AppRole secret id') : auth.secretId;
      body = { role_id: auth.roleId, secret_id: secretId };
      hide = [secretId];
    } else {
      const jwt = readCredential(auth.jwtPath, 'Kubernetes service-account token');
      body = { role: auth.role, jwt };
      hide = [jwt];
    }
    const answer = await this.client.write(`auth/${mount}/login`, body, {}).catch((err: unknown) => Promise.reject(vaultFailure(err, `${auth.method} login`, hide)));
    const parsed = AuthBlock.safeParse(answer);
    if (!parsed.success) throw unavailable(`vault ${auth.method} login answered without a token`);
    const { client_token, lease_duration, renewable } = parsed.data.auth;
    this.token = client_token;
    this.fullLease = lease_duration;
    if (lease_duration > 0) {
      this.expiresAt = Date.now() + lease_duration * 1000;
      this.validUntil = this.expiresAt - margin(lease_duration);
      if (renewable) this.schedule(lease_duration);
      else this.stopRenewing();
    } else {
      // A lease of 0 is not "forever" unless Vault says the token has no expire_time.
      const look = await this.lookup(client_token).catch(() => undefined);
      if (look) this.adopt(client_token, look);
      else {
        this.expiresAt = 0;
        this.validUntil = Date.now() + 60_000; // unknown lifetime: look at it again in a minute
        this.stopRenewing();
      }
    }
    this.lookups.delete(previous.token);
    this.retire(previous);
  }

  /** Take a looked-up token: trust it until just before it ends, and renew it at two thirds of what is left. */
  private adopt(token: string, look: Lookup): void {
    this.token = token;
    this.expiresAt = look.expiresAt;
    this.fullLease = Math.max(this.fullLease, look.ttl);
    if (look.expiresAt === Infinity) {
      this.validUntil = Infinity;
      this.stopRenewing();
      return;
    }
    // A static token is used until Vault refuses it: it cannot log in again anyway.
    this.validUntil = this.options.auth.method === 'token' ? Infinity : look.expiresAt - margin(look.ttl);
    if (look.renewable) this.schedule(look.ttl);
    else this.stopRenewing();
  }

  private stopRenewing(): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
  }

  private schedule(seconds: number, delayMs = Math.max(100, (seconds * 1000 * 2) / 3)): void {
    if (this.closed) return;
    clearTimeout(this.renewTimer);
    // Node fires a timer past 2^31-1 ms (24.8 days) at once: a longer lease would renew in a tight loop.
    this.renewTimer = setTimeout(() => void this.renew(), Math.min(delayMs, MAX_TIMER_MS));
    this.renewTimer.unref();
  }

  private async renewSelf(token: string): Promise<z.infer<typeof AuthBlock>['auth']> {
    const parsed = AuthBlock.safeParse(await this.client.write('auth/token/renew-self', {}, this.as(token)));
    if (!parsed.success) throw unavailable('vault answered renew-self without a lease');
    return parsed.data.auth;
  }

  /** renew-self; when Vault will not renew any more, log in again before the token ends (or warn, for a static token). */
  private async renew(): Promise<void> {
    this.renewTimer = undefined;
    const token = this.token;
    let granted: z.infer<typeof AuthBlock>['auth'] | undefined;
    let failure: unknown;
    try {
      granted = await this.renewSelf(token);
    } catch (err) {
      failure = err;
    }
    if (this.closed || this.token !== token) return; // closed, or a new login happened meanwhile
    if (granted) return this.applyRenewal(token, granted);
    const left = this.expiresAt - Date.now();
    if (transient(failure) && left > 3000) return this.schedule(0, Math.min(left / 3, 60_000));
    this.ending(`renewal failed (${describe(failure)})`);
  }

  private applyRenewal(token: string, auth: z.infer<typeof AuthBlock>['auth']): void {
    if (this.token !== token) return;
    const seconds = auth.lease_duration;
    if (seconds <= 0) return this.ending('renewal granted no time'); // 0 here is "no time left", never "forever"
    this.expiresAt = Date.now() + seconds * 1000;
    // Vault grants less than the full lease only when the token reaches its max TTL.
    const capped = seconds < this.fullLease;
    this.fullLease = Math.max(this.fullLease, seconds);
    if (!capped && auth.renewable) {
      if (this.options.auth.method !== 'token') this.validUntil = this.expiresAt - margin(seconds);
      return this.schedule(seconds);
    }
    if (this.options.auth.method !== 'token') {
      // Log in again while this token still works; the login revokes it.
      this.validUntil = Date.now() + (seconds * 1000 * 2) / 3;
      return;
    }
    this.ending(capped ? 'it reached its max TTL' : 'it is no longer renewable');
  }

  /** The token will not be renewed: a login method logs in again at the next request; a static token can only warn. */
  private ending(why: string): void {
    if (this.options.auth.method !== 'token') {
      this.validUntil = Math.min(this.validUntil, Date.now());
      return;
    }
    this.warnOnce('static', `VAULT_TOKEN is not renewed any more (${why}) and expires at ${iso(this.expiresAt)}; a static token cannot log in again: replace it and restart before then`);
  }

  /** After a new login, revoke the previous token if it is still alive, or say why not. */
  private retire(previous: { token: string; expiresAt: number }): void {
    if (!previous.token || previous.token === this.token || !(Date.now() < previous.expiresAt)) return;
    const p = this.client
      .write('auth/token/revoke-self', {}, this.as(previous.token))
      .then(
        () => undefined,
        (err: unknown) =>
          this.warn(`the previous token was not revoked (${describe(err)}); it stays valid until ${iso(previous.expiresAt)}. The token policy needs "update" on auth/token/revoke-self`),
      )
      .finally(() => this.revoking.delete(p));
    this.revoking.add(p);
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warn(message);
  }

  private as(token: string): object {
    return token ? { headers: { 'X-Vault-Token': token } } : {};
  }
}

/** A Vault error as `403: permission denied` or `unreachable (ECONNREFUSED)`, never with a credential. */
function describe(err: unknown): string {
  if (err instanceof ApplicationFailure) return err.message;
  const code = status(err);
  if (code === undefined) return `unreachable (${(err as VaultError | undefined)?.code ?? 'no answer'})`;
  const errors = ((err as VaultError).response?.body as { errors?: unknown } | undefined)?.errors;
  const said = Array.isArray(errors) && typeof errors[0] === 'string' ? `: ${clipUtf8(errors[0].replace(/\s+/g, ' ').replace(/^\d+ errors? occurred: \* /, '').trim(), 80)}` : '';
  return `${code}${said}`;
}

/** A credential file, read at each login (rotated by an agent or orchestrator); a missing one is retried. */
function readCredential(file: string, what: string): string {
  // Read at most one byte past the bound, so a huge file or a device (/dev/zero) is never read whole.
  const buf = Buffer.alloc(MAX_CREDENTIAL_FILE_BYTES + 1);
  let size: number;
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    size = 0;
    for (let n = -1; n !== 0 && size < buf.length; size += n) n = fs.readSync(fd, buf, size, buf.length - size, null);
  } catch {
    throw unavailable(`cannot read the ${what} at ${file}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  if (size > MAX_CREDENTIAL_FILE_BYTES) throw unavailable(`the ${what} file ${file} is larger than ${MAX_CREDENTIAL_FILE_BYTES} bytes: not a credential file`);
  const text = buf.subarray(0, size).toString('utf8').trim();
  if (!text) throw unavailable(`the ${what} file ${file} is empty`);
  return text;
}
