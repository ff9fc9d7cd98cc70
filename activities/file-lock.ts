/**
 * A cross-process lock file that dies with its holder, shared by the evidence file sink and the
 * payload keyring.
 *
 * The lock file names its holder: pid, the process's start time (Linux: `/proc/<pid>/stat` field 22;
 * absent elsewhere) and a random nonce. It is created whole with `link` (never seen half written).
 * A lock is stale when its pid is dead, when the pid is alive but started at another time (another
 * process reusing the pid), or when it names our own pid with a nonce this process does not hold
 * (a crashed earlier incarnation: pid 1 in a container). Old locks holding only a pid are judged by
 * the pid alone.
 *
 * Taking over is a race between contenders that all saw the same stale lock: each must first create
 * `<lock>.break-<digest of the stale content>` exclusively, so one wins; the winner checks the lock
 * still holds that content and renames its own record over it. A later contender that wins the same
 * marker finds other content and backs off. An orphaned marker (its breaker crashed) is stale by the
 * same rules and broken the same way, one level down.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';

interface Holder {
  pid: number;
  /** Process start time in clock ticks since boot (Linux), or absent where unknown. */
  start?: string;
  nonce: string;
}

/** Nonces of the locks this process holds now. */
const held = new Set<string>();
/** A marker of a crashed breaker is broken at most this deep. */
const MAX_DEPTH = 3;
/** Content that is not a holder record (written by hand, or corrupted) is stale once this old. */
const FOREIGN_STALE_MS = 5_000;

/** A process's start time from `/proc/<pid>/stat`, or undefined where there is no procfs. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; fields after the last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** This process's own start time: read once, it never changes. */
let ownStart: { value: string | undefined } | undefined;
const myStart = () => (ownStart ??= { value: processStart(process.pid) }).value;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parse(text: string): Holder | number | undefined {
  if (/^\d+$/.test(text.trim())) return Number(text.trim());
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    if (Number.isSafeInteger(h.pid) && typeof h.nonce === 'string' && (h.start === undefined || typeof h.start === 'string')) return h as Holder;
  } catch {
    // Not a holder record: judged by age below.
  }
  return undefined;
}

function isStale(file: string, text: string): boolean {
  const h = parse(text);
  if (h === undefined) {
    const mtime = fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs;
    return mtime !== undefined && Date.now() - mtime > FOREIGN_STALE_MS;
  }
  const pid = typeof h === 'number' ? h : h.pid;
  if (pid <= 0) return true;
  // Our pid: we know every lock we hold. An old pid-only lock with our pid is a former incarnation's.
  if (pid === process.pid) return typeof h === 'number' || !held.has(h.nonce);
  if (!alive(pid)) return true;
  if (typeof h === 'number' || h.start === undefined) return false;
  const start = processStart(pid);
  return start !== undefined && start !== h.start;
}

function readOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** Write `record` to a fresh private temp file next to `file`; the caller links or renames it into place. */
function staged(file: string, record: string): string {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, record, { mode: 0o600, flag: 'wx' });
  return tmp;
}

/** Try once to make `file` hold `record`: create it, or take over a stale holder. */
function claim(file: string, record: string, depth = 0): boolean {
  const tmp = staged(file, record);
  try {
    try {
      fs.linkSync(tmp, file);
      return true;
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
    }
    const current = readOrUndefined(file);
    if (current === undefined) return false; // released meanwhile: try again
    if (!isStale(file, current) || depth >= MAX_DEPTH) return false;
    const marker = `${file}.break-${createHash('sha256').update(current).digest('hex').slice(0, 24)}`;
    if (!claim(marker, record, depth + 1)) return false;
    try {
      if (readOrUndefined(file) !== current) return false;
      fs.renameSync(tmp, file);
      return true;
    } finally {
      fs.rmSync(marker, { force: true });
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export class LockTimeout extends Error {
  override readonly name = 'LockTimeout';
}

/**
 * Take `file` (waiting up to `timeoutMs`) and return its release. Errors other than a timeout are the
 * file system's (permissions, a missing folder) and are thrown as they are.
 */
export async function acquireFileLock(file: string, opts: { timeoutMs?: number } = {}): Promise<() => void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  const me: Holder = { pid: process.pid, start: myStart(), nonce: randomBytes(16).toString('hex') };
  const record = JSON.stringify(me);
  held.add(me.nonce);
  try {
    for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
      if (claim(file, record)) break;
      if (Date.now() > deadline) {
        const holder = parse(readOrUndefined(file) ?? '');
        throw new LockTimeout(`timed out waiting for ${file} (held by pid ${typeof holder === 'number' ? holder : holder?.pid ?? 'unknown'})`);
      }
      await new Promise((r) => setTimeout(r, wait + Math.random() * wait));
    }
  } catch (err) {
    held.delete(me.nonce);
    throw err;
  }
  return () => {
    // Remove the file only while it is still ours.
    try {
      if (readOrUndefined(file) === record) fs.rmSync(file, { force: true });
    } finally {
      held.delete(me.nonce);
    }
  };
}
