/** Bundle entry for the benchmark: the real `governedRun` next to a bare workflow doing the same work. */
import { proxyActivities } from '@temporalio/workflow';
import type { BenchActivities } from './bench-activities';

export { governedRun } from '../../workflows/run/governed-run';

const { benchNoop } = proxyActivities<BenchActivities>({ startToCloseTimeout: '1m' });

/** Baseline: one activity call, no governance. */
export async function bareRun(input: { n: number }): Promise<{ n: number }> {
  await benchNoop(input.n);
  return input;
}
