/**
 * The ids of Portarium, in one module: what a workspace id and a runtime name may be (the patterns
 * themselves are written once in policies/vocabulary.ts, the lowest floor, so policy files can use
 * them too), their zod schemas, and the workflow ids built from them. Pure and bundle-safe.
 *
 * Workflow ids carry their workspace as a prefix, so every component that sees only an id (the payload
 * codec, the quota coordinator, a worker checking that a run is its own) can tell whose it is.
 * Workspace ids hold neither ':' nor '/', so the prefix is unambiguous:
 *   `<workspace>:<idempotency key>`       a governed run
 *   `<workspace>:<run key>/events`        its event hand-off child
 *   `<workspace>/quota/<runtime>`         the workspace's quota coordinator for one runtime
 *   `<workspace>/grants`                  the workspace's standing approvals (grant registry)
 */
import { IDENTIFIER_CHARS, RUNTIME_NAME_MAX, RUNTIME_NAME_PATTERN, WORKSPACE_ID_PATTERN, WORKSPACE_ID_SOURCE } from '../policies/vocabulary';
import { z } from './zod-sandbox';

export { IDENTIFIER_CHARS, RUNTIME_NAME_MAX, RUNTIME_NAME_PATTERN, RUNTIME_NAME_SOURCE, WORKSPACE_ID_PATTERN, WORKSPACE_ID_SOURCE } from '../policies/vocabulary';

/** True for a workspace id (see WORKSPACE_ID_PATTERN). */
export function isWorkspaceId(value: string): boolean {
  return WORKSPACE_ID_PATTERN.test(value);
}

/** True for a runtime name that run input accepts (see RUNTIME_NAME_PATTERN). */
export function isRuntimeName(value: string): boolean {
  return RUNTIME_NAME_PATTERN.test(value);
}

/** A workspace id in run input, principals and quota messages. Built per call (see schemas.ts). */
export function workspaceIdSchema() {
  return z.string().regex(WORKSPACE_ID_PATTERN, 'workspaceId must be 1-63 lower-case letters, digits, _ or -');
}

/** A runtime name in run input (`action.runtime`). Built per call (see schemas.ts). */
export function runtimeNameSchema() {
  return z
    .string()
    .min(1, 'runtime must not be empty')
    .max(RUNTIME_NAME_MAX, `runtime is longer than ${RUNTIME_NAME_MAX} characters`)
    .regex(IDENTIFIER_CHARS, 'runtime may hold letters, digits and . _ : @ / + - only');
}

/** The workflow id of a run: one per workspace and idempotency key, so a repeated start finds it. */
export function runWorkflowId(workspaceId: string, idempotencyKey: string): string {
  return `${workspaceId}:${idempotencyKey}`;
}

/** The quota coordinator of one workspace and runtime. Uses '/', which no run id has after its workspace. */
export function quotaWorkflowId(workspaceId: string, runtime: string): string {
  return `${workspaceId}/quota/${runtime}`;
}

/** The grant registry of one workspace (standing approvals). */
export function grantRegistryId(workspaceId: string): string {
  return `${workspaceId}/grants`;
}

const WORKSPACE_PREFIX = new RegExp(`^(${WORKSPACE_ID_SOURCE})[:/]`);

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
