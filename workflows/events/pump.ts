/**
 * Hands a run's outbox to the delivery activity, one batch at a time and in order, until told to
 * stop. Used by `governedRun` while it runs and by `runEventDelivery` for what is left when it ends.
 * A subscriber that stays down costs the batch its retries, never the run: the activity reports what
 * it could not deliver on its final attempt, and the pump records it and goes on.
 */
import type { Duration } from '@temporalio/common';
import { condition, proxyActivities } from '@temporalio/workflow';
import type { EventDeliveryActivities } from '../../activities/events/delivery';
import { redactText } from '../evidence-chain';
import type { RunOutbox } from './run-events';

/** Events per activity call: one call per transition is typical, bursts are batched. */
const MAX_BATCH = 20;

export interface DeliveryBudget {
  attempts: number;
  maximumInterval: Duration;
}
/** During the run: about a minute of retries (1+2+4+8+16 s) per batch. */
export const IN_RUN_BUDGET: DeliveryBudget = { attempts: 6, maximumInterval: '30s' };
/** After the run, in `runEventDelivery`: about two hours of retries. */
export const AFTER_RUN_BUDGET: DeliveryBudget = { attempts: 20, maximumInterval: '10m' };

export async function pumpEvents(outbox: RunOutbox, target: { workspaceId: string; runId: string }, budget: DeliveryBudget, stop: () => boolean): Promise<void> {
  const { deliverRunEvents } = proxyActivities<EventDeliveryActivities>({
    startToCloseTimeout: '5m',
    heartbeatTimeout: '1m',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: budget.maximumInterval, maximumAttempts: budget.attempts },
  });
  for (;;) {
    await condition(() => (outbox.hasQueued && !outbox.held) || stop());
    if (!outbox.hasQueued) return;
    const batch = outbox.take(MAX_BATCH);
    try {
      outbox.settle(await deliverRunEvents({ ...target, events: batch, finalAttempt: budget.attempts }), new Date());
    } catch (err) {
      // The final attempt itself failed (a worker lost mid-call): which subscribers got what is unknown.
      const error = redactText(err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err));
      outbox.settle({ delivered: 0, undelivered: batch.map((e) => ({ eventId: e.id, type: e.type, subscriber: '*', error })) }, new Date());
    }
  }
}
