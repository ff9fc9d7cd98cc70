/**
 * The built-in `echo` runtime: returns the action's input, applied at most once per dispatch key.
 * It stands in for a real runtime in the demo and tests, with the same obligations: honour the
 * dispatch key, heartbeat while busy, stop on cancel, and fail with typed failures.
 *
 * Control fields in `action.input` (all optional):
 * - `delayMs` (0..600000): work this long before applying, heartbeating, cancellable.
 * - `fail`: `"rejected"` (non-retryable) or `"unavailable"` (retryable, every attempt).
 * - `failAttempts` (n): fail the first n attempts as unavailable, then succeed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sha256Hex } from '../../workflows/hashing';
import { runtimeRejected, runtimeUnavailable } from '../../workflows/failures';
import type { JsonValue } from '../../workflows/types';
import type { RuntimeAdapter, RuntimeCall, RuntimeOutcome } from './port';

/** Where echo records what it applied; tests count applications here. */
export interface EchoLedger {
  /** Note a call; returns true if this dispatch key was applied now, false if it had been applied before. */
  apply(dispatchKey: string, record: { workflowId: string; attempt: number }): Promise<boolean>;
  /** How many distinct keys were applied, and how many calls were made. */
  counts(): Promise<{ applied: number; calls: number }>;
}

export class MemoryEchoLedger implements EchoLedger {
  private readonly applied = new Set<string>();
  private calls = 0;
  async apply(key: string): Promise<boolean> {
    this.calls++;
    if (this.applied.has(key)) return false;
    this.applied.add(key);
    return true;
  }
  async counts() {
    return { applied: this.applied.size, calls: this.calls };
  }
}

/** Survives worker restarts: one file per applied key (created exclusively), one line per call. */
export class FileEchoLedger implements EchoLedger {
  constructor(private readonly dir: string) {
    fs.mkdirSync(path.join(dir, 'applied'), { recursive: true });
  }
  async apply(key: string, record: { workflowId: string; attempt: number }): Promise<boolean> {
    const line = JSON.stringify({ key, ...record, pid: process.pid }) + '\n';
    await fs.promises.appendFile(path.join(this.dir, 'calls.log'), line);
    try {
      await fs.promises.writeFile(path.join(this.dir, 'applied', sha256Hex(key)), line, { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }
  async counts() {
    const applied = (await fs.promises.readdir(path.join(this.dir, 'applied'))).length;
    const log = await fs.promises.readFile(path.join(this.dir, 'calls.log'), 'utf8').catch(() => '');
    return { applied, calls: log.split('\n').filter(Boolean).length };
  }
}

const TICK_MS = 200;

async function busyWait(call: RuntimeCall, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (call.signal.aborted) throw new Error('echo: cancelled');
    call.heartbeat({ remainingMs: until - Date.now() });
    await new Promise((resolve) => setTimeout(resolve, Math.min(TICK_MS, until - Date.now())));
  }
  if (call.signal.aborted) throw new Error('echo: cancelled');
}

export function createEchoRuntime(ledger: EchoLedger = new MemoryEchoLedger()): RuntimeAdapter {
  return {
    name: 'echo',
    async execute(call: RuntimeCall): Promise<RuntimeOutcome> {
      const { input, dispatchKey, workflowId } = call.request;
      const delayMs = typeof input.delayMs === 'number' ? input.delayMs : 0;
      if (delayMs < 0 || delayMs > 600_000) throw runtimeRejected('echo: delayMs must be within 0..600000');
      if (input.fail === 'rejected') throw runtimeRejected('echo: asked to reject');
      if (input.fail === 'unavailable') throw runtimeUnavailable('echo: asked to be unavailable');
      if (typeof input.failAttempts === 'number' && call.attempt <= input.failAttempts) {
        throw runtimeUnavailable(`echo: attempt ${call.attempt} fails as asked`);
      }
      if (delayMs) await busyWait(call, delayMs);
      const firstApplication = await ledger.apply(dispatchKey, { workflowId, attempt: call.attempt });
      const output: JsonValue = { echoed: input, firstApplication };
      // The first 16 hex of the dispatch id: the reference echo has always given (a prefix of the same hash).
      return { output, externalRef: `echo:${call.dispatchId.slice(0, 16)}` };
    },
  };
}
