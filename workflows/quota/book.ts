/**
 * The state of one workspace's quota for one runtime, as the `workspaceQuota` coordinator keeps it:
 * a FIFO queue of waiting runs, the leases held now, and the grant times of the last minute. Pure and
 * serialisable (`QuotaBookState` is what `continueAsNew` carries); the workflow passes time in.
 */
import type { QuotaLimits } from '../../policies/quotas';
import { sameSecret } from './proof';

/** Length of the `dispatchesPerMinute` sliding window. */
export const QUOTA_WINDOW_MS = 60_000;
/** How often holders and waiters are checked to still be running, unless the policy says otherwise. */
const DEFAULT_LEASE_CHECK_MS = 60_000;
/** Lease ids released lately, remembered so a late duplicate request is not counted again. */
export const MAX_RELEASED_REMEMBERED = 1_000;
/**
 * Bounds on the state, which `continueAsNew` carries and `status` shows: past them a request is
 * refused (the run asks again later) or no grant is made, never a lease past the policy's limits.
 */
export const MAX_WAITING = 1_000;
export const MAX_LEASES = 1_000;
export const MAX_WINDOW = 5_000;
/** Refusal reasons kept in the coordinator's state and status are cut to this. */
export const MAX_REASON_CHARS = 300;

/** One run asking for (or holding) a lease. */
export interface QuotaEntry {
  /** `<workflow id>/<run execution id>/<action hash>/<random tag>` (before the authenticated protocol: without the tag): every retry of one dispatch asks with the same id. */
  leaseId: string;
  /** Workflow id of the run; grants and checks are signalled to it. */
  runId: string;
  /** Temporal run id of that execution, so a later execution under the same id is not mistaken for it. */
  runExecutionId?: string;
  /**
   * The run's secret for this lease: messages to the run carry proofs keyed by it, and only a release
   * carrying it is honoured. Absent for leases asked with a version 1 request (before the protocol).
   */
  secret?: string;
  requestedAt: string;
  grantedAt?: string;
  /** The run was told that it waits (`quotaQueued`); it is told once. */
  notified?: boolean;
}

export interface QuotaBookState {
  /** The limits in force: from the coordinator's own policy load (`{}` when the policy has no quota now). */
  limits: QuotaLimits;
  /** When `limits` were last loaded from the policy; undefined until then (a version 1 book took them from requests). */
  limitsLoadedAt?: string;
  /** Why the last policy load failed, if it did. */
  policyError?: string;
  waiting: QuotaEntry[];
  leases: QuotaEntry[];
  /** Grant times (ISO) inside the sliding window, oldest first. */
  window: string[];
  released: string[];
  /** When the book became empty (no leases, no waiters); undefined while it is not. */
  idleSince?: string;
  /** Refused messages, coalesced per `<signal>:<reason>` (a fixed set of keys). */
  refusals?: Record<string, { count: number; lastAt: string; lastReason: string }>;
}

/** Which limit keeps the queue waiting, how full it is, and (for the window) when a slot frees. */
export interface QuotaBlocker {
  limit: 'concurrentDispatches' | 'dispatchesPerMinute';
  inUse: number;
  max: number;
  /** The window frees a slot then (when the oldest counted grant leaves it). */
  freesAt?: string;
}

/**
 * `secretMismatch`: the lease id is known with another secret (or none): a forged or replayed request,
 * refused, since honouring it would hand its sender the lease. `full`: the queue is at its bound.
 */
export type RequestOutcome = 'queued' | 'waiting' | 'held' | 'released' | 'secretMismatch' | 'full';
export type ReleaseOutcome = 'released' | 'unknown' | 'wrongSecret';

/** The limits that apply to `runtime`: its own entry, else the workspace's `*` default, else none. */
export function quotaFor(quotas: Readonly<Record<string, QuotaLimits>> | undefined, runtime: string): QuotaLimits | undefined {
  if (!quotas) return undefined;
  return Object.hasOwn(quotas, runtime) ? quotas[runtime] : quotas['*'];
}

const ms = (iso: string) => Date.parse(iso);

export class QuotaBook {
  constructor(readonly state: QuotaBookState) {}

  static empty(limits: QuotaLimits, now: Date): QuotaBook {
    return new QuotaBook({ limits, waiting: [], leases: [], window: [], released: [], idleSince: now.toISOString() });
  }

  /**
   * A run asks (again). A known lease id counts once, and only with the secret it was first asked
   * with. `limits` is given only by a version 1 coordinator, which took them from requests.
   */
  request(entry: Omit<QuotaEntry, 'grantedAt' | 'notified'>, limits?: QuotaLimits): RequestOutcome {
    const s = this.state;
    if (limits) s.limits = limits;
    const known = this.find(entry.leaseId);
    if (known) {
      const bothV1 = known.secret === undefined && entry.secret === undefined;
      if (!bothV1 && !sameSecret(known.secret, entry.secret)) return 'secretMismatch';
      return s.leases.includes(known) ? 'held' : 'waiting';
    }
    if (s.released.includes(entry.leaseId)) return 'released';
    if (s.waiting.length >= MAX_WAITING) return 'full';
    s.waiting.push({ ...entry });
    s.idleSince = undefined;
    return 'queued';
  }

  /**
   * The run is done with its lease, or withdraws while waiting: honoured only with the lease's secret
   * (a version 1 lease has none). An unknown id is remembered, so a request that arrives after its
   * own withdrawal (a cancelled ask still in flight) is not queued.
   */
  release(leaseId: string, secret: string | undefined, now: Date): ReleaseOutcome {
    const known = this.find(leaseId);
    if (known?.secret !== undefined && !sameSecret(known.secret, secret)) return 'wrongSecret';
    this.drop(leaseId, now);
    return known ? 'released' : 'unknown';
  }

  /** Apply the limits the coordinator loaded from the policy. */
  setLimits(limits: QuotaLimits, at: Date): void {
    this.state.limits = limits;
    this.state.limitsLoadedAt = at.toISOString();
    this.state.policyError = undefined;
  }

  /** Count a refused message under `key` (a fixed set), keeping the latest reason. */
  noteRefusal(key: string, reason: string, now: Date): number {
    const r = (this.state.refusals ??= {});
    const count = (Object.hasOwn(r, key) ? r[key].count : 0) + 1;
    r[key] = { count, lastAt: now.toISOString(), lastReason: reason.slice(0, MAX_REASON_CHARS) };
    return count;
  }

  find(leaseId: string): QuotaEntry | undefined {
    return this.state.leases.find((l) => l.leaseId === leaseId) ?? this.state.waiting.find((w) => w.leaseId === leaseId);
  }

  private drop(leaseId: string, now: Date): void {
    const s = this.state;
    const i = s.leases.findIndex((l) => l.leaseId === leaseId);
    const j = s.waiting.findIndex((w) => w.leaseId === leaseId);
    if (i >= 0) s.leases.splice(i, 1);
    else if (j >= 0) s.waiting.splice(j, 1);
    if (!s.released.includes(leaseId)) s.released.push(leaseId);
    if (s.released.length > MAX_RELEASED_REMEMBERED) s.released.shift();
    this.noteIdle(now);
  }

  /**
   * The run behind `leaseId` is gone (closed without releasing). A grant it never received does not
   * count against the window either: nothing was dispatched under it.
   */
  reclaim(leaseId: string, now: Date, grantUndelivered: boolean): void {
    const lease = this.state.leases.find((l) => l.leaseId === leaseId);
    if (grantUndelivered && lease?.grantedAt) {
      const k = this.state.window.indexOf(lease.grantedAt);
      if (k >= 0) this.state.window.splice(k, 1);
    }
    this.drop(leaseId, now);
  }

  /** Drop grants that left the window. */
  prune(now: Date): void {
    const from = now.getTime() - QUOTA_WINDOW_MS;
    const w = this.state.window;
    while (w.length && ms(w[0]) <= from) w.shift();
    // Past its bound the window would not be carried; the blocker holds new grants until it shrinks.
    if (w.length > MAX_WINDOW) w.splice(0, w.length - MAX_WINDOW);
  }

  /** Grant times still inside the window at `now`, oldest first (does not change the state). */
  counted(now: Date): string[] {
    const from = now.getTime() - QUOTA_WINDOW_MS;
    return this.state.window.filter((t) => ms(t) > from);
  }

  /** What stops the next grant at `now`, if anything. Read-only, so the `status` query may call it. */
  blocker(now: Date): QuotaBlocker | undefined {
    const { limits, leases } = this.state;
    // The state's own bounds hold like limits (fail closed): a full book grants nothing more.
    if (leases.length >= MAX_LEASES) return { limit: 'concurrentDispatches', inUse: leases.length, max: MAX_LEASES };
    if (limits.concurrentDispatches !== undefined && leases.length >= limits.concurrentDispatches) {
      return { limit: 'concurrentDispatches', inUse: leases.length, max: limits.concurrentDispatches };
    }
    const window = this.counted(now);
    const perMinute = Math.min(limits.dispatchesPerMinute ?? MAX_WINDOW, MAX_WINDOW);
    if (window.length >= perMinute) {
      const freesAt = new Date(ms(window[window.length - perMinute]) + QUOTA_WINDOW_MS).toISOString();
      return { limit: 'dispatchesPerMinute', inUse: window.length, max: perMinute, freesAt };
    }
    return undefined;
  }

  /** Grant, in request order, as many waiters as both limits allow at `now`. */
  grant(now: Date): QuotaEntry[] {
    const granted: QuotaEntry[] = [];
    const at = now.toISOString();
    this.prune(now);
    while (this.state.waiting.length && !this.blocker(now)) {
      const entry = { ...this.state.waiting.shift()!, grantedAt: at };
      this.state.leases.push(entry);
      this.state.window.push(at);
      granted.push(entry);
    }
    return granted;
  }

  /** Waiters not yet told that they wait, with their position (1 = next) and what blocks them. */
  takeUnnotified(now: Date): { entry: QuotaEntry; position: number; blocker: QuotaBlocker }[] {
    const blocker = this.blocker(now);
    if (!blocker) return [];
    const out: { entry: QuotaEntry; position: number; blocker: QuotaBlocker }[] = [];
    this.state.waiting.forEach((entry, i) => {
      if (entry.notified) return;
      entry.notified = true;
      out.push({ entry, position: i + 1, blocker: this.blockerAt(blocker, i + 1, now) });
    });
    return out;
  }

  /** For the window: the p-th waiter's slot frees when the p-th oldest counted grant leaves it. */
  private blockerAt(head: QuotaBlocker, position: number, now: Date): QuotaBlocker {
    if (head.limit !== 'dispatchesPerMinute') return head;
    const w = this.counted(now);
    const k = w.length - head.max + position - 1;
    const freesAt = k < w.length ? new Date(ms(w[k]) + QUOTA_WINDOW_MS).toISOString() : undefined;
    return { ...head, freesAt };
  }

  /** The next time the window frees a slot for a waiter, if waiters are held back by it. */
  nextWindowChange(now: Date): number | undefined {
    const b = this.blocker(now);
    return this.state.waiting.length && b?.freesAt ? ms(b.freesAt) : undefined;
  }

  /** When an empty book has been idle long enough to finish; undefined while it holds anything. */
  idleUntil(now: Date, idleMs: number): number | undefined {
    if (!this.empty) return undefined;
    return Date.parse(this.state.idleSince ?? now.toISOString()) + idleMs;
  }

  get empty(): boolean {
    return this.state.leases.length === 0 && this.state.waiting.length === 0;
  }

  get leaseCheckMs(): number {
    return this.state.limits.leaseCheckIntervalMs ?? DEFAULT_LEASE_CHECK_MS;
  }

  private noteIdle(now: Date): void {
    if (this.empty) this.state.idleSince ??= now.toISOString();
  }
}
