/**
 * The port every execution runtime implements (echo, Activepieces, Langflow, Kestra, StackStorm). An
 * adapter performs one action and throws typed failures from `workflows/failures`: `runtimeRejected`
 * (do not retry), `runtimeUnavailable` (retry), `runtimeOutcomeUnknown` (may have been applied and
 * cannot be looked up). It heartbeats while it waits, records the remote run id in its heartbeat so a
 * retry resumes instead of resending, and stops the remote run (where the API allows) when `signal`
 * aborts. Adapters reach the network only through `call.http`.
 */
import type { Connections } from '../../policies/connections';
import type { JsonValue } from '../../workflows/types';
import type { HttpClient } from '../http/client';
import type { Secret } from '../secrets/port';
import type { AdapterRequest } from './dispatch-key';

export type { AdapterRequest } from './dispatch-key';

export interface RuntimeCall {
  /** The action to perform; `request.dispatchKey` is the same on every attempt of this dispatch. */
  request: AdapterRequest;
  /**
   * The dispatch id of `request.dispatchKey` (`dispatchIdOf` in `./dispatch-key`): the one value an
   * adapter sends to its runtime to mark this dispatch, so a retry or an operator can find it.
   */
  dispatchId: string;
  /** 1 on the first try; retries of the same dispatch carry the same dispatch key and dispatch id. */
  attempt: number;
  /** Aborts when the run is cancelled or the activity times out. */
  signal: AbortSignal;
  heartbeat(details?: unknown): void;
  /** Details of the last heartbeat of an earlier attempt: resume the remote run it names. */
  previous?: unknown;
  /** The workspace's runtime connections, from its policy file. */
  connections: Connections;
  /** Outbound HTTP, bound to this workspace's allow-list for this runtime. */
  http: HttpClient;
  /** This workspace's credentials for this runtime; their values are scrubbed from results and errors. */
  secrets(): Promise<Secret>;
  /**
   * Note a credential the adapter obtained during the call (a minted session token), so it is scrubbed
   * like the workspace's secrets. Call it as soon as the value is known, before it is sent or can be
   * quoted in an error.
   */
  registerSecret(value: string): void;
}

export interface RuntimeOutcome {
  output: JsonValue;
  externalRef?: string;
}

export interface RuntimeAdapter {
  readonly name: string;
  execute(call: RuntimeCall): Promise<RuntimeOutcome>;
}
