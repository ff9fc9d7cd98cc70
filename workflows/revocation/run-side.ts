/**
 * A run's side of emergency revocation. The registry's fan-out signals `revoked` with a revocation id
 * only; the run asks the registry (activity `confirmRevocation`) what that id is and acts only on what
 * the registry holds and what covers its own action. A forged or malformed signal is a recorded
 * refusal that changes nothing; a flood of them is bounded (at most MAX_CONFIRMATIONS asks per run:
 * past that, the dispatch-time check still stops a revoked action).
 */
import { condition, isCancellation, metricMeter, proxyActivities, setHandler } from '@temporalio/workflow';
import { patchApplies } from '../run/patches';
import type { RevocationActivities } from '../../activities/revocation/fan-out';
import { FailureType } from '../failures';
import { check, describeIssues } from '../schemas';
import { revokedSignal } from '../run/messages';
import type { GovernedRunState } from '../run/state';
import { RunState, TERMINAL_STATES } from '../types';
import { scopeCovers } from './match';
import { revokedNoticeSchema } from './schemas';
import type { Revocation, RunRevocation } from './types';

/** Runs that handle `revoked` (asked when the first notice arrives, so runs never told record no marker). */
export const REVOCATION_PATCH = 'portarium-revocation-v1';
/** Distinct revocation ids a run asks the registry about. */
const MAX_CONFIRMATIONS = 20;

const { confirmRevocation } = proxyActivities<RevocationActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 10 },
  summary: 'confirm revocation with the registry',
});

/** Whether the revocation covers this run's action. */
export function coversRun(run: GovernedRunState, r: Revocation): boolean {
  const { runtime, target, tools } = run.action;
  return r.liftedAt === undefined && scopeCovers(r.scope, { workspaceId: run.input.workspaceId, runtime, target, tools });
}

/** `onDispatchRevoked` cancels the dispatch in flight (its scope). */
export function wireRevocationHandler(run: GovernedRunState, onDispatchRevoked: () => void, now: () => Date): void {
  const asked = new Set<string>();
  const refuse = (type: FailureType, message: string, id?: string) => run.refuse('revoked', undefined, type, message, now(), id ? { decisionId: id } : {});
  setHandler(revokedSignal, async (raw: unknown) => {
    if (!patchApplies(run, REVOCATION_PATCH)) return;
    try {
      const n = check(revokedNoticeSchema(), raw);
      if (!n.ok) return void refuse(FailureType.InvalidMessage, describeIssues(n.issues));
      const id = n.value.revocationId;
      if (TERMINAL_STATES.has(run.state) || run.revocation || asked.has(id)) return;
      if (asked.size >= MAX_CONFIRMATIONS) return void refuse(FailureType.RevocationRefused, `more than ${MAX_CONFIRMATIONS} revocation notices; ${id} not checked`, id);
      asked.add(id);
      const { revocation } = await confirmRevocation({ revocationId: id });
      // Judged once policy has decided: a run denied meanwhile is not a revoked one.
      await condition(() => run.state !== RunState.Evaluating);
      if (!revocation || revocation.id !== id) return void refuse(FailureType.RevocationRefused, `the registry holds no revocation ${id}`, id);
      // A genuine revocation of something else (or lifted meanwhile) is not this run's concern.
      if (!coversRun(run, revocation) || TERMINAL_STATES.has(run.state) || run.revocation) return;
      // Dispatching but held (waiting for the evidence sink): nothing was sent, the main loop ends it.
      const dispatching = run.state === RunState.Dispatching && run.heldFrom === undefined;
      run.applyRevocation(revocation, dispatching ? 'dispatch-cancelled' : 'ended-before-dispatch', now());
      if (dispatching) onDispatchRevoked();
    } catch (err) {
      if (isCancellation(err)) throw err;
      refuse(FailureType.InvalidMessage, `revoked could not be handled (${err instanceof Error ? err.name : 'error'})`);
    }
  });
}

/** The revocation an activity failure of type `Revoked` carries (the dispatch activity's own details). */
export function revocationOfFailure(details: unknown[] | null | undefined): Revocation | undefined {
  const d = details?.[0] as { revocation?: Revocation } | undefined;
  const r = d?.revocation;
  return r && typeof r.id === 'string' && typeof r.scope === 'object' ? r : undefined;
}

/** Count a run ended (or touched) by a revocation, by what it did. */
export function observeRevoked(effect: RunRevocation['effect']): void {
  metricMeter.createCounter('portarium_runs_revoked', 'runs', 'Runs reached by an emergency revocation, by effect').add(1, { effect });
}
