/**
 * How many runs the worker keeps in its sticky cache (`maxCachedWorkflows`). Every cached run lives
 * in the workflow thread's V8 heap until it ends or is evicted; a run beyond the cache is evicted and
 * replayed from its history on its next task (a decision, a query, a timer): CPU instead of heap.
 * The SDK's default (600 runs per GiB of heap, less 200 MiB) fills a 4 GiB heap with 2,310 runs; a
 * governedRun costs more than it assumes, and the thread thrashed in full GCs at ~1,550 cached runs
 * ("workflow task duration exceeded 5 seconds") and then died (1,574 in issue 15).
 */
import * as v8 from 'node:v8';

const MiB = 1024 * 1024;

/**
 * Heap one cached governedRun costs the workflow thread while runs arrive in a burst: its live state
 * plus the garbage V8 lets pile up beside it. Measured with test/bench/pending-bench.ts
 * (BENCH_WORKER_NODE_ARGS=--trace-gc, PORTARIUM_MAX_CACHED_WORKFLOWS=5000): a 4,144 MiB heap thrashed
 * at ~1,550 cached runs (2.7 MiB each); live after a full GC was 0.8 MiB per run at 300 runs and
 * 1.4 MiB at 1,000. Re-measure when the workflow changes.
 */
export const CACHED_RUN_HEAP_MIB = 2.5;

/** Heap kept free of cached runs: the bundle and sandbox (~35 MiB), tasks in flight and replays. */
export const HEAP_RESERVE_MIB = 256;

/** Share of the heap beyond the reserve that cached runs may fill: near its limit V8 spends its time in full GCs. */
export const HEAP_SHARE = 0.5;

/**
 * Most heap the cache takes however large the heap (V8's default grows with the machine, up to 4 GiB):
 * keeps the worker's footprint about 1 GiB. A bigger cache only keeps runs that wait for people,
 * decided once and hours later, when one replay costs less than keeping them.
 */
export const CACHE_HEAP_BUDGET_MIB = 1024;

/** The SDK's own floor: fewer cached runs than task slots only means more replays. */
export const MIN_CACHED_WORKFLOWS = 10;

/**
 * The workflow thread's heap limit in MiB. The SDK starts it without `resourceLimits`, so it gets the
 * same V8 limit as the main thread: `--max-old-space-size` (or NODE_OPTIONS) when given, else V8's
 * default from the machine's (or container's) memory.
 */
export function workflowHeapLimitMiB(): number {
  return v8.getHeapStatistics().heap_size_limit / MiB;
}

/** Runs the cache holds on a heap of `heapMiB`, with the reserve, margin and budget above. */
export function cacheSizeForHeap(heapMiB: number): number {
  const budget = Math.min((heapMiB - HEAP_RESERVE_MIB) * HEAP_SHARE, CACHE_HEAP_BUDGET_MIB);
  return Math.max(MIN_CACHED_WORKFLOWS, Math.floor(budget / CACHED_RUN_HEAP_MIB));
}

export interface CacheChoice {
  maxCachedWorkflows: number;
  /** `PORTARIUM_MAX_CACHED_WORKFLOWS` when set, else derived from the heap. */
  source: 'PORTARIUM_MAX_CACHED_WORKFLOWS' | 'heap';
  heapLimitMiB: number;
}

/** The configured size, or the heap-derived default. */
export function chooseCacheSize(configured: number | undefined, heapLimitMiB = workflowHeapLimitMiB()): CacheChoice {
  if (configured !== undefined) return { maxCachedWorkflows: configured, source: 'PORTARIUM_MAX_CACHED_WORKFLOWS', heapLimitMiB };
  return { maxCachedWorkflows: cacheSizeForHeap(heapLimitMiB), source: 'heap', heapLimitMiB };
}

/** One phrase for the start line: how many runs stay cached, and why. */
export function describeCacheChoice(c: CacheChoice): string {
  const why = c.source === 'heap'
    ? `from a ${Math.round(c.heapLimitMiB)} MiB workflow heap at ${CACHED_RUN_HEAP_MIB} MiB per run, at most ${CACHE_HEAP_BUDGET_MIB} MiB`
    : 'set by PORTARIUM_MAX_CACHED_WORKFLOWS';
  return `cache=${c.maxCachedWorkflows} runs (${why})`;
}
