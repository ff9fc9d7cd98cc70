/**
 * The worker's cache of revocations in force, read by the dispatch activity before it stores
 * pre-dispatch evidence or calls a runtime. Refreshed from the registry every `refreshMs` while the
 * worker dispatches (the loop stops after a minute without checks and starts again on the next);
 * the first check after a start waits for a load. A cache older than `staleMs` fails closed: the
 * dispatch waits (`RevocationsUnavailable`, retryable) rather than dispatch unchecked.
 */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../workflows/failures';
import { type RevocableAction, revocationCovering } from '../../workflows/revocation/match';
import type { Revocation, RevocationsView } from '../../workflows/revocation/types';

const IDLE_STOP_MS = 60_000;

export interface RevocationCacheOptions {
  /** Reads the registry (throws when it cannot). */
  load: () => Promise<RevocationsView>;
  /** @default 2000 */
  refreshMs?: number;
  /** Older than this, checks fail closed. @default max(15 s, 5 × refreshMs) */
  staleMs?: number;
  /** How long a check waits for a fresh load before it fails closed. @default 5000 */
  waitMs?: number;
}

export class RevocationCache {
  private active: Revocation[] = [];
  private loadedAt = 0;
  private inflight?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private lastCheck = 0;
  private lastError?: string;
  readonly refreshMs: number;
  readonly staleMs: number;
  private readonly waitMs: number;

  constructor(private readonly opts: RevocationCacheOptions) {
    this.refreshMs = opts.refreshMs ?? 2_000;
    this.staleMs = opts.staleMs ?? Math.max(15_000, 5 * this.refreshMs);
    this.waitMs = opts.waitMs ?? 5_000;
  }

  /** One load at a time; a failed load keeps the last good view (until it is stale). */
  refresh(): Promise<void> {
    this.inflight ??= this.opts
      .load()
      .then((view) => {
        this.active = view.active;
        this.loadedAt = Date.now();
        this.lastError = undefined;
      })
      .catch((err) => {
        this.lastError = err instanceof Error ? err.message : String(err);
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  private fresh(): boolean {
    return Date.now() - this.loadedAt <= this.staleMs;
  }

  private keepRefreshing(): void {
    this.lastCheck = Date.now();
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (Date.now() - this.lastCheck > IDLE_STOP_MS) return this.stop();
      void this.refresh();
    }, this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * The revocation in force that covers the action, if any. Throws `RevocationsUnavailable`
   * (retryable) when no fresh view could be had within `waitMs`.
   */
  async covering(action: RevocableAction): Promise<Revocation | undefined> {
    const idle = !this.timer;
    this.keepRefreshing();
    // After an idle spell the view may be old but still "fresh": load now so a check is never older than one refresh.
    if (idle || !this.fresh()) {
      const until = Date.now() + this.waitMs;
      while (Date.now() < until) {
        // A registry nobody answers for (its queue unpolled) can hold a query for long: wait no longer than `waitMs`.
        await Promise.race([this.refresh(), new Promise((r) => setTimeout(r, Math.max(1, until - Date.now())))]);
        if (Date.now() - this.loadedAt <= this.refreshMs + 1_000) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      if (!this.fresh()) {
        throw ApplicationFailure.create({
          type: FailureType.RevocationsUnavailable,
          message: `revocations could not be read from the registry (${(this.lastError ?? 'no answer').slice(0, 200)}); nothing dispatched`,
          nonRetryable: false,
        });
      }
    }
    return revocationCovering(this.active, action);
  }
}
