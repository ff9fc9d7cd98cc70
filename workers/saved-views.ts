/**
 * The List Filter queries operators save as views in the Web UI (paste into the workflow list's
 * search box, then save) or pass to `temporal workflow list --query`. Shipped as code so a test runs
 * each against a real server. MAINTENANCE: docs/operators.md "Saved views" shows them.
 */
import { ApproverRolesKey, StateKey, WorkspaceKey } from '../workflows/search-attributes';

/** A double-quoted List Filter string; ids and roles never hold quotes, but one would still be escaped. */
const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
const inWorkspace = (workspace?: string) => (workspace ? ` AND ${WorkspaceKey.name} = ${q(workspace)}` : '');

/** Runs that wait for an approval one of `roles` may give (escalated roles included). */
export function awaitingMyApproval(roles: readonly string[], workspace?: string): string {
  return `${StateKey.name} = "AwaitingApproval" AND ${ApproverRolesKey.name} IN (${roles.map(q).join(', ')})${inWorkspace(workspace)}`;
}

/**
 * Runs that failed since the start of `day` (UTC): the dispatch or evidence failed (state `Failed`),
 * or the run failed before it had a state (bad input).
 */
export function failedSince(day: Date, workspace?: string): string {
  const midnight = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate())).toISOString().replace('.000Z', 'Z');
  return `(ExecutionStatus = "Failed" OR ${StateKey.name} = "Failed") AND CloseTime >= ${q(midnight)}${inWorkspace(workspace)}`;
}

/** Runs policy denied. */
export function denied(workspace?: string): string {
  return `${StateKey.name} = "Denied"${inWorkspace(workspace)}`;
}
