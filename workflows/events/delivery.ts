/**
 * `runEventDelivery`: goes on delivering a governed run's lifecycle events after the run has ended,
 * so a subscriber that is down neither holds the run open nor loses its events. Started by
 * `governedRun` (workflow id `<run id>/events`, abandoned by its parent) only when events are still
 * pending at the end; its `status` query and result say what was delivered and what was not.
 */
import { defineQuery, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { AFTER_RUN_BUDGET, pumpEvents } from './pump';
import { FailureType, refusal } from '../failures';
import { type RunEvent, RunOutbox } from './run-events';
import type { RunEventsStatus } from '../types';
import { check, describeIssues, runEventDeliveryInputSchema } from '../schemas';

export interface RunEventDeliveryInput {
  workspaceId: string;
  runId: string;
  events: RunEvent[];
}

const eventDeliveryStatusQuery = defineQuery<RunEventsStatus>('status');

/** Deliveries started before the hand-off check was added replay without it. */
const EVENT_HANDOFF_PATCH = 'portarium-event-handoff-v1';

/**
 * Why this execution is not a genuine hand-off, if it is not. Only the run itself may hand off its
 * events: a client cannot set a parent, so `parent` proves who started it; the events must be the
 * run's own (its workspace, its id, its event ids). Otherwise anyone could make the workspace's
 * subscribers receive made-up events with the workspace's bearer token.
 */
function forgery(workspaceId: string, runId: string, events: RunEvent[]): string | undefined {
  const info = workflowInfo();
  if (info.workflowId !== `${runId}/events`) return `its workflow id must be ${runId}/events`;
  if (info.parent?.workflowId !== runId) return `it was not started by run ${runId}`;
  const bad = events.find((e) => e.workspaceid !== workspaceId || e.runid !== runId || !e.id.startsWith(`${runId}/`) || e.source !== `/portarium/workspaces/${workspaceId}`);
  return bad ? `event ${JSON.stringify(String(bad.id).slice(0, 80))} is not an event of run ${runId}` : undefined;
}

export async function runEventDelivery(raw: unknown): Promise<RunEventsStatus> {
  const parsed = check(runEventDeliveryInputSchema(), raw);
  if (!parsed.ok) {
    throw refusal(FailureType.InvalidRunInput, `invalid runEventDelivery input: ${describeIssues(parsed.issues)}`);
  }
  const { workspaceId, runId, events } = parsed.value as unknown as RunEventDeliveryInput;
  const forged = forgery(workspaceId, runId, events);
  if (forged && patched(EVENT_HANDOFF_PATCH)) {
    throw refusal(FailureType.InvalidRunInput, `runEventDelivery refused: ${forged}`);
  }
  const outbox = new RunOutbox();
  outbox.enable();
  for (const e of events) outbox.add(e);
  setHandler(eventDeliveryStatusQuery, () => outbox.status());
  await pumpEvents(outbox, { workspaceId, runId }, AFTER_RUN_BUDGET, () => true);
  return outbox.status();
}
