/**
 * Which workers run a workspace: its isolation setting in the policy file names a worker pool, and
 * each pool is one Temporal task queue. Workers started for chosen workspaces or tiers poll only
 * those queues, so another workspace's runs never reach them; the client helper routes each run to
 * its workspace's queue. Pure (no I/O): the worker, the client and `portarium policy check` share it.
 *
 *   isolation: shared            (default) the shared queue, `<base>` (e.g. `portarium`)
 *   isolation: dedicated         the workspace's own queue, `<base>.ws.<workspace>`
 *   isolation: { tier: gold }    a tier's queue, shared by the workspaces of that tier, `<base>.tier.gold`
 *
 * Outside the decision snapshot and its hash: where a run executes does not decide it.
 */
import { z } from 'zod';

const TIER_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/;

export const Isolation = z.union(
  [
    z.literal('shared'),
    z.literal('dedicated'),
    z.strictObject({ tier: z.string().regex(TIER_NAME, 'expected a tier name: lower-case letters, digits and -, at most 31') }),
  ],
  { error: 'expected shared, dedicated or { tier: <name> }' },
);
export type Isolation = z.infer<typeof Isolation>;

/** The worker pool a queue belongs to. */
export type Pool = { kind: 'shared' } | { kind: 'workspace'; workspaceId: string } | { kind: 'tier'; tier: string };

function poolOf(workspaceId: string, isolation: Isolation | undefined): Pool {
  if (isolation === undefined || isolation === 'shared') return { kind: 'shared' };
  if (isolation === 'dedicated') return { kind: 'workspace', workspaceId };
  return { kind: 'tier', tier: isolation.tier };
}

function queueOfPool(base: string, pool: Pool): string {
  switch (pool.kind) {
    case 'shared':
      return base;
    case 'workspace':
      return `${base}.ws.${pool.workspaceId}`;
    default:
      return `${base}.tier.${pool.tier}`;
  }
}

export function describePool(pool: Pool): string {
  return pool.kind === 'shared' ? 'the shared pool' : pool.kind === 'workspace' ? `workspace ${pool.workspaceId} (dedicated)` : `tier ${pool.tier}`;
}

/** Maps workspaces to task queues. Unknown workspaces go to the shared queue (where policy denies them). */
export class TaskQueueRouting {
  constructor(
    readonly base: string,
    private readonly isolation: ReadonlyMap<string, Isolation> = new Map(),
  ) {}

  poolFor(workspaceId: string): Pool {
    return poolOf(workspaceId, this.isolation.get(workspaceId));
  }

  queueFor(workspaceId: string): string {
    return queueOfPool(this.base, this.poolFor(workspaceId));
  }

  /** Every queue some workspace is routed to, with its workspaces (the shared queue always). */
  queues(): { queue: string; pool: Pool; workspaces: string[] }[] {
    const byQueue = new Map<string, { queue: string; pool: Pool; workspaces: string[] }>([[this.base, { queue: this.base, pool: { kind: 'shared' }, workspaces: [] }]]);
    for (const ws of [...this.isolation.keys()].sort()) {
      const pool = this.poolFor(ws);
      const queue = queueOfPool(this.base, pool);
      if (!byQueue.has(queue)) byQueue.set(queue, { queue, pool, workspaces: [] });
      byQueue.get(queue)!.workspaces.push(ws);
    }
    return [...byQueue.values()];
  }
}
