/**
 * Port for the keys that encrypt Temporal payloads, one key set per workspace ("scope"). The payload
 * codec (workers/codec/codec.ts) asks for the active key of a scope to encrypt, and for a key by id (plus
 * whatever the provider put in the payload's metadata, e.g. a wrapped data key) to decrypt.
 * Providers: the local keyring file (workers/codec/keyring.ts) and Vault transit data keys
 * (workers/codec/vault-transit.ts). No error of a provider ever carries key material.
 */
import { createHash } from 'node:crypto';
import { WORKSPACE_ID_SOURCE } from '../../workflows/ids';

/** Scope of payloads whose workflow id names no workspace (or that arrive with no context at all). */
export const SYSTEM_SCOPE = '_system';

/** Workspace ids (workflows/ids.ts) and the system scope: safe in file names, key ids and Vault key names. */
export const SCOPE_PATTERN = new RegExp(`^(${SYSTEM_SCOPE}|${WORKSPACE_ID_SOURCE})$`);

export interface EncryptionKey {
  /** `<scope>/<provider's id>`, recorded in the payload metadata as `encryption-key-id`. */
  keyId: string;
  /** 32 bytes (AES-256). */
  key: Buffer;
  /** Extra payload metadata the provider needs to find the key again (e.g. the wrapped data key). Never secret. */
  metadata?: Record<string, string>;
}

export interface PayloadKeyProvider {
  readonly kind: 'keyring' | 'vault';
  /** The key new payloads of `scope` are encrypted with (created on first use where the provider can). */
  encryptionKey(scope: string): Promise<EncryptionKey>;
  /** The key with `keyId` of `scope`; `metadata` is the payload's metadata as UTF-8 strings. */
  decryptionKey(scope: string, keyId: string, metadata: Record<string, string>): Promise<Buffer>;
  close(): Promise<void>;
}

export type PayloadKeyErrorCode =
  /** The key id names another workspace than the payload's workflow. */
  | 'wrong_workspace'
  /** No such key here (another workspace's keyring, a deleted key, a Vault key this token cannot use). */
  | 'unknown_key'
  /** Authentication failed: the payload was altered, or moved from another workspace. */
  | 'tampered'
  /** The payload's encryption metadata is malformed. */
  | 'malformed'
  /** The key store is unreachable, sealed or refused: retrying may help. */
  | 'unavailable'
  /** Refused by the codec server's token scope. */
  | 'forbidden'
  /** Authentication failed and the payload names another key fingerprint than this keyring's key of its id: another keyring made it. */
  | 'foreign_keyring';

/** Why a payload cannot be encrypted or decrypted. Messages name the workspace and key id only. */
export class PayloadKeyError extends Error {
  override readonly name = 'PayloadKeyError';
  constructor(
    readonly code: PayloadKeyErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function checkScope(scope: string): string {
  if (!SCOPE_PATTERN.test(scope)) throw new PayloadKeyError('malformed', `not a workspace id: ${JSON.stringify(scope.slice(0, 70))}`);
  return scope;
}

/**
 * A key's fingerprint: the first 64 bits of a domain-separated SHA-256 of the key. Payloads carry it so
 * a process can tell "encrypted with another keyring's ops/k1" from an altered payload (a payload whose
 * key id was rewritten still names its own key's fingerprint); it reveals nothing about a 256-bit
 * random key.
 */
export function keyFingerprint(key: Uint8Array): string {
  return createHash('sha256').update('portarium-key-fingerprint/v1\0', 'utf8').update(key).digest('hex').slice(0, 16);
}

/** What to run when a scope has no key yet (the codec server's 422 and every refusal to create one say it). */
export function createKeyRemedy(scope: string): string {
  return `create it once with \`npx portarium keys create --workspace ${scope}\` and share that keyring with every process (docs/encryption.md)` +
    (scope === SYSTEM_SCOPE ? '; workers create it when they start' : '; on a single development machine PORTARIUM_DEV_CREATE_KEYS=1 creates it on first use');
}
