/**
 * How many runs the worker keeps in its sticky cache (`maxCachedWorkflows`). Every cached run lives
 * in the workflow thread's V8 heap until it ends or is evicted; a run beyond the cache is evicted and
 * replayed from its history on its next task (a decision, a timer), which costs a little CPU instead
 * of heap. The SDK's default (600 runs per GiB of heap, less 200 MiB) fills the heap to its limit, where
 * garbage from busy tasks and GC pauses tip it over: 1,574 waiting runs exhausted the thread's heap.
 */
import * as v8 from 'node:v8';

const MiB = 1024 * 1024;

/**
 * Heap one waiting governedRun keeps in the workflow thread: measured ~0.8 MiB live (after a full GC)
 * with test/bench/pending-bench.ts and BENCH_WORKER_NODE_ARGS='--trace-gc --max-old-space-size=256'
 * (the thread died with ~280 runs cached and 247 MiB live, ~35 MiB of it the bundle), rounded up.
 * Re-measure when the workflow changes.
 */
export const WAITING_RUN_HEAP_MIB = 1;

/** Heap kept free of cached runs: the bundle and sandbox (~40 MiB), tasks in flight and replays, GC headroom. */
export const HEAP_RESERVE_MIB = 256;

/**
 * Share of the heap beyond the reserve that cached runs may fill: near its limit V8 spends most of its
 * time in full GCs (600 ms each, tasks over 5 s, as seen before the thread died), so stay well below.
 */
export const HEAP_SHARE = 0.5;

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

/** Runs a heap of `heapMiB` holds with the reserve and margin above. */
export function cacheSizeForHeap(heapMiB: number): number {
  return Math.max(MIN_CACHED_WORKFLOWS, Math.floor(((heapMiB - HEAP_RESERVE_MIB) * HEAP_SHARE) / WAITING_RUN_HEAP_MIB));
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

/** One log phrase for the start line: how many runs stay cached, and why. */
export function describeCacheChoice(c: CacheChoice): string {
  const why = c.source === 'heap'
    ? `from a ${Math.round(c.heapLimitMiB)} MiB workflow heap at ${WAITING_RUN_HEAP_MIB} MiB per waiting run`
    : 'set by PORTARIUM_MAX_CACHED_WORKFLOWS';
  return `cache=${c.maxCachedWorkflows} runs (${why})`;
}
