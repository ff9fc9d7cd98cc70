/**
 * Policy what-if: the recorded runs of a workspace re-decided under another policy snapshot, with
 * the same `evaluatePolicy` a run uses. Pure (no I/O): the CLI reads the log and the recorded action
 * inputs and passes them in.
 *
 * A run is re-decided only on what its evidence proves: `RunRequested` (runtime, target, operation,
 * tools, requester and roles, tier override), its last `PolicyAllowed`/`PolicyDenied` (tier, matched
 * rules, policy hash, action hash) and the `ActionInput` payload of a dispatched run. The rebuilt
 * action must hash to the decided action hash; when it cannot be rebuilt (input not recorded or not
 * readable, redacted, amended), the run is re-decided only if the new policy never reads the input,
 * and otherwise counted as not re-evaluable. Never guessed.
 */
import { type PolicyDecision, type PolicyRequest, evaluatePolicy } from '../../policies/evaluate';
import type { PolicySnapshot } from '../../policies/schema';
import { tierRank } from '../../policies/vocabulary';
import type { EvidenceEntry } from '../../workflows/evidence-chain';
import { hashAction } from '../../workflows/hashing';
import type { StoredEntry } from '../evidence/log';

export const WHAT_IF_SCHEMA = 'portarium.policy-what-if.v1';
/** Example workflow ids kept per outcome. */
const EXAMPLES = 3;

/** What a run's evidence records of its request and of the decision it ran under. */
export interface RecordedRun {
  runId: string;
  requestedAt: string;
  action: { runtime: string; target: string; operation: string; tools: string[] };
  requestedBy: { id: string; roles: string[] };
  tierOverride?: string;
  requestedActionHash: string;
  decision?: { effect: 'Allow' | 'Deny'; tier?: string; matchedRules: string[]; policyHash: string; actionHash: string };
  /** SHA-256 of the `ActionInput` payload, when the run was dispatched. */
  inputSha256?: string;
  /** Set when the `RunRequested` entry could not be read: the run is counted, never re-decided. */
  unreadable?: true;
}

/** A recorded input read from the payload store (by its SHA-256), or why it could not be. */
export type RecordedInput = { ok: true; input: unknown } | { ok: false; reason: string };

/** Why a run was not re-decided: stable codes for scripts reading the JSON. */
export const NotReEvaluable = {
  RequestUnreadable: 'RequestUnreadable',
  NoDecision: 'NoDecision',
  ActionAmended: 'ActionAmended',
  InputNotRecorded: 'InputNotRecorded',
  InputUnreadable: 'InputUnreadable',
  InputMismatch: 'InputMismatch',
} as const;
export type NotReEvaluable = (typeof NotReEvaluable)[keyof typeof NotReEvaluable];

/** What each code means, for the table. The input codes are given only when the new policy reads the input. */
export const NOT_RE_EVALUABLE_TEXT: Readonly<Record<NotReEvaluable, string>> = {
  RequestUnreadable: 'its RunRequested entry is not readable',
  NoDecision: 'no policy decision recorded',
  ActionAmended: 'amended, and the amended action is not in the evidence',
  InputNotRecorded: 'input not recorded (never dispatched), and the new policy reads it',
  InputUnreadable: 'recorded input not readable, and the new policy reads it',
  InputMismatch: 'recorded input does not hash to the decided action (redacted), and the new policy reads it',
};

export interface Outcome {
  count: number;
  examples: string[];
}

export interface TierMoves extends Outcome {
  /** `from→to` and how many runs moved so. */
  moves: Record<string, number>;
}

export interface Skipped extends Outcome {
  /** Why the input could not be read (InputUnreadable), and for how many runs. */
  details?: Record<string, number>;
}

export interface RuleReport {
  /** The rule(s) the recorded decision matched, comma-separated; `(no rule)` when none did. */
  rule: string;
  runs: number;
  nowDenied: Outcome;
  nowAllowed: Outcome;
  tierUp: TierMoves;
  tierDown: TierMoves;
  unchanged: Outcome;
}

export interface WhatIfReport {
  schema: typeof WHAT_IF_SCHEMA;
  workspaceId: string;
  policyHash: string;
  since?: string;
  runs: { total: number; reEvaluated: number; notReEvaluable: number };
  /** Policy hashes the runs were decided under, with their run counts. */
  recordedPolicyHashes: Record<string, number>;
  rules: RuleReport[];
  notReEvaluable: Partial<Record<NotReEvaluable, Skipped>>;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : undefined);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The request a `RunRequested` entry records, or undefined when the entry is not one this code can read. */
function requestOf(e: EvidenceEntry): RecordedRun | undefined {
  const d = e.data;
  if (!isRecord(d)) return undefined;
  const [runtime, target, operation, actionHash] = [d.runtime, d.target, d.operation, d.actionHash].map(text);
  const tools = strings(d.tools ?? []);
  const roles = strings(d.requesterRoles ?? []);
  if (!runtime || target === undefined || !operation || !actionHash || !tools || !roles || typeof e.actor?.id !== 'string') return undefined;
  const tierOverride = text(d.tierOverride);
  return {
    runId: e.runId, requestedAt: String(e.occurredAt), action: { runtime, target, operation, tools },
    requestedBy: { id: e.actor.id, roles }, ...(tierOverride && { tierOverride }), requestedActionHash: actionHash,
  };
}

/** A run whose request entry is not one this code can read: reported, never re-decided. */
function unreadableRun(e: EvidenceEntry): RecordedRun {
  return {
    runId: e.runId, requestedAt: String(e.occurredAt), action: { runtime: '', target: '', operation: '', tools: [] },
    requestedBy: { id: '', roles: [] }, requestedActionHash: '', unreadable: true,
  };
}

function decisionOf(e: EvidenceEntry): RecordedRun['decision'] {
  const d = isRecord(e.data) ? e.data : {};
  return {
    effect: e.event === 'PolicyAllowed' ? 'Allow' : 'Deny',
    ...(typeof d.tier === 'string' && { tier: d.tier }),
    matchedRules: strings(d.matchedRules) ?? [],
    policyHash: text(d.policyHash) ?? '',
    actionHash: text(d.actionHash) ?? '',
  };
}

/**
 * The runs of a workspace log, in the order they were requested. Entries are grouped by workflow id
 * across executions (a continued run's later chains carry its decision on); a new `RunRequested`
 * under the same id starts another run.
 */
export function recordedRuns(entries: readonly StoredEntry[]): RecordedRun[] {
  const runs: RecordedRun[] = [];
  const current = new Map<string, RecordedRun>();
  for (const { entry } of [...entries].sort((a, b) => a.wsSeq - b.wsSeq)) {
    // A log edited outside Portarium may hold anything; what is not an entry is skipped.
    if (!isRecord(entry) || typeof entry.runId !== 'string') continue;
    if (entry.event === 'RunRequested') {
      const run = requestOf(entry) ?? unreadableRun(entry);
      runs.push(run);
      current.set(entry.runId, run);
      continue;
    }
    const run = current.get(entry.runId);
    if (!run) continue;
    if (entry.event === 'PolicyAllowed' || entry.event === 'PolicyDenied') run.decision = decisionOf(entry);
    // Kept as given; the reader turns only a well-formed hash into a file name.
    const refs: unknown[] = Array.isArray(entry.payloadRefs) ? entry.payloadRefs : [];
    for (const ref of refs) if (isRecord(ref) && ref.kind === 'ActionInput') run.inputSha256 = String(ref.sha256);
  }
  return runs;
}

/** Records whether anything looked inside it; stands in for an input the evidence does not hold. */
function probe(): { input: { [k: string]: unknown }; read: () => boolean } {
  let read = false;
  const touched = () => (read = true);
  const input = new Proxy({}, {
    get: (t, k) => (touched(), Reflect.get(t, k)),
    has: (t, k) => (touched(), Reflect.has(t, k)),
    ownKeys: (t) => (touched(), Reflect.ownKeys(t)),
    getOwnPropertyDescriptor: (t, k) => (touched(), Reflect.getOwnPropertyDescriptor(t, k)),
    getPrototypeOf: (t) => (touched(), Reflect.getPrototypeOf(t)),
  });
  return { input, read: () => read };
}

type Refused = { ok: false; code: NotReEvaluable; detail?: string };
type Rebuilt = { ok: true; action: PolicyRequest['action'] } | Refused;

/** The decided action, rebuilt from the evidence and checked against its hash. */
function rebuild(run: RecordedRun, input: RecordedInput | undefined): Rebuilt {
  const { runtime, target, operation, tools } = run.action;
  const hash = run.decision!.actionHash;
  const candidates = (i: unknown) => [
    { runtime, target, operation, input: i, ...(tools.length ? { tools } : {}) },
    // `tools: []` given explicitly hashes differently from no tools; the entry records both as [].
    ...(tools.length ? [] : [{ runtime, target, operation, input: i, tools }]),
  ];
  // Without a readable input, an empty one is still proven when it hashes right (a run started without --input).
  const match = candidates(input?.ok && isRecord(input.input) ? input.input : {}).find((a) => hashAction(a) === hash);
  if (match) return { ok: true, action: match as PolicyRequest['action'] };
  if (hash !== run.requestedActionHash) return { ok: false, code: NotReEvaluable.ActionAmended };
  if (input === undefined) return { ok: false, code: NotReEvaluable.InputNotRecorded };
  if (!input.ok) return { ok: false, code: NotReEvaluable.InputUnreadable, detail: input.reason };
  return { ok: false, code: NotReEvaluable.InputMismatch };
}

/** The new decision for `run`, or why it cannot be made exactly. */
function redecide(snapshot: PolicySnapshot, run: RecordedRun, inputs: ReadonlyMap<string, RecordedInput>): { ok: true; decision: PolicyDecision } | Refused {
  if (run.unreadable) return { ok: false, code: NotReEvaluable.RequestUnreadable };
  if (!run.decision) return { ok: false, code: NotReEvaluable.NoDecision };
  const recorded = run.inputSha256 === undefined ? undefined : (inputs.get(run.inputSha256) ?? { ok: false, reason: 'payload store not read' });
  const rebuilt = rebuild(run, recorded);
  const request = (action: PolicyRequest['action']): PolicyRequest => ({
    action, requestedBy: run.requestedBy, ...(run.tierOverride && { tierOverride: run.tierOverride as PolicyRequest['tierOverride'] }),
  });
  if (rebuilt.ok) return { ok: true, decision: evaluatePolicy(snapshot, request(rebuilt.action)) };
  // Without the input: exact only when the new policy never looks at it for this request. The
  // recorded fields must then be the decided action's (no amendment), which the hash check above
  // could not confirm, so amended runs stay out.
  if (run.decision.actionHash !== run.requestedActionHash) return rebuilt;
  const p = probe();
  const { runtime, target, operation, tools } = run.action;
  const decision = evaluatePolicy(snapshot, request({ runtime, target, operation, tools, input: p.input }));
  return p.read() ? rebuilt : { ok: true, decision };
}

const outcome = (): Outcome => ({ count: 0, examples: [] });
const moves = (): TierMoves => ({ ...outcome(), moves: {} });

function add(o: Outcome, runId: string): void {
  o.count++;
  if (o.examples.length < EXAMPLES) o.examples.push(runId);
}

const rank = (tier: string | undefined) => tierRank(tier ?? '') ?? -1;

/** What-if report for `runs` under `snapshot`; `since` keeps runs requested at or after it. */
export function whatIf(snapshot: PolicySnapshot, runs: readonly RecordedRun[], inputs: ReadonlyMap<string, RecordedInput>, opts: { since?: Date } = {}): WhatIfReport {
  const since = opts.since?.getTime();
  const chosen = since === undefined ? runs : runs.filter((r) => Date.parse(r.requestedAt) >= since);
  const rules = new Map<string, RuleReport>();
  const notReEvaluable: WhatIfReport['notReEvaluable'] = {};
  const hashes: Record<string, number> = {};
  let reEvaluated = 0;
  for (const run of chosen) {
    if (run.decision) hashes[run.decision.policyHash] = (hashes[run.decision.policyHash] ?? 0) + 1;
    const next = redecide(snapshot, run, inputs);
    if (!next.ok) {
      let skipped: Skipped | undefined = notReEvaluable[next.code];
      if (!skipped) notReEvaluable[next.code] = skipped = outcome();
      add(skipped, run.runId);
      if (next.detail !== undefined) (skipped.details ??= {})[next.detail] = (skipped.details[next.detail] ?? 0) + 1;
      continue;
    }
    reEvaluated++;
    const old = run.decision!;
    const key = old.matchedRules.join(',') || '(no rule)';
    let r = rules.get(key);
    if (!r) rules.set(key, (r = { rule: key, runs: 0, nowDenied: outcome(), nowAllowed: outcome(), tierUp: moves(), tierDown: moves(), unchanged: outcome() }));
    r.runs++;
    const nd = next.decision;
    if (old.effect === 'Allow' && nd.effect === 'Deny') add(r.nowDenied, run.runId);
    else if (old.effect === 'Deny' && nd.effect === 'Allow') add(r.nowAllowed, run.runId);
    else if (old.effect === 'Deny' || old.tier === nd.tier) add(r.unchanged, run.runId);
    else {
      const m = rank(nd.tier) > rank(old.tier) ? r.tierUp : r.tierDown;
      add(m, run.runId);
      const move = `${old.tier ?? '?'}→${nd.tier}`;
      m.moves[move] = (m.moves[move] ?? 0) + 1;
    }
  }
  return {
    schema: WHAT_IF_SCHEMA,
    workspaceId: snapshot.workspaceId,
    policyHash: snapshot.policyHash,
    ...(opts.since && { since: opts.since.toISOString() }),
    runs: { total: chosen.length, reEvaluated, notReEvaluable: chosen.length - reEvaluated },
    recordedPolicyHashes: hashes,
    rules: [...rules.values()].sort((a, b) => a.rule.localeCompare(b.rule)),
    notReEvaluable,
  };
}
