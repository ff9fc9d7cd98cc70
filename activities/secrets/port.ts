/**
 * The port for per-workspace runtime credentials. A secret is a flat map of strings stored per
 * (workspace, runtime): in Vault KV v2 at `{mount}/data/{prefix}/{workspace}/{runtime}`, or in the
 * embedded default, `{secretsDir}/{workspace}.json` under the runtime's key. Secrets are read inside the
 * activity that uses them and never returned to a workflow.
 */
import { FailureType, refusal } from '../../workflows/failures';
import { isRuntimeName, isWorkspaceId } from '../../workflows/ids';

export type Secret = Readonly<Record<string, string>>;

export interface SecretStore {
  /** Human name for errors and logs, e.g. `vault` or `file`. */
  readonly kind: string;
  /**
   * The secret of `runtime` in `workspaceId`. Throws `CredentialsDenied` (no such secret, access
   * refused, bad request; not retried) or `CredentialsUnavailable` (sealed, unreachable; retried).
   */
  read(workspaceId: string, runtime: string): Promise<Secret>;
  /** Stop background work such as token renewal. */
  close(): Promise<void>;
}

/**
 * Refuse a workspace id that could address another workspace's data (`..`, `/`, encoded separators)
 * before a path is built from it, as `type`: the failure its caller's callers understand
 * (`CredentialsDenied` for a secret, `EvidenceConflict` for the evidence log, `WorkspaceMismatch` for
 * the payload store). Ids are already validated upstream; this is the last line.
 */
export function checkWorkspaceId(workspaceId: string, type: FailureType): void {
  if (!isWorkspaceId(workspaceId)) throw refusal(type, `not a workspace id: ${JSON.stringify(workspaceId.slice(0, 80))}`);
}

/**
 * Refuse ids that are not a workspace id and a runtime name (workflows/ids.ts), as `CredentialsDenied`.
 * Any runtime name run input accepts passes: each store keeps it inside its own key or path segment.
 */
export function checkSecretIds(workspaceId: string, runtime: string): void {
  checkWorkspaceId(workspaceId, FailureType.CredentialsDenied);
  if (!isRuntimeName(runtime)) throw refusal(FailureType.CredentialsDenied, `not a runtime name: ${JSON.stringify(runtime.slice(0, 80))}`);
}
