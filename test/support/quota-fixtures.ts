/**
 * For quota suites: a policy directory whose workspace has quotas (one fresh workspace per test, since
 * a coordinator lives on the task queue of the run that started it), and an `echo` runtime that
 * records how many dispatches are in flight at every moment and in which order they started.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import type { RuntimeAdapter, RuntimeCall, RuntimeOutcome } from '../../activities/runtimes/port';
import type { RuntimeQuota } from '../../policies/quotas';
import { quotaStatusQuery } from '../../workflows/run/messages';
import type { EvidenceEntry } from '../../workflows/evidence-chain';
import type { WorkspaceQuotaStatus } from '../../workflows/types';
import { quotaWorkflowId } from '../../workflows/ids';
import { TEST_POLICY_DIR, uid } from './harness';

/** A policy dir with workspace `<id>` (rules as the `test` workspace), these quotas and `extra` fields. */
export function quotaPolicyDir(quotas: Record<string, RuntimeQuota>, extra: object = {}): { dir: string; workspaceId: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-quota-policies-'));
  const workspaceId = uid('q');
  fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
  const ws = JSON.parse(fs.readFileSync(path.join(TEST_POLICY_DIR, 'test.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, `${workspaceId}.json`), JSON.stringify({ ...ws, workspace: workspaceId, quotas, ...extra }));
  return { dir, workspaceId };
}

/** `echo` that waits `input.delayMs` (heartbeating, cancellable) and counts dispatches in flight. */
export class InFlightRecorder implements RuntimeAdapter {
  readonly name = 'echo';
  inFlight = 0;
  maxInFlight = 0;
  /** Workflow ids in the order their dispatch started (retries included). */
  readonly started: string[] = [];

  async execute(call: RuntimeCall): Promise<RuntimeOutcome> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.started.push(call.request.workflowId);
    try {
      const delay = typeof call.request.input.delayMs === 'number' ? call.request.input.delayMs : 0;
      const until = Date.now() + delay;
      while (Date.now() < until) {
        if (call.signal.aborted) throw new Error('cancelled');
        call.heartbeat();
        await new Promise((r) => setTimeout(r, Math.min(100, until - Date.now())));
      }
      return { output: { ok: true } };
    } finally {
      this.inFlight--;
    }
  }
}

export async function quotaStatus(client: Client, workspaceId: string, runtime = 'echo'): Promise<WorkspaceQuotaStatus | undefined> {
  return client.workflow.getHandle(quotaWorkflowId(workspaceId, runtime)).query(quotaStatusQuery).catch(() => undefined);
}

/** Poll the coordinator's status until `predicate` holds. */
export async function waitForQuota(client: Client, workspaceId: string, predicate: (s: WorkspaceQuotaStatus) => boolean, timeoutMs = 20_000): Promise<WorkspaceQuotaStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: WorkspaceQuotaStatus | undefined;
  while (Date.now() < deadline) {
    last = await quotaStatus(client, workspaceId);
    if (last && predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`quota of ${workspaceId}: condition not met; last status: ${JSON.stringify(last)}`);
}

/**
 * Most leases held at once, from the runs' evidence: each run holds from its `QuotaGranted` entry to
 * its terminal entry (its release is signalled after that, and the next grant comes after the release).
 */
export function maxOverlap(chains: EvidenceEntry[][]): number {
  const marks: [number, number][] = [];
  for (const entries of chains) {
    const granted = entries.find((e) => e.event === 'QuotaGranted');
    if (!granted) continue;
    marks.push([Date.parse(granted.occurredAt), 1], [Date.parse(entries[entries.length - 1].occurredAt), -1]);
  }
  // At equal times an end comes first: the next grant can only follow the release.
  marks.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of marks) max = Math.max(max, (now += d));
  return max;
}

/**
 * Workflow ids in the order the coordinator first granted them, read from its own history (every
 * execution of the chain, oldest first). Dispatch start order can differ: two runs granted within
 * one workflow task race to start their dispatch activity.
 */
export async function grantOrder(client: Client, workspaceId: string, runtime = 'echo'): Promise<string[]> {
  const id = quotaWorkflowId(workspaceId, runtime);
  const chain: string[][] = [];
  let runId: string | undefined;
  for (let hop = 0; hop < 50; hop++) {
    const history = await client.workflow.getHandle(id, runId).fetchHistory();
    const events = history.events ?? [];
    chain.unshift(
      events
        .map((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes)
        .filter((a) => a?.signalName === 'quotaGranted')
        .map((a) => a!.workflowExecution?.workflowId ?? ''),
    );
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
    if (!runId) break;
  }
  const seen = new Set<string>();
  return chain.flat().filter((w) => !seen.has(w) && seen.add(w));
}
