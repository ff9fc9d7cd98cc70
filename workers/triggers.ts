/**
 * CloudEvents in: turn one event into one governed run. The event is parsed and validated
 * (workers/cloudevents.ts), routed by the policy files' `triggers` (policies/triggers.ts), mapped to
 * `governedRun` input and started through `PortariumClient.startRun`. The idempotency key comes from
 * the event's `source` and `id`, so a redelivered event finds the run it started and starts nothing new.
 * MAINTENANCE: the mapping table in docs/triggers.md.
 */
import type { LoadedPolicies } from '../activities/policy/load';
import { type Trigger, routeEvent } from '../policies/triggers';
import { sha256Hex } from '../workflows/hashing';
import type { GovernedRunInput, JsonValue } from '../workflows/types';
import type { PortariumClient } from './client';
import { type CloudEvent, type HttpMessage, parseCloudEvent } from './cloudevents';

/** No route, or routes in more than one workspace: nothing was started. `type` is the condition. */
export class TriggerRoutingError extends Error {
  override readonly name = 'TriggerRoutingError';
  constructor(
    readonly type: 'TriggerNotRouted' | 'TriggerAmbiguous',
    message: string,
    readonly event: { type: string; source: string },
  ) {
    super(`${type}: ${message}`);
  }
}

/** Same rule as ids in the run input (workflows/schemas.ts). */
const ID = /^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}$/;

/**
 * `ce-` + 32 hex digits of SHA-256 over the JSON array `[source, id]`: fixed length and safe whatever
 * characters they hold. JSON, not `source + "\n" + id`, because either may contain a newline and
 * ("/a", "b\nc") must not collide with ("/a\nb", "c").
 */
export function idempotencyKeyFor(source: string, id: string): string {
  return `ce-${sha256Hex(JSON.stringify([source, id])).slice(0, 32)}`;
}

/** The event's data as action input: a JSON object overlays the route's defaults key by key; anything else goes under `data`. */
function inputFrom(defaults: Record<string, unknown>, data: unknown): Record<string, JsonValue> {
  const base = defaults as Record<string, JsonValue>;
  if (data === undefined) return { ...base };
  if (data instanceof Uint8Array) return { ...base, data_base64: Buffer.from(data).toString('base64') };
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) return { ...base, ...(data as Record<string, JsonValue>) };
  return { ...base, data: data as JsonValue };
}

/** The `governedRun` input for an event on a route. Pure. */
function runInputFor(event: CloudEvent, workspaceId: string, trigger: Trigger): GovernedRunInput {
  const idempotencyKey = idempotencyKeyFor(event.source, event.id);
  const ext = event.extensions.correlationid;
  const correlationId = typeof ext === 'string' && ID.test(ext) ? ext : ID.test(event.id) ? event.id : idempotencyKey;
  const { input, ...action } = trigger.action;
  return {
    workspaceId,
    correlationId,
    requestedBy: { id: trigger.requestedBy.id, roles: [...trigger.requestedBy.roles] },
    action: { ...action, ...(action.tools && { tools: [...action.tools] }), input: inputFrom(input ?? {}, event.data) },
    idempotencyKey,
    reason: trigger.reason ?? `${event.type} from ${event.source}`,
    ...(trigger.tierOverride && { tierOverride: trigger.tierOverride }),
  };
}

export interface RoutedEvent {
  event: CloudEvent;
  route: { workspaceId: string; triggerId: string };
  input: GovernedRunInput;
}

/** Parse, validate and route a message without starting anything (the CLI's --dry-run, and tests). */
export function routeCloudEvent(policies: LoadedPolicies, message: HttpMessage | CloudEvent): RoutedEvent {
  const event = 'specversion' in message ? message : parseCloudEvent(message);
  const ws = event.extensions.workspaceid;
  const r = routeEvent(policies.triggers(), { type: event.type, source: event.source, ...(ws !== undefined && { workspaceId: String(ws) }) });
  if (!r.ok) throw new TriggerRoutingError(r.error, r.message, { type: event.type, source: event.source });
  return { event, route: { workspaceId: r.workspaceId, triggerId: r.trigger.id }, input: runInputFor(event, r.workspaceId, r.trigger) };
}

export interface TriggeredRun {
  workflowId: string;
  /** True when this event (same source and id) had already started the run. */
  existing: boolean;
  route: RoutedEvent['route'];
  event: CloudEvent;
}

/**
 * Start the governed run for a CloudEvent, or find the one it already started. Throws
 * `InvalidCloudEventError`, `TriggerRoutingError`, or the client's `InvalidMessageError` /
 * `IdempotencyConflictError` (the same source and id arrived before with different content).
 */
export async function startFromCloudEvent(portarium: PortariumClient, policies: LoadedPolicies, message: HttpMessage): Promise<TriggeredRun> {
  const { event, route, input } = routeCloudEvent(policies, message);
  const { source, id, type, subject, time } = event;
  // The event's identity, visible on the run (Web UI, `describe`) without being part of its input.
  const memo = { cloudEvent: { source, id, type, ...(subject !== undefined && { subject }), ...(time !== undefined && { time }), trigger: route.triggerId } };
  const started = await portarium.startRun(input, { memo, origin: { cloudEvent: memo.cloudEvent } });
  return { workflowId: started.workflowId, existing: started.existing, route, event };
}
