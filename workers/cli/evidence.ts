/**
 * `portarium evidence …`: verify a run's chain, a workspace log, inclusion and consistency proofs;
 * make those proofs; export a workspace log and its newest signed head for auditors; manage the
 * signing key. A failed check prints the first bad point and exits 1.
 */
import * as fs from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519';
import { bytesToHex } from '@noble/hashes/utils';
import type { EvidenceSink, WorkspaceLog } from '../../activities/evidence/sink';
import { nodeEvidenceCrypto as crypto } from '../../activities/evidence/verify';
import { verifyChain } from '../../workflows/evidence-chain';
import { chainLabel, chainsOf, storedBodyOf, verifyWorkspaceLog } from '../../activities/evidence/log';
import { consistencyProof, inclusionProof, rootOf, verifyConsistency, verifyInclusion } from '../../activities/evidence/merkle';
import { type RunLeaf, type SignedTreeHead, leafHashOf, verifyTreeHead } from '../../activities/evidence/tree-head';
import { type Command, type Ctx, KeyFileError, UsageError, need, str, strings } from './kit';
import { HELP } from './format';
import { configuredEvidenceSink, evidencePublicKey } from '../evidence';

const INCLUSION_PROOF_SCHEMA = 'portarium.inclusion-proof.v1';
const CONSISTENCY_PROOF_SCHEMA = 'portarium.consistency-proof.v1';

export interface InclusionProofFile {
  schema: typeof INCLUSION_PROOF_SCHEMA;
  leaf: RunLeaf;
  leafIndex: number;
  proof: string[];
  treeHead: SignedTreeHead;
}

export interface ConsistencyProofFile {
  schema: typeof CONSISTENCY_PROOF_SCHEMA;
  from: SignedTreeHead;
  to: SignedTreeHead;
  proof: string[];
}

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (err) {
    throw new UsageError(`${what} ${file}: ${(err as Error).message}`);
  }
}

async function withSink<T>(ctx: Ctx, fn: (sink: EvidenceSink) => Promise<T>): Promise<T> {
  const sink = configuredEvidenceSink(ctx.config(), { readOnly: true });
  try {
    return await fn(sink);
  } finally {
    await sink.close();
  }
}

const publicKey = (ctx: Ctx) => evidencePublicKey(ctx.config(), str(ctx.values, 'public-key'));

function failed(ctx: Ctx, message: string): number {
  ctx.io.err(`evidence check failed: ${message}`);
  return 1;
}

async function workspaceLog(ctx: Ctx, workspaceId: string): Promise<WorkspaceLog> {
  const file = str(ctx.values, 'file');
  if (file) return readJson<WorkspaceLog>(file, '--file');
  return withSink(ctx, (sink) => sink.readWorkspace(workspaceId));
}

async function verifyRun(ctx: Ctx): Promise<number> {
  const [id] = ctx.args;
  const workspaceId = str(ctx.values, 'workspace');
  if (!workspaceId) {
    // From the workflow itself, while Temporal still holds it.
    const run = (await ctx.client()).run(id);
    const [view, status] = await Promise.all([run.evidence(), run.status()]);
    const v = verifyChain(view.entries, { workspaceId: status.workspaceId, runId: id }, crypto);
    if (!v.ok) return failed(ctx, `run ${id}: ${v.reason} at seq ${v.seq}`);
    if (v.head !== view.head) return failed(ctx, `run ${id}: the chain ends in ${v.head}, the workflow reports ${view.head}`);
    const stored = status.evidenceStored;
    if (stored && (stored.count > v.count || view.entries[stored.count - 1]?.hash !== stored.head)) {
      return failed(ctx, `run ${id}: the sink acknowledged ${stored.count} entries ending in ${stored.head}, which this chain does not hold`);
    }
    ctx.io.out(`verified: run ${id}, ${v.count} entries, head ${v.head}${stored ? `; sink holds ${stored.count} (leaf ${stored.leafIndex})` : ''}`);
    return 0;
  }
  // From the sink, long after Temporal's retention: every execution's chain stored under this id,
  // each with its leaf, in a tree head of this workspace signed by the trusted key.
  const log = await workspaceLog(ctx, workspaceId);
  if (log.workspaceId !== workspaceId) return failed(ctx, `the log is of workspace ${log.workspaceId}, not ${workspaceId}`);
  const chains = [...chainsOf(log.entries).values()].filter((c) => c.runId === id).sort((a, b) => a.lastWsSeq - b.lastWsSeq);
  if (!chains.length) return failed(ctx, `run ${id}: no entries in workspace ${workspaceId}`);
  const pk = publicKey(ctx);
  const sth = newestHead(log);
  if (!sth) return failed(ctx, `run ${id}: uncommitted: workspace ${workspaceId} has no signed tree head`);
  const headProblem = checkHead(sth, workspaceId, pk, 'the newest tree head');
  if (headProblem) return failed(ctx, headProblem);
  const hashes = log.leaves.map((l) => l.leafHash);
  const trustedFile = str(ctx.values, 'trusted-head');
  if (trustedFile) {
    // The log must still extend a head the auditor kept: the newest head alone is the log's own word.
    const t = readJson<SignedTreeHead>(trustedFile, '--trusted-head');
    const trustedProblem = checkHead(t, workspaceId, pk, 'the trusted head');
    if (trustedProblem) return failed(ctx, trustedProblem);
    if (t.treeSize > sth.treeSize || t.treeSize > hashes.length) return failed(ctx, `truncated: the trusted head covers ${t.treeSize} leaves; the log's newest signed head covers ${sth.treeSize}`);
    if (rootOf(hashes.slice(0, t.treeSize), crypto) !== t.rootHash) return failed(ctx, `fork: the log's root at size ${t.treeSize} is not the trusted head's`);
  }
  for (const chain of chains) {
    const name = chainLabel(id, chain.execution);
    const v = verifyChain(chain.entries, { workspaceId, runId: id }, crypto, storedBodyOf);
    if (!v.ok) return failed(ctx, `${name}: ${v.reason} at seq ${v.seq}`);
    const leaf = [...log.leaves].reverse().find((l) => l.leaf.runId === id && l.leaf.execution === chain.execution);
    if (!leaf) return failed(ctx, `${name}: uncommitted: no leaf commits to this chain`);
    if (leaf.leaf.count < v.count) return failed(ctx, `${name}: uncommitted: entries from seq ${leaf.leaf.count} on are not committed by any leaf`);
    if (leaf.leaf.count > v.count) return failed(ctx, `${name}: truncated: leaf ${leaf.index} commits to ${leaf.leaf.count} entries, the sink holds ${v.count}`);
    if (leaf.leaf.workspaceId !== workspaceId || leaf.leaf.head !== v.head || leafHashOf(leaf.leaf, crypto) !== leaf.leafHash) return failed(ctx, `${name}: leaf_mismatch at leaf ${leaf.index}`);
    if (sth.treeSize <= leaf.index) return failed(ctx, `${name}: uncommitted: no signed head covers leaf ${leaf.index}`);
    if (!verifyInclusion(leaf.leafHash, leaf.index, sth.treeSize, inclusionProof(hashes, leaf.index, sth.treeSize, crypto), sth.rootHash, crypto)) {
      return failed(ctx, `${name}: root_mismatch: leaf ${leaf.index} is not in the signed tree of size ${sth.treeSize}`);
    }
    ctx.io.out(`verified: ${name}, ${v.count} entries, head ${v.head}, leaf ${leaf.index} in the signed tree of size ${sth.treeSize}`);
  }
  if (chains.length > 1) ctx.io.out(`${chains.length} executions stored under ${id}; the last listed wrote last`);
  return 0;
}

/** Why `sth` cannot be relied on for `workspaceId` under `publicKey`, if it cannot. */
function checkHead(sth: SignedTreeHead, workspaceId: string, publicKeyHex: string, what: string): string | undefined {
  if (!sth || typeof sth !== 'object') return `bad_signature: ${what} is not a signed tree head`;
  if (sth.workspaceId !== workspaceId) return `bad_signature: ${what} (size ${sth.treeSize}) is signed for workspace ${String(sth.workspaceId)}, not ${workspaceId}`;
  if (!verifyTreeHead(sth, publicKeyHex, crypto)) return `bad_signature: ${what} (size ${sth.treeSize}) is not signed by the given key`;
  return undefined;
}

function newestHead(log: WorkspaceLog): SignedTreeHead | undefined {
  return log.treeHeads.reduce<SignedTreeHead | undefined>((a, b) => (!a || b.treeSize >= a.treeSize ? b : a), undefined);
}

async function verifyWorkspace(ctx: Ctx): Promise<number> {
  const [workspaceId] = ctx.args;
  const log = await workspaceLog(ctx, workspaceId);
  if (log.workspaceId !== workspaceId) return failed(ctx, `the log is of workspace ${log.workspaceId}, not ${workspaceId}`);
  const trusted = str(ctx.values, 'trusted-head');
  const v = verifyWorkspaceLog(log, { publicKey: publicKey(ctx), trustedHead: trusted ? readJson<SignedTreeHead>(trusted, '--trusted-head') : undefined, crypto });
  if (!v.ok) return failed(ctx, `${v.problem.reason}: ${v.problem.message}`);
  ctx.io.out(`verified: workspace ${workspaceId}, ${v.entries} entries in ${v.runs} runs, ${v.treeSize} leaves, root ${v.rootHash}`);
  return 0;
}

async function verifyInclusionProof(ctx: Ctx): Promise<number> {
  const p = readJson<InclusionProofFile>(ctx.args[0], 'proof');
  if (p.schema !== INCLUSION_PROOF_SCHEMA) return failed(ctx, `not an inclusion proof (schema ${p.schema})`);
  if (!verifyTreeHead(p.treeHead, publicKey(ctx), crypto)) return failed(ctx, `bad_signature: tree head of size ${p.treeHead.treeSize}`);
  if (p.leaf.workspaceId !== p.treeHead.workspaceId) return failed(ctx, 'the leaf and the tree head are of different workspaces');
  if (!verifyInclusion(leafHashOf(p.leaf, crypto), p.leafIndex, p.treeHead.treeSize, p.proof, p.treeHead.rootHash, crypto)) {
    return failed(ctx, `the proof does not place run ${p.leaf.runId} (${p.leaf.count} entries) at leaf ${p.leafIndex} of the signed tree of size ${p.treeHead.treeSize}`);
  }
  ctx.io.out(`verified: run ${p.leaf.runId} with ${p.leaf.count} entries ending in ${p.leaf.head} is leaf ${p.leafIndex} of the signed tree of size ${p.treeHead.treeSize}`);
  return 0;
}

async function verifyConsistencyProof(ctx: Ctx): Promise<number> {
  const p = readJson<ConsistencyProofFile>(ctx.args[0], 'proof');
  if (p.schema !== CONSISTENCY_PROOF_SCHEMA) return failed(ctx, `not a consistency proof (schema ${p.schema})`);
  const pk = publicKey(ctx);
  for (const sth of [p.from, p.to]) if (!verifyTreeHead(sth, pk, crypto)) return failed(ctx, `bad_signature: tree head of size ${sth.treeSize}`);
  if (p.from.workspaceId !== p.to.workspaceId) return failed(ctx, 'the two tree heads are of different workspaces');
  if (!verifyConsistency(p.from.treeSize, p.to.treeSize, p.from.rootHash, p.to.rootHash, p.proof, crypto)) {
    return failed(ctx, `fork: the tree of size ${p.to.treeSize} does not extend the tree of size ${p.from.treeSize}`);
  }
  ctx.io.out(`verified: the signed tree of size ${p.to.treeSize} extends the signed tree of size ${p.from.treeSize}`);
  return 0;
}

function emit(ctx: Ctx, doc: unknown): void {
  const text = JSON.stringify(doc, null, 2);
  const out = str(ctx.values, 'out');
  if (out) fs.writeFileSync(out, `${text}\n`);
  else ctx.io.out(text);
}

async function proveRun(ctx: Ctx): Promise<number> {
  const [id] = ctx.args;
  const [workspaceId] = need(ctx.values, 'workspace');
  const log = await workspaceLog(ctx, workspaceId);
  // One execution's chain: the one given, or the one that wrote last under this id.
  const given = str(ctx.values, 'execution');
  const leaf = [...log.leaves].reverse().find((l) => l.leaf.runId === id && (given === undefined || (l.leaf.execution ?? '') === given));
  const sth = newestHead(log);
  if (!leaf || !sth || sth.treeSize <= leaf.index) return failed(ctx, `run ${id}: no signed leaf in workspace ${workspaceId}`);
  const proof = inclusionProof(log.leaves.map((l) => l.leafHash), leaf.index, sth.treeSize, crypto);
  emit(ctx, { schema: INCLUSION_PROOF_SCHEMA, leaf: leaf.leaf, leafIndex: leaf.index, proof, treeHead: sth } satisfies InclusionProofFile);
  return 0;
}

async function proveConsistency(ctx: Ctx): Promise<number> {
  const [workspaceId, fromText] = need(ctx.values, 'workspace', 'from');
  const log = await workspaceLog(ctx, workspaceId);
  const to = str(ctx.values, 'to') ? log.treeHeads.find((h) => h.treeSize === Number(str(ctx.values, 'to'))) : newestHead(log);
  const from = log.treeHeads.find((h) => h.treeSize === Number(fromText));
  if (!from || !to) throw new UsageError(`no signed tree head of size ${!from ? fromText : str(ctx.values, 'to')} in workspace ${workspaceId}`);
  if (from.treeSize > to.treeSize) throw new UsageError('--from must not be larger than --to');
  const hashes = log.leaves.map((l) => l.leafHash);
  if (rootOf(hashes.slice(0, to.treeSize), crypto) !== to.rootHash) return failed(ctx, `root_mismatch: the log no longer matches its signed head of size ${to.treeSize}`);
  emit(ctx, { schema: CONSISTENCY_PROOF_SCHEMA, from, to, proof: consistencyProof(hashes, from.treeSize, to.treeSize, crypto) } satisfies ConsistencyProofFile);
  return 0;
}

async function exportLog(ctx: Ctx): Promise<number> {
  const [workspaceId] = need(ctx.values, 'workspace');
  emit(ctx, await withSink(ctx, (sink) => sink.readWorkspace(workspaceId)));
  return 0;
}

async function head(ctx: Ctx): Promise<number> {
  const [workspaceId] = need(ctx.values, 'workspace');
  const sth = newestHead(await withSink(ctx, (sink) => sink.readWorkspace(workspaceId)));
  if (!sth) return failed(ctx, `workspace ${workspaceId} has no signed tree head yet`);
  emit(ctx, sth);
  return 0;
}

async function keygen(ctx: Ctx): Promise<number> {
  const [file] = need(ctx.values, 'out');
  const key = ed25519.utils.randomPrivateKey();
  try {
    fs.writeFileSync(file, `${bytesToHex(key)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    throw new KeyFileError(`--out ${file}: ${(err as Error).message}`);
  }
  ctx.io.out(bytesToHex(ed25519.getPublicKey(key)));
  return 0;
}

async function printPublicKey(ctx: Ctx): Promise<number> {
  ctx.io.out(evidencePublicKey(ctx.config()));
  return 0;
}

async function migrate(ctx: Ctx): Promise<number> {
  const [url] = need(ctx.values, 'database-url');
  const { migrateEvidenceSchema } = await import('../../activities/evidence/postgres-sink');
  await migrateEvidenceSchema(url, { writerRole: str(ctx.values, 'writer-role') });
  ctx.io.out(`evidence tables ready${str(ctx.values, 'writer-role') ? `; ${str(ctx.values, 'writer-role')} may SELECT and INSERT only` : ''}`);
  return 0;
}

const KEY = strings('public-key');
export const EVIDENCE_COMMANDS: readonly Command[] = [
  { ...HELP.evidenceVerifyRun, run: verifyRun, arity: [1, 1], options: { ...KEY, ...strings('workspace', 'file', 'trusted-head') } },
  { ...HELP.evidenceVerifyWorkspace, run: verifyWorkspace, arity: [1, 1], options: { ...KEY, ...strings('file', 'trusted-head') } },
  { ...HELP.evidenceVerifyInclusion, run: verifyInclusionProof, arity: [1, 1], options: KEY },
  { ...HELP.evidenceVerifyConsistency, run: verifyConsistencyProof, arity: [1, 1], options: KEY },
  { ...HELP.evidenceProveRun, run: proveRun, arity: [1, 1], options: strings('workspace', 'execution', 'out', 'file') },
  { ...HELP.evidenceProveConsistency, run: proveConsistency, arity: [0, 0], options: strings('workspace', 'from', 'to', 'out', 'file') },
  { ...HELP.evidenceExport, run: exportLog, arity: [0, 0], options: strings('workspace', 'out') },
  { ...HELP.evidenceHead, run: head, arity: [0, 0], options: strings('workspace', 'out') },
  { ...HELP.evidenceKeygen, run: keygen, arity: [0, 0], options: strings('out') },
  { ...HELP.evidencePublicKey, run: printPublicKey, arity: [0, 0], options: {} },
  { ...HELP.evidenceMigrate, run: migrate, arity: [0, 0], options: strings('database-url', 'writer-role') },
];
