/**
 * The port every execution runtime implements (echo here; Activepieces, Langflow, Kestra and StackStorm
 * adapters later). An adapter performs one action and throws typed failures from `workflows/failures`:
 * `runtimeRejected` (do not retry) or `runtimeUnavailable` (retry). It must heartbeat while it waits
 * and stop when `signal` aborts, so cancel reaches the remote run.
 */
import type { DispatchRequest, JsonValue } from '../workflows/types';

export interface RuntimeCall {
  request: DispatchRequest;
  /** 1 on the first try; retries of the same dispatch carry the same idempotency key. */
  attempt: number;
  /** Aborts when the run is cancelled or the activity times out. */
  signal: AbortSignal;
  heartbeat(details?: unknown): void;
}

export interface RuntimeOutcome {
  output: JsonValue;
  externalRef?: string;
}

export interface RuntimeAdapter {
  readonly name: string;
  execute(call: RuntimeCall): Promise<RuntimeOutcome>;
}
