/**
 * The PostgreSQL evidence sink against a real server: an insert-only writer role, triggers that
 * refuse changes even from the owner, idempotent retries, whole-or-nothing batches, and concurrent
 * workers appending to one workspace log.
 */
import * as assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { Client } from 'pg';
import { PostgresEvidenceSink, migrateEvidenceSchema } from '../activities/evidence-postgres-sink';
import type { LogTransaction } from '../activities/evidence-sink';
import { signerFromHex } from '../activities/tree-head-signer';
import { type EvidenceEntry, EvidenceChain } from '../workflows/evidence-chain';
import { verifyWorkspaceLog } from '../workflows/evidence-log';
import { rootOf } from '../workflows/merkle';
import { verifyTreeHead } from '../workflows/tree-head';
import { type TestPostgres, startPostgres } from './support/postgres';

const signer = signerFromHex('33'.repeat(32));
const WRITER_PASSWORD = 'writer-pw-5f1c9a';
const typeOf = (err: unknown) => (err instanceof ApplicationFailure ? err.type : String(err));

function chainFor(runId: string, n: number, workspaceId = 'ws'): EvidenceEntry[] {
  const chain = new EvidenceChain({ workspaceId, correlationId: `c-${runId}`, runId });
  for (let i = 0; i < n; i++) chain.append({ category: 'Action', event: `E${i}`, actor: { kind: 'System', id: 'portarium' }, summary: `entry ${i}` }, new Date(Date.UTC(2026, 0, 1, 0, i)));
  return JSON.parse(JSON.stringify(chain.entries));
}

describe('evidence sink: PostgreSQL', function () {
  this.timeout(60_000);
  let pg: TestPostgres;
  let sink: PostgresEvidenceSink;
  let admin: Client;
  let writer: Client;

  before(async function () {
    pg = await startPostgres();
    admin = new Client({ connectionString: pg.url });
    await admin.connect();
    await migrateEvidenceSchema(pg.url);
    await admin.query(`CREATE ROLE portarium_writer LOGIN PASSWORD '${WRITER_PASSWORD}'`);
    // Twice: the migration is idempotent, and the second run adds the grants.
    await migrateEvidenceSchema(pg.url, { writerRole: 'portarium_writer' });
    sink = new PostgresEvidenceSink({ url: pg.urlFor('portarium_writer', WRITER_PASSWORD), signer });
    writer = new Client({ connectionString: pg.urlFor('portarium_writer', WRITER_PASSWORD) });
    await writer.connect();
  });

  after(async function () {
    await sink?.close();
    await writer?.end();
    await admin?.end();
    await pg?.stop();
  });

  it('stores a run in order, one leaf per batch, under a signed head over the leaves', async function () {
    const r = chainFor('ws:a', 5);
    const first = await sink.append({ workspaceId: 'ws', runId: 'ws:a', entries: r.slice(0, 2) });
    const second = await sink.append({ workspaceId: 'ws', runId: 'ws:a', entries: r.slice(2) });
    assert.deepEqual([first.count, first.leafIndex, second.count, second.leafIndex, second.head], [2, 0, 5, 1, r[4].hash]);
    const log = await sink.readWorkspace('ws');
    assert.deepEqual(log.entries.map((s) => [s.wsSeq, s.entry.seq]), [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]]);
    assert.deepEqual(log.entries.map((s) => s.entry), r, 'entries come back byte for byte');
    assert.equal(second.treeHead.rootHash, rootOf(log.leaves.map((l) => l.leafHash)));
    assert.ok(verifyTreeHead(second.treeHead, signer.publicKey));
    assert.ok(verifyWorkspaceLog(log, { publicKey: signer.publicKey }).ok);
    assert.deepEqual(await sink.readRun('ws', 'ws:a'), r);
  });

  it('a retried or overlapping batch writes nothing twice', async function () {
    const r = chainFor('ws:b', 4);
    const first = await sink.append({ workspaceId: 'ws', runId: 'ws:b', entries: r.slice(0, 3) });
    const again = await sink.append({ workspaceId: 'ws', runId: 'ws:b', entries: r.slice(0, 3) });
    assert.deepEqual([again.written, again.skipped, again.leafIndex, again.treeHead], [0, 3, first.leafIndex, first.treeHead]);
    const overlap = await sink.append({ workspaceId: 'ws', runId: 'ws:b', entries: r.slice(2) });
    assert.deepEqual([overlap.written, overlap.skipped, overlap.count], [1, 1, 4]);
    assert.equal((await sink.readRun('ws', 'ws:b')).length, 4);
  });

  it('refuses another entry at a stored seq, and a gap, writing nothing', async function () {
    const r = chainFor('ws:c', 2);
    await sink.append({ workspaceId: 'ws', runId: 'ws:c', entries: r.slice(0, 1) });
    const c0 = new EvidenceChain({ workspaceId: 'ws', correlationId: 'x', runId: 'ws:c' });
    c0.append({ category: 'Action', event: 'Other', actor: { kind: 'System', id: 'p' }, summary: 'other' }, new Date(0));
    await assert.rejects(sink.append({ workspaceId: 'ws', runId: 'ws:c', entries: [...c0.entries] }), (e) => typeOf(e) === 'EvidenceConflict' && /fork/.test((e as Error).message));
    await assert.rejects(sink.append({ workspaceId: 'ws', runId: 'ws:d', entries: chainFor('ws:d', 3).slice(1) }), (e) => typeOf(e) === 'EvidenceConflict' && /gap/.test((e as Error).message));
    assert.equal((await sink.readRun('ws', 'ws:c')).length, 1);
    assert.equal((await sink.readRun('ws', 'ws:d')).length, 0);
  });

  for (const table of ['portarium_evidence_entries', 'portarium_evidence_leaves', 'portarium_evidence_tree_heads']) {
    it(`${table}: the writer role cannot UPDATE, DELETE or TRUNCATE, and the owner is stopped by the trigger`, async function () {
      for (const sql of [`UPDATE ${table} SET workspace_id = 'x'`, `DELETE FROM ${table}`, `TRUNCATE ${table}`]) {
        await assert.rejects(writer.query(sql), /permission denied/, `writer: ${sql}`);
        await assert.rejects(admin.query(sql), /append-only/, `owner: ${sql}`);
      }
      const { rows } = await admin.query(`SELECT count(*) AS n FROM ${table}`);
      assert.ok(Number(rows[0].n) > 0, 'rows are still there');
    });
  }

  it('a crash in the middle of a batch leaves nothing half-written; the retry stores it once', async function () {
    const crashing = new PostgresEvidenceSink({ url: pg.urlFor('portarium_writer', WRITER_PASSWORD), signer });
    // Entries and leaf are inserted, then the tree head write dies with the connection.
    const proto = Object.getPrototypeOf(crashing) as { transaction(c: unknown, ws: string): LogTransaction };
    const original = proto.transaction;
    (crashing as unknown as { transaction: typeof original }).transaction = function (this: unknown, c: unknown, ws: string) {
      const tx = original.call(this, c, ws);
      return { ...tx, writeTreeHead: async () => { throw Object.assign(new Error('Connection terminated unexpectedly'), { code: '57P01' }); } };
    };
    const r = chainFor('ws:e', 3);
    await assert.rejects(crashing.append({ workspaceId: 'ws', runId: 'ws:e', entries: r }), (e) => typeOf(e) === 'EvidenceUnavailable');
    await crashing.close();
    assert.equal((await sink.readRun('ws', 'ws:e')).length, 0, 'the batch rolled back whole');
    const retry = await sink.append({ workspaceId: 'ws', runId: 'ws:e', entries: r });
    assert.deepEqual([retry.written, retry.count], [3, 3]);
    assert.ok(verifyWorkspaceLog(await sink.readWorkspace('ws'), { publicKey: signer.publicKey }).ok);
  });

  it('two workers appending ten runs at once make one gapless, verifiable workspace log', async function () {
    const other = new PostgresEvidenceSink({ url: pg.urlFor('portarium_writer', WRITER_PASSWORD), signer });
    try {
      const runs = Array.from({ length: 10 }, (_, i) => chainFor(`cw:r${i}`, 6, 'cw'));
      await Promise.all(runs.map(async (r, i) => {
        const s = i % 2 ? sink : other;
        for (let k = 0; k < 6; k += 3) await s.append({ workspaceId: 'cw', runId: r[0].runId, entries: r.slice(k, k + 3) });
      }));
      const log = await sink.readWorkspace('cw');
      assert.deepEqual(log.entries.map((s) => s.wsSeq), [...Array(60).keys()]);
      assert.equal(log.leaves.length, 20);
      assert.equal(log.treeHeads[log.treeHeads.length - 1].rootHash, rootOf(log.leaves.map((l) => l.leafHash)));
      const v = verifyWorkspaceLog(log, { publicKey: signer.publicKey });
      assert.ok(v.ok, JSON.stringify(v));
    } finally {
      await other.close();
    }
  });

  it('a database that is down gives EvidenceUnavailable, without the password', async function () {
    const down = new PostgresEvidenceSink({ url: `postgres://portarium_writer:${WRITER_PASSWORD}@127.0.0.1:1/postgres`, signer });
    try {
      await assert.rejects(down.append({ workspaceId: 'ws', runId: 'ws:f', entries: chainFor('ws:f', 1) }), (e) => {
        assert.equal(typeOf(e), 'EvidenceUnavailable');
        assert.ok(!(e as Error).message.includes(WRITER_PASSWORD), (e as Error).message);
        return true;
      });
    } finally {
      await down.close();
    }
  });
});
