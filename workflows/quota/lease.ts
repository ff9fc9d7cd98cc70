/**
 * A run's side of its quota lease: which coordinator, which lease, and where the run stands (asking,
 * queued and why, granted, released). A lease with a secret (every lease since the protocol was
 * authenticated) takes only messages that prove it: a proof keyed by the secret (proof.ts).
 * Pure; `run-side.ts` does the messaging.
 */
import type { QuotaLimits } from '../../policies/quotas';
import { type QuotaProofKind, quotaProof, sameSecret } from './proof';
import type { QuotaQueuedNotice, RunQuotaStatus } from '../types';

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
    /** Never in `status`, logs or evidence: it is in the run's history only as its activity's (encrypted) result. */
    private readonly secret?: string,
  ) {}

  /** Whether messages to this lease must prove it (false only for a lease asked before the protocol). */
  get authenticated(): boolean {
    return this.secret !== undefined;
  }

  /** The secret a release must carry (undefined for an unauthenticated lease). */
  releaseSecret(): string | undefined {
    return this.secret;
  }

  /**
   * Why a message to this lease is not the coordinator's, if it is not: another lease id, or (for an
   * authenticated lease) a missing or wrong proof. `body` is the message without its proof.
   */
  refuses<T extends { leaseId?: string }>(kind: QuotaProofKind, body: T, proof: string | undefined): string | undefined {
    if (!this.authenticated) return undefined;
    if (proof === undefined) return `${kind} carries no proof`;
    if (body.leaseId !== this.leaseId) return `${kind} names another lease than this run's`;
    if (!sameSecret(quotaProof(this.secret!, kind, body), proof)) return `${kind} carries a wrong proof`;
    return undefined;
  }

  /** The coordinator's answer that the run waits; ignored once granted or for another lease. */
  noteQueued(n: QuotaQueuedNotice, workspaceId: string, runtime: string): boolean {
    if (n.leaseId !== this.leaseId || this.phase !== 'asking') return false;
    this.phase = 'queued';
    const { proof: _proof, ...notice } = n;
    this.queued = notice;
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
