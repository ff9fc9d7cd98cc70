/**
 * The workflow thread's heap, and how many runs the worker keeps in its sticky cache
 * (`maxCachedWorkflows`). Every cached run lives in that heap until it ends or is evicted; a run
 * beyond the cache is evicted and replayed from its history on its next task (a decision, a query,
 * a timer): CPU instead of heap. The SDK's default (600 runs per GiB of heap, less 200 MiB) put 2,310
 * runs on a 4 GiB heap; a governedRun costs more than it assumes, and the thread thrashed in full GCs
 * at ~1,550 cached runs ("workflow task duration exceeded 5 seconds") and then died (issue 15).
 * And V8 lets a large heap fill with garbage: with 409 runs cached (600 MiB live) a 4 GiB heap grew to
 * 2.3 GiB before a full GC, so the heap limit, not only the cache, decides the worker's RSS.
 */
import * as v8 from 'node:v8';

const MiB = 1024 * 1024;

/** The workflow thread's heap when PORTARIUM_WORKFLOW_HEAP_MB is unset, or V8's default if that is smaller. */
const DEFAULT_WORKFLOW_HEAP_MIB = 1024;

/**
 * Heap one cached governedRun costs the workflow thread while runs arrive: its live state plus the
 * garbage beside it. Measured with test/bench/pending-bench.ts (BENCH_WORKER_NODE_ARGS=--trace-gc):
 * live after a full GC is 0.8 MiB per run at 300 cached runs and 1.4 MiB at 400–1,000; a 4,144 MiB
 * heap thrashed at ~1,550 cached runs (2.7 MiB each), a 256 MiB one died at ~300 (0.85 MiB each).
 * Re-measure when the workflow changes.
 */
const CACHED_RUN_HEAP_MIB = 2.5;

/** Heap kept free of cached runs: the bundle and sandbox (~35 MiB), tasks in flight and replays. */
const HEAP_RESERVE_MIB = 256;

/** Share of the heap beyond the reserve that cached runs may fill: near its limit V8 spends its time in full GCs. */
const HEAP_SHARE = 0.5;

/** The SDK's own floor: fewer cached runs than task slots only means more replays. */
const MIN_CACHED_WORKFLOWS = 10;

export interface WorkflowHeap {
  mib: number;
  source: 'PORTARIUM_WORKFLOW_HEAP_MB' | 'default' | 'node';
}

/**
 * The heap the workflow thread gets. The SDK starts it without `resourceLimits`, so it inherits V8's
 * `--max-old-space-size`; `applyWorkflowHeap` sets that flag before the thread exists.
 */
export function workflowHeap(configured: number | undefined, processLimitMiB = v8.getHeapStatistics().heap_size_limit / MiB): WorkflowHeap {
  if (configured !== undefined) return { mib: configured, source: 'PORTARIUM_WORKFLOW_HEAP_MB' };
  // V8's default follows the machine's (or container's) memory, up to 4 GiB; smaller means Node was told so.
  return processLimitMiB < DEFAULT_WORKFLOW_HEAP_MIB ? { mib: Math.floor(processLimitMiB), source: 'node' } : { mib: DEFAULT_WORKFLOW_HEAP_MIB, source: 'default' };
}

/**
 * Give worker threads created from now on (the SDK's workflow thread, in Worker.create) this heap.
 * Isolates read the flag when they are created: the main thread keeps its own limit.
 */
export function applyWorkflowHeap(heap: WorkflowHeap): void {
  v8.setFlagsFromString(`--max-old-space-size=${heap.mib}`);
}

/** Runs the cache holds on a heap of `heapMiB`, with the reserve and margin above. */
function cacheSizeForHeap(heapMiB: number): number {
  return Math.max(MIN_CACHED_WORKFLOWS, Math.floor(((heapMiB - HEAP_RESERVE_MIB) * HEAP_SHARE) / CACHED_RUN_HEAP_MIB));
}

export interface CacheChoice {
  maxCachedWorkflows: number;
  /** `PORTARIUM_MAX_CACHED_WORKFLOWS` when set, else derived from the heap. */
  source: 'PORTARIUM_MAX_CACHED_WORKFLOWS' | 'heap';
  heap: WorkflowHeap;
}

/** The configured size, or the one derived from the workflow heap. */
export function chooseCacheSize(configured: number | undefined, heap: WorkflowHeap): CacheChoice {
  if (configured !== undefined) return { maxCachedWorkflows: configured, source: 'PORTARIUM_MAX_CACHED_WORKFLOWS', heap };
  return { maxCachedWorkflows: cacheSizeForHeap(heap.mib), source: 'heap', heap };
}

/** One phrase for the start line: the heap, how many runs stay cached, and why. */
export function describeCacheChoice(c: CacheChoice): string {
  const heapWhy = { PORTARIUM_WORKFLOW_HEAP_MB: 'PORTARIUM_WORKFLOW_HEAP_MB', default: 'default', node: "node's limit" }[c.heap.source];
  const cacheWhy = c.source === 'heap' ? `${CACHED_RUN_HEAP_MIB} MiB per run in half the heap beyond ${HEAP_RESERVE_MIB} MiB` : 'PORTARIUM_MAX_CACHED_WORKFLOWS';
  return `workflow-heap=${c.heap.mib}MiB (${heapWhy}) cache=${c.maxCachedWorkflows} runs (${cacheWhy})`;
}
