/**
 * Embedded evidence sink: append-only files per workspace under `{dir}/{workspace}/`:
 * `entries.jsonl`, `leaves.jsonl` and `tree-heads.jsonl`, one canonical JSON record per line.
 *
 * Every write is one `write` on an O_APPEND descriptor followed by fsync, under a per-workspace lock
 * held both in this process and across processes on the machine (a `.lock` file naming its holder,
 * taken over when that holder is gone: see file-lock.ts).
 * A line without its newline can only be a write that crashed before it was acknowledged; the next
 * writer cuts it off before appending, so a retry never leaves a half line in the log.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { type EvidenceEntry } from '../../workflows/evidence-chain';
import { chainKey, storedEntryFromLine } from './log';
import { FailureType } from '../../workflows/failures';
import { canonicalJson } from '../../workflows/hashing';
import { MerkleFrontier } from './merkle';
import type { SignedTreeHead } from './tree-head';
import {
  type AppendBatch,
  type AppendReceipt,
  type EvidenceSink,
  type LogTransaction,
  type StoredEntry,
  type StoredLeaf,
  type WorkspaceLog,
  appendBatch,
  chunked,
  runChain,
} from './sink';
import { nodeEvidenceCrypto } from './verify';
import { acquireFileLock } from '../file-lock';
import { checkWorkspaceId } from '../secrets/port';
import type { TreeHeadSigner } from './tree-head-signer';

const FILES = { entries: 'entries.jsonl', leaves: 'leaves.jsonl', treeHeads: 'tree-heads.jsonl' } as const;
type FileKind = keyof typeof FILES;
/** One `write` holds at most this much, so a huge batch never builds one huge buffer. */
const WRITE_LIMITS = { lines: 1_000, bytes: 1024 * 1024 } as const;

export interface FileSinkOptions {
  dir: string;
  signer: TreeHeadSigner;
  /** How long an append waits for another process's lock on the workspace. @default 30 s */
  lockTimeoutMs?: number;
  /** Fault injection for tests: called before each file write; throwing simulates a crash there. */
  beforeWrite?: (kind: FileKind, data: Buffer) => void;
}

/** What this process knows of one workspace's files, and how far it has read each. */
class WorkspaceState {
  offsets: Record<FileKind, number> = { entries: 0, leaves: 0, treeHeads: 0 };
  runHashes = new Map<string, string[]>();
  entryCount = 0;
  frontier = new MerkleFrontier(nodeEvidenceCrypto);
  leafIndex = new Map<string, number>();
  latest?: SignedTreeHead;

  add(kind: FileKind, record: unknown): void {
    if (kind === 'entries') {
      const { entry, execution } = record as StoredEntry;
      const key = chainKey(entry.runId, execution);
      const hashes = this.runHashes.get(key) ?? [];
      hashes[entry.seq] = entry.hash;
      this.runHashes.set(key, hashes);
      this.entryCount++;
    } else if (kind === 'leaves') {
      const { index, leaf, leafHash } = record as StoredLeaf;
      // Leaves are only ever appended in index order (under the lock), so the frontier follows them.
      if (index !== this.frontier.size) throw new Error(`leaf ${index} found where leaf ${this.frontier.size} was expected`);
      this.frontier.append(leafHash);
      this.leafIndex.set(`${chainKey(leaf.runId, leaf.execution)}#${leaf.count}`, index);
    } else {
      const sth = record as SignedTreeHead;
      if (!this.latest || sth.treeSize >= this.latest.treeSize) this.latest = sth;
    }
  }
}

const unavailable = (err: unknown) =>
  ApplicationFailure.create({ type: FailureType.EvidenceUnavailable, message: `evidence files: ${(err as Error).message}`, nonRetryable: false });

export class FileEvidenceSink implements EvidenceSink {
  readonly kind = 'file';
  private readonly states = new Map<string, WorkspaceState>();
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: FileSinkOptions) {}

  private folder(workspaceId: string): string {
    // EvidenceConflict: never retried, and the run stops before it acts (a wait for the sink would never end).
    checkWorkspaceId(workspaceId, FailureType.EvidenceConflict);
    return path.join(this.opts.dir, workspaceId);
  }

  append(batch: AppendBatch): Promise<AppendReceipt> {
    return this.locked(batch.workspaceId, async (dir, state) => {
      const tx: LogTransaction = {
        runHashes: async (runId, execution) => [...(state.runHashes.get(chainKey(runId, execution)) ?? [])],
        entryCount: async () => state.entryCount,
        frontier: async () => state.frontier,
        findLeaf: async (runId, execution, count) => state.leafIndex.get(`${chainKey(runId, execution)}#${count}`),
        latestTreeHead: async () => state.latest,
        writeEntries: (entries) => this.write(dir, state, 'entries', entries),
        writeLeaf: (leaf) => this.write(dir, state, 'leaves', [leaf]),
        writeTreeHead: (sth) => this.write(dir, state, 'treeHeads', [sth]),
      };
      return appendBatch(tx, batch, this.opts.signer, () => new Date());
    });
  }

  async readWorkspace(workspaceId: string): Promise<WorkspaceLog> {
    const dir = this.folder(workspaceId);
    // The three sizes are taken in one synchronous step and only that much is read, so the files are
    // seen as of one moment even while this process appends during the (streamed) read.
    const [entries, leaves, treeHeads] = (['entries', 'leaves', 'treeHeads'] as const).map((kind) => {
      const file = path.join(dir, FILES[kind]);
      return { file, size: fs.existsSync(file) ? fs.statSync(file).size : 0 };
    });
    return {
      workspaceId,
      entries: await readRecords(entries.file, entries.size, storedEntryFromLine),
      leaves: await readRecords<StoredLeaf>(leaves.file, leaves.size),
      treeHeads: await readRecords<SignedTreeHead>(treeHeads.file, treeHeads.size),
    };
  }

  async readRun(workspaceId: string, runId: string, execution?: string): Promise<EvidenceEntry[]> {
    const { entries } = await this.readWorkspace(workspaceId);
    return runChain(entries, runId, execution);
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((p) => p.catch(() => undefined)));
  }

  /**
   * Append records in bounded writes (each whole lines), then fsync once. Asynchronous: an fsync takes
   * milliseconds, and a synchronous one stalled every activity, poll and heartbeat of the worker.
   */
  private async write(dir: string, state: WorkspaceState, kind: FileKind, records: unknown[]): Promise<void> {
    const lines = records.map((r) => Buffer.from(`${canonicalJson(r)}\n`, 'utf8'));
    let file: fs.promises.FileHandle | undefined;
    try {
      let i = 0;
      for (const chunk of chunked(lines, WRITE_LIMITS.lines, WRITE_LIMITS.bytes, (l) => l.length)) {
        const data = Buffer.concat(chunk);
        this.opts.beforeWrite?.(kind, data);
        file ??= await fs.promises.open(path.join(dir, FILES[kind]), 'a', 0o600);
        // A short write is possible for big buffers; write until all of it is down.
        for (let off = 0; off < data.length; ) off += (await file.write(data, off)).bytesWritten;
        state.offsets[kind] += data.length;
        for (let n = 0; n < chunk.length; n++) state.add(kind, records[i++]);
      }
      if (file !== undefined) await file.sync();
    } finally {
      if (file !== undefined) await file.close();
    }
  }

  /** Run `fn` holding the workspace's lock, with this process's view brought up to date first. */
  private locked<T>(workspaceId: string, fn: (dir: string, state: WorkspaceState) => Promise<T>): Promise<T> {
    const previous = this.queues.get(workspaceId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(async () => {
      const dir = this.folder(workspaceId);
      let release: () => void;
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        release = await acquireFileLock(path.join(dir, '.lock'), { timeoutMs: this.opts.lockTimeoutMs });
      } catch (err) {
        throw unavailable(err);
      }
      try {
        const state = this.states.get(workspaceId) ?? new WorkspaceState();
        this.states.set(workspaceId, state);
        for (const kind of Object.keys(FILES) as FileKind[]) catchUp(path.join(dir, FILES[kind]), kind, state);
        return await fn(dir, state);
      } catch (err) {
        // Our view may now be ahead of or behind the files: read them again next time.
        this.states.delete(workspaceId);
        if (err instanceof ApplicationFailure) throw err;
        throw unavailable(err);
      } finally {
        release();
      }
    });
    this.queues.set(workspaceId, next);
    return next;
  }
}

/** Read what other writers appended since our offset; cut off a torn last line (a crashed write). */
function catchUp(file: string, kind: FileKind, state: WorkspaceState): void {
  if (!fs.existsSync(file)) return;
  const size = fs.statSync(file).size;
  if (size < state.offsets[kind]) throw new Error(`${file} shrank: the log was truncated outside Portarium`);
  if (size === state.offsets[kind]) return;
  const fd = fs.openSync(file, 'r+');
  try {
    const buf = Buffer.alloc(size - state.offsets[kind]);
    fs.readSync(fd, buf, 0, buf.length, state.offsets[kind]);
    const end = buf.lastIndexOf(0x0a) + 1;
    for (const line of buf.subarray(0, end).toString('utf8').split('\n')) if (line) state.add(kind, JSON.parse(line));
    state.offsets[kind] += end;
    if (end < buf.length) {
      fs.ftruncateSync(fd, state.offsets[kind]);
      fs.fsyncSync(fd);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The records on the complete lines of the first `size` bytes of `file`, read a chunk at a time: the
 * log is never one string in memory, only the records parsed from it.
 */
async function readRecords<T>(file: string, size: number, parse: (line: string) => T = JSON.parse): Promise<T[]> {
  const out: T[] = [];
  if (size === 0) return out;
  let rest = '';
  // 'utf8' decodes a character split across chunks whole.
  for await (const chunk of fs.createReadStream(file, { encoding: 'utf8', start: 0, end: size - 1, highWaterMark: 1024 * 1024 })) {
    const text = rest + (chunk as string);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      if (nl > start) out.push(parse(text.slice(start, nl)));
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  // `rest` is a torn last line: never acknowledged, so not part of the log.
  return out;
}
