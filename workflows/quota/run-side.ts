/**
 * A governed run's side of workspace quotas: ask the coordinator for a lease (through an activity,
 * since only a client can signalWithStart), wait in `AwaitingQuota` for the grant, and release the
 * lease however the dispatch ends. The run mints its lease secret first (an activity, so it is random
 * and recorded only as an encrypted result); messages from the coordinator must prove it
 * (proof.ts) or are refused and recorded (`QuotaProofInvalid`), and the release carries it.
 * The evidence records when the run started waiting and when it was granted.
 */
import {
  CancellationScope,
  WorkflowError,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { QuotaActivities } from '../../activities/quota';
import type { QuotaLimits } from '../../policies/quotas';
import { EvidenceCategory, type EvidenceActor } from '../evidence-chain';
import { FailureType } from '../failures';
import * as msg from '../run/messages';
import { QuotaLease } from './lease';
import { QUOTA_AUTH_PATCH, type QuotaProofKind } from './proof';
import { parseQuota, quotaGrantSchema, quotaProbeSchema, quotaQueuedSchema } from './schemas';
import type { GovernedRunState } from '../run/state';
import { type GovernedRunResult, type QuotaRequest, RunState } from '../types';
import { quotaWorkflowId } from '../ids';
import { patchApplies } from '../run/patches';

/** Runs recorded before quotas never asked for a lease; only runs whose snapshot has a quota call it. */
export const QUOTA_PATCH = 'portarium-quotas-v1';
export { QUOTA_AUTH_PATCH };

const { requestQuotaLease, mintQuotaSecret } = proxyActivities<QuotaActivities>({
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
const MAX_REFUSAL_CHARS = 300;

/**
 * Run `apply` for a message from a coordinator; what it refuses (and any exception in it) is recorded
 * through the run's refusal path, except for a lease asked before the protocol, which logged as before.
 */
function handleQuotaMessage(run: GovernedRunState, via: QuotaProofKind, now: () => Date, apply: () => { type: FailureType; message: string } | undefined): void {
  let refused: { type: FailureType; message: string } | undefined;
  try {
    refused = apply();
  } catch (err) {
    if (err instanceof WorkflowError) throw err;
    refused = { type: FailureType.InvalidMessage, message: `${via} could not be applied: ${err instanceof Error ? err.name : 'error'}` };
  }
  if (!refused) return;
  // No lease: nothing was asked for, so nothing can be granted (patched: such signals were ignored before).
  const records = run.quota ? run.quota.authenticated : patchApplies(run, QUOTA_AUTH_PATCH);
  // Cut here too: the text can echo a sender's field names.
  if (records) run.refuse(via, undefined, refused.type, refused.message.slice(0, MAX_REFUSAL_CHARS), now());
  else log.warn(`${via} refused`, { workflowId: run.workflowId, reason: refused.message });
}

/** Why a message claiming to be from the coordinator is not, if it is not. */
function unproven(run: GovernedRunState, kind: QuotaProofKind, body: { leaseId?: string }, proof: string | undefined): { type: FailureType; message: string } | undefined {
  const why = run.quota ? run.quota.refuses(kind, body, proof) : `${kind} for a run that asked for no lease`;
  return why === undefined ? undefined : { type: FailureType.QuotaProofInvalid, message: why };
}

export function wireQuotaHandlers(run: GovernedRunState, now: () => Date): void {
  setHandler(msg.quotaQueuedSignal, (raw) =>
    handleQuotaMessage(run, 'quotaQueued', now, () => {
      const n = parseQuota(quotaQueuedSchema(), raw);
      if (!n.ok) return { type: FailureType.InvalidMessage, message: `quotaQueued: ${n.reason}` };
      const { proof, ...body } = n.value;
      const forged = unproven(run, 'quotaQueued', body, proof);
      if (forged) return forged;
      const lease = run.quota!;
      if (!lease.noteQueued(n.value, run.input.workspaceId, run.action.runtime)) return undefined;
      run.quotaQueued(n.value.freesAt);
      const { position, limit, inUse, max } = n.value;
      run.record(EvidenceCategory.System, 'QuotaQueued', SYSTEM, lease.waitingFor!, now(), {
        coordinator: lease.coordinator, leaseId: lease.leaseId, position, limit, inUse, max, freesAt: n.value.freesAt ?? null,
      });
      return undefined;
    }),
  );
  setHandler(msg.quotaGrantedSignal, (raw) =>
    handleQuotaMessage(run, 'quotaGranted', now, () => {
      const g = parseQuota(quotaGrantSchema(), raw);
      if (!g.ok) return { type: FailureType.InvalidMessage, message: `quotaGranted: ${g.reason}` };
      const { proof, ...body } = g.value;
      const forged = unproven(run, 'quotaGranted', body, proof);
      if (forged) return forged;
      run.quota!.noteGranted(g.value.leaseId, g.value.grantedAt);
      return undefined;
    }),
  );
  // A liveness check by the coordinator: that the signal was delivered is the answer. Version 1
  // coordinators sent no payload.
  setHandler(msg.quotaProbeSignal, (raw) =>
    handleQuotaMessage(run, 'quotaProbe', now, () => {
      const p = parseQuota(quotaProbeSchema(), raw ?? {});
      if (!p.ok) return { type: FailureType.InvalidMessage, message: `quotaProbe: ${p.reason}` };
      const { proof, ...body } = p.value;
      return unproven(run, 'quotaProbe', body, proof);
    }),
  );
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
  const coordinator = quotaWorkflowId(workspaceId, runtime);
  // One lease id per execution: a run reset by an operator asks afresh instead of meeting its old,
  // released lease (which the coordinator would refuse to grant twice).
  const base = `${run.workflowId}/${workflowInfo().runId}/${run.actionHash}`;
  let lease: QuotaLease;
  let request: QuotaRequest;
  if (patchApplies(run, QUOTA_AUTH_PATCH)) {
    // The secret comes from an activity (random, recorded only as its encrypted result); the random
    // tag keeps the lease id unknown until the run asks, so nobody can bind it first.
    const { secret, tag } = await mintQuotaSecret({ workspaceId, runtime });
    lease = new QuotaLease(coordinator, `${base}/${tag}`, limits, secret);
    request = { schemaVersion: 2, leaseId: lease.leaseId, runId: run.workflowId, runExecutionId: workflowInfo().runId, secret };
  } else {
    lease = new QuotaLease(coordinator, base, limits);
    request = { schemaVersion: 1, leaseId: lease.leaseId, runId: run.workflowId, runExecutionId: workflowInfo().runId, limits: { ...limits } };
  }
  run.askForQuota(lease);
  const askedAt = now();
  steps.enter(RunState.AwaitingQuota, `asking ${lease.coordinator} for a lease (${describeLimits(limits)})`);
  try {
    for (;;) {
      await requestQuotaLease({ workspaceId, runtime, request });
      if (await condition(() => lease.granted || !!run.cancel || !!run.revocation, REASK_MS)) break;
    }
    run.wake();
  } catch (err) {
    if (isCancellation(err)) await releaseQuota(run, 'withdrawn');
    throw err;
  }
  if (run.cancel) {
    await releaseQuota(run, 'withdrawn');
    return steps.finish(RunState.Cancelled, run.cancel.reason);
  }
  if (run.revocation) {
    await releaseQuota(run, 'withdrawn');
    return steps.finish(RunState.Revoked, 'revoked while waiting for quota');
  }
  run.record(EvidenceCategory.System, 'QuotaGranted', SYSTEM, `lease granted by ${lease.coordinator}`, now(), {
    coordinator: lease.coordinator, leaseId: lease.leaseId, grantedAt: lease.grantedAt!, waitedMs: now().getTime() - askedAt.getTime(),
  });
  run.clearDeadlines();
  return 'granted';
}

/** Give the lease back (or leave the queue). Never cancelled and never throws: the run ends either way. */
export async function releaseQuota(run: GovernedRunState, reason: 'done' | 'withdrawn'): Promise<void> {
  const lease = run.quota;
  if (!lease || lease.phase === 'released') return;
  lease.phase = 'released';
  try {
    await CancellationScope.nonCancellable(() =>
      getExternalWorkflowHandle(lease.coordinator).signal(msg.quotaReleaseSignal, {
        leaseId: lease.leaseId, runId: run.workflowId, reason, ...(lease.authenticated && { secret: lease.releaseSecret() }),
      }),
    );
  } catch (err) {
    // The coordinator is gone (terminated by hand): its leases went with it, so nothing leaks.
    log.warn('quota lease not released: coordinator not found', { workflowId: run.workflowId, coordinator: lease.coordinator, error: String(err) });
  }
}
