/**
 * The single dispatch activity: routes a governed action to its runtime adapter with the workspace's
 * connection, egress allow-list and credentials, passes heartbeats and cancellation through, and checks
 * what comes back before it enters workflow history: secret values scrubbed, secret-looking fields
 * redacted, large outputs moved to the payload store by reference.
 */
import { createHash } from 'node:crypto';
import * as otel from '@opentelemetry/api';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { z } from 'zod';
import type { LoadedPolicies } from '../policies/load';
import { FailureType, refusal, runtimeRejected, runtimeUnavailable } from '../workflows/failures';
import { redact, redactText } from '../workflows/evidence-chain';
import { canonicalJson } from '../workflows/hashing';
import type { DispatchRequest, DispatchResult, JsonValue } from '../workflows/types';
import { createGuardedHttp } from './http-client';
import type { PayloadRef, PayloadStore } from './payload-store';
import type { RuntimeAdapter } from './runtime-port';
import { SecretScrubber } from './secret-scrubber';
import { runTraceparent } from './trace-context';
import type { SecretStore } from './secrets-port';

/** Largest runtime output kept in history, as JSON text; larger outputs go to the payload store. */
export const MAX_OUTPUT_BYTES = 256 * 1024;

export interface DispatchDeps {
  runtimes: RuntimeAdapter[];
  policies: LoadedPolicies;
  secrets: SecretStore;
  payloads: PayloadStore;
}

const outcomeSchema = z.object({
  output: z.unknown().refine((v) => v !== undefined, 'runtime returned no output'),
  externalRef: z.string().max(512).optional(),
});

/** The adapter's failure with secret values and credential-looking text masked: failures are stored in history. */
function scrubbed(err: unknown, scrub: SecretScrubber): unknown {
  const clean = (t: string) => redactText(scrub.text(t));
  if (err instanceof ApplicationFailure) {
    const details = err.details ? err.details.map((d) => scrub.json(d as JsonValue)) : undefined;
    return ApplicationFailure.create({ type: err.type ?? undefined, message: clean(err.message), nonRetryable: err.nonRetryable ?? false, details });
  }
  return runtimeUnavailable(clean(err instanceof Error ? err.message : String(err)));
}

/**
 * Headers every outbound call carries, so the runtime's logs can be joined to the run. `traceparent`
 * continues the active span (the RunActivity span, so the runtime joins the run's trace); with no
 * active span it falls back to one deterministic trace id per run and a span id per dispatch.
 */
export function correlationHeaders(req: DispatchRequest, active: otel.Span | undefined = otel.trace.getActiveSpan()): Record<string, string> {
  const dispatchId = createHash('sha256').update(req.idempotencyKey).digest('hex');
  return {
    'x-portarium-workspace': req.workspaceId,
    'x-portarium-correlation-id': encodeURIComponent(req.correlationId),
    'x-portarium-dispatch-id': dispatchId.slice(0, 32),
    traceparent: runTraceparent(req.workflowId, dispatchId.slice(32, 48), active),
  };
}

/** Span attributes of a dispatch: identifiers only, never input, output or credentials. */
export function dispatchAttributes(req: DispatchRequest): otel.Attributes {
  return {
    'portarium.workspace': req.workspaceId,
    'portarium.correlation_id': req.correlationId,
    'portarium.run_id': req.workflowId,
    'portarium.tier': req.tier ?? 'None',
    'portarium.runtime': req.runtime,
    'portarium.decision': 'Allow',
  };
}

const evidenceRef = (kind: string, ref: PayloadRef) => ({ kind, uri: ref.uri, sha256: ref.sha256, contentType: ref.contentType });

export function createDispatchActivities(deps: DispatchDeps) {
  const byName = new Map(deps.runtimes.map((r) => [r.name, r]));
  return {
    /** Execute one approved action on its runtime. Retries reuse `idempotencyKey`. */
    async dispatchAction(req: DispatchRequest): Promise<DispatchResult> {
      const adapter = byName.get(req.runtime);
      if (!adapter) {
        throw refusal(FailureType.UnknownRuntime, `no runtime named ${req.runtime} is registered on this worker (have: ${[...byName.keys()].join(', ')})`);
      }
      const ctx = Context.current();
      otel.trace.getActiveSpan()?.setAttributes(dispatchAttributes(req));
      const scrub = new SecretScrubber();
      // What was asked for (credential-like fields masked) is stored by content before anything is
      // sent: evidence refers to it by hash.
      const inputRef = await deps.payloads.put(req.workspaceId, canonicalJson(redact(req.input)), 'application/json');
      const ws = deps.policies.connectionsFor(req.workspaceId);
      let raw: unknown;
      try {
        raw = await adapter.execute({
          request: req,
          attempt: ctx.info.attempt,
          signal: ctx.cancellationSignal,
          heartbeat: (d) => ctx.heartbeat(d),
          previous: ctx.info.heartbeatDetails,
          connections: ws.connections,
          http: createGuardedHttp({ workspaceId: req.workspaceId, runtime: req.runtime, rule: ws.egress[req.runtime], headers: correlationHeaders(req) }),
          secrets: async () => scrub.remember(await deps.secrets.read(req.workspaceId, req.runtime)),
        });
      } catch (err) {
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure(`dispatch to ${req.runtime} cancelled`);
        const failure = scrubbed(err, scrub) as ApplicationFailure;
        ctx.metricMeter
          .createCounter('portarium_runtime_errors', 'errors', 'Failed dispatch attempts by runtime and failure type')
          .add(1, { runtime: req.runtime, failure_type: failure.type ?? 'Unknown' });
        ctx.log.warn('dispatch failed', { runtime: req.runtime, workspaceId: req.workspaceId, attempt: ctx.info.attempt, type: failure.type, message: failure.message });
        throw failure;
      }
      const parsed = outcomeSchema.safeParse(raw);
      if (!parsed.success) throw runtimeRejected(`${req.runtime} returned a malformed result: ${parsed.error.issues[0]?.message}`);
      // Secret values, then secret-looking fields, never reach workflow history.
      const output = redact(scrub.json(parsed.data.output as JsonValue));
      const text = JSON.stringify(output);
      const small = text.length <= MAX_OUTPUT_BYTES;
      let outputRef: PayloadRef | undefined;
      try {
        outputRef = await deps.payloads.put(req.workspaceId, text, 'application/json');
      } catch (err) {
        // The action has run: failing now would send it again. A small output still reaches history.
        if (!small) throw err;
        ctx.log.warn('runtime output not stored in the payload store', { workspaceId: req.workspaceId, error: (err as Error).message });
      }
      const payloadRefs = [evidenceRef('ActionInput', inputRef), ...(outputRef ? [evidenceRef('RuntimeOutput', outputRef)] : [])];
      return {
        runtime: req.runtime,
        output: small ? output : { payloadRef: { ...outputRef! } },
        externalRef: parsed.data.externalRef,
        payloadRefs,
      };
    },
  };
}

export type DispatchActivities = ReturnType<typeof createDispatchActivities>;
