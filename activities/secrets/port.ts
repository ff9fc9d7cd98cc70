/**
 * The port for per-workspace runtime credentials. A secret is a flat map of strings stored per
 * (workspace, runtime): in Vault KV v2 at `{mount}/data/{prefix}/{workspace}/{runtime}`, or in the
 * embedded default, `{secretsDir}/{workspace}.json` under the runtime's key. Secrets are read inside the
 * activity that uses them and never returned to a workflow.
 */
import { FailureType, refusal } from '../../workflows/failures';

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

const WORKSPACE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const RUNTIME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Refuse ids that could address another workspace's secret (`..`, `/`, encoded separators). Both are
 * already validated upstream; this is the last line before a path is built.
 */
export function checkSecretIds(workspaceId: string, runtime: string): void {
  if (!WORKSPACE.test(workspaceId)) throw refusal(FailureType.CredentialsDenied, `not a workspace id: ${JSON.stringify(workspaceId.slice(0, 80))}`);
  if (!RUNTIME.test(runtime)) throw refusal(FailureType.CredentialsDenied, `not a runtime name: ${JSON.stringify(runtime.slice(0, 80))}`);
}
