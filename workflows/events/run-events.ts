/**
 * Domain events out: each lifecycle transition of a run becomes a CloudEvent 1.0
 * (`com.portarium.run.<name>.v1`) in the run's outbox, which the workflow hands to the delivery
 * activity in order. Pure and deterministic: ids come from the run and its evidence sequence, so a
 * redelivered event always carries the same id, and times are workflow time.
 * MAINTENANCE: keep docs/events.md in sync.
 */
import type { RunEventName } from '../../policies/subscribers';
import type { EvidenceEntry } from '../evidence-chain';
import { RunState, type Tier, type RunEventsStatus, type UndeliveredEvent } from '../types';

const RUN_EVENT_TYPE_PREFIX = 'com.portarium.run.';
const runEventType = (name: RunEventName) => `${RUN_EVENT_TYPE_PREFIX}${name}.v1`;
/** `approved` from `com.portarium.run.approved.v1`. */
export const runEventName = (type: string) => type.slice(RUN_EVENT_TYPE_PREFIX.length, type.lastIndexOf('.'));

/** What subscribers receive as `data`: identifiers and the decision, never the action input or output. */
export interface RunEventData {
  runId: string;
  workspaceId: string;
  correlationId: string;
  state: RunState;
  tier: Tier | null;
  actionHash: string;
  action: { runtime: string; target: string; operation: string };
  requestedBy: string;
  summary: string;
  /** The evidence entry this event reports: verify it with `portarium evidence verify run`. */
  evidence: { seq: number; hash: string };
}

/** A CloudEvent in structured form, without `traceparent` (the delivery activity adds its own). */
export interface RunEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  workspaceid: string;
  correlationid: string;
  runid: string;
  data: RunEventData;
}

/**
 * The event each state publishes when a run enters it; `null` publishes nothing. Total, so a new
 * state must decide. AwaitingQuota publishes nothing: the run is allowed and its `dispatched` event
 * follows when the quota grants; subscribers see no extra step for a wait that is often milliseconds.
 */
const EVENT_OF_STATE: Record<RunState, RunEventName | null> = {
  [RunState.Evaluating]: null,
  [RunState.VetoWindow]: null,
  [RunState.AwaitingManualCompletion]: null,
  [RunState.AwaitingQuota]: null,
  [RunState.AwaitingApproval]: 'approval_needed',
  [RunState.ChangesRequested]: 'changes_requested',
  [RunState.Dispatching]: 'dispatched',
  [RunState.Succeeded]: 'succeeded',
  [RunState.ManuallyCompleted]: 'manually_completed',
  [RunState.Failed]: 'failed',
  [RunState.Rejected]: 'rejected',
  [RunState.Denied]: 'denied',
  [RunState.Expired]: 'expired',
  [RunState.Cancelled]: 'cancelled',
  [RunState.Revoked]: 'revoked',
};

/** The events a transition into `state` publishes (HumanApprove runs announce the approval first). */
export function eventsForState(state: RunState, tier: Tier | undefined): RunEventName[] {
  const name = EVENT_OF_STATE[state];
  if (!name) return [];
  return state === RunState.Dispatching && tier === 'HumanApprove' ? ['approved', name] : [name];
}

export interface RunEventContext {
  runId: string;
  workspaceId: string;
  correlationId: string;
  state: RunState;
  tier: Tier | undefined;
  actionHash: string;
  action: { runtime: string; target: string; operation: string };
  requestedBy: string;
}

/** The event `name` reporting evidence entry `entry` (its seq makes the id unique and stable). */
export function buildRunEvent(name: RunEventName, ctx: RunEventContext, entry: EvidenceEntry): RunEvent {
  const { runtime, target, operation } = ctx.action;
  return {
    specversion: '1.0',
    id: `${ctx.runId}/${entry.seq}/${name}`,
    source: `/portarium/workspaces/${ctx.workspaceId}`,
    type: runEventType(name),
    subject: `runs/${ctx.runId}`,
    time: entry.occurredAt,
    datacontenttype: 'application/json',
    workspaceid: ctx.workspaceId,
    correlationid: ctx.correlationId,
    runid: ctx.runId,
    data: {
      runId: ctx.runId,
      workspaceId: ctx.workspaceId,
      correlationId: ctx.correlationId,
      state: ctx.state,
      tier: ctx.tier ?? null,
      actionHash: ctx.actionHash,
      action: { runtime, target, operation },
      requestedBy: ctx.requestedBy,
      summary: entry.summary,
      evidence: { seq: entry.seq, hash: entry.hash },
    },
  };
}


/** What the delivery activity reports for one batch. */
export interface DeliveryReport {
  /** (subscriber, event) pairs delivered, earlier attempts included. */
  delivered: number;
  undelivered: Omit<UndeliveredEvent, 'at'>[];
}


const MAX_UNDELIVERED_SHOWN = 50;

/** A `RunOutbox` between batches, as plain data, carried across continue-as-new. */
export interface RunOutboxState {
  publishing: boolean;
  off: boolean;
  queued: RunEvent[];
  published: number;
  delivered: number;
  undelivered: UndeliveredEvent[];
}

/** The run's events in order: queued, in delivery, and what became of them. */
export class RunOutbox {
  /** True once the run knows its workspace publishes events; until then events are queued. */
  publishing = false;
  /** The workspace publishes nothing (or the run predates events): events are not even queued. */
  private off = false;
  private readonly queued: RunEvent[] = [];
  private inFlight: RunEvent[] = [];
  published = 0;
  delivered = 0;
  readonly undelivered: UndeliveredEvent[] = [];
  handedOffTo?: string;
  /** Set while the run prepares to continue as new: the pump starts no further batch. */
  held = false;

  constructor(state?: RunOutboxState) {
    if (!state) return;
    this.publishing = state.publishing;
    this.off = state.off;
    this.queued.push(...state.queued);
    this.published = state.published;
    this.delivered = state.delivered;
    this.undelivered.push(...state.undelivered);
  }

  /** Between batches only (nothing in delivery): what continue-as-new carries. */
  get state(): RunOutboxState {
    return { publishing: this.publishing, off: this.off, queued: [...this.inFlight, ...this.queued], published: this.published, delivered: this.delivered, undelivered: [...this.undelivered] };
  }

  /** A batch is with the delivery activity now. */
  get delivering(): boolean {
    return this.inFlight.length > 0;
  }

  add(event: RunEvent): void {
    if (this.off) return;
    this.published++;
    this.queued.push(event);
  }

  /** The run publishes: keep what was queued before the policy was known. */
  enable(): void {
    this.publishing = true;
  }

  /** The workspace has no subscribers: drop what was queued before the policy was known. */
  disable(): void {
    this.publishing = false;
    this.off = true;
    this.published = 0;
    this.queued.length = 0;
  }

  get hasQueued(): boolean {
    return this.queued.length > 0;
  }

  /** Nothing queued and nothing being delivered. */
  get idle(): boolean {
    return this.queued.length === 0 && this.inFlight.length === 0;
  }

  /** The next batch, oldest first; it stays pending until `settle`. */
  take(max: number): RunEvent[] {
    this.inFlight = this.queued.splice(0, max);
    return this.inFlight;
  }

  settle(report: DeliveryReport, at: Date): void {
    this.delivered += report.delivered;
    for (const u of report.undelivered) this.noteUndelivered({ ...u, at: at.toISOString() });
    this.inFlight = [];
  }

  /** Everything not yet delivered, for the workflow that takes over at the end of the run. */
  drain(): RunEvent[] {
    const rest = [...this.inFlight, ...this.queued];
    this.inFlight = [];
    this.queued.length = 0;
    return rest;
  }

  private noteUndelivered(u: UndeliveredEvent): void {
    this.undelivered.push(u);
    if (this.undelivered.length > MAX_UNDELIVERED_SHOWN) this.undelivered.shift();
  }

  status(): RunEventsStatus {
    return {
      publishing: this.publishing,
      published: this.published,
      delivered: this.delivered,
      pending: this.queued.length + this.inFlight.length,
      undelivered: [...this.undelivered],
      ...(this.handedOffTo && { handedOffTo: this.handedOffTo }),
    };
  }
}
