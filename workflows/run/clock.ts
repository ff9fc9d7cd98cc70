/**
 * Workflow time as a governed run's decisions, deadlines and evidence read it.
 *
 * Newer runs load their policy snapshot with a local activity (one history event instead of an
 * activity and a workflow task). Core can hand the activation that resolves a local activity one
 * workflow time in the live run and another when the history is replayed (a worker taking over the
 * run, a query on a run not in the cache), and every evidence entry hashes its time. So that
 * activation, and only it, reads the time of the activation that asked for the snapshot: the first
 * workflow task's time, the same live and on replay. Every other activation reads workflow time.
 *
 * The pin lives on `globalThis`, which the SDK keeps per workflow (module state is shared between
 * the runs of a worker). Which activation is running is told by the identity of `workflowInfo()`:
 * the SDK makes a new info object at the start of every activation.
 */
import { workflowInfo } from '@temporalio/workflow';

const PIN = Symbol.for('portarium.clock-pin');

interface Pin {
  /** The time the pinned activation reads (ms). */
  at: number;
  /** The activation it applies to: its `workflowInfo()` object. */
  activation?: object;
}

type PinHolder = { [PIN]?: Pin };

/** Workflow time in ms: the pinned time inside the pinned activation, else the activation's own. */
export function nowMs(): number {
  const pin = (globalThis as PinHolder)[PIN];
  return pin?.activation !== undefined && pin.activation === workflowInfo() ? pin.at : Date.now();
}

export function now(): Date {
  return new Date(nowMs());
}

/**
 * Run `load` (a local activity) and give the activation that resolves it this activation's time.
 * The pin is set after the await resolves, before any code of that activation reads the clock: the
 * continuation of this await runs first, and handlers waiting for the policy decision after it.
 */
export async function withPinnedClock<T>(load: () => Promise<T>): Promise<T> {
  const at = Date.now();
  const result = await load();
  (globalThis as PinHolder)[PIN] = { at, activation: workflowInfo() };
  return result;
}
