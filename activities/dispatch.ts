/**
 * The single dispatch activity: routes a governed action to its runtime adapter, passes heartbeats and
 * cancellation through, and checks what comes back before it enters workflow history.
 */
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { z } from 'zod';
import { FailureType, refusal, runtimeRejected } from '../workflows/failures';
import type { DispatchRequest, DispatchResult } from '../workflows/types';
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
        throw err;
      }
      const parsed = outcomeSchema.safeParse(raw);
      if (!parsed.success) throw runtimeRejected(`${req.runtime} returned a malformed result: ${parsed.error.issues[0]?.message}`);
      const size = JSON.stringify(parsed.data.output).length;
      if (size > MAX_OUTPUT_BYTES) throw runtimeRejected(`${req.runtime} output is ${size} bytes; the limit is ${MAX_OUTPUT_BYTES}`);
      return { runtime: req.runtime, output: parsed.data.output as DispatchResult['output'], externalRef: parsed.data.externalRef };
    },
  };
}

export type DispatchActivities = ReturnType<typeof createDispatchActivities>;
