/**
 * OpenTelemetry for the worker process: a NodeSDK configured from the standard OTEL_* variables, and
 * the Temporal interceptors that carry one trace from the client through the workflow to the runtime.
 * With no OTEL_* exporter or endpoint set nothing is started: no spans, no network, no errors.
 */
import * as otel from '@opentelemetry/api';
import { Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { NoopSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { ClientInterceptors } from '@temporalio/client';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  makeWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import type { OpenTelemetryWorkflowExporter } from '@temporalio/interceptors-opentelemetry/lib/workflow/definitions';

const DEFAULT_SERVICE_NAME = 'portarium-worker';

/** What the worker needs to trace: injected by tests, or taken from a started NodeSDK. */
export interface TracingParts {
  /** Tracer for activity spans. @default the global tracer (NodeSDK's when started) */
  tracer?: otel.Tracer;
  /** Receives the workflow spans (they leave the sandbox through the `exporter` sink). @default no-op */
  spanProcessor?: SpanProcessor;
  /** @default service.name from OTEL_SERVICE_NAME, else portarium-worker */
  resource?: Resource;
}

export interface Telemetry extends TracingParts {
  /** True when spans are exported somewhere. */
  enabled: boolean;
  /** Flush and stop the SDK; call after the worker has stopped. */
  shutdown(): Promise<void>;
}

const set = (v: string | undefined) => (v && v.trim() !== '' ? v.trim() : undefined);

/** Whether OTEL_* asks for traces: an explicit exporter other than none, or an OTLP endpoint. */
export function tracesRequested(env: NodeJS.ProcessEnv): boolean {
  const exporter = set(env.OTEL_TRACES_EXPORTER);
  if (exporter) return exporter.split(',').some((e) => e.trim() !== 'none');
  return Boolean(set(env.OTEL_EXPORTER_OTLP_ENDPOINT) ?? set(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT));
}

function serviceResource(env: NodeJS.ProcessEnv = process.env): Resource {
  return new Resource({ 'service.name': set(env.OTEL_SERVICE_NAME) ?? DEFAULT_SERVICE_NAME });
}

/**
 * Start the NodeSDK when OTEL_* asks for traces. The SDK itself reads the variables (exporter,
 * endpoint, headers, sampler); its active span processor also receives the workflow spans.
 */
export function startTelemetry(env: NodeJS.ProcessEnv = process.env): Telemetry {
  if (!tracesRequested(env)) return { enabled: false, shutdown: async () => undefined };
  // Only traces are configured here; Temporal's metrics go to the Prometheus endpoint instead.
  env.OTEL_METRICS_EXPORTER ??= 'none';
  env.OTEL_LOGS_EXPORTER ??= 'none';
  const resource = serviceResource(env);
  const sdk = new NodeSDK({ resource, instrumentations: [] });
  sdk.start();
  const provider = (otel.trace.getTracerProvider() as otel.ProxyTracerProvider).getDelegate() as unknown as {
    getActiveSpanProcessor(): SpanProcessor;
  };
  return {
    enabled: true,
    resource,
    tracer: otel.trace.getTracer('portarium-worker'),
    spanProcessor: provider.getActiveSpanProcessor(),
    shutdown: () => sdk.shutdown(),
  };
}

/** Activity interceptors: a RunActivity span per attempt, continued from the workflow's headers. */
export function tracingInterceptors(parts: TracingParts = {}): WorkerInterceptors {
  return {
    activity: [
      (ctx) => ({
        inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer: parts.tracer }),
        outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
      }),
    ],
  };
}

/** The `exporter` sink the workflow interceptors call; registered always, so the bundle never misses it. */
export function tracingSinks(parts: TracingParts = {}): InjectedSinks<{ exporter: OpenTelemetryWorkflowExporter }> {
  return { exporter: makeWorkflowExporter(parts.spanProcessor ?? new NoopSpanProcessor(), parts.resource ?? serviceResource()) };
}

/** Client interceptors that start the trace (StartWorkflow, SignalWorkflow... spans) and pass it on. */
export function tracingClientInterceptors(tracer?: otel.Tracer): ClientInterceptors {
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor({ tracer })] };
}
