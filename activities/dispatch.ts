/**
 * The single dispatch activity: routes a governed action to its runtime adapter, passes heartbeats and
 * cancellation through, and checks what comes back before it enters workflow history.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { z } from 'zod';
import { FailureType, refusal, runtimeRejected, runtimeUnavailable } from '../workflows/failures';
import { redact, redactText } from '../workflows/evidence-chain';
import type { DispatchRequest, DispatchResult, JsonValue } from '../workflows/types';
import type { RuntimeAdapter } from './runtime-port';

/** Largest runtime output kept in history, as JSON text; larger outputs are refused, not truncated. */
export const MAX_OUTPUT_BYTES = 256 * 1024;

export interface DispatchDeps {
  runtimes: RuntimeAdapter[];
}

const outcomeSchema = z.object({
  output: z.unknown().refine((v) => v !== undefined, 'runtime returned no output'),
  externalRef: z.string().max(512).optional(),
});

/** The adapter's failure with credential-looking text masked: failures are stored in history. */
function scrubbed(err: unknown): unknown {
  if (err instanceof ApplicationFailure) {
    return ApplicationFailure.create({ type: err.type ?? undefined, message: redactText(err.message), nonRetryable: err.nonRetryable ?? false, details: err.details ? [...err.details] : undefined });
  }
  return runtimeUnavailable(redactText(err instanceof Error ? err.message : String(err)));
}

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
      let raw: unknown;
      try {
        raw = await adapter.execute({ request: req, attempt: ctx.info.attempt, signal: ctx.cancellationSignal, heartbeat: (d) => ctx.heartbeat(d) });
      } catch (err) {
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure(`dispatch to ${req.runtime} cancelled`);
        throw scrubbed(err);
      }
      const parsed = outcomeSchema.safeParse(raw);
      if (!parsed.success) throw runtimeRejected(`${req.runtime} returned a malformed result: ${parsed.error.issues[0]?.message}`);
      const size = JSON.stringify(parsed.data.output).length;
      if (size > MAX_OUTPUT_BYTES) throw runtimeRejected(`${req.runtime} output is ${size} bytes; the limit is ${MAX_OUTPUT_BYTES}`);
      // Secret-looking fields never reach workflow history.
      const output = redact(parsed.data.output as JsonValue);
      return { runtime: req.runtime, output, externalRef: parsed.data.externalRef };
    },
  };
}

export type DispatchActivities = ReturnType<typeof createDispatchActivities>;
