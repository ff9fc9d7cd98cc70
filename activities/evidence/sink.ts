/**
 * The evidence sink port, and the one append algorithm every sink shares.
 *
 * A sink keeps, per workspace, one append-only log of evidence entries (all runs interleaved, in the
 * order they were written, numbered by `wsSeq`), a Merkle log over run chain heads (one leaf per
 * appended batch: "run R had `count` entries ending in `head`") and the signed tree heads issued
 * after each leaf. Sinks differ only in storage; `appendBatch` holds the rules, run inside the sink's
 * per-workspace lock so two runs writing at once never fork the log:
 * - a retried batch writes nothing twice: entries already stored with the same hash are skipped, and
 *   the leaf for `(run, count)` is added once;
 * - an entry stored under the same `(run, seq)` with another hash is a fork and is refused;
 * - a batch must continue the stored chain (no gap, `previousHash` links, hashes recomputed).
 * A chain is one Temporal execution's: it is keyed by workflow id and the execution's run id, so a
 * new execution under a reused workflow id, or a reset, starts its own chain instead of forking the
 * old one. Chains stored before that have no execution and keep their key.
 */
import { ApplicationFailure } from '@temporalio/common';
import { type EvidenceEntry, chunked, entryBodyJson, genesisHash } from '../../workflows/evidence-chain';
import { type StoredEntry, type StoredLeaf, type WorkspaceLog, chainsOf } from './log';
import { FailureType } from '../../workflows/failures';
import type { MerkleFrontier } from './merkle';
import { type RunLeaf, type SignedTreeHead, leafHashOf } from './tree-head';
import { nodeEvidenceCrypto } from './verify';
import type { TreeHeadSigner } from './tree-head-signer';

export type { StoredEntry, StoredLeaf, WorkspaceLog };

/** Consecutive entries of one run (seq ascending), as the workflow sends them. */
export interface AppendBatch {
  workspaceId: string;
  runId: string;
  /** The Temporal run id of the execution writing the chain; absent for chains kept under the workflow id alone. */
  execution?: string;
  entries: EvidenceEntry[];
}

/**
 * Bounds on what one append writes: the activity splits bigger batches into appends this size, and
 * sinks split their writes further (a PostgreSQL statement holds at most 65,535 parameters).
 */
export const APPEND_LIMITS = { entries: 2_000, bytes: 4 * 1024 * 1024 } as const;

export { chunked };

export interface AppendReceipt {
  runId: string;
  execution?: string;
  /** Entries the sink now holds for the run, and the hash of the last. */
  count: number;
  head: string;
  written: number;
  skipped: number;
  /** The leaf committing to `(runId, count, head)`, and the newest signed tree head. */
  leafIndex: number;
  treeHead: SignedTreeHead;
}

/** What a sink's storage offers `appendBatch` while it holds the workspace's lock. */
export interface LogTransaction {
  /** Hashes of the stored entries of the run's chain (of `execution`, or the chain kept without one), by seq. */
  runHashes(runId: string, execution: string | undefined): Promise<string[]>;
  /** Entries in the workspace log (the next `wsSeq`). */
  entryCount(): Promise<number>;
  /**
   * The workspace tree's frontier, up to date with every stored leaf. The sink keeps it across appends
   * (O(log n) per leaf, instead of rehashing every leaf each time) and `writeLeaf` appends to it.
   */
  frontier(): Promise<MerkleFrontier>;
  /** Index of the leaf for `(runId, execution, count)`, if there is one. */
  findLeaf(runId: string, execution: string | undefined, count: number): Promise<number | undefined>;
  latestTreeHead(): Promise<SignedTreeHead | undefined>;
  writeEntries(entries: StoredEntry[]): Promise<void>;
  writeLeaf(leaf: StoredLeaf): Promise<void>;
  writeTreeHead(sth: SignedTreeHead): Promise<void>;
}

export interface EvidenceSink {
  readonly kind: string;
  /** Append one run's batch; idempotent (see the file comment). */
  append(batch: AppendBatch): Promise<AppendReceipt>;
  /** The whole workspace log, for verification and proofs. */
  readWorkspace(workspaceId: string): Promise<WorkspaceLog>;
  /**
   * One chain's entries in seq order: the run's execution `execution`, or by default the execution
   * that wrote last under that workflow id.
   */
  readRun(workspaceId: string, runId: string, execution?: string): Promise<EvidenceEntry[]>;
  close(): Promise<void>;
}

/** One chain of a workspace's stored entries: `execution`'s, or by default the execution that wrote last under `runId`. */
export function runChain(entries: readonly StoredEntry[], runId: string, execution?: string): EvidenceEntry[] {
  const chains = [...chainsOf(entries).values()].filter((c) => c.runId === runId);
  const chain = execution === undefined ? chains.sort((a, b) => b.lastWsSeq - a.lastWsSeq)[0] : chains.find((c) => c.execution === execution);
  return chain?.entries ?? [];
}

const conflict = (message: string) => ApplicationFailure.create({ type: FailureType.EvidenceConflict, message, nonRetryable: true });

/** Check a batch before any I/O: one run and workspace, consecutive seqs, each hash recomputed. */
function checkBatch(batch: AppendBatch): void {
  const { workspaceId, runId, entries, execution } = batch;
  if (execution !== undefined && (typeof execution !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(execution))) throw conflict(`execution ${String(execution).slice(0, 40)} is not a Temporal run id`);
  entries.forEach((e, i) => {
    if (e.workspaceId !== workspaceId || e.runId !== runId) throw conflict(`entry seq ${e.seq} belongs to ${e.workspaceId}/${e.runId}, not ${workspaceId}/${runId}`);
    if (i > 0 && e.seq !== entries[i - 1].seq + 1) throw conflict(`batch is not consecutive at seq ${e.seq}`);
    if (i > 0 && e.previousHash !== entries[i - 1].hash) throw conflict(`entry seq ${e.seq} does not link to seq ${e.seq - 1}`);
    if (nodeEvidenceCrypto.sha256Hex(entryBodyJson(e)) !== e.hash) throw conflict(`entry seq ${e.seq} does not match its hash`);
  });
}

/** The shared append, run by a sink inside its per-workspace lock. */
export async function appendBatch(tx: LogTransaction, batch: AppendBatch, signer: TreeHeadSigner, now: () => Date): Promise<AppendReceipt> {
  checkBatch(batch);
  const { workspaceId, runId, execution } = batch;
  const stored = await tx.runHashes(runId, execution);
  let head = stored.length ? stored[stored.length - 1] : genesisHash(workspaceId, runId, nodeEvidenceCrypto);
  const fresh: EvidenceEntry[] = [];
  let skipped = 0;
  for (const e of batch.entries) {
    if (e.seq < stored.length) {
      if (stored[e.seq] !== e.hash) throw conflict(`run ${runId} already holds a different entry at seq ${e.seq} (fork refused)`);
      skipped++;
      continue;
    }
    const expected = stored.length + fresh.length;
    if (e.seq !== expected) throw conflict(`run ${runId} has ${expected} entries; the batch continues at seq ${e.seq} (gap refused)`);
    if (e.previousHash !== head) throw conflict(`entry seq ${e.seq} does not link to the stored head of run ${runId}`);
    fresh.push(e);
    head = e.hash;
  }
  if (fresh.length) {
    const first = await tx.entryCount();
    await tx.writeEntries(fresh.map((entry, i) => ({ wsSeq: first + i, entry, ...(execution === undefined ? {} : { execution }) })));
  }
  const count = stored.length + fresh.length;
  let leafIndex = await tx.findLeaf(runId, execution, count);
  let treeHead = await tx.latestTreeHead();
  // A crash between leaf and tree head leaves the newest leaf unsigned; sign it now.
  if (leafIndex === undefined || !treeHead || treeHead.treeSize <= leafIndex) {
    const frontier = await tx.frontier();
    if (leafIndex === undefined) {
      const leaf: RunLeaf = { workspaceId, runId, ...(execution === undefined ? {} : { execution }), count, head };
      leafIndex = frontier.size;
      await tx.writeLeaf({ index: leafIndex, leaf, leafHash: leafHashOf(leaf, nodeEvidenceCrypto) });
    }
    treeHead = signer.sign({ workspaceId, treeSize: frontier.size, rootHash: frontier.root(), timestamp: now().toISOString() });
    await tx.writeTreeHead(treeHead);
  }
  return { runId, ...(execution === undefined ? {} : { execution }), count, head, written: fresh.length, skipped, leafIndex, treeHead };
}
