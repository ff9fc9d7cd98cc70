/**
 * The embedded payload key store: one JSON file (mode 0600) holding, per workspace, AES-256 keys by id
 * and the id of the active one. A workspace's first key is made by `portarium keys create` (or, with
 * PORTARIUM_DEV_CREATE_KEYS on one development machine, on its first payload); workers create only
 * the system key, at start. `portarium keys rotate` adds a new active key and keeps the old ones, so
 * old runs stay readable. One keyring serves a whole cluster: a second keyring's `ops/k1` is another key.
 * Several processes on one machine (workers, the CLI, the codec server) share the file: every change
 * happens under a lock file, re-reads the file first and replaces it atomically, and a reader reloads
 * it when it changed, so a rotation or a key another process created is seen without a restart.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { LockTimeout, acquireFileLock } from '../../activities/file-lock';
import { type EncryptionKey, type PayloadKeyProvider, PayloadKeyError, SYSTEM_SCOPE, checkScope, createKeyRemedy, keyFingerprint } from './keys-port';

const FORMAT = 'portarium-payload-keyring/v1';
const KEY_ID = /^k[1-9][0-9]{0,8}$/;
const LOCK_TIMEOUT_MS = 20_000;

const KeyringSchema = z.strictObject({
  format: z.literal(FORMAT),
  workspaces: z.record(
    z.string(),
    z.strictObject({
      active: z.string().regex(KEY_ID, 'expected a key id like k1'),
      keys: z.record(z.string().regex(KEY_ID, 'expected a key id like k1'), z.strictObject({
        key: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected 32 bytes in base64'),
        createdAt: z.string(),
      })),
    }),
  ),
});
type Keyring = z.infer<typeof KeyringSchema>;

export class KeyringError extends Error {
  override readonly name = 'KeyringError';
}

const empty = (): Keyring => ({ format: FORMAT, workspaces: {} });

/** Read and check the file; undefined when it does not exist. Never echoes its content. */
function readKeyring(file: string): Keyring | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyringError(`payload keyring ${file}: ${(err as NodeJS.ErrnoException).code ?? 'cannot read it'}`);
  }
  if (fs.statSync(file).mode & 0o077) throw new KeyringError(`payload keyring ${file} is readable by other users; chmod 600 it`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeyringError(`payload keyring ${file} is not JSON`);
  }
  const parsed = KeyringSchema.safeParse(json);
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new KeyringError(`payload keyring ${file} is not valid: ${where}`);
  }
  for (const [ws, entry] of Object.entries(parsed.data.workspaces)) {
    if (!entry.keys[entry.active]) throw new KeyringError(`payload keyring ${file}: workspace ${ws} has no key ${entry.active} (its active key)`);
  }
  return parsed.data;
}

function writeKeyring(file: string, ring: Keyring): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(ring, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  fs.renameSync(tmp, file);
}

/** Run `fn` holding `<file>.lock` (see file-lock.ts: a lock whose holder is gone is taken over). */
async function withLock<T>(file: string, fn: () => T): Promise<T> {
  const lock = `${file}.lock`;
  let release: () => void;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    release = await acquireFileLock(lock, { timeoutMs: LOCK_TIMEOUT_MS });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new KeyringError(e instanceof LockTimeout ? `payload keyring lock ${lock} is held too long` : `payload keyring lock ${lock}: ${e.code ?? e.message}`);
  }
  try {
    return fn();
  } finally {
    release();
  }
}

const newKey = () => ({ key: randomBytes(32).toString('base64'), createdAt: new Date().toISOString() });

/** Add a new active key for `scope` (its first one if it has none); old keys stay for decryption. Returns the new key id. */
export async function rotateKeyring(file: string, scope: string): Promise<string> {
  checkScope(scope);
  return withLock(file, () => {
    const ring = readKeyring(file) ?? empty();
    const entry = ring.workspaces[scope];
    const next = entry ? Math.max(...Object.keys(entry.keys).map((k) => Number(k.slice(1)))) + 1 : 1;
    const id = `k${next}`;
    ring.workspaces[scope] = { active: id, keys: { ...entry?.keys, [id]: newKey() } };
    writeKeyring(file, ring);
    return `${scope}/${id}`;
  });
}

/** Give `scope` its first key unless it has one (idempotent). Returns the active key id and whether it was made now. */
export async function createKeyring(file: string, scope: string): Promise<{ keyId: string; created: boolean }> {
  checkScope(scope);
  return withLock(file, () => {
    const ring = readKeyring(file) ?? empty();
    // Another process may have created it while this one waited for the lock.
    const entry = ring.workspaces[scope];
    if (entry) return { keyId: `${scope}/${entry.active}`, created: false };
    ring.workspaces[scope] = { active: 'k1', keys: { k1: newKey() } };
    writeKeyring(file, ring);
    return { keyId: `${scope}/k1`, created: true };
  });
}

/** Key ids and fingerprints per workspace, for `portarium keys list` (never the keys). */
export function describeKeyring(file: string): { workspace: string; active: string; keys: { id: string; createdAt: string; fingerprint: string }[] }[] {
  const ring = readKeyring(file) ?? empty();
  return Object.entries(ring.workspaces).map(([workspace, e]) => ({
    workspace,
    active: `${workspace}/${e.active}`,
    keys: Object.entries(e.keys).map(([id, k]) => ({ id: `${workspace}/${id}`, createdAt: k.createdAt, fingerprint: keyFingerprint(Buffer.from(k.key, 'base64')) })),
  }));
}

/**
 * The keyring's identity: the fingerprint of its oldest system key, made once when the keyring is set
 * up and never rotated away. Copies of one keyring share it; a keyring set up on its own has another.
 */
export function keyringIdentity(file: string): string | undefined {
  const sys = (readKeyring(file) ?? empty()).workspaces[SYSTEM_SCOPE];
  if (!sys) return undefined;
  const oldest = Object.keys(sys.keys).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))[0];
  return keyFingerprint(Buffer.from(sys.keys[oldest].key, 'base64'));
}

export class KeyringKeyProvider implements PayloadKeyProvider {
  readonly kind = 'keyring';
  private ring: Keyring = empty();
  private seen?: { mtimeMs: number; size: number; ino: number };
  /** Whether the keyring file existed at the last read. */
  private present = false;

  /**
   * `create: true` (development only: PORTARIUM_DEV_CREATE_KEYS) makes a workspace's first key on its
   * first payload; otherwise a missing key is refused with the command that creates it.
   * @default { create: false }
   */
  constructor(
    readonly file: string,
    private readonly opts: { create?: boolean } = {},
  ) {}

  async encryptionKey(scope: string): Promise<EncryptionKey> {
    checkScope(scope);
    let entry = this.current().workspaces[scope];
    if (!entry) {
      if (!this.opts.create) throw new PayloadKeyError('unknown_key', `no payload key for workspace ${scope} in this keyring: ${createKeyRemedy(scope)}`);
      try {
        await createKeyring(this.file, scope);
      } catch (err) {
        throw new PayloadKeyError('unavailable', (err as Error).message);
      }
      entry = this.current().workspaces[scope];
      if (!entry) throw new PayloadKeyError('unavailable', `payload key for workspace ${scope} could not be created`);
    }
    return { keyId: `${scope}/${entry.active}`, key: Buffer.from(entry.keys[entry.active].key, 'base64') };
  }

  async decryptionKey(scope: string, keyId: string): Promise<Buffer> {
    checkScope(scope);
    const id = keyId.slice(scope.length + 1);
    const ring = this.current();
    // No file is this process's problem (not mounted, not copied yet), not the payload's: retryable,
    // so the tolerant worker codec does not turn every payload into an undecodable marker.
    if (!this.present) throw new PayloadKeyError('unavailable', `payload keyring ${this.file} is not there; cannot decrypt ${keyId}`);
    const key = ring.workspaces[scope]?.keys[id]?.key;
    if (!key) throw new PayloadKeyError('unknown_key', `no payload key ${keyId} in this keyring`);
    return Buffer.from(key, 'base64');
  }

  async close(): Promise<void> {}

  /** The keyring as on disk now: reloaded when the file changed since it was last read. */
  private current(): Keyring {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(this.file, { throwIfNoEntry: false });
    } catch (err) {
      throw new PayloadKeyError('unavailable', `payload keyring ${this.file}: ${(err as NodeJS.ErrnoException).code}`);
    }
    this.present = !!st;
    if (!st) return (this.ring = empty());
    if (this.seen && this.seen.mtimeMs === st.mtimeMs && this.seen.size === st.size && this.seen.ino === st.ino) return this.ring;
    try {
      this.ring = readKeyring(this.file) ?? empty();
    } catch (err) {
      throw new PayloadKeyError('unavailable', (err as Error).message);
    }
    this.seen = { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino };
    return this.ring;
  }
}
