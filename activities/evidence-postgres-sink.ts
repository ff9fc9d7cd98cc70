/**
 * Production evidence sink: PostgreSQL tables that only grow. Workers connect as a role that may
 * SELECT and INSERT and nothing else, and triggers refuse UPDATE, DELETE and TRUNCATE even for the
 * owner. Each append is one transaction holding a per-workspace advisory lock, so workers on any
 * number of machines append to one workspace log in a single order, and a batch (entries, leaf and
 * signed head) commits whole or not at all.
 */
import { ApplicationFailure } from '@temporalio/common';
import { Client, Pool, type PoolClient } from 'pg';
import type { EvidenceEntry } from '../workflows/evidence-chain';
import { FailureType } from '../workflows/failures';
import { canonicalJson } from '../workflows/hashing';
import type { SignedTreeHead } from '../workflows/tree-head';
import { type AppendBatch, type AppendReceipt, type EvidenceSink, type LogTransaction, type WorkspaceLog, appendBatch } from './evidence-sink';
import type { TreeHeadSigner } from './tree-head-signer';

const TABLES = ['portarium_evidence_entries', 'portarium_evidence_leaves', 'portarium_evidence_tree_heads'];

const SCHEMA = `
CREATE TABLE IF NOT EXISTS portarium_evidence_entries (
  workspace_id text NOT NULL, ws_seq bigint NOT NULL, run_id text NOT NULL, seq integer NOT NULL,
  hash text NOT NULL, entry text NOT NULL, written_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, ws_seq), UNIQUE (workspace_id, run_id, seq));
CREATE TABLE IF NOT EXISTS portarium_evidence_leaves (
  workspace_id text NOT NULL, leaf_index bigint NOT NULL, run_id text NOT NULL, count integer NOT NULL,
  head text NOT NULL, leaf_hash text NOT NULL,
  PRIMARY KEY (workspace_id, leaf_index), UNIQUE (workspace_id, run_id, count));
CREATE TABLE IF NOT EXISTS portarium_evidence_tree_heads (
  workspace_id text NOT NULL, tree_size bigint NOT NULL, key_id text NOT NULL, sth text NOT NULL,
  PRIMARY KEY (workspace_id, tree_size, key_id));
CREATE OR REPLACE FUNCTION portarium_evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'evidence is append-only: % on % refused', TG_OP, TG_TABLE_NAME; END $$;
`;

function triggers(table: string): string {
  return `
DROP TRIGGER IF EXISTS ${table}_no_change ON ${table};
CREATE TRIGGER ${table}_no_change BEFORE UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION portarium_evidence_append_only();
DROP TRIGGER IF EXISTS ${table}_no_truncate ON ${table};
CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION portarium_evidence_append_only();`;
}

/** Create the tables and triggers (idempotent); give `writerRole` (which must exist) SELECT and INSERT only. */
export async function migrateEvidenceSchema(ownerUrl: string, opts: { writerRole?: string } = {}): Promise<void> {
  const client = new Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(SCHEMA + TABLES.map(triggers).join('\n'));
    if (opts.writerRole) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(opts.writerRole)) throw new Error(`not a role name: ${opts.writerRole}`);
      const role = `"${opts.writerRole}"`;
      await client.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
      for (const t of TABLES) {
        await client.query(`REVOKE ALL ON ${t} FROM ${role}`);
        await client.query(`GRANT SELECT, INSERT ON ${t} TO ${role}`);
      }
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

export interface PostgresSinkOptions {
  url: string;
  signer: TreeHeadSigner;
  poolSize?: number;
}

/** Errors that mean the database could not be used (retry later), as opposed to our own refusals. */
function unavailable(err: unknown): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const e = err as { code?: string; message?: string };
  // pg messages name host, user and database at most; never the connection string or password.
  return ApplicationFailure.create({ type: FailureType.EvidenceUnavailable, message: `evidence database: ${e.code ? `${e.code} ` : ''}${e.message ?? String(err)}`, nonRetryable: false });
}

export class PostgresEvidenceSink implements EvidenceSink {
  readonly kind = 'postgres';
  private readonly pool: Pool;
  /** Leaf hashes read so far per workspace: only newer rows are fetched under the lock. */
  private readonly leafCache = new Map<string, string[]>();

  constructor(private readonly opts: PostgresSinkOptions) {
    this.pool = new Pool({ connectionString: opts.url, max: opts.poolSize ?? 4 });
    // An idle client losing its connection must not crash the worker; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  async append(batch: AppendBatch): Promise<AppendReceipt> {
    const ws = batch.workspaceId;
    let client: PoolClient | undefined;
    try {
      client = await this.pool.connect();
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`portarium-evidence:${ws}`]);
      const receipt = await appendBatch(this.transaction(client, ws), batch, this.opts.signer, () => new Date());
      await client.query('COMMIT');
      return receipt;
    } catch (err) {
      this.leafCache.delete(ws);
      await client?.query('ROLLBACK').catch(() => undefined);
      throw unavailable(err);
    } finally {
      client?.release();
    }
  }

  private transaction(c: PoolClient, ws: string): LogTransaction {
    return {
      runHashes: async (runId) =>
        (await c.query('SELECT hash FROM portarium_evidence_entries WHERE workspace_id = $1 AND run_id = $2 ORDER BY seq', [ws, runId])).rows.map((r) => r.hash as string),
      entryCount: async () => Number((await c.query('SELECT count(*) AS n FROM portarium_evidence_entries WHERE workspace_id = $1', [ws])).rows[0].n),
      leafHashes: async () => {
        const cached = this.leafCache.get(ws) ?? [];
        const rows = await c.query('SELECT leaf_hash FROM portarium_evidence_leaves WHERE workspace_id = $1 AND leaf_index >= $2 ORDER BY leaf_index', [ws, cached.length]);
        const all = [...cached, ...rows.rows.map((r) => r.leaf_hash as string)];
        this.leafCache.set(ws, all);
        return [...all];
      },
      findLeaf: async (runId, count) => {
        const r = await c.query('SELECT leaf_index FROM portarium_evidence_leaves WHERE workspace_id = $1 AND run_id = $2 AND count = $3', [ws, runId, count]);
        return r.rows.length ? Number(r.rows[0].leaf_index) : undefined;
      },
      latestTreeHead: async () => {
        const r = await c.query('SELECT sth FROM portarium_evidence_tree_heads WHERE workspace_id = $1 ORDER BY tree_size DESC LIMIT 1', [ws]);
        return r.rows.length ? (JSON.parse(r.rows[0].sth) as SignedTreeHead) : undefined;
      },
      writeEntries: async (entries) => {
        for (const { wsSeq, entry } of entries) {
          await c.query('INSERT INTO portarium_evidence_entries (workspace_id, ws_seq, run_id, seq, hash, entry) VALUES ($1, $2, $3, $4, $5, $6)',
            [ws, wsSeq, entry.runId, entry.seq, entry.hash, canonicalJson(entry)]);
        }
      },
      writeLeaf: async ({ index, leaf, leafHash }) => {
        await c.query('INSERT INTO portarium_evidence_leaves (workspace_id, leaf_index, run_id, count, head, leaf_hash) VALUES ($1, $2, $3, $4, $5, $6)',
          [ws, index, leaf.runId, leaf.count, leaf.head, leafHash]);
      },
      writeTreeHead: async (sth) => {
        await c.query('INSERT INTO portarium_evidence_tree_heads (workspace_id, tree_size, key_id, sth) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
          [ws, sth.treeSize, sth.keyId, canonicalJson(sth)]);
      },
    };
  }

  async readWorkspace(workspaceId: string): Promise<WorkspaceLog> {
    try {
      const [entries, leaves, heads] = await Promise.all([
        this.pool.query('SELECT ws_seq, entry FROM portarium_evidence_entries WHERE workspace_id = $1 ORDER BY ws_seq', [workspaceId]),
        this.pool.query('SELECT leaf_index, run_id, count, head, leaf_hash FROM portarium_evidence_leaves WHERE workspace_id = $1 ORDER BY leaf_index', [workspaceId]),
        this.pool.query('SELECT sth FROM portarium_evidence_tree_heads WHERE workspace_id = $1 ORDER BY tree_size', [workspaceId]),
      ]);
      return {
        workspaceId,
        entries: entries.rows.map((r) => ({ wsSeq: Number(r.ws_seq), entry: JSON.parse(r.entry) as EvidenceEntry })),
        leaves: leaves.rows.map((r) => ({
          index: Number(r.leaf_index),
          leaf: { workspaceId, runId: r.run_id as string, count: Number(r.count), head: r.head as string },
          leafHash: r.leaf_hash as string,
        })),
        treeHeads: heads.rows.map((r) => JSON.parse(r.sth) as SignedTreeHead),
      };
    } catch (err) {
      throw unavailable(err);
    }
  }

  async readRun(workspaceId: string, runId: string): Promise<EvidenceEntry[]> {
    try {
      const r = await this.pool.query('SELECT entry FROM portarium_evidence_entries WHERE workspace_id = $1 AND run_id = $2 ORDER BY seq', [workspaceId, runId]);
      return r.rows.map((row) => JSON.parse(row.entry) as EvidenceEntry);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
