/**
 * Evidence benchmark (part of `npm run bench`):
 * - verification throughput: entries per second through `verifyWorkspaceLog` (canonical JSON, hash,
 *   links, leaves, every head's root, the newest head's signature; and with every head's signature), against raw SHA-256 over the same canonical bytes, both with the
 *   pure-JS hash the workflow uses and with node:crypto. Target: ≥ 50% of the pure-JS raw rate.
 * - append latency per sink, one run's batch of 2 entries at a time, fsync on: p50 and p99.
 * Knobs: BENCH_EVIDENCE_RUNS (2000 runs × 10 entries), BENCH_APPENDS (300). Last line: JSON.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sha256 } from '@noble/hashes/sha2';
import { FileEvidenceSink } from '../../activities/evidence-file-sink';
import { PostgresEvidenceSink, migrateEvidenceSchema } from '../../activities/evidence-postgres-sink';
import type { EvidenceSink } from '../../activities/evidence-sink';
import { signerFromHex } from '../../activities/tree-head-signer';
import { type EvidenceEntry, EvidenceChain } from '../../workflows/evidence-chain';
import { type WorkspaceLog, verifyWorkspaceLog } from '../../workflows/evidence-log';
import { canonicalJson } from '../../workflows/hashing';
import { startPostgres } from '../support/postgres';

const RUNS = Number(process.env.BENCH_EVIDENCE_RUNS ?? 2000);
const APPENDS = Number(process.env.BENCH_APPENDS ?? 300);
const signer = signerFromHex('5a'.repeat(32));
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];

function runChain(runId: string, n: number, workspaceId = 'bench'): EvidenceEntry[] {
  const chain = new EvidenceChain({ workspaceId, correlationId: `c-${runId}`, runId });
  for (let i = 0; i < n; i++) {
    chain.append({ category: i % 3 ? 'Approval' : 'Action', event: `E${i}`, actor: { kind: 'User', id: `user-${i % 7}` },
      summary: `step ${i} of ${runId}`, data: { i, actionHash: 'ab'.repeat(32), roles: ['approver', 'finance'] } }, new Date(Date.UTC(2026, 0, 1, 0, 0, i)));
  }
  return [...chain.entries];
}

async function buildLog(): Promise<WorkspaceLog> {
  const sink = new FileEvidenceSink({ dir: fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-bench-log-')), signer });
  // Written through the sink so leaves and signed heads are real; two batches per run.
  for (let r = 0; r < RUNS; r++) {
    const entries = runChain(`bench:r${r}`, 10);
    await sink.append({ workspaceId: 'bench', runId: `bench:r${r}`, entries: entries.slice(0, 6) });
    await sink.append({ workspaceId: 'bench', runId: `bench:r${r}`, entries: entries.slice(6) });
  }
  return sink.readWorkspace('bench');
}

function bestOf(times: number, fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best / 1000;
}

async function appendLatency(sink: EvidenceSink): Promise<{ p50: number; p99: number }> {
  const ms: number[] = [];
  for (let i = 0; i < APPENDS; i++) {
    const entries = runChain(`bench:lat${i}`, 2, 'latency');
    const t0 = performance.now();
    await sink.append({ workspaceId: 'latency', runId: `bench:lat${i}`, entries });
    ms.push(performance.now() - t0);
  }
  return { p50: +percentile(ms, 50).toFixed(2), p99: +percentile(ms, 99).toFixed(2) };
}

async function main(): Promise<void> {
  const log = await buildLog();
  const n = log.entries.length;
  const bytes = log.entries.map(({ entry }) => {
    const { hash: _h, ...body } = entry;
    return new TextEncoder().encode(canonicalJson(body));
  });
  const verify = (signatures: 'all' | 'newest') => () => {
    const v = verifyWorkspaceLog(log, { publicKey: signer.publicKey, signatures });
    if (!v.ok) throw new Error(`bench log does not verify: ${v.problem.message}`);
  };
  // Chains, leaves, every head's root, and the newest head's signature.
  const verifySecs = bestOf(3, verify('newest'));
  // The same plus one Ed25519 verification per older signed head (one per appended batch).
  const allSecs = bestOf(1, verify('all'));
  const rawJsSecs = bestOf(3, () => bytes.forEach((b) => sha256(b)));
  const rawNodeSecs = bestOf(3, () => bytes.forEach((b) => createHash('sha256').update(b).digest()));
  const verification = {
    entries: n,
    leaves: log.leaves.length,
    treeHeads: log.treeHeads.length,
    verifyPerSec: Math.round(n / verifySecs),
    verifyAllSignaturesPerSec: Math.round(n / allSecs),
    rawSha256JsPerSec: Math.round(n / rawJsSecs),
    rawSha256NodePerSec: Math.round(n / rawNodeSecs),
    ratioToJs: +((rawJsSecs / verifySecs)).toFixed(2),
    ratioToNode: +((rawNodeSecs / verifySecs)).toFixed(2),
  };
  console.log(`verification: ${verification.verifyPerSec} entries/s; raw SHA-256 over the same bytes ${verification.rawSha256JsPerSec}/s (pure JS), ${verification.rawSha256NodePerSec}/s (node:crypto); ratio ${verification.ratioToJs} (target ≥ 0.5); checking all ${log.treeHeads.length} head signatures too: ${verification.verifyAllSignaturesPerSec} entries/s`);

  const fileSink = new FileEvidenceSink({ dir: fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-bench-append-')), signer });
  const file = await appendLatency(fileSink);
  console.log(`append, file sink (fsync): p50 ${file.p50} ms, p99 ${file.p99} ms`);
  const pg = await startPostgres({ fsync: true });
  let postgres;
  try {
    await migrateEvidenceSchema(pg.url);
    const pgSink = new PostgresEvidenceSink({ url: pg.url, signer });
    postgres = await appendLatency(pgSink);
    await pgSink.close();
  } finally {
    await pg.stop();
  }
  console.log(`append, PostgreSQL sink (fsync, synchronous_commit): p50 ${postgres.p50} ms, p99 ${postgres.p99} ms`);
  console.log(JSON.stringify({ verification, appendMs: { file, postgres } }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
