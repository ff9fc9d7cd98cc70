/**
 * A governed run's side of workspace quotas: ask the coordinator for a lease (through an activity,
 * since only a client can signalWithStart), wait in `AwaitingQuota` for the grant, and release the
 * lease however the dispatch ends. Messages from the coordinator are checked and applied to the
 * run's `QuotaLease`; the evidence records when the run started waiting and when it was granted.
 */
import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { QuotaActivities } from '../activities/quota';
import type { QuotaLimits } from '../policies/schema';
import { EvidenceCategory, type EvidenceActor } from './evidence-chain';
import { FailureType } from './failures';
import * as msg from './messages';
import { QuotaLease } from './quota-lease';
import { parseQuota, quotaGrantSchema, quotaQueuedSchema } from './quota-schemas';
import type { GovernedRunState } from './run-state';
import { type GovernedRunResult, RunState } from './types';
import { quotaWorkflowId } from './workflow-ids';

/** Runs recorded before quotas never asked for a lease; only runs whose snapshot has a quota call it. */
export const QUOTA_PATCH = 'portarium-quotas-v1';

const { requestQuotaLease } = proxyActivities<QuotaActivities>({
  startToCloseTimeout: '30s',
  // No attempt limit: the run waits for its coordinator rather than dispatch without a lease.
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', nonRetryableErrorTypes: [FailureType.InvalidMessage] },
});

const SYSTEM: EvidenceActor = { kind: 'System', id: 'portarium' };
/**
 * A waiting run asks again this often. The coordinator counts a lease id once, so this costs nothing
 * while it runs; if it was terminated by hand, the new one started by the ask takes the run back.
 */
const REASK_MS = 5 * 60_000;

export function wireQuotaHandlers(run: GovernedRunState, now: () => Date): void {
  setHandler(msg.quotaQueuedSignal, (raw) => {
    const n = parseQuota(quotaQueuedSchema(), raw);
    if (!n.ok) return void log.warn('quotaQueued refused', { workflowId: run.workflowId, reason: n.reason });
    const lease = run.quota;
    if (!lease?.noteQueued(n.value, run.input.workspaceId, run.action.runtime)) return;
    run.deadlines = n.value.freesAt ? { quotaFreesAt: n.value.freesAt } : {};
    const { position, limit, inUse, max } = n.value;
    run.record(EvidenceCategory.System, 'QuotaQueued', SYSTEM, lease.waitingFor!, now(), {
      coordinator: lease.coordinator, leaseId: lease.leaseId, position, limit, inUse, max, freesAt: n.value.freesAt ?? null,
    });
  });
  setHandler(msg.quotaGrantedSignal, (raw) => {
    const g = parseQuota(quotaGrantSchema(), raw);
    if (!g.ok) return void log.warn('quotaGranted refused', { workflowId: run.workflowId, reason: g.reason });
    run.quota?.noteGranted(g.value.leaseId, g.value.grantedAt);
  });
  // A liveness check by the coordinator: that the signal was delivered is the answer.
  setHandler(msg.quotaProbeSignal, () => undefined);
}

export interface QuotaSteps {
  enter(state: RunState, summary: string): void;
  finish(state: RunState, summary: string): GovernedRunResult;
}

const describeLimits = (l: QuotaLimits) =>
  [l.concurrentDispatches && `${l.concurrentDispatches} concurrent`, l.dispatchesPerMinute && `${l.dispatchesPerMinute} per minute`].filter(Boolean).join(', ');

/**
 * Wait for a lease of the workspace's quota for the action's runtime: `'granted'`, or the result of
 * a run cancelled while it waited (it leaves the queue). Temporal cancellation withdraws and rethrows.
 */
export async function acquireQuota(run: GovernedRunState, limits: QuotaLimits, steps: QuotaSteps, now: () => Date): Promise<'granted' | GovernedRunResult> {
  const { workspaceId } = run.input;
  const runtime = run.action.runtime;
  // One lease id per execution: a run reset by an operator asks afresh instead of meeting its old,
  // released lease (which the coordinator would refuse to grant twice).
  const leaseId = `${run.workflowId}/${workflowInfo().runId}/${run.actionHash}`;
  const lease = (run.quota = new QuotaLease(quotaWorkflowId(workspaceId, runtime), leaseId, limits));
  const askedAt = now();
  run.deadlines = {};
  steps.enter(RunState.AwaitingQuota, `asking ${lease.coordinator} for a lease (${describeLimits(limits)})`);
  try {
    const request = { schemaVersion: 1 as const, leaseId: lease.leaseId, runId: run.workflowId, runExecutionId: workflowInfo().runId, limits: { ...limits } };
    for (;;) {
      await requestQuotaLease({ workspaceId, runtime, request });
      if (await condition(() => lease.granted || !!run.cancel, REASK_MS)) break;
    }
    run.wakeups++;
  } catch (err) {
    if (isCancellation(err)) await releaseQuota(run, 'withdrawn');
    throw err;
  }
  if (run.cancel) {
    await releaseQuota(run, 'withdrawn');
    return steps.finish(RunState.Cancelled, run.cancel.reason);
  }
  run.record(EvidenceCategory.System, 'QuotaGranted', SYSTEM, `lease granted by ${lease.coordinator}`, now(), {
    coordinator: lease.coordinator, leaseId: lease.leaseId, grantedAt: lease.grantedAt!, waitedMs: now().getTime() - askedAt.getTime(),
  });
  run.deadlines = {};
  return 'granted';
}

/** Give the lease back (or leave the queue). Never cancelled and never throws: the run ends either way. */
export async function releaseQuota(run: GovernedRunState, reason: 'done' | 'withdrawn'): Promise<void> {
  const lease = run.quota;
  if (!lease || lease.phase === 'released') return;
  lease.phase = 'released';
  try {
    await CancellationScope.nonCancellable(() =>
      getExternalWorkflowHandle(lease.coordinator).signal(msg.quotaReleaseSignal, { leaseId: lease.leaseId, runId: run.workflowId, reason }),
    );
  } catch (err) {
    // The coordinator is gone (terminated by hand): its leases went with it, so nothing leaks.
    log.warn('quota lease not released: coordinator not found', { workflowId: run.workflowId, coordinator: lease.coordinator, error: String(err) });
  }
}
