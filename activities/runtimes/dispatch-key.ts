/**
 * The dispatch key and the dispatch id: one rule for both.
 *
 * - The dispatch key (`DispatchRequest.dispatchKey`, `<workflowId>/<actionHash>`) names one governed
 *   action; every attempt of its dispatch carries the same key. It is not the client's idempotency key,
 *   which names the run (and becomes its workflow id).
 * - The dispatch id is what runtimes see: the first 32 hex digits of SHA-256 of the dispatch key. It is
 *   the `x-portarium-dispatch-id` header, Activepieces' and StackStorm's `portarium.dispatchId`, Kestra's
 *   `portarium_dispatch` label and the root of echo's `externalRef`. Derived here only, once per
 *   attempt, and handed to adapters as `RuntimeCall.dispatchId`.
 */
import { createHash } from 'node:crypto';
import { FailureType, refusal } from '../../workflows/failures';
import type { DispatchRequest } from '../../workflows/types';

/**
 * A dispatch request recorded by a worker from before the rename: the dispatch key was then called
 * `idempotencyKey`. Activity tasks (and their retries) of runs started by such a worker still carry it.
 */
export type LegacyDispatchRequest = Omit<DispatchRequest, 'dispatchKey'> & { idempotencyKey: string };

/**
 * The request adapters get: `dispatchKey`, plus `idempotencyKey` as a deprecated alias with the same
 * value, because `RuntimeCall` is public (custom adapters may read the old name).
 */
export type AdapterRequest = DispatchRequest & {
  /** @deprecated The same value as `dispatchKey`; read that. Kept for adapters written against the old name. */
  readonly idempotencyKey: string;
};

/** Longest dispatch key accepted: generous over a workflow id (Temporal caps ids at 1000 bytes), `/` and a 64-hex hash. */
const MAX_DISPATCH_KEY = 2048;

/**
 * The activity input as adapters get it: the dispatch key taken from `dispatchKey`, or from the legacy
 * `idempotencyKey` of an older worker's request. Without a usable key nothing is sent: a dispatch that
 * runtimes could not recognise on retry is refused (non-retryable).
 */
export function adapterRequestOf(req: DispatchRequest | LegacyDispatchRequest): AdapterRequest {
  const raw = req as Partial<DispatchRequest> & { idempotencyKey?: unknown };
  const key = typeof raw.dispatchKey === 'string' ? raw.dispatchKey : raw.idempotencyKey;
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_DISPATCH_KEY) {
    throw refusal(FailureType.InvalidMessage, 'dispatch request has no usable dispatchKey (nor a legacy idempotencyKey); nothing was sent');
  }
  const { idempotencyKey: _legacy, ...rest } = raw;
  return { ...(rest as DispatchRequest), dispatchKey: key, idempotencyKey: key };
}

const digestOf = (dispatchKey: string) => createHash('sha256').update(dispatchKey).digest('hex');

/** The dispatch id runtimes see for a dispatch key: 32 hex digits. */
export function dispatchIdOf(dispatchKey: string): string {
  return digestOf(dispatchKey).slice(0, 32);
}

/** The `traceparent` span id used when no span is active: the next 16 hex digits of the same digest. */
export function fallbackSpanIdOf(dispatchKey: string): string {
  return digestOf(dispatchKey).slice(32, 48);
}
