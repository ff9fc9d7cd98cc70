/**
 * The workflow interceptors of the prebuilt bundle: Temporal's OpenTelemetry ones, without a span per
 * inbound signal. A span costs a governed run far more than handling a signal does, and anyone who
 * may signal can send thousands a second: with those spans a worker fell behind a flood, its
 * workflow tasks timed out and ran into the sandbox's 5 s limit, and the worker thread crashed. A
 * signal's `SignalWorkflow` span (in the sender's trace) and the run's evidence still record it;
 * updates (`decide`, `amendAction`) keep their spans. Bundled into the workflow sandbox: no Node APIs.
 */
import { interceptors as openTelemetryInterceptors } from '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors';
import type { WorkflowInboundCallsInterceptor, WorkflowInterceptors } from '@temporalio/workflow';

export const interceptors = (): WorkflowInterceptors => {
  const base = openTelemetryInterceptors();
  return { ...base, inbound: (base.inbound ?? []).map(withoutSignalSpans) };
};

/** `inbound` as it is, but signals pass straight to the handler. */
function withoutSignalSpans(inbound: WorkflowInboundCallsInterceptor): WorkflowInboundCallsInterceptor {
  const plain: WorkflowInboundCallsInterceptor = Object.create(inbound);
  plain.handleSignal = (input, next) => next(input);
  return plain;
}
