/**
 * A run's side of its quota lease: which coordinator, which lease, and where the run stands (asking,
 * queued and why, granted, released). Pure; `run-quota.ts` does the messaging.
 */
import type { QuotaLimits } from '../policies/schema';
import type { QuotaQueuedNotice, RunQuotaStatus } from './types';

/** Why a run waits, in the words `status` and evidence use. */
export function describeQuotaWait(n: QuotaQueuedNotice, workspaceId: string, runtime: string): string {
  const what = n.limit === 'concurrentDispatches'
    ? `${n.inUse} of ${n.max} concurrent ${runtime} dispatches`
    : `${n.inUse} of ${n.max} ${runtime} dispatches in the last minute`;
  const until = n.freesAt ? `; a slot frees at ${n.freesAt}` : '';
  return `waiting for quota: ${what} in workspace ${workspaceId}; position ${n.position}${until}`;
}

export class QuotaLease {
  phase: RunQuotaStatus['phase'] = 'asking';
  queued?: QuotaQueuedNotice;
  waitingFor?: string;
  grantedAt?: string;

  constructor(
    readonly coordinator: string,
    readonly leaseId: string,
    readonly limits: QuotaLimits,
  ) {}

  /** The coordinator's answer that the run waits; ignored once granted or for another lease. */
  noteQueued(n: QuotaQueuedNotice, workspaceId: string, runtime: string): boolean {
    if (n.leaseId !== this.leaseId || this.phase !== 'asking') return false;
    this.phase = 'queued';
    this.queued = n;
    this.waitingFor = describeQuotaWait(n, workspaceId, runtime);
    return true;
  }

  /** A grant for this lease; a repeated one (a re-sent grant) changes nothing. */
  noteGranted(leaseId: string, grantedAt: string): boolean {
    if (leaseId !== this.leaseId || (this.phase !== 'asking' && this.phase !== 'queued')) return false;
    this.phase = 'granted';
    this.grantedAt = grantedAt;
    return true;
  }

  get granted(): boolean {
    return this.phase === 'granted';
  }

  status(): RunQuotaStatus {
    const { concurrentDispatches, dispatchesPerMinute } = this.limits;
    return {
      coordinator: this.coordinator,
      leaseId: this.leaseId,
      phase: this.phase,
      limits: { concurrentDispatches, dispatchesPerMinute },
      ...(this.waitingFor && this.phase === 'queued' && { waitingFor: this.waitingFor }),
      ...(this.queued && { queued: { ...this.queued } }),
    };
  }
}
