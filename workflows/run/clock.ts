/**
 * Workflow time as a governed run's decisions, deadlines and evidence read it.
 *
 * Newer runs load their policy snapshot with a local activity (one history event instead of an
 * activity and a workflow task). Core can hand an activation that resolves a local activity one
 * workflow time in the live run and another when the history is replayed (a worker taking over the
 * run, a query on a run not in its cache), and every evidence entry hashes its time. So a whole
 * activation that resolves the snapshot's local activity reads a pinned time: the time the snapshot
 * was asked for, or the run's last evidence entry if that is later (a load that outlived workflow
 * tasks; the chain's times never go back). Both are the same live and on replay. Every other
 * activation reads workflow time.
 *
 * Activations are told apart by the workflow interceptor (workers/workflow-interceptors.ts), which
 * calls `activationStarted` before each activation's jobs. A bundle without it never pins.
 * The state lives on `globalThis`, which the SDK keeps per workflow (module state is shared between
 * the runs of a worker).
 */
const CLOCK = Symbol.for('portarium.clock');

interface ClockState {
  /** Set once the interceptor counts activations; without it nothing is pinned. */
  counting: boolean;
  /** The current activation's number. */
  activation: number;
  /** A snapshot load under way: the time it was asked at, and the earliest time its entries may carry. */
  pending?: { at: number; floor: () => number };
  /** The activation that reads a pinned time, and that time. */
  pinned?: { activation: number; at: number };
}

function clock(): ClockState {
  const holder = globalThis as { [CLOCK]?: ClockState };
  return (holder[CLOCK] ??= { counting: false, activation: 0 });
}

/** Workflow time in ms: the pinned time inside a pinned activation, else the activation's own. */
export function nowMs(): number {
  const c = clock();
  return c.counting && c.pinned?.activation === c.activation ? c.pinned.at : Date.now();
}

export function now(): Date {
  return new Date(nowMs());
}

/**
 * Called before an activation's jobs run (its first batch). An activation that resolves a local
 * activity while a snapshot load is under way is pinned as a whole, its handlers included.
 */
export function activationStarted(resolvesLocalActivity: boolean): void {
  const c = clock();
  c.counting = true;
  c.activation++;
  if (c.pending && resolvesLocalActivity) c.pinned = { activation: c.activation, at: Math.max(c.pending.at, c.pending.floor()) };
}

/**
 * Run `load` (a local activity): the activations that resolve it read a pinned time (see above).
 * `floor` is the time of the run's last evidence entry (ms).
 */
export async function withPinnedClock<T>(load: () => Promise<T>, floor: () => number): Promise<T> {
  const c = clock();
  c.pending = { at: Date.now(), floor };
  try {
    return await load();
  } finally {
    c.pending = undefined;
  }
}
