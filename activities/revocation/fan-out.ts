/**
 * The revocation activities. `fanOutRevocation` (called by the registry) finds the runs in flight that
 * a new revocation may cover, by visibility, and signals each `revoked` with the revocation id only;
 * `confirmRevocation` (called by a run that got such a signal) asks the registry what that id is, so
 * a forged signal changes nothing: a run acts only on what the registry holds.
 */
import { Context } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { revocationsQuery } from '../../workflows/revocation/messages';
import { revokedSignal } from '../../workflows/run/messages';
import { WorkspaceKey } from '../../workflows/search-attributes';
import type { Revocation, RevocationsView } from '../../workflows/revocation/types';

/** Visibility lags a run's start and its first search-attribute upsert: a second pass catches those runs. */
const SECOND_PASS_AFTER_MS = 3_000;

export interface RevocationDeps {
  /** Workflow id of the namespace's registry. */
  registryId: string;
}

/** The registry's view, or an empty one when no registry was ever started (nothing revoked). */
export async function readRegistry(client: Client, registryId: string): Promise<RevocationsView> {
  try {
    // From the memo the registry keeps (describe): no worker has to poll the registry's queue, so a
    // worker on a dedicated queue reads it as well as one on the shared queue.
    const { memo } = await client.workflow.getHandle(registryId).describe();
    const published = memo?.revocations as Pick<RevocationsView, 'schemaVersion' | 'version' | 'active'> | undefined;
    if (!published) return { schemaVersion: 1, version: 0, active: [], lifted: [] };
    if (!Array.isArray(published.active)) throw new Error(`registry ${registryId}: unreadable memo`);
    return { schemaVersion: 1, version: published.version, active: published.active, lifted: [] };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { schemaVersion: 1, version: 0, active: [], lifted: [] };
    throw err;
  }
}

/** The registry's whole view (in force and lifted), by query: needs a worker on the registry's queue. */
export async function queryRegistry(client: Client, registryId: string): Promise<RevocationsView> {
  try {
    return await client.workflow.getHandle(registryId).query(revocationsQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { schemaVersion: 1, version: 0, active: [], lifted: [] };
    throw err;
  }
}

/** Visibility query for the runs a revocation may reach: running governed runs, of its workspace unless `*`. */
export function runsInScopeQuery(revocation: Revocation): string {
  const ws = revocation.scope.workspaceId;
  return `WorkflowType="governedRun" AND ExecutionStatus="Running"${ws === '*' ? '' : ` AND ${WorkspaceKey.name}="${ws}"`}`;
}

async function signalPass(client: Client, revocation: Revocation, told: Set<string>, heartbeat: () => void): Promise<void> {
  for await (const wf of client.workflow.list({ query: runsInScopeQuery(revocation) })) {
    if (told.has(wf.workflowId)) continue;
    heartbeat();
    try {
      await client.workflow.getHandle(wf.workflowId).signal(revokedSignal, { revocationId: revocation.id });
    } catch (err) {
      // A run that closed meanwhile needs nothing.
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    told.add(wf.workflowId);
  }
}

export function createRevocationActivities(deps: RevocationDeps) {
  return {
    /** Signal every run in flight the revocation may cover; the run matches it against its own action. */
    async fanOutRevocation({ revocation }: { revocation: Revocation }): Promise<{ signalled: number }> {
      const ctx = Context.current();
      const told = new Set<string>();
      await signalPass(ctx.client, revocation, told, () => ctx.heartbeat());
      await ctx.sleep(SECOND_PASS_AFTER_MS);
      await signalPass(ctx.client, revocation, told, () => ctx.heartbeat());
      ctx.log.info('revocation fanned out', { id: revocation.id, signalled: told.size });
      return { signalled: told.size };
    },

    /** What the registry holds under `revocationId` (in force or lifted), or null when it holds nothing by that id. */
    async confirmRevocation({ revocationId }: { revocationId: string }): Promise<{ revocation: Revocation | null }> {
      // Asked while the registry fans out (so a worker polls its queue): the query answers lifted ones too.
      const view = await queryRegistry(Context.current().client, deps.registryId);
      const found = [...view.active, ...view.lifted].find((r) => r.id === revocationId);
      return { revocation: found ?? null };
    },
  };
}

export type RevocationActivities = ReturnType<typeof createRevocationActivities>;
