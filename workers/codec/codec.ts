/**
 * The payload codec: every payload leaving this process (workflow and activity inputs and results,
 * signals, updates, queries, memo, encoded failure messages) is encrypted with AES-256-GCM under the
 * key of its workspace, taken from the SerializationContext's workflow id (`<ws>:<key>`,
 * `<ws>/quota/...`). Search attributes never pass through a codec: they stay plaintext.
 *
 * Encrypted payload: metadata `encoding: binary/encrypted`, `encryption-key-id: <ws>/<key id>`,
 * `encryption-key-salt`, `encryption-key-fp` (the key's fingerprint, so a payload of another keyring
 * is named as such instead of "altered"), for system-keyed payloads of a codec token limited to
 * workspaces `encryption-readers` (those workspaces, authenticated), and the key provider's own
 * fields; data = 12-byte IV | ciphertext | 16-byte
 * tag over the protobuf-encoded original payload, with the workspace as additional authenticated
 * data, so a payload moved into another workspace fails authentication even if the key id were
 * rewritten to match. Each payload is encrypted under its own subkey, HKDF-SHA256(workspace key,
 * random 16-byte salt, workspace): random IVs under one AES-GCM key are safe only to about 2^32
 * messages, a bound a busy workspace's long-lived keyring key would reach. Payloads without a salt
 * (written before subkeys) decrypt under the workspace key itself.
 *
 * Decoding refuses a payload whose key id names another workspace than its workflow's. Plaintext
 * payloads decode as they are: operators signal with the raw `temporal` CLI, and histories recorded
 * before encryption are plaintext.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec, type SerializationContext } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { type PayloadKeyProvider, PayloadKeyError, SCOPE_PATTERN, SYSTEM_SCOPE, keyFingerprint } from './keys-port';
import { UNDECODABLE_ENCODING } from '../../workflows/undecodable';
import { workspaceOfWorkflowId } from '../../workflows/ids';

const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
export const KEY_SALT_METADATA = 'encryption-key-salt';
export const KEY_FP_METADATA = 'encryption-key-fp';
export const READERS_METADATA = 'encryption-readers';
const MAX_READERS = 64;
const SALT_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);
const aad = (scope: string) => Buffer.from(`portarium-payload/v1/${scope}`, 'utf8');
/** Authenticated data: the workspace, and the readers a system-keyed payload is limited to. */
const gcmAad = (scope: string, readers?: string[]) => (readers ? Buffer.concat([aad(scope), Buffer.from(`;readers=${readers.join(',')}`, 'utf8')]) : aad(scope));
const ONE = Buffer.from([1]);
/**
 * The payload's own key: a salt per payload, bound to the workspace. HKDF-SHA256 (RFC 5869) with a
 * 32-byte output is one extract and one expand block; two HMACs give the same bytes as `hkdfSync` at
 * under half its cost (no key object per call), and every payload pays it both ways.
 */
function subkey(key: Buffer, salt: Uint8Array, scope: string): Buffer {
  const prk = createHmac('sha256', salt).update(key).digest();
  return createHmac('sha256', prk).update(aad(scope)).update(ONE).digest();
}

/**
 * Whose payload this is: the workspace prefix of the context's workflow id; the system scope for a
 * workflow id without one; undefined without a context (e.g. the codec server).
 */
function scopeOf(context?: SerializationContext): string | undefined {
  if (!context) return undefined;
  const id = context.workflowId;
  return (id && workspaceOfWorkflowId(id)) || SYSTEM_SCOPE;
}

function isEncrypted(p: Payload): boolean {
  return utf8(p.metadata?.[METADATA_ENCODING_KEY]) === ENCRYPTED_ENCODING;
}

/** The workspace (scope) an encrypted payload's key id names; undefined for plaintext. Throws when malformed. */
export function keyScopeOf(p: Payload): string | undefined {
  if (!isEncrypted(p)) return undefined;
  const keyId = utf8(p.metadata?.[KEY_ID_METADATA]) ?? '';
  const scope = keyId.slice(0, Math.max(0, keyId.indexOf('/')));
  if (!SCOPE_PATTERN.test(scope) || keyId.length > 200) throw new PayloadKeyError('malformed', 'encrypted payload without a valid encryption-key-id');
  return scope;
}

/**
 * The workspaces a system-keyed payload is limited to (`encryption-readers`), or undefined when it
 * is not limited. Throws when malformed, or when a workspace-keyed payload names readers.
 */
export function readersOf(p: Payload): string[] | undefined {
  const raw = p.metadata?.[READERS_METADATA];
  if (raw === undefined || raw === null) return undefined;
  const readers = (utf8(raw) ?? '').split(',');
  const sorted = [...new Set(readers)].sort();
  if (keyScopeOf(p) !== SYSTEM_SCOPE || readers.length > MAX_READERS || readers.join(',') !== sorted.join(',') || !readers.every((r) => r !== SYSTEM_SCOPE && SCOPE_PATTERN.test(r))) {
    throw new PayloadKeyError('malformed', 'encrypted payload with a malformed encryption-readers');
  }
  return readers;
}

/**
 * Decoding failures that retrying cannot cure: the payload itself is wrong (altered, foreign, malformed,
 * under a key that does not exist). A tolerant codec (the worker's) passes these on as an undecodable
 * marker payload, which workflows refuse as `InvalidMessage`; anything else (a key store that is down)
 * still throws, so the task is retried and replays see the same bytes decoded once the store is back.
 */
// A foreign fingerprint is permanent too: it is unauthenticated metadata, so retrying on it would let anyone
// able to signal wedge a run. Workers that hold another keyring are stopped at start (workers/codec/key-check.ts).
const PERMANENT: ReadonlySet<string> = new Set(['wrong_workspace', 'tampered', 'malformed', 'unknown_key', 'foreign_keyring']);

export interface CodecOptions {
  /**
   * Workers: hand a payload that cannot be decoded to the workflow as a marker instead of failing the
   * workflow task, which anyone able to signal could otherwise wedge forever. Clients stay strict.
   * @default false
   */
  tolerant?: boolean;
}

export class WorkspacePayloadCodec implements PayloadCodec {
  constructor(
    readonly keys: PayloadKeyProvider,
    private readonly opts: CodecOptions = {},
  ) {}

  async encode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    // No context (the codec server's /encode): the system key, which any workspace's workflow accepts like plaintext.
    return this.encodeUnder(payloads, scopeOf(context) ?? SYSTEM_SCOPE);
  }

  /**
   * Encrypt under `scope`'s key. `readers` (system key only: a codec token limited to several
   * workspaces) limits who may read the payloads back through a codec server; it is authenticated.
   */
  async encodeUnder(payloads: Payload[], scope: string, readers?: string[]): Promise<Payload[]> {
    if (!payloads.length) return payloads;
    if (readers && scope !== SYSTEM_SCOPE) throw new PayloadKeyError('malformed', 'readers limit system-keyed payloads only');
    const sorted = readers && [...new Set(readers)].sort();
    const { keyId, key, metadata = {} } = await this.keys.encryptionKey(scope);
    const fingerprint = Buffer.from(keyFingerprint(key));
    return payloads.map((p) => {
      const iv = randomBytes(IV_BYTES);
      const salt = randomBytes(SALT_BYTES);
      const cipher = createCipheriv('aes-256-gcm', subkey(key, salt, scope), iv);
      cipher.setAAD(gcmAad(scope, sorted));
      const body = Buffer.concat([cipher.update(temporal.api.common.v1.Payload.encode(p).finish()), cipher.final()]);
      const meta: Record<string, Uint8Array> = {
        [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING),
        [KEY_ID_METADATA]: Buffer.from(keyId),
        [KEY_SALT_METADATA]: salt,
        [KEY_FP_METADATA]: fingerprint,
        ...(sorted && { [READERS_METADATA]: Buffer.from(sorted.join(',')) }),
      };
      for (const [k, v] of Object.entries(metadata)) meta[k] = Buffer.from(v);
      return { metadata: meta, data: Buffer.concat([iv, body, cipher.getAuthTag()]) };
    });
  }

  async decode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    const expected = scopeOf(context);
    return Promise.all(payloads.map((p) => (this.opts.tolerant ? this.decodeTolerantly(p, expected) : this.decodeOne(p, expected))));
  }

  private async decodeTolerantly(p: Payload, expected: string | undefined): Promise<Payload> {
    try {
      return await this.decodeOne(p, expected);
    } catch (err) {
      const permanent = err instanceof PayloadKeyError ? PERMANENT.has(err.code) : !(err instanceof Error && /unavailable/i.test(err.name));
      if (!permanent) throw err;
      const reason = err instanceof PayloadKeyError ? `${err.code}: ${err.message}` : `malformed: ${err instanceof Error ? err.name : 'error'}`;
      return { metadata: { [METADATA_ENCODING_KEY]: Buffer.from(UNDECODABLE_ENCODING) }, data: Buffer.from(reason.slice(0, 200).replace(/[^\x20-\x7e]/g, '?')) };
    }
  }

  private async decodeOne(p: Payload, expected: string | undefined): Promise<Payload> {
    const scope = keyScopeOf(p);
    if (scope === undefined) return p;
    const keyId = utf8(p.metadata![KEY_ID_METADATA])!;
    // The system key carries no workspace data (see encode), so it is accepted like plaintext.
    if (expected !== undefined && scope !== expected && scope !== SYSTEM_SCOPE) {
      throw new PayloadKeyError('wrong_workspace', `payload encrypted for workspace ${scope} (key ${keyId}) refused in a run of ${expected === SYSTEM_SCOPE ? 'no workspace' : `workspace ${expected}`}`);
    }
    const data = p.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadKeyError('malformed', `encrypted payload of workspace ${scope} (key ${keyId}) is truncated`);
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(p.metadata ?? {})) if (k !== KEY_SALT_METADATA && k !== KEY_FP_METADATA && k !== READERS_METADATA) metadata[k] = utf8(v) ?? '';
    const salt = p.metadata?.[KEY_SALT_METADATA];
    if (salt && salt.length !== SALT_BYTES) throw new PayloadKeyError('malformed', `encrypted payload of workspace ${scope} (key ${keyId}) has a malformed salt`);
    const readers = readersOf(p);
    const master = await this.keys.decryptionKey(scope, keyId, metadata);
    const key = salt ? subkey(master, salt, scope) : master;
    const buf = Buffer.from(data);
    let plain: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(0, IV_BYTES));
      decipher.setAAD(gcmAad(scope, readers));
      decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
      plain = Buffer.concat([decipher.update(buf.subarray(IV_BYTES, buf.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw authenticationFailure(scope, keyId, utf8(p.metadata?.[KEY_FP_METADATA]), keyFingerprint(master));
    }
    const original = temporal.api.common.v1.Payload.decode(plain);
    return { metadata: original.metadata, data: original.data };
  }
}

/**
 * Why authentication failed: a payload naming another key fingerprint than this keyring's key of its
 * id was made by another keyring (checked only after a failure, so an edited fingerprint cannot refuse
 * a good payload); otherwise it was altered or moved. Payloads from before fingerprints say neither.
 */
function authenticationFailure(scope: string, keyId: string, theirs: string | undefined, ours: string): PayloadKeyError {
  if (theirs && /^[0-9a-f]{16}$/.test(theirs) && theirs !== ours) {
    return new PayloadKeyError('foreign_keyring', `payload encrypted with another keyring's ${keyId} (fingerprint ${theirs}); this keyring's ${keyId} is ${ours}. ` +
      'One keyring per cluster: every worker, client and codec server must share one keyring file (docs/encryption.md)');
  }
  return new PayloadKeyError('tampered', `payload of workspace ${scope} (key ${keyId}) failed authentication: altered, or not encrypted for this workspace${theirs ? '' : `, or encrypted with another keyring's ${keyId} (every process must share one keyring file)`}`);
}
