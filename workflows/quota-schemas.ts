/**
 * zod schemas for quota messages: what a coordinator receives (requests, releases, its input) and
 * what a run receives from it (grants, queue notices), plus the input of `requestQuotaLease`.
 * Built by functions, like `./schemas.ts`, so no zod object lives in module scope of the bundle.
 */
import { check, describeIssues, workspaceIdSchema } from './schemas';
import type { QuotaGrant, QuotaQueuedNotice, QuotaRelease, QuotaRequest, WorkspaceQuotaInput } from './types';
import { z } from './zod-sandbox';

const runtimeSchema = () => z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,63}$/, 'runtime must be a runtime name');
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

/** A lease id is `<run id>/<action hash>`: a run can ask for and give back only its own. */
const ownLease = { message: 'leaseId must start with the runId and /', path: ['leaseId'] };
const isOwnLease = (m: { leaseId: string; runId: string }) => m.leaseId.startsWith(`${m.runId}/`);

export function quotaRequestSchema(): z.ZodType<QuotaRequest> {
  return z
    .strictObject({
      schemaVersion: z.literal(1),
      leaseId: leaseIdSchema(),
      runId: runIdSchema(),
      runExecutionId: z.string().min(1).max(200).optional(),
      limits: quotaLimitsSchema(),
    })
    .refine(isOwnLease, ownLease);
}

export function quotaReleaseSchema(): z.ZodType<QuotaRelease> {
  return z.strictObject({ leaseId: leaseIdSchema(), runId: runIdSchema(), reason: z.enum(['done', 'withdrawn']) }).refine(isOwnLease, ownLease);
}

export function quotaGrantSchema(): z.ZodType<QuotaGrant> {
  return z.strictObject({ leaseId: leaseIdSchema(), grantedAt: isoSchema() });
}

export function quotaQueuedSchema(): z.ZodType<QuotaQueuedNotice> {
  return z.strictObject({
    leaseId: leaseIdSchema(),
    position: z.number().int().min(1),
    limit: z.enum(['concurrentDispatches', 'dispatchesPerMinute']),
    inUse: z.number().int().min(0),
    max: z.number().int().min(1),
    freesAt: isoSchema().optional(),
  });
}

export function workspaceQuotaInputSchema(): z.ZodType<WorkspaceQuotaInput> {
  const entry = z.strictObject({
    leaseId: leaseIdSchema(),
    runId: runIdSchema(),
    runExecutionId: z.string().min(1).max(200).optional(),
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
        limits: quotaLimitsSchema(),
        waiting: z.array(entry),
        leases: z.array(entry),
        window: z.array(isoSchema()),
        released: z.array(leaseIdSchema()),
        idleSince: isoSchema().optional(),
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

/** Parsed value, or a one-line reason it was refused. */
export function parseQuota<T>(schema: z.ZodType<T>, raw: unknown): { ok: true; value: T } | { ok: false; reason: string } {
  const r = check(schema, raw);
  return r.ok ? r : { ok: false, reason: describeIssues(r.issues) };
}
