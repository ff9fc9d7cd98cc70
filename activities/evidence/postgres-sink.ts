/**
 * Production evidence sink: PostgreSQL tables that only grow. Workers connect as a role that may
 * SELECT and INSERT and nothing else, and triggers refuse UPDATE, DELETE and TRUNCATE even for the
 * owner. Each append is one transaction holding a per-workspace advisory lock, so workers on any
 * number of machines append to one workspace log in a single order, and a batch (entries, leaf and
 * signed head) commits whole or not at all.
 */
import { ApplicationFailure } from '@temporalio/common';
import { Client, Pool, type PoolClient } from 'pg';
import { EVIDENCE_SCHEMA, type EvidenceEntry } from '../../workflows/evidence-chain';
import { FailureType } from '../../workflows/failures';
import { canonicalJson } from '../../workflows/hashing';
import { MerkleFrontier } from './merkle';
import { storedEntryFromText } from './log';
import type { SignedTreeHead } from './tree-head';
import { type AppendBatch, type AppendReceipt, type EvidenceSink, type LogTransaction, type WorkspaceLog, appendBatch, chunked } from './sink';
import { nodeEvidenceCrypto } from './verify';
import type { TreeHeadSigner } from './tree-head-signer';

/** Rows per INSERT: 6 parameters a row stays far below PostgreSQL's 65,535; bytes keep one statement modest. */
const INSERT_LIMITS = { rows: 1_000, bytes: 4 * 1024 * 1024 } as const;

const TABLES = ['portarium_evidence_entries', 'portarium_evidence_leaves', 'portarium_evidence_tree_heads'];

// `entry` and `sth` hold the canonical JSON that was hashed or signed; the other columns are for
// lookups and for people reading the tables. An STH for one size is written twice only when a crash
// hit between leaf and head (see appendBatch), hence ON CONFLICT DO NOTHING there.
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
  workspace_id text NOT NULL, tree_size bigint NOT NULL, root_hash text NOT NULL, signed_at text NOT NULL,
  key_id text NOT NULL, signature text NOT NULL, sth text NOT NULL,
  PRIMARY KEY (workspace_id, tree_size, key_id));
-- Chains are kept per Temporal execution (empty: a chain stored before that, keyed by run id alone).
ALTER TABLE portarium_evidence_entries ADD COLUMN IF NOT EXISTS execution text NOT NULL DEFAULT '';
ALTER TABLE portarium_evidence_leaves ADD COLUMN IF NOT EXISTS execution text NOT NULL DEFAULT '';
ALTER TABLE portarium_evidence_entries DROP CONSTRAINT IF EXISTS portarium_evidence_entries_workspace_id_run_id_seq_key;
ALTER TABLE portarium_evidence_leaves DROP CONSTRAINT IF EXISTS portarium_evidence_leaves_workspace_id_run_id_count_key;
CREATE UNIQUE INDEX IF NOT EXISTS portarium_evidence_entries_chain_seq ON portarium_evidence_entries (workspace_id, run_id, execution, seq);
CREATE UNIQUE INDEX IF NOT EXISTS portarium_evidence_leaves_chain_count ON portarium_evidence_leaves (workspace_id, run_id, execution, count);
CREATE OR REPLACE FUNCTION portarium_evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'evidence is append-only: % on % refused', TG_OP, TG_TABLE_NAME; END $$;
`;

const triggers = (t: string) => `
DROP TRIGGER IF EXISTS ${t}_no_change ON ${t};
CREATE TRIGGER ${t}_no_change BEFORE UPDATE OR DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION portarium_evidence_append_only();
DROP TRIGGER IF EXISTS ${t}_no_truncate ON ${t};
CREATE TRIGGER ${t}_no_truncate BEFORE TRUNCATE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION portarium_evidence_append_only();`;

/** Create the tables and triggers (idempotent); give `writerRole` (which must exist) SELECT and INSERT only. */
export async function migrateEvidenceSchema(ownerUrl: string, opts: { writerRole?: string } = {}): Promise<void> {
  if (opts.writerRole !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(opts.writerRole)) throw new Error(`not a role name: ${opts.writerRole}`);
  const client = new Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    // Two migrations at once would race on CREATE ... IF NOT EXISTS; take turns.
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('portarium-evidence:migrate', 0))`);
    await client.query(SCHEMA + TABLES.map(triggers).join('\n'));
    if (opts.writerRole) {
      const role = `"${opts.writerRole}"`;
      await client.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
      for (const t of TABLES) {
        // REVOKE ALL drops UPDATE, DELETE, TRUNCATE (and REFERENCES, TRIGGER) granted by hand earlier.
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

export class PostgresEvidenceSink implements EvidenceSink {
  readonly kind = 'postgres';
  private readonly pool: Pool;
  /** The Merkle frontier per workspace as far as read; leaves never change, so only newer rows are fetched under the lock. */
  private readonly frontiers = new Map<string, MerkleFrontier>();

  constructor(private readonly opts: PostgresSinkOptions) {
    this.pool = new Pool({ connectionString: opts.url, max: opts.poolSize ?? 4, connectionTimeoutMillis: 10_000 });
    // An idle client losing its connection must not crash the worker; the next checkout reconnects.
    this.pool.on('error', () => undefined);
  }

  async append(batch: AppendBatch): Promise<AppendReceipt> {
    const ws = batch.workspaceId;
    let client: PoolClient | undefined;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.unavailable(err);
    }
    let broken = false;
    // A checked-out client whose connection drops emits 'error'; unheard, that would crash the worker.
    const onError = () => (broken = true);
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      // Held to COMMIT or ROLLBACK (or the connection's end): one writer per workspace at a time.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`portarium-evidence:${ws}`]);
      const receipt = await appendBatch(this.transaction(client, ws), batch, this.opts.signer, () => new Date());
      await client.query('COMMIT');
      return receipt;
    } catch (err) {
      // The frontier may hold this batch's leaf, which was rolled back: read it again next time.
      this.frontiers.delete(ws);
      // A connection that cannot even roll back goes, rather than back to the pool.
      await client.query('ROLLBACK').catch(() => (broken = true));
      throw this.unavailable(err);
    } finally {
      client.off('error', onError);
      client.release(broken || undefined);
    }
  }

  /** The storage `appendBatch` works on, inside the open transaction. Protected so tests can inject crashes. */
  protected transaction(c: PoolClient, ws: string): LogTransaction {
    return {
      runHashes: async (runId, execution) =>
        (await c.query('SELECT hash FROM portarium_evidence_entries WHERE workspace_id = $1 AND run_id = $2 AND execution = $3 ORDER BY seq', [ws, runId, execution ?? ''])).rows.map((r) => r.hash as string),
      // ws_seq is gapless from 0, so max + 1 is the count, read from the primary key index.
      entryCount: async () => Number((await c.query('SELECT coalesce(max(ws_seq) + 1, 0) AS n FROM portarium_evidence_entries WHERE workspace_id = $1', [ws])).rows[0].n),
      frontier: async () => {
        const frontier = this.frontiers.get(ws) ?? new MerkleFrontier(nodeEvidenceCrypto);
        const rows = await c.query('SELECT leaf_hash FROM portarium_evidence_leaves WHERE workspace_id = $1 AND leaf_index >= $2 ORDER BY leaf_index', [ws, frontier.size]);
        for (const r of rows.rows) frontier.append(r.leaf_hash as string);
        this.frontiers.set(ws, frontier);
        return frontier;
      },
      findLeaf: async (runId, execution, count) => {
        const r = await c.query('SELECT leaf_index FROM portarium_evidence_leaves WHERE workspace_id = $1 AND run_id = $2 AND execution = $3 AND count = $4', [ws, runId, execution ?? '', count]);
        return r.rows.length ? Number(r.rows[0].leaf_index) : undefined;
      },
      latestTreeHead: async () => {
        const r = await c.query('SELECT sth FROM portarium_evidence_tree_heads WHERE workspace_id = $1 ORDER BY tree_size DESC LIMIT 1', [ws]);
        return r.rows.length ? (JSON.parse(r.rows[0].sth) as SignedTreeHead) : undefined;
      },
      writeEntries: async (entries) => {
        // Many rows per statement (a round trip per entry would hold the workspace lock longer), but
        // bounded: a statement takes at most 65,535 parameters, and a huge one strains the server.
        const rows = entries.map(({ wsSeq, entry, execution }) => [wsSeq, entry.runId, execution ?? '', entry.seq, entry.hash, canonicalJson(entry)] as const);
        for (const chunk of chunked(rows, INSERT_LIMITS.rows, INSERT_LIMITS.bytes, (r) => Buffer.byteLength(r[5]))) {
          const values = chunk.map((_, i) => `($1, ${[2, 3, 4, 5, 6, 7].map((k) => `$${i * 6 + k}`).join(', ')})`);
          await c.query(`INSERT INTO portarium_evidence_entries (workspace_id, ws_seq, run_id, execution, seq, hash, entry) VALUES ${values.join(', ')}`, [ws, ...chunk.flat()]);
        }
      },
      writeLeaf: async ({ index, leaf, leafHash }) => {
        await c.query('INSERT INTO portarium_evidence_leaves (workspace_id, leaf_index, run_id, execution, count, head, leaf_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)',
          [ws, index, leaf.runId, leaf.execution ?? '', leaf.count, leaf.head, leafHash]);
        this.frontiers.get(ws)?.append(leafHash);
      },
      writeTreeHead: async (sth) => {
        await c.query(`INSERT INTO portarium_evidence_tree_heads (workspace_id, tree_size, root_hash, signed_at, key_id, signature, sth)
          VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`, [ws, sth.treeSize, sth.rootHash, sth.timestamp, sth.keyId, sth.signature, canonicalJson(sth)]);
      },
    };
  }

  async readWorkspace(workspaceId: string): Promise<WorkspaceLog> {
    try {
      // One snapshot, so entries, leaves and heads agree even while workers append.
      const c = await this.pool.connect();
      let done = false;
      const onError = () => (done = false);
      c.on('error', onError);
      try {
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const entries = await c.query('SELECT ws_seq, execution, entry FROM portarium_evidence_entries WHERE workspace_id = $1 ORDER BY ws_seq', [workspaceId]);
        const leaves = await c.query('SELECT leaf_index, run_id, execution, count, head, leaf_hash FROM portarium_evidence_leaves WHERE workspace_id = $1 ORDER BY leaf_index', [workspaceId]);
        const heads = await c.query('SELECT sth FROM portarium_evidence_tree_heads WHERE workspace_id = $1 ORDER BY tree_size, key_id', [workspaceId]);
        await c.query('COMMIT');
        done = true;
        return {
          workspaceId,
          entries: entries.rows.map((r) => ({ wsSeq: Number(r.ws_seq), entry: parseEntry(r.entry, workspaceId, r.ws_seq), ...executionOf(r) })),
          leaves: leaves.rows.map((r) => ({
            index: Number(r.leaf_index),
            leaf: { workspaceId, runId: r.run_id as string, ...executionOf(r), count: Number(r.count), head: r.head as string },
            leafHash: r.leaf_hash as string,
          })),
          treeHeads: heads.rows.map((r) => JSON.parse(r.sth) as SignedTreeHead),
        };
      } finally {
        // A client left inside a failed transaction must not go back to the pool.
        c.off('error', onError);
        c.release(!done || undefined);
      }
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  async readRun(workspaceId: string, runId: string, execution?: string): Promise<EvidenceEntry[]> {
    try {
      // By default the execution that wrote last under this workflow id.
      const r = await this.pool.query(`SELECT ws_seq, entry FROM portarium_evidence_entries WHERE workspace_id = $1 AND run_id = $2 AND execution = ${execution === undefined
        ? `(SELECT execution FROM portarium_evidence_entries WHERE workspace_id = $1 AND run_id = $2 ORDER BY ws_seq DESC LIMIT 1)` : '$3'} ORDER BY seq`,
      execution === undefined ? [workspaceId, runId] : [workspaceId, runId, execution]);
      return r.rows.map((row) => parseEntry(row.entry, workspaceId, row.ws_seq));
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /**
   * Anything but our own refusals means the database could not be used: retryable, so the run waits
   * for it. pg messages name host, user and database at most; the password is scrubbed anyway.
   */
  private unavailable(err: unknown): ApplicationFailure {
    if (err instanceof ApplicationFailure) return err;
    const e = err as { code?: string; message?: string };
    let message = `evidence database: ${e.code ? `${e.code} ` : ''}${e.message ?? String(err)}`;
    for (const secret of [this.opts.url, passwordOf(this.opts.url)]) if (secret) message = message.split(secret).join('***');
    return ApplicationFailure.create({ type: FailureType.EvidenceUnavailable, message, nonRetryable: false });
  }
}

/** The `execution` column as the log shapes carry it: absent for chains kept by run id alone. */
const executionOf = (row: { execution?: unknown }): { execution?: string } => (row.execution ? { execution: String(row.execution) } : {});

function passwordOf(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}

/** Rows are our own canonical JSON; a shape check catches a wrong table or column, the verifier does the rest. */
function parseEntry(text: string, workspaceId: string, wsSeq: unknown): EvidenceEntry {
  let e: Partial<EvidenceEntry> | null = null;
  try {
    // The column holds the canonical text that was hashed: verification hashes its body as stored.
    e = storedEntryFromText(text) as Partial<EvidenceEntry> | null;
  } catch {
    // Not JSON: refused below like any other stranger.
  }
  if (!e || typeof e !== 'object' || e.schema !== EVIDENCE_SCHEMA || e.workspaceId !== workspaceId || typeof e.runId !== 'string'
    || typeof e.seq !== 'number' || typeof e.hash !== 'string' || typeof e.previousHash !== 'string') {
    throw ApplicationFailure.create({ type: FailureType.EvidenceConflict, message: `stored entry ${workspaceId}#${String(wsSeq)} is not a ${EVIDENCE_SCHEMA} entry`, nonRetryable: true });
  }
  return e as EvidenceEntry;
}
