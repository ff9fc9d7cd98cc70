/**
 * Per-run, append-only hash chain of evidence entries, held in workflow state. Pure and deterministic.
 *
 * hash = SHA-256(canonical JSON of the entry without `hash`), so it covers `previousHash` and `seq`.
 * Genesis: the first entry's `previousHash` is `genesisHash(workspaceId, runId)`, which binds the chain
 * to its run; a chain copied into another run fails verification at seq 0.
 */
import { canonicalJson, sha256Hex } from './hashing';
import type { JsonValue } from './types';

export const EVIDENCE_SCHEMA = 'portarium.evidence.v1';

export const EvidenceCategory = {
  Plan: 'Plan',
  Policy: 'Policy',
  Approval: 'Approval',
  Action: 'Action',
  System: 'System',
} as const;
export type EvidenceCategory = (typeof EvidenceCategory)[keyof typeof EvidenceCategory];

export interface EvidenceActor {
  kind: 'User' | 'System' | 'Runtime';
  id: string;
}

export interface EvidenceEntry {
  schema: typeof EVIDENCE_SCHEMA;
  workspaceId: string;
  correlationId: string;
  runId: string;
  seq: number;
  /** Workflow time, ISO-8601. */
  occurredAt: string;
  category: EvidenceCategory;
  /** What happened, e.g. `RunRequested`, `ApprovalRecorded`, `DecisionRefused`. */
  event: string;
  actor: EvidenceActor;
  summary: string;
  data?: { [key: string]: JsonValue };
  previousHash: string;
  hash: string;
}

export type EvidenceInput = Pick<EvidenceEntry, 'category' | 'event' | 'actor' | 'summary' | 'data'>;

export interface ChainScope {
  workspaceId: string;
  correlationId: string;
  runId: string;
}

const SECRET_KEY = /(authorization|token|secret|password|passwd|api[-_]?key|credential|private[-_]?key|cookie)/i;
export const REDACTED = '[redacted]';

/** Replace values under secret-looking keys, at any depth. Evidence never holds credentials. */
export function redact(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? REDACTED : redact(v);
  return out;
}

const SECRET_TEXT: [RegExp, string][] = [
  [/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  [/((?:api[-_]?key|token|secret|password|passwd|authorization|credential|cookie)s?["']?\s*[:=]\s*["']?)[^\s"',;&]+/gi, '$1[redacted]'],
  [/\b(?:sk|pk|rk)[-_](?:live[-_]|test[-_])?[A-Za-z0-9]{8,}/g, '[redacted]'],
];

/** Mask credential-looking text (bearer tokens, key=value secrets, API keys) and cap the length. */
export function redactText(text: string, max = 500): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_TEXT) out = out.replace(pattern, replacement);
  return out.length > max ? `${out.slice(0, max)}…` : out;
}

export function genesisHash(workspaceId: string, runId: string): string {
  return sha256Hex(canonicalJson({ schema: EVIDENCE_SCHEMA, workspaceId, runId }));
}

export function hashEntry(entry: Omit<EvidenceEntry, 'hash'>): string {
  return sha256Hex(canonicalJson(entry));
}

export class EvidenceChain {
  private readonly list: EvidenceEntry[];

  constructor(
    private readonly scope: ChainScope,
    entries: EvidenceEntry[] = [],
  ) {
    this.list = [...entries];
  }

  get head(): string {
    return this.list.length ? this.list[this.list.length - 1].hash : genesisHash(this.scope.workspaceId, this.scope.runId);
  }

  get entries(): readonly EvidenceEntry[] {
    return this.list;
  }

  append(input: EvidenceInput, occurredAt: Date): EvidenceEntry {
    const body: Omit<EvidenceEntry, 'hash'> = {
      schema: EVIDENCE_SCHEMA,
      ...this.scope,
      seq: this.list.length,
      occurredAt: occurredAt.toISOString(),
      category: input.category,
      event: input.event,
      actor: input.actor,
      summary: input.summary,
      data: input.data ? (redact(input.data) as { [key: string]: JsonValue }) : undefined,
      previousHash: this.head,
    };
    const entry: EvidenceEntry = { ...body, hash: hashEntry(body) };
    this.list.push(entry);
    return entry;
  }
}

export type ChainVerdict =
  | { ok: true; head: string; count: number }
  | {
      ok: false;
      seq: number;
      reason: 'seq_mismatch' | 'previous_hash_mismatch' | 'hash_mismatch' | 'scope_mismatch' | 'timestamp_not_monotonic';
    };

/** Check a run's chain from genesis: order, links, hashes, scope and time. Names the first bad entry. */
export function verifyChain(entries: readonly EvidenceEntry[], scope: Omit<ChainScope, 'correlationId'>): ChainVerdict {
  let previous = genesisHash(scope.workspaceId, scope.runId);
  let lastTime = '';
  for (let i = 0; i < entries.length; i++) {
    const { hash, ...body } = entries[i];
    if (body.seq !== i) return { ok: false, seq: i, reason: 'seq_mismatch' };
    if (body.workspaceId !== scope.workspaceId || body.runId !== scope.runId) return { ok: false, seq: i, reason: 'scope_mismatch' };
    if (body.previousHash !== previous) return { ok: false, seq: i, reason: 'previous_hash_mismatch' };
    if (hashEntry(body) !== hash) return { ok: false, seq: i, reason: 'hash_mismatch' };
    if (body.occurredAt < lastTime) return { ok: false, seq: i, reason: 'timestamp_not_monotonic' };
    previous = hash;
    lastTime = body.occurredAt;
  }
  return { ok: true, head: previous, count: entries.length };
}
