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

/** Largest action input, as JSON text. Bigger inputs belong in a payload store, by reference. */
export const MAX_ACTION_INPUT_BYTES = 256 * 1024;

const TIERS = ['Auto', 'Assisted', 'HumanApprove', 'ManualOnly'] as const;

const id = (what: string, max = 128) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .max(max, `${what} is longer than ${max} characters`)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$/, `${what} may hold letters, digits and . _ : @ / + - only`);

const text = (what: string, max: number) =>
  z
    .string()
    .trim()
    .min(1, `${what} must not be empty`)
    .max(max, `${what} is longer than ${max} characters`);

export function workspaceIdSchema() {
  return z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'workspaceId must be 1-63 lower-case letters, digits, _ or -');
}

export function principalSchema(): z.ZodType<Principal> {
  return z.strictObject({
    id: id('principal id'),
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
    runtime: id('runtime', 64),
    target: text('target', 512),
    operation: id('operation', 128),
    input: z.record(z.string(), jsonValueSchema()).refine((v) => JSON.stringify(v).length <= MAX_ACTION_INPUT_BYTES, {
      message: `input is larger than ${MAX_ACTION_INPUT_BYTES} bytes of JSON; pass a reference instead`,
    }),
    tools: z.array(id('tool', 128)).max(256).optional(),
  });
}

export function governedRunInputSchema(): z.ZodType<GovernedRunInput> {
  return z.strictObject({
    schemaVersion: z.literal(1).optional(),
    workspaceId: workspaceIdSchema(),
    correlationId: id('correlationId'),
    requestedBy: principalSchema(),
    action: actionSchema(),
    idempotencyKey: id('idempotencyKey'),
    reason: text('reason', 2000),
    tierOverride: z.enum(TIERS).optional(),
  });
}

function decisionShape() {
  return {
    decisionId: id('decisionId'),
    approver: principalSchema(),
    rationale: text('rationale', 2000).optional(),
    actionHash: actionHashSchema(),
    signature: z.string().max(512).optional(),
    signedAt: z.iso.datetime({ offset: true, message: 'signedAt must be an ISO-8601 date-time' }).optional(),
  };
}

/** A decision sent as the `approve`, `reject` or `requestChanges` signal. */
export function decisionSchema(kind: DecideRequest['kind']): z.ZodType<Decision> {
  return z.strictObject(decisionShape()).refine((d) => kind === 'approve' || d.rationale !== undefined, {
    message: `a ${kind} decision needs a rationale`,
    path: ['rationale'],
  });
}

/** The `decide` update payload. */
export function decideRequestSchema(): z.ZodType<DecideRequest> {
  return z
    .strictObject({ kind: z.enum(['approve', 'reject', 'requestChanges']), ...decisionShape() })
    .refine((d) => d.kind === 'approve' || d.rationale !== undefined, {
      message: 'reject and requestChanges need a rationale',
      path: ['rationale'],
    });
}

export function cancelRequestSchema(): z.ZodType<CancelRequest> {
  return z.strictObject({ requestedBy: principalSchema(), reason: text('reason', 2000) });
}

export function manualCompletionSchema(): z.ZodType<ManualCompletion> {
  return z.strictObject({
    completionId: id('completionId'),
    completedBy: principalSchema(),
    completedAt: z.iso.datetime({ offset: true, message: 'completedAt must be an ISO-8601 date-time' }),
    evidenceRef: text('evidenceRef', 2048),
    actionHash: actionHashSchema(),
    outcome: z.enum(['Succeeded', 'Failed']).optional(),
    notes: text('notes', 4000).optional(),
  });
}

export function amendRequestSchema(): z.ZodType<AmendRequest> {
  return z.strictObject({
    amendmentId: id('amendmentId'),
    amendedBy: principalSchema(),
    action: actionSchema(),
    reason: text('reason', 2000),
  });
}

/** One problem with a message: where it is and what is wrong. */
export interface FieldIssue {
  path: string;
  message: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; issues: FieldIssue[] };

/** Parse without throwing; on failure list every bad field with its path. */
/** Deepest nesting accepted in any message; deeper values are refused before zod walks them. */
export const MAX_NESTING = 64;

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

/** Parse without throwing; on failure list every bad field with its path. Never throws. */
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

export function check<T>(schema: z.ZodType<T>, value: unknown): Checked<T> {
  if (nestingDepth(value) > MAX_NESTING) return { ok: false, issues: [{ path: '(root)', message: `nested deeper than ${MAX_NESTING} levels` }] };
  let parsed: ReturnType<z.ZodType<T>['safeParse']>;
  try {
    parsed = schema.safeParse(value);
  } catch (err) {
    return { ok: false, issues: [{ path: '(root)', message: `could not be checked: ${err instanceof Error ? err.name : 'error'}` }] };
  }
  if (parsed.success) return { ok: true, value: parsed.data };
  return {
    ok: false,
    issues: parsed.error.issues.map((i) => ({
      path: i.path.length ? i.path.map(String).join('.') : '(root)',
      message: i.message,
    })),
  };
}

/** `a.b: message; c: message` for error texts. */
export function describeIssues(issues: FieldIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}
