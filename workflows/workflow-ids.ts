/**
 * Workflow ids carry their workspace as a prefix, so every component that sees only an id (the payload
 * codec, the quota coordinator, a worker checking that a run is its own) can tell whose it is.
 * Workspace ids hold neither ':' nor '/' (workflows/schemas.ts), so the prefix is unambiguous:
 *   `<workspace>:<idempotency key>`       a governed run
 *   `<workspace>:<run key>/events`        its event hand-off child
 *   `<workspace>/quota/<runtime>`         the workspace's quota coordinator for one runtime
 */

/** The workflow id of a run: one per workspace and idempotency key, so a repeated start finds it. */
export function runWorkflowId(workspaceId: string, idempotencyKey: string): string {
  return `${workspaceId}:${idempotencyKey}`;
}

/** The quota coordinator of one workspace and runtime. Uses '/', which no run id has after its workspace. */
export function quotaWorkflowId(workspaceId: string, runtime: string): string {
  return `${workspaceId}/quota/${runtime}`;
}

const WORKSPACE_PREFIX = /^([a-z0-9][a-z0-9_-]{0,62})[:/]/;

/** The workspace a workflow id belongs to, or undefined when the id has no workspace prefix. */
export function workspaceOfWorkflowId(workflowId: string): string | undefined {
  return WORKSPACE_PREFIX.exec(workflowId)?.[1];
}

/**
 * Why a run's ids disagree, if they do: its workflow id must carry its input's workspace (the payload
 * codec and the workers route and encrypt by the id), and its requester may not act for another one.
 */
export function runWorkspaceCrossing(workflowId: string, input: { workspaceId: string; requestedBy: { id: string; workspaceId?: string } }): string | undefined {
  const owner = workspaceOfWorkflowId(workflowId);
  if (owner !== input.workspaceId) {
    return owner === undefined
      ? `workflow id ${workflowId} does not start with its workspace (expected ${input.workspaceId}:<idempotency key>)`
      : `workflow id ${workflowId} belongs to workspace ${owner}, but the input names workspace ${input.workspaceId}`;
  }
  const by = input.requestedBy;
  if (by.workspaceId !== undefined && by.workspaceId !== input.workspaceId) return `requester ${by.id} acts for workspace ${by.workspaceId}, not ${input.workspaceId}`;
  return undefined;
}
