/**
 * How a governed run's cost grows with what happens to it: history events and CPU per run for
 * HumanApprove runs decided by 1, 3 and 10 approvals, and for one that first meets 10 refused
 * approvals (the requester approving their own run). Approvals arrive as signals, as approval bots
 * send them. Part of `npm run bench` (run-bench calls it on its own server and worker).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PortariumClient, RunHandle } from '../../workers/client';
import type { Principal } from '../../workflows/types';

/** The bench workspace: one HumanApprove rule per quorum the cases need. */
export const GROWTH_WORKSPACE = 'growth';
const QUORUMS = [1, 3, 10] as const;

/** Write the bench workspace's policy file into `dir` (a copy of the shipped policy sets). */
export function writeGrowthPolicy(dir: string): void {
  const rules = QUORUMS.map((q) => ({
    id: `growth-quorum-${q}`,
    match: { runtime: 'echo', operation: `approve-${q}` },
    tier: 'HumanApprove',
    approval: { quorum: q, eligibleRoles: ['approver'] },
  }));
  fs.writeFileSync(path.join(dir, 'growth.json'), JSON.stringify({ schemaVersion: 1, kind: 'workspace', workspace: GROWTH_WORKSPACE, rules }, null, 2));
}

export interface GrowthCase {
  name: string;
  events: number;
  /** Worker+client and server CPU per run, in ms. */
  workerCpuMs: number;
  serverCpuMs: number;
}

const requester: Principal = { id: 'alice', roles: ['dev'] };
const approvers: Principal[] = Array.from({ length: 10 }, (_, i) => ({ id: `approver-${i}`, roles: ['approver'] }));

/** The action hash of `run`, once it waits for approval. */
export async function awaitingActionHash(run: RunHandle): Promise<string> {
  for (;;) {
    const s = await run.status().catch(() => undefined);
    if (s?.state === 'AwaitingApproval') return s.actionHash;
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function oneRun(portarium: PortariumClient, tag: string, i: number, quorum: number, refusals: number): Promise<string> {
  const { run, workflowId } = await portarium.startRun({
    workspaceId: GROWTH_WORKSPACE, correlationId: `${tag}-${i}`, requestedBy: requester,
    action: { runtime: 'echo', target: 'growth/bench', operation: `approve-${quorum}`, input: { i } },
    idempotencyKey: `${tag}-${i}`, reason: 'benchmark',
  });
  const actionHash = await awaitingActionHash(run);
  for (let r = 0; r < refusals; r++) await run.signalDecision('approve', { decisionId: `self-${r}`, approver: requester, actionHash });
  for (let a = 0; a < quorum; a++) await run.signalDecision('approve', { decisionId: `ok-${a}`, approver: approvers[a], actionHash });
  const result = await run.result();
  if (result.state !== 'Succeeded') throw new Error(`growth run ended ${result.state}`);
  return workflowId;
}

/**
 * `runs` runs per case, `concurrency` at a time. `cpu()` gives this process's and the server's CPU
 * seconds so far; `events(workflowId)` a finished run's history length.
 */
export async function measureGrowth(
  portarium: PortariumClient,
  opts: { tag: string; runs: number; concurrency: number; cpu: () => { self: number; server: number }; events: (workflowId: string) => Promise<number> },
): Promise<GrowthCase[]> {
  const cases = [
    { name: '1 approval', quorum: 1, refusals: 0 },
    { name: '3 approvals', quorum: 3, refusals: 0 },
    { name: '10 approvals', quorum: 10, refusals: 0 },
    { name: '10 refusals, 1 approval', quorum: 1, refusals: 10 },
  ];
  const out: GrowthCase[] = [];
  for (const c of cases) {
    const tag = `${opts.tag}-g${c.quorum}-${c.refusals}`;
    const c0 = opts.cpu();
    let next = 0;
    let last = '';
    await Promise.all(Array.from({ length: opts.concurrency }, async () => {
      while (next < opts.runs) last = await oneRun(portarium, tag, next++, c.quorum, c.refusals);
    }));
    const c1 = opts.cpu();
    out.push({
      name: c.name,
      events: await opts.events(last),
      workerCpuMs: +(((c1.self - c0.self) * 1000) / opts.runs).toFixed(1),
      serverCpuMs: +(((c1.server - c0.server) * 1000) / opts.runs).toFixed(1),
    });
  }
  return out;
}
