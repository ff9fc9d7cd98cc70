/**
 * Client side of standing approvals: start a workspace's grant registry if it is not running
 * (signal-with-start of a ping, on the workspace's task queue), then grant, revoke or list by update
 * and query. Used by the CLI and by services; the registry and every run check each grant again.
 */
import type { Client } from '@temporalio/client';
import { executeUpdateAgain } from '../activities/update-again';
import type { TaskQueueRouting } from '../policies/isolation';
import { grantRegistryId } from '../workflows/ids';
import { grantUpdate, grantsPingSignal, grantsQuery, revokeGrantUpdate } from '../workflows/grants/messages';
import type { Grant, GrantRequest, GrantsView, RevokeGrantRequest } from '../workflows/grants/types';

export class GrantClient {
  constructor(
    readonly client: Client,
    /** Where each workspace's workflows run (its registry's activities must pass the worker's workspace guard). */
    readonly routing: TaskQueueRouting,
  ) {}

  async registry(workspaceId: string) {
    return this.client.workflow.signalWithStart('grantRegistry', {
      workflowId: grantRegistryId(workspaceId),
      taskQueue: this.routing.queueFor(workspaceId),
      args: [{ schemaVersion: 1, workspaceId }],
      signal: grantsPingSignal,
      signalArgs: [],
    });
  }

  async grant(workspaceId: string, req: GrantRequest): Promise<Grant> {
    return executeUpdateAgain(await this.registry(workspaceId), grantUpdate, { args: [req] });
  }

  async revoke(workspaceId: string, req: RevokeGrantRequest): Promise<Grant> {
    return executeUpdateAgain(await this.registry(workspaceId), revokeGrantUpdate, { args: [req] });
  }

  async list(workspaceId: string): Promise<GrantsView> {
    return (await this.registry(workspaceId)).query(grantsQuery);
  }
}
