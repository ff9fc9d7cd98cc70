/** Activities for the benchmark: a no-op, and a runtime that notes when each dispatch arrives. */
import type { RuntimeAdapter } from '../../activities/runtimes/port';

export const benchActivities = {
  async benchNoop(n: number): Promise<number> {
    return n;
  },
};
export type BenchActivities = typeof benchActivities;

/** A no-op `echo` that calls `onDispatch(workflowId)` the moment a dispatch arrives. */
export function timingRuntime(onDispatch: (workflowId: string) => void): RuntimeAdapter {
  return {
    name: 'echo',
    async execute(call) {
      onDispatch(call.request.workflowId);
      return { output: null };
    },
  };
}
