/**
 * Per-run, append-only hash chain of evidence entries, held in workflow state. Pure and deterministic.
 *
 * hash = SHA-256(canonical JSON of the entry without `hash`), so it covers `previousHash` and `seq`.
 * Genesis: the first entry's `previousHash` is `genesisHash(workspaceId, runId)`, which binds the chain
 * to its run; a chain copied into another run fails verification at seq 0.
 */
import { type EvidenceCrypto, canonicalJson, jsonString, pureCrypto } from './hashing';
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
  /** Content-addressed payloads (action input, runtime output) this entry vouches for, by hash. */
  payloadRefs?: EvidencePayloadRef[];
  previousHash: string;
  hash: string;
}

export interface EvidencePayloadRef {
  /** What the payload is, e.g. `ActionInput`, `RuntimeOutput`. */
  kind: string;
  uri: string;
  sha256: string;
  contentType: string;
}

/** The actor of entries the run records itself (transitions, refusals it summarises). */
export const SYSTEM_ACTOR: EvidenceActor = { kind: 'System', id: 'portarium' };

export type EvidenceInput = Pick<EvidenceEntry, 'category' | 'event' | 'actor' | 'summary' | 'data' | 'payloadRefs'>;

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
  return out.length > max ? `${out.slice(0, cutAt(out, max))}…` : out;
}

/** `max`, or one less where that would split a surrogate pair (half a character is not text). */
function cutAt(s: string, max: number): number {
  const c = s.charCodeAt(max - 1);
  return c >= 0xd800 && c <= 0xdbff ? max - 1 : max;
}

/** Bounds of one entry: evidence is copied into history (the sink activity's input), status and sinks. */
export const MAX_SUMMARY_CHARS = 4000;
const MAX_DATA_CHARS = 32 * 1024;

/** `data` as given when its JSON is within MAX_DATA_CHARS; otherwise its keys and size only, marked truncated. */
function boundedData(data: { [key: string]: JsonValue }): { [key: string]: JsonValue } {
  const size = JSON.stringify(data).length;
  if (size <= MAX_DATA_CHARS) return data;
  return { truncated: true, jsonChars: size, keys: Object.keys(data).slice(0, 50) };
}

/** Split `items` into runs of at most `maxCount` items and (but for a single bigger item) `maxBytes` bytes. */
export function chunked<T>(items: readonly T[], maxCount: number, maxBytes: number, size: (item: T) => number): T[][] {
  const out: T[][] = [];
  let chunk: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = size(item);
    if (chunk.length && (chunk.length >= maxCount || bytes + n > maxBytes)) {
      out.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += n;
  }
  if (chunk.length) out.push(chunk);
  return out;
}

/** UTF-8 length of `text` (no TextEncoder or Buffer needed, so the workflow sandbox can count too). */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A surrogate half is 2 of its pair's 4 bytes (a lone one is replaced by 3, close enough for a bound).
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdfff ? 2 : 3;
  }
  return n;
}

export function genesisHash(workspaceId: string, runId: string, crypto: EvidenceCrypto = pureCrypto): string {
  // The canonical JSON spelled out (keys sorted) when both are strings, as they are but in a tampered log.
  const text = typeof workspaceId === 'string' && typeof runId === 'string'
    ? `{"runId":${jsonString(runId)},"schema":"${EVIDENCE_SCHEMA}","workspaceId":${jsonString(workspaceId)}}`
    : canonicalJson({ schema: EVIDENCE_SCHEMA, workspaceId, runId });
  return crypto.sha256Hex(text);
}

export function hashEntry(entry: Omit<EvidenceEntry, 'hash'>, crypto: EvidenceCrypto = pureCrypto): string {
  return crypto.sha256Hex(canonicalJson(entry));
}

const ENTRY_KEYS = new Set(['actor', 'category', 'correlationId', 'data', 'event', 'hash', 'occurredAt', 'payloadRefs', 'previousHash', 'runId', 'schema', 'seq', 'summary', 'workspaceId']);

/**
 * canonicalJson of the entry without `hash`: the bytes `hash` covers. Written out field by field for
 * the shape entries have (no copy without `hash`, no key sort); anything else (a missing or mistyped
 * field, an unknown key) goes the general way, so the bytes are always canonicalJson's.
 */
export function entryBodyJson(entry: EvidenceEntry | Omit<EvidenceEntry, 'hash'>): string {
  const fast = entryFields(entry);
  if (fast !== undefined) return fast;
  const { hash: _hash, ...body } = entry as EvidenceEntry;
  return canonicalJson(body);
}

/** Last value and its JSON per field: within a chain the scope fields repeat, and categories are few. */
const quoted = { workspaceId: ['', '""'], runId: ['', '""'], correlationId: ['', '""'], schema: ['', '""'], category: ['', '""'], kind: ['', '""'] };

function q(field: keyof typeof quoted, text: string): string {
  const slot = quoted[field];
  if (slot[0] !== text) {
    slot[0] = text;
    slot[1] = jsonString(text);
  }
  return slot[1];
}

/** `{"id":…,"kind":…}` for the usual actor (exactly those two keys, strings); anything else the general way. */
function actorJson(actor: unknown): string {
  if (actor === null || typeof actor !== 'object' || Object.getPrototypeOf(actor) !== Object.prototype) return canonicalJson(actor);
  let keys = 0;
  for (const key in actor) if ((key !== 'id' && key !== 'kind') || ++keys > 2) return canonicalJson(actor);
  const { id, kind } = actor as EvidenceActor;
  return typeof id === 'string' && typeof kind === 'string' ? `{"id":${jsonString(id)},"kind":${q('kind', kind)}}` : canonicalJson(actor);
}

function entryFields(e: Partial<EvidenceEntry>): string | undefined {
  const proto = Object.getPrototypeOf(e);
  if (proto !== Object.prototype && proto !== null) return undefined;
  for (const key in e) if (!ENTRY_KEYS.has(key)) return undefined;
  const { actor, category, correlationId, data, event, occurredAt, payloadRefs, previousHash, runId, schema, seq, summary, workspaceId } = e;
  if (actor === undefined || typeof category !== 'string' || typeof correlationId !== 'string' || typeof event !== 'string'
    || typeof occurredAt !== 'string' || typeof previousHash !== 'string' || typeof runId !== 'string' || typeof schema !== 'string'
    || typeof seq !== 'number' || !Number.isFinite(seq) || typeof summary !== 'string' || typeof workspaceId !== 'string') return undefined;
  return `{"actor":${actorJson(actor)},"category":${q('category', category)},"correlationId":${q('correlationId', correlationId)}${
    data === undefined ? '' : `,"data":${canonicalJson(data)}`},"event":${jsonString(event)},"occurredAt":${jsonString(occurredAt)}${
    payloadRefs === undefined ? '' : `,"payloadRefs":${canonicalJson(payloadRefs)}`},"previousHash":${jsonString(previousHash)},"runId":${
    q('runId', runId)},"schema":${q('schema', schema)},"seq":${JSON.stringify(seq)},"summary":${jsonString(summary)},"workspaceId":${q('workspaceId', workspaceId)}}`;
}

export class EvidenceChain {
  private readonly list: EvidenceEntry[];

  constructor(
    private readonly scope: ChainScope,
    entries: EvidenceEntry[] = [],
    /** Clip oversized summaries and data (MAX_SUMMARY_CHARS, MAX_DATA_CHARS); off for runs recorded before the bounds. */
    private readonly opts: { bounded?: boolean } = { bounded: true },
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
    const entry = buildEntry(this.scope, { seq: this.list.length, previousHash: this.head }, input, occurredAt, this.opts.bounded === true);
    this.list.push(entry);
    return entry;
  }

  /**
   * Take an entry built elsewhere (by the dispatch activity, from the same `buildEntry`) as the next
   * one, if it is exactly that: this chain's scope, the next seq, linked to our head, no earlier than
   * our last entry, and hashing to what it claims. False, and nothing taken, otherwise.
   */
  adopt(entry: EvidenceEntry): boolean {
    const ok = this.fits(entry);
    if (ok) this.list.push(entry);
    return ok;
  }

  /** Whether `entry` is exactly this chain's next one (see `adopt`). */
  private fits(entry: EvidenceEntry): boolean {
    const last = this.list[this.list.length - 1];
    return typeof entry === 'object' && entry !== null
      && entry.schema === EVIDENCE_SCHEMA
      && entry.workspaceId === this.scope.workspaceId && entry.correlationId === this.scope.correlationId && entry.runId === this.scope.runId
      && entry.seq === this.list.length && entry.previousHash === this.head
      && typeof entry.occurredAt === 'string' && (!last || entry.occurredAt >= last.occurredAt)
      && pureCrypto.sha256Hex(entryBodyJson(entry)) === entry.hash;
  }
}

/**
 * The entry at `position` (its seq, and the hash of the entry before it) in a chain of `scope`: redacted, bounded (summary and data) unless
 * `bounded` is off for a run recorded before the bounds, and hashed. Pure, so the workflow and the
 * dispatch activity build the same bytes.
 */
export function buildEntry(scope: ChainScope, position: { seq: number; previousHash: string }, input: EvidenceInput, occurredAt: Date, bounded: boolean): EvidenceEntry {
  const body: Omit<EvidenceEntry, 'hash'> = {
    schema: EVIDENCE_SCHEMA,
    workspaceId: scope.workspaceId,
    correlationId: scope.correlationId,
    runId: scope.runId,
    seq: position.seq,
    occurredAt: occurredAt.toISOString(),
    category: input.category,
    event: input.event,
    actor: input.actor,
    summary: bounded && input.summary.length > MAX_SUMMARY_CHARS ? `${input.summary.slice(0, cutAt(input.summary, MAX_SUMMARY_CHARS - 1))}…` : input.summary,
    data: input.data ? (bounded ? boundedData(redact(input.data) as { [key: string]: JsonValue }) : (redact(input.data) as { [key: string]: JsonValue })) : undefined,
    payloadRefs: input.payloadRefs?.length ? input.payloadRefs.map(({ kind, uri, sha256, contentType }) => ({ kind, uri, sha256, contentType })) : undefined,
    previousHash: position.previousHash,
  };
  return { ...body, hash: hashEntry(body) };
}

/**
 * Why a chain fails, at the first bad position:
 * - `hash_mismatch`: the entry's content was edited (its hash no longer matches);
 * - `missing_entry`: the entry expected at this seq is absent (deleted);
 * - `reordered`: it is present, but later in the list;
 * - `extra_entry`: a seq appears again (duplicated or inserted);
 * - `previous_hash_mismatch`: the entry does not link to the one before (a re-hashed edit or a fork);
 * - `scope_mismatch`: the entry belongs to another workspace or run;
 * - `timestamp_not_monotonic`: time goes backwards.
 */
export type ChainProblem =
  | 'hash_mismatch'
  | 'missing_entry'
  | 'reordered'
  | 'extra_entry'
  | 'previous_hash_mismatch'
  | 'scope_mismatch'
  | 'timestamp_not_monotonic';

export type ChainVerdict = { ok: true; head: string; count: number } | { ok: false; seq: number; reason: ChainProblem };

/** Check a run's chain from genesis: content, order, links, scope and time. Names the first bad entry. */
export function verifyChain(
  entries: readonly EvidenceEntry[],
  scope: Omit<ChainScope, 'correlationId'>,
  crypto: EvidenceCrypto = pureCrypto,
  /**
   * The body bytes an entry was stored as, when the reader kept them (activities/evidence/log.ts): hashed
   * as they are instead of rebuilt from the parsed entry. Only a match is taken from them; anything
   * else is judged on the rebuilt body, so the verdict is the same either way.
   */
  storedBody?: (entry: EvidenceEntry) => string | undefined,
): ChainVerdict {
  let previous = genesisHash(scope.workspaceId, scope.runId, crypto);
  let lastTime = '';
  for (let i = 0; i < entries.length; i++) {
    const body = entries[i];
    const { hash } = body;
    if (body.workspaceId !== scope.workspaceId || body.runId !== scope.runId) return { ok: false, seq: i, reason: 'scope_mismatch' };
    const stored = storedBody?.(body);
    if ((stored === undefined || crypto.sha256Hex(stored) !== hash) && crypto.sha256Hex(entryBodyJson(body)) !== hash) return { ok: false, seq: i, reason: 'hash_mismatch' };
    if (body.seq > i) return { ok: false, seq: i, reason: entries.slice(i + 1).some((e) => e.seq === i) ? 'reordered' : 'missing_entry' };
    if (body.seq < i) return { ok: false, seq: i, reason: 'extra_entry' };
    if (body.previousHash !== previous) return { ok: false, seq: i, reason: 'previous_hash_mismatch' };
    if (body.occurredAt < lastTime) return { ok: false, seq: i, reason: 'timestamp_not_monotonic' };
    previous = hash;
    lastTime = body.occurredAt;
  }
  return { ok: true, head: previous, count: entries.length };
}
