/**
 * zod schemas for quota messages: what a coordinator receives (requests, releases, its input) and
 * what a run receives from it (grants, queue notices), plus the input of `requestQuotaLease`.
 * Built by functions, like `./schemas.ts`, so no zod object lives in module scope of the bundle.
 */
import { check, describeIssues } from '../schemas';
import { RUNTIME_NAME_PATTERN, workspaceIdSchema } from '../ids';
import { MAX_LEASES, MAX_REASON_CHARS, MAX_RELEASED_REMEMBERED, MAX_WAITING, MAX_WINDOW } from './book';
import type { QuotaGrant, QuotaProbe, QuotaQueuedNotice, QuotaRelease, QuotaRequest, WorkspaceQuotaInput } from '../types';
import { z } from '../zod-sandbox';

const runtimeSchema = () => z.string().regex(RUNTIME_NAME_PATTERN, 'runtime must be a runtime name');
const leaseIdSchema = () => z.string().min(1).max(1200);
const runIdSchema = () => z.string().min(1).max(1000);
const isoSchema = () => z.iso.datetime({ offset: true });

export function quotaLimitsSchema() {
  return z
    .strictObject({
      concurrentDispatches: z.number().int().min(1).optional(),
      dispatchesPerMinute: z.number().int().min(1).optional(),
      leaseCheckIntervalMs: z.number().int().min(1000).optional(),
    })
    .refine((l) => l.concurrentDispatches !== undefined || l.dispatchesPerMinute !== undefined, 'no limit given');
}

/** A lease id is `<run id>/...`: a run can ask for and give back only its own. */
const ownLease = { message: 'leaseId must start with the runId and /', path: ['leaseId'] };
const isOwnLease = (m: { leaseId: string; runId: string }) => m.leaseId.startsWith(`${m.runId}/`);
/** The run's secret (`mintQuotaSecret`: 32 random bytes, base64url) and the proofs keyed by it (hex HMAC). */
const secretSchema = () => z.string().regex(/^[A-Za-z0-9_-]{32,128}$/, 'secret must be 32 to 128 base64url characters');
const proofSchema = () => z.string().regex(/^[0-9a-f]{64}$/, 'proof must be 64 hex digits');

export function quotaRequestSchema(): z.ZodType<QuotaRequest> {
  const v1 = z.strictObject({
    schemaVersion: z.literal(1),
    leaseId: leaseIdSchema(),
    runId: runIdSchema(),
    runExecutionId: z.string().min(1).max(200).optional(),
    limits: quotaLimitsSchema(),
  });
  const v2 = z.strictObject({
    schemaVersion: z.literal(2),
    leaseId: leaseIdSchema(),
    runId: runIdSchema(),
    runExecutionId: z.string().min(1).max(200),
    secret: secretSchema(),
  });
  return z.discriminatedUnion('schemaVersion', [v1, v2]).refine(isOwnLease, ownLease);
}

export function quotaReleaseSchema(): z.ZodType<QuotaRelease> {
  return z
    .strictObject({ leaseId: leaseIdSchema(), runId: runIdSchema(), reason: z.enum(['done', 'withdrawn']), secret: secretSchema().optional() })
    .refine(isOwnLease, ownLease);
}

export function quotaGrantSchema(): z.ZodType<QuotaGrant> {
  return z.strictObject({ leaseId: leaseIdSchema(), grantedAt: isoSchema(), proof: proofSchema().optional() });
}

export function quotaQueuedSchema(): z.ZodType<QuotaQueuedNotice> {
  return z.strictObject({
    leaseId: leaseIdSchema(),
    position: z.number().int().min(1),
    limit: z.enum(['concurrentDispatches', 'dispatchesPerMinute']),
    inUse: z.number().int().min(0),
    max: z.number().int().min(1),
    freesAt: isoSchema().optional(),
    proof: proofSchema().optional(),
  });
}

/** A probe; version 1 coordinators sent none, so an absent payload parses as `{}` (a version 1 lease takes it). */
export function quotaProbeSchema(): z.ZodType<Partial<QuotaProbe>> {
  return z.strictObject({ leaseId: leaseIdSchema().optional(), proof: proofSchema().optional() });
}

const refusalCountSchema = () => z.strictObject({ count: z.number().int().min(0), lastAt: isoSchema(), lastReason: z.string().max(MAX_REASON_CHARS) });

export function workspaceQuotaInputSchema(): z.ZodType<WorkspaceQuotaInput> {
  const entry = z.strictObject({
    leaseId: leaseIdSchema(),
    runId: runIdSchema(),
    runExecutionId: z.string().min(1).max(200).optional(),
    secret: secretSchema().optional(),
    requestedAt: isoSchema(),
    grantedAt: isoSchema().optional(),
    notified: z.boolean().optional(),
  });
  return z.strictObject({
    schemaVersion: z.literal(1),
    workspaceId: workspaceIdSchema(),
    runtime: runtimeSchema(),
    state: z
      .strictObject({
        // `{}` once the policy has no quota for the runtime: nothing holds the queue.
        limits: quotaLimitsSchema().or(z.strictObject({ leaseCheckIntervalMs: z.number().int().min(1000).optional() })),
        limitsLoadedAt: isoSchema().optional(),
        policyError: z.string().max(MAX_REASON_CHARS).optional(),
        waiting: z.array(entry).max(MAX_WAITING),
        leases: z.array(entry).max(MAX_LEASES),
        window: z.array(isoSchema()).max(MAX_WINDOW),
        released: z.array(leaseIdSchema()).max(MAX_RELEASED_REMEMBERED),
        idleSince: isoSchema().optional(),
        refusals: z.record(z.string().max(80), refusalCountSchema()).optional(),
      })
      .optional(),
    maxHistoryEvents: z.number().int().min(50).max(50_000).optional(),
  });
}

/** Input of the `requestQuotaLease` activity: which coordinator, and the request to send it. */
export interface QuotaLeaseAsk {
  workspaceId: string;
  runtime: string;
  request: QuotaRequest;
}

export function quotaLeaseAskSchema(): z.ZodType<QuotaLeaseAsk> {
  return z.strictObject({ workspaceId: workspaceIdSchema(), runtime: runtimeSchema(), request: quotaRequestSchema() });
}

/** Input of `loadQuotaLimits` (the coordinator's own policy load) and of `mintQuotaSecret`. */
export interface QuotaPolicyAsk {
  workspaceId: string;
  runtime: string;
}

export function quotaPolicyAskSchema(): z.ZodType<QuotaPolicyAsk> {
  return z.strictObject({ workspaceId: workspaceIdSchema(), runtime: runtimeSchema() });
}

/** Parsed value, or a one-line reason it was refused. */
export function parseQuota<T>(schema: z.ZodType<T>, raw: unknown): { ok: true; value: T } | { ok: false; reason: string } {
  const r = check(schema, raw);
  return r.ok ? r : { ok: false, reason: describeIssues(r.issues) };
}
