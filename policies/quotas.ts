/**
 * Per-workspace dispatch quotas: how many dispatches to one runtime may run at once, and how many may
 * start per minute. Keyed by runtime name as the policy's rules and connections use it; `*` is the
 * default for runtimes not listed. Enforced by the `workspaceQuota` coordinator workflow (one per
 * workspace and runtime); a run over quota waits in `AwaitingQuota` instead of failing.
 * MAINTENANCE: keep docs/quotas.md in sync.
 */
import { z } from 'zod';
import { RUNTIME_NAME_SOURCE } from './vocabulary';
import { DURATION_PATTERN, durationMs } from './duration';

/** One runtime's quota as a snapshot and the coordinator carry it. */
export interface QuotaLimits {
  /** Dispatches running at once. */
  concurrentDispatches?: number;
  /** Dispatches started in any sliding 60 s window. */
  dispatchesPerMinute?: number;
  /** How often the coordinator checks that holders and waiters still run. @default 60000 */
  leaseCheckIntervalMs?: number;
}

/** Shortest lease check: checks signal every holder, so a tighter loop only adds history. */
const MIN_LEASE_CHECK_MS = 1_000;

export const RuntimeQuota = z
  .strictObject({
    /** Dispatches to this runtime running at the same time in the workspace. */
    concurrentDispatches: z.number().int('expected a whole number').min(1, 'at least 1').max(10_000).optional(),
    /** Dispatches to this runtime started in any sliding 60-second window. */
    dispatchesPerMinute: z.number().int('expected a whole number').min(1, 'at least 1').max(100_000).optional(),
    /**
     * How often the coordinator checks that holders and waiters are still running (a terminated run
     * never releases; its lease is reclaimed at the next check). @default 1m
     */
    leaseCheckInterval: z
      .string()
      .regex(DURATION_PATTERN, 'expected a duration such as 30s or 5m')
      .refine((d) => !DURATION_PATTERN.test(d) || (durationMs(d) >= MIN_LEASE_CHECK_MS && durationMs(d) <= 86_400_000), 'between 1s and 1d')
      .optional(),
  })
  .refine((q) => q.concurrentDispatches !== undefined || q.dispatchesPerMinute !== undefined, {
    message: 'a quota needs concurrentDispatches, dispatchesPerMinute or both',
  });
export type RuntimeQuota = z.infer<typeof RuntimeQuota>;

/** Runtime name (as in `action.runtime`) or `*`. */
const QuotaKey = z.string().regex(new RegExp(`^(\\*|${RUNTIME_NAME_SOURCE})$`), 'expected a runtime name or *');

export const Quotas = z.record(QuotaKey, RuntimeQuota);
export type Quotas = z.infer<typeof Quotas>;

/** The limits as a run's snapshot carries them (durations in ms), frozen by the loader. */
export function snapshotQuotas(quotas: Quotas | undefined): Record<string, QuotaLimits> | undefined {
  if (!quotas || !Object.keys(quotas).length) return undefined;
  return Object.fromEntries(
    Object.entries(quotas).map(([runtime, q]) => [
      runtime,
      {
        ...(q.concurrentDispatches !== undefined && { concurrentDispatches: q.concurrentDispatches }),
        ...(q.dispatchesPerMinute !== undefined && { dispatchesPerMinute: q.dispatchesPerMinute }),
        ...(q.leaseCheckInterval !== undefined && { leaseCheckIntervalMs: durationMs(q.leaseCheckInterval) }),
      },
    ]),
  );
}
