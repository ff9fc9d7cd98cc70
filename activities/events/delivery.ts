/**
 * Event delivery: POSTs a run's lifecycle CloudEvents to the workspace's subscribers (HTTP binding
 * of CloudEvents 1.0, structured or binary mode), each subscriber in event order, through the guarded
 * HTTP client (egress key `events`). At least once: progress is heartbeated, so a retry skips what was
 * taken; ids are stable, so subscribers can drop repeats. A subscriber that is down only delays its
 * own events: on the final attempt the activity reports what it could not deliver instead of failing.
 */
import { createHash } from 'node:crypto';
import { ownValue } from '../../policies/own';
import * as otel from '@opentelemetry/api';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { LoadedPolicies } from '../policy/load';
import { EVENTS_EGRESS_KEY, type Subscriber, subscribes } from '../../policies/subscribers';
import { redactText } from '../../workflows/evidence-chain';
import { FailureType } from '../../workflows/failures';
import { type DeliveryReport, type RunEvent, runEventName } from '../../workflows/events/run-events';
import { type HttpClient, TransportError, createGuardedHttp, requestOrTransportError } from '../http/client';
import { SecretScrubber } from '../secrets/scrubber';
import { runTraceparent } from './trace-context';
import type { SecretStore } from '../secrets/port';
import { clipUtf8 } from '../utf8';

export interface DeliveryRequest {
  workspaceId: string;
  runId: string;
  /** Oldest first; every event belongs to `runId`. */
  events: RunEvent[];
  /** The attempt on which failures are reported rather than retried (the retry policy's maximum). */
  finalAttempt: number;
}

export interface DeliveryDeps {
  policies: LoadedPolicies;
  secrets: SecretStore;
}

/** Heartbeat details: `subscriber event-id` pairs taken (or refused for good) in earlier attempts. */
interface Progress {
  done: string[];
  delivered: number;
  refused: DeliveryReport['undelivered'];
}

type Outcome = { kind: 'delivered' } | { kind: 'refused' | 'unavailable'; error: string; status?: number };

/** W3C traceparent for an event: the delivery span's when tracing is on, else the run's trace and a span per event. */
export function eventTraceparent(runId: string, eventId: string, active: otel.Span | undefined = otel.trace.getActiveSpan()): string {
  return runTraceparent(runId, createHash('sha256').update(eventId).digest('hex').slice(0, 16), active);
}

/** Percent-encode a header value as the CloudEvents HTTP binding asks (non-ASCII, space, `"`, `%`). */
export function encodeHeaderValue(value: string): string {
  return Array.from(new TextEncoder().encode(value))
    .map((b) => (b <= 0x20 || b >= 0x7f || b === 0x22 || b === 0x25 ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b)))
    .join('');
}

/** The HTTP request for `event` in the subscriber's mode. */
export function cloudEventRequest(event: RunEvent, traceparent: string, mode: Subscriber['mode']): { headers: Record<string, string>; body: string } {
  const withTrace = { ...event, traceparent };
  if (mode === 'structured') {
    return { headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' }, body: JSON.stringify(withTrace) };
  }
  const { data, datacontenttype, ...attributes } = withTrace;
  const headers: Record<string, string> = { 'content-type': datacontenttype };
  for (const [name, value] of Object.entries(attributes)) headers[`ce-${name}`] = encodeHeaderValue(String(value));
  return { headers, body: JSON.stringify(data) };
}

function classify(res: { status: number; text: string } | TransportError): Outcome {
  if (res instanceof TransportError) return { kind: 'unavailable', error: res.message };
  if (res.status >= 200 && res.status < 300) return { kind: 'delivered' };
  const error = `answered ${res.status}${res.text ? `: ${clipUtf8(res.text, 200)}` : ''}`;
  // 408 and 429 say "later"; any other 4xx says this event will never be taken as it is.
  const later = res.status >= 500 || res.status === 408 || res.status === 429;
  return { kind: later ? 'unavailable' : 'refused', error, status: res.status };
}

/** The (subscriber, event) key progress is kept under. */
const doneKey = (sub: Subscriber, event: RunEvent) => `${sub.id} ${event.id}`;
/** The events of `events` that `sub` asked for and has not taken (or refused) yet, in order. */
const owed = (sub: Subscriber, events: RunEvent[], progress: Progress) =>
  events.filter((e) => subscribes(sub, runEventName(e.type)) && !progress.done.includes(doneKey(sub, e)));

function previousProgress(details: unknown): Progress {
  const d = details as Partial<Progress> | undefined;
  return { done: Array.isArray(d?.done) ? d.done : [], delivered: d?.delivered ?? 0, refused: Array.isArray(d?.refused) ? d.refused : [] };
}

/**
 * Events per subscriber by outcome: `delivered`, `refused` (for good), `deferred` (subscriber down, the
 * attempt is retried), `undelivered` (still down on the final attempt). Deferred ones are the backlog.
 */
const deliveries = (ctx: Context) => ctx.metricMeter.createCounter('portarium_event_deliveries', 'events', 'Run events per subscriber by delivery outcome');

export function createEventDeliveryActivities(deps: DeliveryDeps) {
  async function bearerToken(workspaceId: string, sub: Subscriber, scrub: SecretScrubber): Promise<string> {
    const secret = scrub.remember(await deps.secrets.read(workspaceId, EVENTS_EGRESS_KEY));
    const token = secret[`${sub.id}.token`] ?? secret.token;
    if (!token) throw ApplicationFailure.create({ type: FailureType.CredentialsDenied, message: `no token for subscriber ${sub.id} in the events secret`, nonRetryable: true });
    return token;
  }

  /** One subscriber's events in order; stops at the first that it cannot take now, to keep order. */
  async function deliverTo(req: DeliveryRequest, sub: Subscriber, http: HttpClient, progress: Progress, save: () => void): Promise<string | undefined> {
    const ctx = Context.current();
    const scrub = new SecretScrubber();
    // Read once per subscriber and batch, not per event.
    let auth: Record<string, string> | undefined;
    for (const event of owed(sub, req.events, progress)) {
      let outcome: Outcome;
      try {
        auth ??= sub.auth === 'bearer' ? { authorization: `Bearer ${await bearerToken(req.workspaceId, sub, scrub)}` } : {};
        const traceparent = eventTraceparent(req.runId, event.id);
        const { headers, body } = cloudEventRequest(event, traceparent, sub.mode);
        const res = await requestOrTransportError(http, {
          method: 'POST',
          url: sub.url,
          headers: { ...headers, ...auth, traceparent, 'x-portarium-workspace': req.workspaceId },
          body,
          timeoutMs: sub.timeout,
          signal: ctx.cancellationSignal,
          followRedirects: false,
        });
        outcome = classify(res);
      } catch (err) {
        // Egress refused or credentials denied will not change on a retry; a sealed store might.
        const type = err instanceof ApplicationFailure ? err.type : undefined;
        const later = type === FailureType.CredentialsUnavailable || !(err instanceof ApplicationFailure);
        outcome = { kind: later ? 'unavailable' : 'refused', error: `${type ?? 'Error'}: ${(err as Error).message}` };
      }
      if (outcome.kind === 'unavailable') return redactText(scrub.text(outcome.error));
      progress.done.push(doneKey(sub, event));
      deliveries(ctx).add(1, { outcome: outcome.kind });
      if (outcome.kind === 'delivered') {
        progress.delivered++;
        const lag = Date.now() - Date.parse(event.time);
        if (Number.isFinite(lag)) ctx.metricMeter.createHistogram('portarium_event_delivery_lag', 'int', 'ms', 'From an event to its delivery to a subscriber').record(Math.max(0, lag));
      } else progress.refused.push({ eventId: event.id, type: event.type, subscriber: sub.id, error: redactText(scrub.text(outcome.error)), status: outcome.status });
      save();
    }
    return undefined;
  }

  return {
    /** Deliver a batch of one run's events to every subscriber that wants them. */
    async deliverRunEvents(req: DeliveryRequest): Promise<DeliveryReport> {
      const ctx = Context.current();
      const progress = previousProgress(ctx.info.heartbeatDetails);
      const save = () => ctx.heartbeat(progress);
      const subscribers = deps.policies.subscribersFor(req.workspaceId);
      const egress = ownValue(deps.policies.connectionsFor(req.workspaceId).egress, EVENTS_EGRESS_KEY);
      const http = createGuardedHttp({ workspaceId: req.workspaceId, runtime: EVENTS_EGRESS_KEY, rule: egress });
      const waiting = await Promise.all(
        subscribers.map(async (sub) => ({ sub, error: await deliverTo(req, sub, http, progress, save) })),
      );
      const down = waiting.filter((w): w is { sub: Subscriber; error: string } => w.error !== undefined);
      const owedNow = down.reduce((n, d) => n + owed(d.sub, req.events, progress).length, 0);
      if (owedNow) deliveries(ctx).add(owedNow, { outcome: down.length && ctx.info.attempt < req.finalAttempt ? 'deferred' : 'undelivered' });
      if (down.length && ctx.info.attempt < req.finalAttempt) {
        const what = down.map((d) => `${d.sub.id}: ${d.error}`).join('; ');
        ctx.log.warn('event subscribers unavailable; retrying', { workspaceId: req.workspaceId, runId: req.runId, attempt: ctx.info.attempt, subscribers: down.map((d) => d.sub.id) });
        throw ApplicationFailure.create({ type: FailureType.SubscriberUnavailable, message: what, nonRetryable: false });
      }
      // Final attempt: what is still not taken is reported, so the run can show it and move on.
      const left: DeliveryReport['undelivered'] = [];
      for (const { sub, error } of down) {
        for (const event of owed(sub, req.events, progress)) {
          left.push({ eventId: event.id, type: event.type, subscriber: sub.id, error: `${error} (after ${ctx.info.attempt} attempts)` });
        }
      }
      return { delivered: progress.delivered, undelivered: [...progress.refused, ...left] };
    },
  };
}

export type EventDeliveryActivities = ReturnType<typeof createEventDeliveryActivities>;
