/**
 * Builds a `RuntimeCall` for driving one adapter directly against a fake server (no Temporal): the
 * guarded HTTP client with a 127.0.0.1 allow-list, an in-memory secret, a recorder of heartbeats and
 * an abort controller for cancellation.
 */
import { createGuardedHttp } from '../../activities/http/client';
import { adapterRequestOf, dispatchIdOf } from '../../activities/runtimes/dispatch-key';
import type { RuntimeCall } from '../../activities/runtimes/port';
import type { Secret } from '../../activities/secrets/port';
import { Connections } from '../../policies/connections';
import type { DispatchRequest, JsonValue } from '../../workflows/types';

export interface TestCall extends RuntimeCall {
  heartbeats: unknown[];
  /** Values the adapter registered with `registerSecret`, in order. */
  registered: string[];
  controller: AbortController;
}

export interface TestCallOptions {
  runtime: string;
  target: string;
  operation?: string;
  input?: { [k: string]: JsonValue };
  tools?: string[];
  tier?: DispatchRequest['tier'];
  /** Raw connections section, parsed with the policy schema (so defaults apply). */
  connections: unknown;
  secret?: Secret;
  attempt?: number;
  previous?: unknown;
  /** @default ['127.0.0.1:*'] */
  hosts?: string[];
  /** @default `ws1:key-1/aaa…a` (the run `ws1:key-1`, action hash 64 × `a`) */
  dispatchKey?: string;
}

/** The dispatch key of every test call unless one is given. */
export const TEST_DISPATCH_KEY = `ws1:key-1/${'a'.repeat(64)}`;

export function testCall(o: TestCallOptions): TestCall {
  const controller = new AbortController();
  const heartbeats: unknown[] = [];
  const registered: string[] = [];
  const request = adapterRequestOf({
    workspaceId: 'ws1',
    correlationId: 'corr-1',
    workflowId: 'ws1:key-1',
    runtime: o.runtime,
    target: o.target,
    operation: o.operation ?? 'write',
    input: o.input ?? {},
    tools: o.tools,
    tier: o.tier ?? 'HumanApprove',
    actionHash: 'a'.repeat(64),
    dispatchKey: o.dispatchKey ?? TEST_DISPATCH_KEY,
  });
  return {
    request,
    dispatchId: dispatchIdOf(request.dispatchKey),
    attempt: o.attempt ?? 1,
    signal: controller.signal,
    controller,
    heartbeats,
    heartbeat: (d) => heartbeats.push(d),
    previous: o.previous,
    connections: Connections.parse(o.connections),
    http: createGuardedHttp({ workspaceId: 'ws1', runtime: o.runtime, rule: { hosts: o.hosts ?? ['127.0.0.1:*'], allowLinkLocal: false } }),
    secrets: async () => o.secret ?? {},
    registered,
    registerSecret: (v) => registered.push(v),
  };
}
