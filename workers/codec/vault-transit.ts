/**
 * Payload keys from Vault (or OpenBao) transit data keys: one transit key per workspace
 * (`<prefix><workspace>`, e.g. `portarium-ops`), so a Vault policy per key path can keep one
 * workspace's workers, or operators, away from another's payloads.
 *   encrypt: `POST {mount}/datakey/plaintext/{key}` gives a fresh AES-256 data key and the same key
 *            wrapped by the transit key (`vault:vN:…`). The data key is kept in memory for a bounded
 *            time and number of payloads; the wrapped key goes into each payload's metadata.
 *   decrypt: `POST {mount}/decrypt/{key}` unwraps the payload's wrapped key (cached by its text).
 * Rotating the transit key (`POST {mount}/keys/{key}/rotate`) makes new data keys under the new
 * version, while wrapped keys of older versions still unwrap: old runs stay readable.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { type EncryptionKey, type PayloadKeyProvider, PayloadKeyError, checkScope } from './keys-port';
import type { VaultSession } from '../../activities/secrets/vault-session';
import { clipUtf8 } from '../../activities/utf8';

/** Payload metadata key holding the wrapped data key. */
export const WRAPPED_KEY_METADATA = 'encryption-wrapped-key';

export interface VaultTransitOptions {
  /** @default transit */
  mount: string;
  /** Transit key name = prefix + workspace. @default portarium- */
  keyPrefix?: string;
  /** How long one data key encrypts new payloads. @default 5 minutes */
  dataKeyTtlMs?: number;
  /** How many encode calls one data key serves. @default 10000 */
  dataKeyUses?: number;
  /** Unwrapped keys kept for decryption. @default 1000 */
  maxCachedKeys?: number;
}

const DataKeyAnswer = z.object({ data: z.object({ plaintext: z.string().min(1), ciphertext: z.string().regex(/^vault:v\d+:/), key_version: z.number().int().positive() }) });
const DecryptAnswer = z.object({ data: z.object({ plaintext: z.string().min(1) }) });

interface VaultError {
  response?: { statusCode?: number; body?: { errors?: unknown } };
  code?: string;
}

/**
 * Vault's answer as a PayloadKeyError: 400/404 mean this key or ciphertext cannot be used (permanent:
 * a worker's tolerant codec hands such a payload on as undecodable); 403 is a token or policy problem
 * an operator fixes, so it is retried like an outage, and never turns a good payload into a refusal.
 */
function transitFailure(err: unknown, what: string): PayloadKeyError {
  if (err instanceof PayloadKeyError) return err;
  // The session's own failures (login refused, sealed) are the operator's to fix: retried.
  if (err instanceof ApplicationFailure) return new PayloadKeyError('unavailable', `${what}: ${err.message}`);
  const status = (err as VaultError).response?.statusCode;
  const errors = (err as VaultError).response?.body?.errors;
  const said = Array.isArray(errors) && typeof errors[0] === 'string' ? `: ${clipUtf8(errors[0].replace(/\s+/g, ' ').trim(), 120)}` : '';
  if (status === undefined) return new PayloadKeyError('unavailable', `vault unreachable during ${what} (${(err as VaultError).code ?? 'no answer'})`);
  if (status === 403) return new PayloadKeyError('unavailable', `vault refused ${what} (${status}${said}): check the token's policy`);
  if (status === 400 || status === 404) return new PayloadKeyError('unknown_key', `vault refused ${what} (${status}${said})`);
  return new PayloadKeyError('unavailable', `vault answered ${status} during ${what}${said}`);
}

export class VaultTransitKeyProvider implements PayloadKeyProvider {
  readonly kind = 'vault';
  private readonly active = new Map<string, { key: EncryptionKey; until: number; uses: number }>();
  private readonly pending = new Map<string, Promise<EncryptionKey>>();
  /** Unwrapped data keys by wrapped text, oldest first (a small LRU). */
  private readonly unwrapped = new Map<string, Buffer>();
  private readonly unwrapping = new Map<string, Promise<Buffer>>();

  private closed = false;

  /** `vault`: the process's Vault session, shared with the secret store (one login, one renewer). */
  constructor(
    private readonly vault: Pick<VaultSession, 'write' | 'retain' | 'release'>,
    private readonly options: VaultTransitOptions,
  ) {
    vault.retain();
  }

  keyName(scope: string): string {
    return `${this.options.keyPrefix ?? 'portarium-'}${checkScope(scope)}`;
  }

  async encryptionKey(scope: string): Promise<EncryptionKey> {
    const cached = this.active.get(scope);
    if (cached && Date.now() < cached.until && cached.uses < (this.options.dataKeyUses ?? 10_000)) {
      cached.uses++;
      return cached.key;
    }
    // Concurrent encodes of one workspace share one datakey request.
    let p = this.pending.get(scope);
    if (!p) {
      p = this.newDataKey(scope).finally(() => this.pending.delete(scope));
      this.pending.set(scope, p);
    }
    return p;
  }

  /** Forget the cached data keys, so the next payload of each workspace gets a fresh one (after a rotation). */
  forgetDataKeys(): void {
    this.active.clear();
  }

  async decryptionKey(scope: string, _keyId: string, metadata: Record<string, string>): Promise<Buffer> {
    const wrapped = metadata[WRAPPED_KEY_METADATA];
    if (!wrapped || !/^vault:v\d+:/.test(wrapped)) throw new PayloadKeyError('malformed', `payload of workspace ${scope} has no wrapped vault data key`);
    const hit = this.unwrapped.get(wrapped);
    if (hit) {
      this.unwrapped.delete(wrapped);
      this.unwrapped.set(wrapped, hit);
      return hit;
    }
    // A batch of payloads under one data key shares one decrypt request.
    let p = this.unwrapping.get(wrapped);
    if (!p) {
      p = this.unwrap(scope, wrapped).finally(() => this.unwrapping.delete(wrapped));
      this.unwrapping.set(wrapped, p);
    }
    return p;
  }

  private async unwrap(scope: string, wrapped: string): Promise<Buffer> {
    const name = this.keyName(scope);
    const what = `decrypt with transit key ${name}`;
    const answer = await this.vault.write(`${this.mount()}/decrypt/${encodeURIComponent(name)}`, { ciphertext: wrapped }).catch((err: unknown) => Promise.reject(transitFailure(err, what)));
    const parsed = DecryptAnswer.safeParse(answer);
    if (!parsed.success) throw new PayloadKeyError('unavailable', `vault answered ${what} without a plaintext`);
    const key = Buffer.from(parsed.data.data.plaintext, 'base64');
    if (key.length !== 32) throw new PayloadKeyError('malformed', `the data key of workspace ${scope} is not 256 bits`);
    this.unwrapped.set(wrapped, key);
    if (this.unwrapped.size > (this.options.maxCachedKeys ?? 1000)) this.unwrapped.delete(this.unwrapped.keys().next().value!);
    return key;
  }

  async close(): Promise<void> {
    this.active.clear();
    this.unwrapped.clear();
    if (this.closed) return;
    this.closed = true;
    await this.vault.release();
  }

  private mount(): string {
    return this.options.mount.split('/').filter(Boolean).map(encodeURIComponent).join('/');
  }

  private async newDataKey(scope: string): Promise<EncryptionKey> {
    const name = this.keyName(scope);
    const what = `datakey from transit key ${name}`;
    const answer = await this.vault.write(`${this.mount()}/datakey/plaintext/${encodeURIComponent(name)}`, { bits: 256 }).catch((err: unknown) => Promise.reject(transitFailure(err, what)));
    const parsed = DataKeyAnswer.safeParse(answer);
    if (!parsed.success) throw new PayloadKeyError('unavailable', `vault answered ${what} without a data key`);
    const { plaintext, ciphertext, key_version } = parsed.data.data;
    const key = Buffer.from(plaintext, 'base64');
    if (key.length !== 32) throw new PayloadKeyError('malformed', `vault gave a data key of ${key.length * 8} bits for workspace ${scope}`);
    // The id names the transit key version and this data key (by a hash of its wrapped form, never of the key).
    const keyId = `${scope}/v${key_version}-${createHash('sha256').update(ciphertext).digest('hex').slice(0, 12)}`;
    const encryptionKey: EncryptionKey = { keyId, key, metadata: { [WRAPPED_KEY_METADATA]: ciphertext } };
    this.unwrapped.set(ciphertext, key);
    this.active.set(scope, { key: encryptionKey, until: Date.now() + (this.options.dataKeyTtlMs ?? 5 * 60_000), uses: 1 });
    return encryptionKey;
  }
}
