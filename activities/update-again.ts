/**
 * Send a Temporal update again when the server aborted it without applying it.
 *
 * A registry (grants, revocations, break-glass ledger) continues as new in the workflow task that
 * handles its last updates. If a signal arrives while that task runs, the server refuses the task's
 * completion (unhandled command), drops the updates delivered in it and answers each caller
 * FAILED_PRECONDITION "unexpected workflow task failure". Nothing of such an update was recorded:
 * the retried task replays history without it, so sending it again (same update id) is safe. (An
 * update that arrives while the run is closing is retried by the client's own gRPC retries.) Every
 * other error, and every refusal by the workflow, is the caller's answer.
 */
import { randomUUID } from 'node:crypto';
import { ServiceError, isGrpcServiceError, type WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';

const FAILED_PRECONDITION = 9;
const ATTEMPTS = 8;
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 2_000;

/** Whether `err` says the server dropped the update unapplied (see above). */
export function updateDroppedUnapplied(err: unknown): boolean {
  const cause = err instanceof ServiceError ? err.cause : err;
  if (!isGrpcServiceError(cause)) return false;
  return cause.code === FAILED_PRECONDITION && /unexpected workflow task failure/i.test(`${cause.details ?? ''} ${cause.message}`);
}

/** `handle.executeUpdate`, sent again (same update id, backing off) while the server drops it unapplied. */
export async function executeUpdateAgain<Ret, Args extends [any, ...any[]]>(
  handle: WorkflowHandle,
  def: UpdateDefinition<Ret, Args>,
  opts: { args: Args; updateId?: string },
): Promise<Ret> {
  const updateId = opts.updateId ?? randomUUID();
  for (let attempt = 1; ; attempt++) {
    try {
      return await handle.executeUpdate(def, { args: opts.args, updateId });
    } catch (err) {
      if (attempt >= ATTEMPTS || !updateDroppedUnapplied(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempt - 1))));
    }
  }
}
