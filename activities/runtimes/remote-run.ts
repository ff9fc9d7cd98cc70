/**
 * Waiting on a remote run: poll at the connection's interval, heartbeat each round (with the remote id,
 * so a retry resumes it), stop at the run timeout, and wake at once when the dispatch is cancelled.
 */
import { runtimeRejected } from '../../workflows/failures';
import type { RuntimeCall } from './port';

/** Sleep `ms`, resolving early (not rejecting) when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export interface PollOptions<T> {
  call: RuntimeCall;
  runtime: string;
  /** Remote id, heartbeated each round so a retried attempt can resume. */
  remoteId: string;
  intervalMs: number;
  /** Epoch ms after which the remote run counts as timed out. */
  deadline: number;
  /** One look at the remote run; returns the result when it has ended. */
  check(): Promise<{ done: true; value: T } | { done: false; state: string }>;
  /** Called when the deadline passes or the dispatch is cancelled, to stop the remote run. */
  stop(reason: 'timeout' | 'cancelled'): Promise<void>;
}

/** Poll until the remote run ends; throws `RuntimeRejected` on timeout, and an abort error on cancel. */
export async function pollRemote<T>(o: PollOptions<T>): Promise<T> {
  for (;;) {
    if (o.call.signal.aborted) {
      await o.stop('cancelled').catch(() => undefined);
      throw new Error(`${o.runtime}: cancelled while waiting for ${o.remoteId}`);
    }
    const r = await o.check();
    if (r.done) return r.value;
    o.call.heartbeat({ remoteId: o.remoteId, state: r.state });
    if (Date.now() >= o.deadline) {
      await o.stop('timeout').catch(() => undefined);
      throw runtimeRejected(`${o.runtime}: ${o.remoteId} did not finish within the run timeout (last state ${r.state}); it was stopped where the runtime allows`);
    }
    await pause(Math.min(o.intervalMs, Math.max(1, o.deadline - Date.now())), o.call.signal);
  }
}

/** The remote id an earlier attempt heartbeated, if any. */
export function previousRemoteId(call: RuntimeCall): string | undefined {
  const p = call.previous as { remoteId?: unknown } | undefined;
  return typeof p?.remoteId === 'string' ? p.remoteId : undefined;
}
