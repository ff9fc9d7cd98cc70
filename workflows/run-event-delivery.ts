/**
 * `runEventDelivery`: goes on delivering a governed run's lifecycle events after the run has ended,
 * so a subscriber that is down neither holds the run open nor loses its events. Started by
 * `governedRun` (workflow id `<run id>/events`, abandoned by its parent) only when events are still
 * pending at the end; its `status` query and result say what was delivered and what was not.
 */
import { ApplicationFailure, defineQuery, setHandler } from '@temporalio/workflow';
import { AFTER_RUN_BUDGET, pumpEvents } from './event-pump';
import { FailureType } from './failures';
import { type RunEvent, RunOutbox, type RunEventsStatus } from './run-events';
import { check, describeIssues, runEventDeliveryInputSchema } from './schemas';

export interface RunEventDeliveryInput {
  workspaceId: string;
  runId: string;
  events: RunEvent[];
}

export const eventDeliveryStatusQuery = defineQuery<RunEventsStatus>('status');

export async function runEventDelivery(raw: unknown): Promise<RunEventsStatus> {
  const parsed = check(runEventDeliveryInputSchema(), raw);
  if (!parsed.ok) {
    throw ApplicationFailure.create({ type: FailureType.InvalidRunInput, message: `invalid runEventDelivery input: ${describeIssues(parsed.issues)}`, nonRetryable: true });
  }
  const { workspaceId, runId, events } = parsed.value as unknown as RunEventDeliveryInput;
  const outbox = new RunOutbox();
  outbox.enable();
  for (const e of events) outbox.add(e);
  setHandler(eventDeliveryStatusQuery, () => outbox.status());
  await pumpEvents(outbox, { workspaceId, runId }, AFTER_RUN_BUDGET, () => true);
  return outbox.status();
}
