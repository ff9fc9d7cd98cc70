/**
 * The W3C `traceparent` every outbound call of a run carries (runtime dispatches, event deliveries):
 * the active span's context when tracing is on, so the receiver joins the run's trace; otherwise one
 * deterministic trace id per run, so the receiver's logs can still be joined to it.
 */
import { createHash } from 'node:crypto';
import * as otel from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

// Used directly rather than through the global propagator, so the header never depends on who set one up.
const w3c = new W3CTraceContextPropagator();

/** `fallbackSpanId` (16 hex digits) names the call when no span is active. */
export function runTraceparent(runId: string, fallbackSpanId: string, active: otel.Span | undefined = otel.trace.getActiveSpan()): string {
  if (active && otel.isSpanContextValid(active.spanContext())) {
    const carrier: Record<string, string> = {};
    w3c.inject(otel.trace.setSpan(otel.ROOT_CONTEXT, active), carrier, otel.defaultTextMapSetter);
    if (carrier.traceparent) return carrier.traceparent;
  }
  const traceId = createHash('sha256').update(runId).digest('hex').slice(0, 32);
  return `00-${traceId}-${fallbackSpanId}-01`;
}
