/**
 * Port for the keys that encrypt Temporal payloads, one key set per workspace ("scope"). The payload
 * codec (workers/codec.ts) asks for the active key of a scope to encrypt, and for a key by id (plus
 * whatever the provider put in the payload's metadata, e.g. a wrapped data key) to decrypt.
 * Providers: the local keyring file (activities/keyring.ts) and Vault transit data keys
 * (activities/vault-transit.ts). No error of a provider ever carries key material.
 */

/** Scope of payloads whose workflow id names no workspace (or that arrive with no context at all). */
export const SYSTEM_SCOPE = '_system';

/** Workspace ids (workflows/schemas.ts) and the system scope: safe in file names, key ids and Vault key names. */
export const SCOPE_PATTERN = /^(_system|[a-z0-9][a-z0-9_-]{0,62})$/;

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
  | 'forbidden';

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
