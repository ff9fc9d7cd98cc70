/**
 * The PostgreSQL evidence sink against a real server (test/support/postgres.ts): an insert-only writer
 * role, triggers that refuse changes even from the owner, idempotent retries, whole-or-nothing batches
 * across a lost connection, and two workers appending to one workspace log at once.
 * Assertions are on `ApplicationFailure.type`, never on message text (but for the password check).
 */
import * as assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { Client, type PoolClient } from 'pg';
import { PostgresEvidenceSink, migrateEvidenceSchema } from '../activities/evidence/postgres-sink';
import type { LogTransaction } from '../activities/evidence/sink';
import { signerFromHex } from '../activities/evidence/tree-head-signer';
import { type EvidenceEntry, EvidenceChain } from '../workflows/evidence-chain';
import { verifyWorkspaceLog } from '../activities/evidence/log';
import { rootOf } from '../activities/evidence/merkle';
import { verifyTreeHead } from '../activities/evidence/tree-head';
import { type TestPostgres, startPostgres } from './support/postgres';

const signer = signerFromHex('33'.repeat(32));
const WRITER_PASSWORD = 'writer-pw-5f1c9a7e';
const TABLES = ['portarium_evidence_entries', 'portarium_evidence_leaves', 'portarium_evidence_tree_heads'];
const typeOf = (err: unknown) => (err instanceof ApplicationFailure ? err.type : String(err));

function chainFor(runId: string, n: number, workspaceId = 'ws'): EvidenceEntry[] {
  const chain = new EvidenceChain({ workspaceId, correlationId: `c-${runId}`, runId });
  for (let i = 0; i < n; i++) chain.append({ category: 'Action', event: `E${i}`, actor: { kind: 'System', id: 'portarium' }, summary: `entry ${i}` }, new Date(Date.UTC(2026, 0, 1, 0, i)));
  return JSON.parse(JSON.stringify(chain.entries));
}

/** Kills its own database connection in the middle of the batch: after entries and leaf, before the tree head. */
class CrashingSink extends PostgresEvidenceSink {
  /** How many of the next batches die. */
  crashes = 0;
  inTransaction: number[] = [];
  constructor(url: string, private readonly admin: Client) {
    super({ url, signer });
  }
  protected override transaction(c: PoolClient, ws: string): LogTransaction {
    const tx = super.transaction(c, ws);
    return {
      ...tx,
      writeTreeHead: async (sth) => {
        if (this.crashes-- > 0) {
          const { rows } = await c.query('SELECT pg_backend_pid() AS pid, (SELECT count(*) FROM portarium_evidence_entries WHERE workspace_id = $1) AS n', [ws]);
          this.inTransaction.push(Number(rows[0].n));
          await this.admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
        }
        return tx.writeTreeHead(sth);
      },
    };
  }
}

describe('evidence sink: PostgreSQL', function () {
  this.timeout(60_000);
  let pg: TestPostgres;
  let sink: PostgresEvidenceSink;
  let admin: Client;
  let writer: Client;
  const writerUrl = () => pg.urlFor('portarium_writer', WRITER_PASSWORD);

  /** Rows per table for a workspace (and run), read as the owner. */
  async function counts(ws: string, runId?: string): Promise<number[]> {
    const n: number[] = [];
    for (const t of TABLES) {
      const cond = runId && t !== 'portarium_evidence_tree_heads' ? ' AND run_id = $2' : '';
      const { rows } = await admin.query(`SELECT count(*) AS n FROM ${t} WHERE workspace_id = $1${cond}`, cond ? [ws, runId] : [ws]);
      n.push(Number(rows[0].n));
    }
    return n;
  }

  before(async function () {
    const started = Date.now();
    pg = await startPostgres();
    console.log(`      (startPostgres: ${Date.now() - started} ms)`);
    admin = new Client({ connectionString: pg.url });
    await admin.connect();
    admin.on('error', () => undefined); // the last test stops the server under it
    await migrateEvidenceSchema(pg.url);
    await admin.query(`CREATE ROLE portarium_writer LOGIN PASSWORD '${WRITER_PASSWORD}'`);
    // Twice: the migration is idempotent, and the second run adds the grants.
    await migrateEvidenceSchema(pg.url, { writerRole: 'portarium_writer' });
    sink = new PostgresEvidenceSink({ url: writerUrl(), signer });
    writer = new Client({ connectionString: writerUrl() });
    await writer.connect();
    writer.on('error', () => undefined);
  });

  after(async function () {
    await sink?.close();
    await writer?.end().catch(() => undefined);
    await admin?.end().catch(() => undefined);
    await pg?.stop();
  });

  it('stores a run in order, one leaf per batch, under a signed head over the leaves', async function () {
    const r = chainFor('ws:a', 5);
    const first = await sink.append({ workspaceId: 'ws', runId: 'ws:a', entries: r.slice(0, 2) });
    const second = await sink.append({ workspaceId: 'ws', runId: 'ws:a', entries: r.slice(2) });
    assert.deepEqual([first.written, first.count, first.leafIndex, second.written, second.count, second.leafIndex, second.head], [2, 2, 0, 3, 5, 1, r[4].hash]);
    const log = await sink.readWorkspace('ws');
    assert.deepEqual(log.entries.map((s) => [s.wsSeq, s.entry.seq]), [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]]);
    assert.deepEqual(log.entries.map((s) => s.entry), r, 'entries come back as written');
    assert.deepEqual(log.leaves.map((l) => [l.index, l.leaf.runId, l.leaf.count, l.leaf.head]), [[0, 'ws:a', 2, r[1].hash], [1, 'ws:a', 5, r[4].hash]]);
    assert.deepEqual(log.treeHeads.map((h) => h.treeSize), [1, 2]);
    assert.equal(second.treeHead.rootHash, rootOf(log.leaves.map((l) => l.leafHash)));
    assert.deepEqual(log.treeHeads[1], second.treeHead);
    assert.ok(verifyTreeHead(second.treeHead, signer.publicKey));
    assert.ok(!verifyTreeHead(second.treeHead, signerFromHex('44'.repeat(32)).publicKey));
    assert.ok(verifyWorkspaceLog(log, { publicKey: signer.publicKey }).ok);
    assert.deepEqual(await sink.readRun('ws', 'ws:a'), r);
    const { rows } = await admin.query(`SELECT tree_size, root_hash, signed_at, key_id, signature FROM portarium_evidence_tree_heads WHERE workspace_id = 'ws' AND tree_size = 2`);
    assert.deepEqual(rows[0], { tree_size: '2', root_hash: second.treeHead.rootHash, signed_at: second.treeHead.timestamp, key_id: signer.keyId, signature: second.treeHead.signature });
  });

  it('a retried or overlapping batch writes nothing twice', async function () {
    const r = chainFor('ws:b', 4);
    const first = await sink.append({ workspaceId: 'ws', runId: 'ws:b', entries: r.slice(0, 3) });
    const before = await counts('ws');
    const again = await sink.append({ workspaceId: 'ws', runId: 'ws:b', entries: r.slice(0, 3) });
    assert.deepEqual([again.written, again.skipped, again.count, again.leafIndex, again.treeHead], [0, 3, 3, first.leafIndex, first.treeHead]);
    assert.deepEqual(await counts('ws'), before, 'the retry wrote no row');
    const overlap = await sink.append({ workspaceId: 'ws', runId: 'ws:b', entries: r.slice(1) });
    assert.deepEqual([overlap.written, overlap.skipped, overlap.count], [1, 2, 4]);
    assert.deepEqual(await counts('ws'), [before[0] + 1, before[1] + 1, before[2] + 1]);
    assert.deepEqual(await sink.readRun('ws', 'ws:b'), r);
  });

  it('refuses another entry at a stored seq, and a gap, writing nothing', async function () {
    const r = chainFor('ws:c', 2);
    await sink.append({ workspaceId: 'ws', runId: 'ws:c', entries: r.slice(0, 1) });
    const before = await counts('ws');
    const fork = new EvidenceChain({ workspaceId: 'ws', correlationId: 'x', runId: 'ws:c' });
    fork.append({ category: 'Action', event: 'Other', actor: { kind: 'System', id: 'p' }, summary: 'other' }, new Date(0));
    fork.append({ category: 'Action', event: 'More', actor: { kind: 'System', id: 'p' }, summary: 'more' }, new Date(0));
    await assert.rejects(sink.append({ workspaceId: 'ws', runId: 'ws:c', entries: [...fork.entries] }), (e) => typeOf(e) === 'EvidenceConflict');
    await assert.rejects(sink.append({ workspaceId: 'ws', runId: 'ws:d', entries: chainFor('ws:d', 3).slice(1) }), (e) => typeOf(e) === 'EvidenceConflict');
    await assert.rejects(sink.append({ workspaceId: 'ws', runId: 'ws:c', entries: chainFor('ws:c', 3).slice(2) }), (e) => typeOf(e) === 'EvidenceConflict');
    assert.deepEqual(await counts('ws'), before, 'nothing was written');
    assert.deepEqual(await sink.readRun('ws', 'ws:c'), r.slice(0, 1));
    // The refusals left the sink usable.
    assert.equal((await sink.append({ workspaceId: 'ws', runId: 'ws:c', entries: r })).written, 1);
  });

  for (const table of TABLES) {
    it(`${table}: the writer role cannot UPDATE, DELETE or TRUNCATE, and the owner is stopped by the trigger`, async function () {
      const before = (await admin.query(`SELECT * FROM ${table} ORDER BY 1, 2`)).rows;
      assert.ok(before.length > 0, 'there are rows to protect');
      for (const sql of [`UPDATE ${table} SET workspace_id = 'x'`, `DELETE FROM ${table}`, `TRUNCATE ${table}`]) {
        await assert.rejects(writer.query(sql), (e) => (e as { code?: string }).code === '42501', `writer: ${sql} (permission denied)`);
        await assert.rejects(admin.query(sql), (e) => (e as { code?: string }).code === 'P0001' && /append-only/.test((e as Error).message), `owner: ${sql} (trigger)`);
      }
      assert.deepEqual((await admin.query(`SELECT * FROM ${table} ORDER BY 1, 2`)).rows, before, 'rows are unchanged');
      // What the writer may do: read and insert.
      await writer.query(`SELECT count(*) FROM ${table}`);
      const { rows } = await admin.query(`SELECT privilege_type FROM information_schema.role_table_grants WHERE grantee = 'portarium_writer' AND table_name = $1 ORDER BY 1`, [table]);
      assert.deepEqual(rows.map((r) => r.privilege_type), ['INSERT', 'SELECT']);
    });
  }

  it('a connection lost in the middle of a batch leaves nothing half-written; the retry stores it once', async function () {
    const crashing = new CrashingSink(writerUrl(), admin);
    try {
      const other = chainFor('cr:other', 2, 'cr');
      await crashing.append({ workspaceId: 'cr', runId: 'cr:other', entries: other });
      const r = chainFor('cr:e', 3, 'cr');
      crashing.crashes = 1;
      await assert.rejects(crashing.append({ workspaceId: 'cr', runId: 'cr:e', entries: r }), (e) => typeOf(e) === 'EvidenceUnavailable');
      assert.deepEqual(crashing.inTransaction, [5], 'entries were inserted when the connection died');
      assert.deepEqual(await counts('cr'), [2, 1, 1], 'the batch rolled back whole');
      // The same sink (its pool and leaf cache) retries; the lost lock was released with the connection.
      const retry = await crashing.append({ workspaceId: 'cr', runId: 'cr:e', entries: r });
      assert.deepEqual([retry.written, retry.skipped, retry.count, retry.leafIndex, retry.treeHead.treeSize], [3, 0, 3, 1, 2]);
      assert.deepEqual(await counts('cr'), [5, 2, 2]);
      const log = await sink.readWorkspace('cr');
      assert.deepEqual(log.entries.map((s) => s.wsSeq), [0, 1, 2, 3, 4]);
      assert.deepEqual(await sink.readRun('cr', 'cr:e'), r);
      assert.ok(verifyWorkspaceLog(log, { publicKey: signer.publicKey }).ok);
    } finally {
      await crashing.close();
    }
  });

  it('two workers appending twenty batches for ten runs at once make one gapless, verifiable workspace log', async function () {
    const other = new PostgresEvidenceSink({ url: writerUrl(), signer, poolSize: 3 });
    try {
      const runs = Array.from({ length: 10 }, (_, i) => chainFor(`cw:r${i}`, 6, 'cw'));
      // Ten runs at once, each sending two batches of three in order (a run's second batch continues
      // its first), the two batches from different workers.
      const receipts = (await Promise.all(runs.map(async (r, i) => {
        const first = await (i % 2 ? sink : other).append({ workspaceId: 'cw', runId: r[0].runId, entries: r.slice(0, 3) });
        const second = await (i % 2 ? other : sink).append({ workspaceId: 'cw', runId: r[0].runId, entries: r.slice(3) });
        return [first, second];
      }))).flat();
      assert.equal(receipts.reduce((n, x) => n + x.written, 0), 60, 'each entry written once');
      const log = await sink.readWorkspace('cw');
      assert.deepEqual(log.entries.map((s) => s.wsSeq), [...Array(60).keys()], 'ws_seq is 0..59');
      for (const r of runs) assert.deepEqual(await sink.readRun('cw', r[0].runId), r);
      assert.equal(log.leaves.length, 20, 'one leaf per batch');
      assert.deepEqual(new Set(receipts.map((x) => x.leafIndex)).size, 20);
      const last = log.treeHeads[log.treeHeads.length - 1];
      assert.equal(last.treeSize, 20);
      assert.equal(last.rootHash, rootOf(log.leaves.map((l) => l.leafHash)));
      assert.ok(verifyTreeHead(last, signer.publicKey));
      const v = verifyWorkspaceLog(log, { publicKey: signer.publicKey });
      assert.ok(v.ok, JSON.stringify(v));
    } finally {
      await other.close();
    }
  });

  it('a database that is not there gives EvidenceUnavailable, without the password', async function () {
    const down = new PostgresEvidenceSink({ url: `postgres://portarium_writer:${WRITER_PASSWORD}@127.0.0.1:1/postgres`, signer });
    try {
      for (const call of [() => down.append({ workspaceId: 'ws', runId: 'ws:f', entries: chainFor('ws:f', 1) }), () => down.readWorkspace('ws'), () => down.readRun('ws', 'ws:f')]) {
        await assert.rejects(call(), (e) => {
          assert.equal(typeOf(e), 'EvidenceUnavailable');
          assert.equal((e as ApplicationFailure).nonRetryable, false);
          assert.ok(!(e as Error).message.includes(WRITER_PASSWORD), (e as Error).message);
          return true;
        });
      }
    } finally {
      await down.close();
    }
  });

  // Last: stops the shared server.
  it('a server that stops under a connected sink gives EvidenceUnavailable, without the password', async function () {
    await sink.readRun('ws', 'ws:a'); // the pool holds a live connection
    await pg.stop();
    await assert.rejects(sink.append({ workspaceId: 'ws', runId: 'ws:g', entries: chainFor('ws:g', 1) }), (e) => {
      assert.equal(typeOf(e), 'EvidenceUnavailable');
      for (const secret of [WRITER_PASSWORD, pg.password]) assert.ok(!(e as Error).message.includes(secret), (e as Error).message);
      return true;
    });
    await assert.rejects(sink.readWorkspace('ws'), (e) => typeOf(e) === 'EvidenceUnavailable');
  });
});
