/**
 * Portarium's workflow-side metrics, observed at each state transition. Emitted through the
 * workflow `metricMeter`, which the SDK skips on replay, so history and replays are unaffected.
 * Times are workflow time taken from the run's own evidence entries: no I/O, no clocks of our own.
 * Labels are low-cardinality (state, tier, outcome): never workspace, ids or anything secret.
 */
import { metricMeter } from '@temporalio/workflow';
import type { GovernedRunState } from './state';
import { RunState, TERMINAL_STATES } from '../types';

/** MAINTENANCE: names and labels are documented in docs/observability.md. */
const RunMetric = {
  Runs: 'portarium_runs',
  ApprovalWait: 'portarium_approval_wait',
  DecisionToDispatch: 'portarium_decision_to_dispatch',
  PolicyDenials: 'portarium_policy_denials',
  BreakGlassUses: 'portarium_break_glass_uses',
  BreakGlassReviews: 'portarium_break_glass_reviews',
  QuotaWait: 'portarium_quota_wait',
  DeadlineOverrun: 'portarium_deadline_overrun',
} as const;

/** The states a run waits in until a deadline (`expiresAt`, or `vetoEndsAt` for the veto window). */
const DEADLINE_STATES: ReadonlySet<RunState> = new Set<RunState>([
  RunState.AwaitingApproval,
  RunState.ChangesRequested,
  RunState.AwaitingManualCompletion,
  RunState.VetoWindow,
]);

/** A break-glass release was asked: `granted`, or refused with its failure type as outcome. */
export function observeBreakGlass(outcome: string, tier: string | undefined): void {
  metricMeter.createCounter(RunMetric.BreakGlassUses, 'uses', 'Break-glass releases by outcome').add(1, { outcome, tier: tier ?? 'None' });
}

/** A break-glass review ended: `confirmed`, `flagged` or `overdue`. */
export function observeBreakGlassReview(outcome: 'confirmed' | 'flagged' | 'overdue'): void {
  metricMeter.createCounter(RunMetric.BreakGlassReviews, 'reviews', 'Break-glass reviews by how they ended').add(1, { outcome });
}

/** Occurrence time (ms) of the latest evidence entry whose event is one of `events`. */
function lastAt(run: GovernedRunState, events: readonly string[]): number | undefined {
  const entries = run.chain.entries;
  for (let i = entries.length - 1; i >= 0; i--) {
    if (events.includes(entries[i].event)) return Date.parse(entries[i].occurredAt);
  }
  return undefined;
}

/** The deadline of the state the run is in: its current one, else the one its `State*` entry recorded (cleared before dispatch). */
function stateDeadline(run: GovernedRunState): number | undefined {
  const own = run.deadlines.expiresAt ?? run.deadlines.vetoEndsAt;
  if (own) return Date.parse(own);
  const entries = run.chain.entries;
  for (let i = entries.length - 1; i >= 0; i--) {
    if (entries[i].event !== `State${run.state}`) continue;
    const at = entries[i].data?.expiresAt ?? entries[i].data?.vetoEndsAt;
    return typeof at === 'string' ? Date.parse(at) : undefined;
  }
  return undefined;
}

/** Call before the run moves from `run.state` to `next` at workflow time `now`. */
export function observeTransition(run: GovernedRunState, next: RunState, now: Date): void {
  const tier = run.tier ?? 'None';
  if (run.state === RunState.AwaitingApproval && next !== RunState.AwaitingApproval) {
    const since = lastAt(run, [`State${RunState.AwaitingApproval}`]);
    if (since !== undefined) {
      metricMeter
        .createHistogram(RunMetric.ApprovalWait, 'int', 'ms', 'Approval request to quorum or decision')
        .record(Math.max(0, now.getTime() - since), { tier, outcome: next });
    }
  }
  if (run.state === RunState.AwaitingQuota && next !== RunState.AwaitingQuota) {
    const since = lastAt(run, [`State${RunState.AwaitingQuota}`]);
    if (since !== undefined) {
      metricMeter
        .createHistogram(RunMetric.QuotaWait, 'int', 'ms', 'Waiting for a workspace quota lease, to the grant or the end of the wait')
        .record(Math.max(0, now.getTime() - since), { tier, outcome: next });
    }
  }
  // How long after its deadline a run left a waiting state: about 0 when timers fire on time; large
  // when the run was stuck (no worker, failing workflow tasks) while the deadline passed.
  if (DEADLINE_STATES.has(run.state) && next !== run.state) {
    const deadline = stateDeadline(run);
    if (deadline !== undefined && !Number.isNaN(deadline) && now.getTime() >= deadline) {
      metricMeter
        .createHistogram(RunMetric.DeadlineOverrun, 'int', 'ms', 'How late a run left a waiting state after its deadline')
        .record(now.getTime() - deadline, { state: run.state });
    }
  }
  if (next === RunState.Dispatching) {
    const decided = lastAt(run, ['PolicyAllowed', 'ApprovalRecorded']);
    if (decided !== undefined) {
      metricMeter
        .createHistogram(RunMetric.DecisionToDispatch, 'int', 'ms', 'Policy decision or last approval to Dispatching')
        .record(Math.max(0, now.getTime() - decided), { tier });
    }
  }
  if (TERMINAL_STATES.has(next) && !TERMINAL_STATES.has(run.state)) {
    metricMeter.createCounter(RunMetric.Runs, 'runs', 'Runs by terminal state and tier').add(1, { state: next, tier });
    if (next === RunState.Denied) metricMeter.createCounter(RunMetric.PolicyDenials, 'runs', 'Runs denied by policy').add(1);
  }
}
