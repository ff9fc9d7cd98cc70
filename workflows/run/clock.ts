/**
 * Workflow time as a governed run's decisions, deadlines and evidence read it.
 *
 * Newer runs load their policy snapshot with a local activity (one history event instead of an
 * activity and a workflow task). Core can give an activation that resolves a local activity one
 * workflow time in the live run and another when the history is replayed, and it can group that
 * resolution with messages differently on replay than live (a load that outlived a workflow task:
 * live, a message arrives in an activation of its own; on replay, in the one that resolves the
 * load). Every evidence entry hashes its time. So from the moment the snapshot is asked for until
 * the end of the activation that resolves it, every activation reads the time it was asked at: the
 * same however core groups the jobs, live and on replay. Every other activation reads its own time.
 * That time is the first workflow task's, so the chain's times never go back.
 *
 * Activations are told apart by the workflow interceptor (workers/workflow-clock.ts), which
 * calls `activationStarted` before each activation's jobs; without it a run refuses to load (a run
 * pinned on one worker and not on another would hash different chains). The state lives on
 * `globalThis`, which the SDK keeps per workflow (module state is shared between the runs of a worker).
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { FailureType } from '../failures';

const CLOCK = Symbol.for('portarium.clock');

interface ClockState {
  /** Set once the interceptor counts activations. */
  counting: boolean;
  /** The current activation's number. */
  activation: number;
  /** While a snapshot load is under way: the time it was asked at. */
  loading?: number;
  /** The activation that resolved the load reads its time to its end. */
  resolved?: { activation: number; at: number };
}

function clock(): ClockState {
  const holder = globalThis as { [CLOCK]?: ClockState };
  return (holder[CLOCK] ??= { counting: false, activation: 0 });
}

/** Workflow time in ms: the pinned time while a load is under way and in the activation that resolved it. */
export function nowMs(): number {
  const c = clock();
  if (c.loading !== undefined) return c.loading;
  return c.resolved?.activation === c.activation ? c.resolved.at : Date.now();
}

export function now(): Date {
  return new Date(nowMs());
}

/** Called by the workflow interceptor before an activation's jobs run. */
export function activationStarted(): void {
  const c = clock();
  c.counting = true;
  c.activation++;
}

/** Run `load` (a local activity) on the pinned clock described above. */
export async function withPinnedClock<T>(load: () => Promise<T>): Promise<T> {
  const c = clock();
  if (!c.counting) {
    throw ApplicationFailure.create({ type: FailureType.WorkerMisconfigured, nonRetryable: true, message: 'the workflow bundle lacks the Portarium workflow interceptors (workers/workflow-clock.ts) the run clock needs' });
  }
  const at = Date.now();
  c.loading = at;
  try {
    return await load();
  } finally {
    c.loading = undefined;
    c.resolved = { activation: c.activation, at };
  }
}
