/**
 * zod schemas for every message that crosses into a governed run: its input, decisions, cancel,
 * manual completion and amendment. Clients and the CLI use them to refuse bad input early; the
 * workflow uses them again because operators can start runs and send signals with the raw CLI.
 *
 * Schemas are built by functions, not at module top level: the workflow bundle re-evaluates module
 * scope for every cached run, and top-level zod objects per run exhaust worker memory
 * (sdk-typescript #2227). Each `typed` annotation keeps a schema and its type in `./types.ts` in step.
 */
import { z } from './zod-sandbox';
import type {
  AmendRequest,
  CancelRequest,
  DecideRequest,
  Decision,
  GovernedAction,
  GovernedRunInput,
  JsonValue,
  ManualCompletion,
  Principal,
} from './types';
import { normalizePrincipalId } from './run/signatures';
import { undecodableReason } from './undecodable';
import { IDENTIFIER_CHARS, runtimeNameSchema, workspaceIdSchema } from './ids';
import { TIER_ORDER } from './types';
import { FailureType, refusal } from './failures';

export { workspaceIdSchema } from './ids';

/** Largest action input, as JSON text. Bigger inputs belong in a payload store, by reference. */
const MAX_ACTION_INPUT_BYTES = 256 * 1024;

const id = (what: string, max = 128) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .max(max, `${what} is longer than ${max} characters`)
    .regex(IDENTIFIER_CHARS, `${what} may hold letters, digits and . _ : @ / + - only`);

const text = (what: string, max: number) =>
  z
    .string()
    .trim()
    .min(1, `${what} must not be empty`)
    .max(max, `${what} is longer than ${max} characters`);

/**
 * How ids are read. `normalizeIds: false` only for replaying runs started before the hostile-input
 * round (governed-run.ts HOSTILE_INPUT_PATCH): their evidence was stored with ids as sent, and a
 * replayed chain must hash the same. @default normalised
 */
export interface IdOptions {
  normalizeIds?: boolean;
}

/** Principal ids are normalised here, once (ASCII lower case): `Alice` and `alice` are one person. */
export function principalSchema(opts: IdOptions = {}): z.ZodType<Principal> {
  return z.strictObject({
    id: opts.normalizeIds === false ? id('principal id') : id('principal id').transform(normalizePrincipalId),
    roles: z.array(id('role', 64)).max(64, 'at most 64 roles'),
    workspaceId: workspaceIdSchema().optional(),
  });
}

export function actionHashSchema() {
  return z.string().regex(/^[0-9a-f]{64}$/, 'actionHash must be 64 lower-case hex digits (SHA-256)');
}

function jsonValueSchema(): z.ZodType<JsonValue> {
  const value: z.ZodType<JsonValue> = z.lazy(() =>
    z.union([z.null(), z.boolean(), z.number().finite(), z.string(), z.array(value), z.record(z.string(), value)]),
  );
  return value;
}

export function actionSchema(): z.ZodType<GovernedAction> {
  return z.strictObject({
    runtime: runtimeNameSchema(),
    target: text('target', 512),
    operation: id('operation', 128),
    input: z.record(z.string(), jsonValueSchema()).refine((v) => utf8Bytes(JSON.stringify(v)) <= MAX_ACTION_INPUT_BYTES, {
      message: `input is larger than ${MAX_ACTION_INPUT_BYTES} bytes of JSON; pass a reference instead`,
    }),
    tools: z.array(id('tool', 128)).max(256).optional(),
  });
}

export function governedRunInputSchema(opts: IdOptions = {}): z.ZodType<GovernedRunInput> {
  return z.strictObject({
    schemaVersion: z.literal(1).optional(),
    workspaceId: workspaceIdSchema(),
    correlationId: id('correlationId'),
    requestedBy: principalSchema(opts),
    action: actionSchema(),
    idempotencyKey: id('idempotencyKey'),
    reason: text('reason', 2000),
    tierOverride: z.enum(TIER_ORDER).optional(),
  });
}

function decisionShape(opts: IdOptions) {
  return {
    decisionId: id('decisionId'),
    approver: principalSchema(opts),
    rationale: text('rationale', 2000).optional(),
    actionHash: actionHashSchema(),
    ...signatureShape(),
  };
}

export function signatureShape() {
  return {
    signature: z.string().max(512).optional(),
    signedAt: z.iso.datetime({ offset: true, message: 'signedAt must be an ISO-8601 date-time' }).optional(),
  };
}

/** A decision sent as the `approve`, `reject` or `requestChanges` signal. */
export function decisionSchema(kind: DecideRequest['kind'], opts: IdOptions = {}): z.ZodType<Decision> {
  return z.strictObject(decisionShape(opts)).refine((d) => kind === 'approve' || d.rationale !== undefined, {
    message: `a ${kind} decision needs a rationale`,
    path: ['rationale'],
  });
}

/** The `decide` update payload. */
export function decideRequestSchema(opts: IdOptions = {}): z.ZodType<DecideRequest> {
  return z
    .strictObject({ kind: z.enum(['approve', 'reject', 'requestChanges']), ...decisionShape(opts) })
    .refine((d) => d.kind === 'approve' || d.rationale !== undefined, {
      message: 'reject and requestChanges need a rationale',
      path: ['rationale'],
    });
}

export function cancelRequestSchema(opts: IdOptions = {}): z.ZodType<CancelRequest> {
  return z.strictObject({ requestedBy: principalSchema(opts), reason: text('reason', 2000), cancelId: id('cancelId').optional(), ...signatureShape() });
}

export function manualCompletionSchema(opts: IdOptions = {}): z.ZodType<ManualCompletion> {
  return z.strictObject({
    completionId: id('completionId'),
    completedBy: principalSchema(opts),
    completedAt: z.iso.datetime({ offset: true, message: 'completedAt must be an ISO-8601 date-time' }),
    evidenceRef: text('evidenceRef', 2048),
    actionHash: actionHashSchema(),
    outcome: z.enum(['Succeeded', 'Failed']).optional(),
    notes: text('notes', 4000).optional(),
    ...signatureShape(),
  });
}

export function amendRequestSchema(opts: IdOptions = {}): z.ZodType<AmendRequest> {
  return z.strictObject({
    amendmentId: id('amendmentId'),
    amendedBy: principalSchema(opts),
    action: actionSchema(),
    reason: text('reason', 2000),
    ...signatureShape(),
  });
}

/** One problem with a message: where it is and what is wrong. */
export interface FieldIssue {
  path: string;
  message: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; issues: FieldIssue[] };

/** Deepest nesting accepted in any message; deeper values are refused before zod walks them. */
const MAX_NESTING = 64;

/** Nesting depth of a JSON-like value, measured without recursion (so no stack overflow). */
export function nestingDepth(value: unknown, limit = MAX_NESTING): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (depth > deepest) deepest = depth;
    if (deepest > limit) return deepest;
    if (v && typeof v === 'object') for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** Input of `runEventDelivery` (started by governedRun; events are checked for the fields delivery relies on). */
export function runEventDeliveryInputSchema() {
  const event = z.looseObject({
    specversion: z.literal('1.0'),
    id: z.string().min(1).max(512),
    source: z.string().min(1),
    type: z.string().regex(/^com\.portarium\.run\.[a-z_]+\.v1$/, 'expected a com.portarium.run.<event>.v1 type'),
    data: z.looseObject({}),
  });
  return z.strictObject({ workspaceId: workspaceIdSchema(), runId: z.string().min(1).max(1000), events: z.array(event).max(10_000) });
}

/**
 * Largest message, as UTF-8 JSON, that any handler looks at. Temporal itself accepts up to 2 MB per
 * payload; nothing a person or bot sends legitimately comes near this (an action input is bounded
 * by MAX_ACTION_INPUT_BYTES), and a bounded message keeps refusals cheap.
 */
const MAX_MESSAGE_BYTES = 512 * 1024;

/** Issues kept per refusal, and characters per issue: refusal texts enter status, history and evidence. */
const MAX_ISSUES = 10;
const MAX_ISSUE_TEXT = 200;
const MAX_PATH_TEXT = 100;

/** UTF-8 length of `s`, counted without allocating (lone surrogates count as the 3 bytes of U+FFFD). */
export function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** UTF-8 size of a value as JSON, or Infinity when it cannot be serialised (cycles, BigInt). */
export function jsonBytes(value: unknown): number {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? 0 : utf8Bytes(text);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** `s` cut to at most `max` characters, marked when cut. */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`;
}

/** Parse without throwing; on failure list the bad fields (at most MAX_ISSUES, texts bounded) with their paths. */
export function check<T>(schema: z.ZodType<T>, value: unknown, bounded = true): Checked<T> {
  // Runs started before the hostile-input round replay what they recorded: unbounded issue lists.
  if (!bounded) return checkUnbounded(schema, value);
  const undecodable = undecodableReason(value);
  if (undecodable !== undefined) return { ok: false, issues: [{ path: '(root)', message: clip(undecodable, MAX_ISSUE_TEXT) }] };
  if (nestingDepth(value) > MAX_NESTING) return { ok: false, issues: [{ path: '(root)', message: `nested deeper than ${MAX_NESTING} levels` }] };
  const bytes = jsonBytes(value);
  if (bytes > MAX_MESSAGE_BYTES) {
    return { ok: false, issues: [{ path: '(root)', message: `${bytes === Number.POSITIVE_INFINITY ? 'not JSON data' : `${bytes} bytes of JSON`}; at most ${MAX_MESSAGE_BYTES} are accepted` }] };
  }
  const r = parseAll(schema, value);
  if (r.ok) return r;
  const issues = r.issues.slice(0, MAX_ISSUES).map((i) => ({ path: clip(i.path, MAX_PATH_TEXT), message: clip(i.message, MAX_ISSUE_TEXT) }));
  if (r.issues.length > MAX_ISSUES) issues.push({ path: '(more)', message: `${r.issues.length - MAX_ISSUES} more issue(s) not shown` });
  return { ok: false, issues };
}

/** The checks as runs before the hostile-input round recorded them (their evidence hashes these texts). */
function checkUnbounded<T>(schema: z.ZodType<T>, value: unknown): Checked<T> {
  if (nestingDepth(value) > MAX_NESTING) return { ok: false, issues: [{ path: '(root)', message: `nested deeper than ${MAX_NESTING} levels` }] };
  return parseAll(schema, value);
}

/** zod's verdict with every issue (path joined), never a throw. */
function parseAll<T>(schema: z.ZodType<T>, value: unknown): Checked<T> {
  let parsed: ReturnType<z.ZodType<T>['safeParse']>;
  try {
    parsed = schema.safeParse(value);
  } catch (err) {
    return { ok: false, issues: [{ path: '(root)', message: `could not be checked: ${err instanceof Error ? err.name : 'error'}` }] };
  }
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, issues: parsed.error.issues.map((i) => ({ path: i.path.length ? i.path.map(String).join('.') : '(root)', message: i.message })) };
}

/** `a.b: message; c: message` for error texts; bounded like the issues themselves. */
export function describeIssues(issues: FieldIssue[], bounded = true): string {
  if (!bounded) return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return clip(issues.slice(0, MAX_ISSUES + 1).map((i) => `${clip(i.path, MAX_PATH_TEXT)}: ${clip(i.message, MAX_ISSUE_TEXT)}`).join('; '), 4000);
}

/** The parsed (trimmed, normalised) message, or a typed `InvalidMessage` refusal naming every bad field. */
export function parsedOrRefuse<T>(schema: z.ZodType<T>, raw: unknown): T {
  const r = check(schema, raw);
  if (!r.ok) throw refusal(FailureType.InvalidMessage, describeIssues(r.issues), r.issues);
  return r.value;
}
