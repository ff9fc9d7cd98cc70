/**
 * For revocation suites: a worker configured with its own registry (one per test, so tests never see
 * each other's revocations), an `echo` runtime that records when each dispatch reached it, and helpers
 * to read a run's revocation evidence.
 */
import * as assert from 'node:assert/strict';
import type { RuntimeAdapter, RuntimeCall, RuntimeOutcome } from '../../activities/runtimes/port';
import { main } from '../../workers/cli';
import type { Revocation } from '../../workflows/revocation/types';
import { DEV_KEYS } from './shared';
import type { RunHandle } from '../../workers/client';
import { RevocationClient } from '../../workers/revocations';
import type { Harness } from './harness';
import { testEnv } from './shared';
import { uid } from './harness';

/** `echo` that waits `input.delayMs` (heartbeating, cancellable) and records every call with its time. */
export class CallRecorder implements RuntimeAdapter {
  readonly name = 'echo';
  readonly calls: { workflowId: string; at: number }[] = [];
  readonly cancelled: string[] = [];

  async execute(call: RuntimeCall): Promise<RuntimeOutcome> {
    this.calls.push({ workflowId: call.request.workflowId, at: Date.now() });
    const delay = typeof call.request.input.delayMs === 'number' ? call.request.input.delayMs : 0;
    const until = Date.now() + delay;
    while (Date.now() < until) {
      if (call.signal.aborted) {
        this.cancelled.push(call.request.workflowId);
        throw new Error('cancelled');
      }
      call.heartbeat();
      await new Promise((r) => setTimeout(r, Math.min(100, until - Date.now())));
    }
    return { output: { ok: true } };
  }

  callsOf(workflowId: string, after = 0): number {
    return this.calls.filter((c) => c.workflowId === workflowId && c.at >= after).length;
  }
}

/** Worker options with a fresh registry id and a fast cache refresh. */
export function revocationOpts(runtime: RuntimeAdapter, extra: { policyDir?: string; refreshMs?: number; registryId?: string } = {}) {
  const registryId = extra.registryId ?? uid('revocations');
  return {
    registryId,
    opts: {
      connection: testEnv().nativeConnection,
      client: testEnv().client,
      runtimes: [runtime],
      ...(extra.policyDir && { policyDir: extra.policyDir }),
      config: { revocation: { registryId, refreshMs: extra.refreshMs ?? 500 } },
    },
  };
}

export const revocationsOf = (h: Harness, registryId: string) => new RevocationClient(h.client, h.taskQueue, registryId);

/** The evidence entries of a run that name a revocation. */
export async function revocationEntries(run: RunHandle): Promise<{ event: string; data?: Record<string, unknown> }[]> {
  return (await run.evidence()).entries.filter((e) => e.event.startsWith('Revocation')).map((e) => ({ event: e.event, data: e.data as Record<string, unknown> }));
}

/** The run ended Revoked by `rev`, its status and evidence name it, with `effect`. */
export async function assertRevoked(run: RunHandle, rev: Revocation, effect: string): Promise<void> {
  const result = await run.result();
  assert.equal(result.state, 'Revoked', run.workflowId);
  const st = await run.status();
  assert.equal(st.revocation?.revocationId, rev.id);
  assert.equal(st.revocation?.effect, effect, run.workflowId);
  const entries = await revocationEntries(run);
  assert.ok(entries.some((e) => e.data?.revocationId === rev.id), `evidence names ${rev.id}: ${JSON.stringify(entries)}`);
  const ev = (await run.evidence()).entries.map((e) => e.event);
  assert.equal(ev[ev.length - 1], 'StateRevoked');
}

/** The `portarium` CLI in-process, with `env` (dev keys added). */
export async function cli(env: Record<string, string>, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: { ...DEV_KEYS, ...env } });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
