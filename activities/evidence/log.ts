/**
 * A workspace's evidence log as sinks store it, and its verification. Pure: the CLI and any auditor
 * check a log exported from any sink with the same code.
 *
 * The log holds every run's entries (numbered by `wsSeq`), a Merkle tree whose leaves commit to run
 * chain heads, and signed tree heads over that tree. Verification checks, in order: the workspace
 * numbering, every run's chain, every leaf against its run, every tree head's signature and root,
 * that the newest signed head covers the whole log, and a trusted head the auditor kept, if given.
 */
import { type ChainProblem, type EvidenceEntry, genesisHash, verifyChain } from '../../workflows/evidence-chain';
import { type EvidenceCrypto, jsonString, pureCrypto } from '../../workflows/hashing';
import { MerkleFrontier } from './merkle';
import { type RunLeaf, type SignedTreeHead, leafHashOf, verifyTreeHead } from './tree-head';

export interface StoredEntry {
  wsSeq: number;
  entry: EvidenceEntry;
  /** The Temporal execution whose chain holds the entry; absent for chains kept by workflow id alone. */
  execution?: string;
}

/**
 * The bytes each entry's hash covers, as read from its stored canonical text (the file sink's line,
 * PostgreSQL's `entry` column): verification hashes them as they are instead of rebuilding them from
 * the parsed entry, which costs more than the hash itself. Kept by entry object, so nothing else changes.
 */
const storedBodies = new WeakMap<EvidenceEntry, string>();

/** The stored body of `entry`, if its reader kept it. */
export const storedBodyOf = (entry: EvidenceEntry): string | undefined => storedBodies.get(entry);

/**
 * Keep the body of `entry` from `text`, the canonical JSON it was just parsed from: the text without
 * its `"hash"` member, which canonical key order puts right after `"event"`. Text not laid out so is
 * not kept (the entry is then verified on its rebuilt body). The entry is frozen, so it can never say
 * anything else than the body kept for it.
 */
function keepStoredBody(entry: EvidenceEntry, text: string): void {
  const hash = entry?.hash;
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash) || typeof entry.event !== 'string') return;
  const member = `,"hash":"${hash}"`;
  const at = text.lastIndexOf(member);
  if (at < 0 || !text.slice(0, at).endsWith(`"event":${jsonString(entry.event)}`) || text[at + member.length] !== ',') return;
  storedBodies.set(deepFreeze(entry), text.slice(0, at) + text.slice(at + member.length));
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** An entry from the canonical JSON text a sink stored it as (PostgreSQL's `entry` column), its body kept. */
export function storedEntryFromText(text: string): unknown {
  const entry = JSON.parse(text) as unknown;
  if (entry !== null && typeof entry === 'object') keepStoredBody(entry as EvidenceEntry, text);
  return entry;
}

/**
 * A stored entry from one line of a sink's entries file, `{"entry":…,"execution":…,"wsSeq":…}` in
 * canonical JSON, keeping the entry's body (`keepStoredBody`) from the text between.
 */
export function storedEntryFromLine(line: string): StoredEntry {
  const record = JSON.parse(line) as StoredEntry;
  if (record === null || typeof record !== 'object' || !record.entry || typeof record.entry !== 'object' || !line.startsWith('{"entry":{') || !Number.isSafeInteger(record.wsSeq)) return record;
  const tail = `,"wsSeq":${record.wsSeq}}`;
  if (!line.endsWith(tail)) return record;
  let end = line.length - tail.length;
  if (record.execution !== undefined) {
    const execution = typeof record.execution === 'string' ? `,"execution":${jsonString(record.execution)}` : undefined;
    if (!execution || !line.slice(0, end).endsWith(execution)) return record;
    end -= execution.length;
  }
  keepStoredBody(record.entry, line.slice('{"entry":'.length, end));
  return record;
}

/** One chain in a workspace log: a run's execution (or a run's only chain, before executions were kept apart). */
export interface StoredChain {
  runId: string;
  execution?: string;
  entries: EvidenceEntry[];
  /** The workspace position of its last entry: which chain was written last. */
  lastWsSeq: number;
}

/** How a chain is named in maps and messages. */
export const chainKey = (runId: string, execution: string | undefined): string => JSON.stringify([runId, execution ?? null]);
export const chainLabel = (runId: string, execution: string | undefined): string => (execution ? `run ${runId} (execution ${execution})` : `run ${runId}`);

/** The log's chains, in the order they first appear. */
export function chainsOf(entries: readonly StoredEntry[]): Map<string, StoredChain> {
  const chains = new Map<string, StoredChain>();
  // A batch's entries sit together in the log: the chain of the entry before is looked up only once.
  let last: StoredChain | undefined;
  for (const { wsSeq, entry, execution } of entries) {
    let chain = last && last.runId === entry.runId && last.execution === execution ? last : undefined;
    if (!chain) {
      const key = chainKey(entry.runId, execution);
      chain = chains.get(key);
      if (!chain) chains.set(key, (chain = { runId: entry.runId, ...(execution === undefined ? {} : { execution }), entries: [], lastWsSeq: wsSeq }));
    }
    chain.entries.push(entry);
    chain.lastWsSeq = wsSeq;
    last = chain;
  }
  return chains;
}

export interface StoredLeaf {
  index: number;
  leaf: RunLeaf;
  leafHash: string;
}

export interface WorkspaceLog {
  workspaceId: string;
  entries: StoredEntry[];
  leaves: StoredLeaf[];
  treeHeads: SignedTreeHead[];
}

export type LogProblemReason =
  | ChainProblem
  /** Leaf content does not hash to its stored hash, or names another run head than the chain has. */
  | 'leaf_mismatch'
  /** The log holds fewer leaves (or run entries) than a signed head or leaf commits to. */
  | 'truncated'
  /** Entries or leaves past what the newest signed head covers. */
  | 'uncommitted'
  /** A signed head's root is not the root of the log's leaves at that size. */
  | 'root_mismatch'
  /** Two signed heads, or a trusted head and the log, disagree about the same tree. */
  | 'fork'
  | 'bad_signature';

export interface LogProblem {
  reason: LogProblemReason;
  message: string;
  runId?: string;
  execution?: string;
  seq?: number;
  wsSeq?: number;
  leafIndex?: number;
  treeSize?: number;
}

export type LogVerdict =
  /** `runs` counts chains: one per execution (or per run, for chains kept before executions were). */
  | { ok: true; entries: number; runs: number; treeSize: number; rootHash: string }
  | { ok: false; problem: LogProblem };

export interface VerifyOptions {
  /** The signer's Ed25519 public key, hex. */
  publicKey: string;
  /** A signed head saved earlier (by an auditor, or published): the log must still extend it. */
  trustedHead?: SignedTreeHead;
  /**
   * Whose signatures to check. Every head's root is always checked against the leaves; `newest`
   * checks only the signature of the newest head (which commits to the whole log), and saves one
   * Ed25519 verification per older head. @default 'all'
   */
  signatures?: 'all' | 'newest';
  /** The hash and signature check to use: the pure ones by default; node:crypto's outside the sandbox (activities/evidence/verify.ts). */
  crypto?: EvidenceCrypto;
}

const fail = (problem: LogProblem): LogVerdict => ({ ok: false, problem });

export function verifyWorkspaceLog(log: WorkspaceLog, opts: VerifyOptions): LogVerdict {
  const { workspaceId } = log;
  const crypto = opts.crypto ?? pureCrypto;
  // 1. Workspace numbering: every position once, in order.
  for (let i = 0; i < log.entries.length; i++) {
    const at = log.entries[i].wsSeq;
    if (at === i) continue;
    const reason = at < i ? 'extra_entry' : log.entries.slice(i + 1).some((s) => s.wsSeq === i) ? 'reordered' : 'missing_entry';
    return fail({ reason, wsSeq: i, message: `workspace log position ${i}: ${reason.replace('_', ' ')} (found position ${at})` });
  }
  // 2. Every chain, in the order chains first appear.
  const runs = chainsOf(log.entries);
  for (const { runId, execution, entries } of runs.values()) {
    const v = verifyChain(entries, { workspaceId, runId }, crypto, storedBodyOf);
    if (!v.ok) return fail({ reason: v.reason, runId, execution, seq: v.seq, message: `${chainLabel(runId, execution)}: ${v.reason.replace(/_/g, ' ')} at seq ${v.seq}` });
  }
  // 3. Leaves: each hashes to its content and commits to a head the run's chain really has.
  const frontier = new MerkleFrontier(crypto);
  // Roots are needed only where a signed head (or the trusted head) claims one.
  const headSizes = new Set([...log.treeHeads.map((h) => h.treeSize), opts.trustedHead?.treeSize ?? 0]);
  const committed = new Map<string, number>();
  const rootAt = new Map<number, string>();
  for (let i = 0; i < log.leaves.length; i++) {
    const { index, leaf, leafHash } = log.leaves[i];
    if (index !== i) return fail({ reason: index > i ? 'missing_entry' : 'extra_entry', leafIndex: i, message: `leaf ${i} is missing or out of order (found leaf ${index})` });
    if (leaf.workspaceId !== workspaceId || leafHashOf(leaf, crypto) !== leafHash) return fail({ reason: 'leaf_mismatch', leafIndex: i, runId: leaf.runId, message: `leaf ${i} does not match its hash` });
    const key = chainKey(leaf.runId, leaf.execution);
    const chain = runs.get(key)?.entries ?? [];
    if (chain.length < leaf.count) {
      return fail({ reason: 'truncated', leafIndex: i, runId: leaf.runId, execution: leaf.execution, seq: chain.length, message: `${chainLabel(leaf.runId, leaf.execution)} holds ${chain.length} entries; leaf ${i} commits to ${leaf.count}` });
    }
    const head = leaf.count ? chain[leaf.count - 1].hash : genesisHash(workspaceId, leaf.runId, crypto);
    if (head !== leaf.head) return fail({ reason: 'leaf_mismatch', leafIndex: i, runId: leaf.runId, execution: leaf.execution, seq: leaf.count - 1, message: `leaf ${i} commits to another head of ${chainLabel(leaf.runId, leaf.execution)} at seq ${leaf.count - 1}` });
    committed.set(key, Math.max(committed.get(key) ?? 0, leaf.count));
    frontier.append(leafHash);
    if (headSizes.has(frontier.size)) rootAt.set(frontier.size, frontier.root());
  }
  // 4. Signed heads: signature, then root at their size; two heads of one size must agree.
  const bySize = new Map<number, string>();
  let newest: SignedTreeHead | undefined;
  const newestSize = Math.max(-1, ...log.treeHeads.map((h) => h.treeSize));
  for (const sth of log.treeHeads) {
    const checkSignature = opts.signatures !== 'newest' || sth.treeSize === newestSize;
    if (sth.workspaceId !== workspaceId || (checkSignature && !verifyTreeHead(sth, opts.publicKey, crypto))) {
      return fail({ reason: 'bad_signature', treeSize: sth.treeSize, message: `tree head of size ${sth.treeSize} (${sth.timestamp}) is not signed by the given key` });
    }
    const seen = bySize.get(sth.treeSize);
    if (seen && seen !== sth.rootHash) return fail({ reason: 'fork', treeSize: sth.treeSize, message: `two signed heads of size ${sth.treeSize} name different roots` });
    bySize.set(sth.treeSize, sth.rootHash);
    const check = checkAgainstLeaves(sth, rootAt, log.leaves.length);
    if (check) return fail(check);
    if (!newest || sth.treeSize > newest.treeSize) newest = sth;
  }
  // 5. Nothing past the newest signed head: unsigned additions are not evidence.
  const signedSize = newest?.treeSize ?? 0;
  if (log.leaves.length > signedSize) {
    return fail({ reason: 'uncommitted', leafIndex: signedSize, message: `leaves from ${signedSize} on are not covered by a signed tree head` });
  }
  for (const [key, { runId, execution, entries }] of runs) {
    const n = committed.get(key) ?? 0;
    if (entries.length > n) return fail({ reason: 'uncommitted', runId, execution, seq: n, message: `${chainLabel(runId, execution)}: entries from seq ${n} on are not committed by any leaf` });
  }
  if (opts.trustedHead) {
    const t = opts.trustedHead;
    if (t.workspaceId !== workspaceId || !verifyTreeHead(t, opts.publicKey, crypto)) return fail({ reason: 'bad_signature', treeSize: t.treeSize, message: 'the trusted head is not signed by the given key' });
    const check = checkAgainstLeaves(t, rootAt, log.leaves.length);
    if (check) return fail({ ...check, reason: check.reason === 'root_mismatch' ? 'fork' : check.reason, message: `trusted head: ${check.message}` });
  }
  return { ok: true, entries: log.entries.length, runs: runs.size, treeSize: log.leaves.length, rootHash: frontier.root() };
}

function checkAgainstLeaves(sth: SignedTreeHead, rootAt: Map<number, string>, leaves: number): LogProblem | undefined {
  if (sth.treeSize > leaves) return { reason: 'truncated', treeSize: sth.treeSize, message: `a signed head covers ${sth.treeSize} leaves; the log holds ${leaves}` };
  const root = sth.treeSize === 0 ? MerkleFrontier.of([]).root() : rootAt.get(sth.treeSize);
  if (root !== sth.rootHash) return { reason: 'root_mismatch', treeSize: sth.treeSize, message: `the log's root at size ${sth.treeSize} is not the signed root` };
  return undefined;
}
