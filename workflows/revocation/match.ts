/**
 * Whether a revocation covers an action: one pure function, used by runs (after the registry
 * confirmed the revocation) and by the dispatch activity's cached check, so both judge alike.
 */
import type { Revocation, RevocationScope } from './types';

/** What a revocation is judged against: the run's workspace and action, and the runtime version when the adapter reports one. */
export interface RevocableAction {
  workspaceId: string;
  runtime: string;
  target: string;
  tools?: readonly string[];
  runtimeVersion?: string;
}

/** A target pattern: exact, or a prefix when it ends in `*` (a lone `*` covers every target). */
export function targetMatches(pattern: string, target: string): boolean {
  return pattern.endsWith('*') ? target.startsWith(pattern.slice(0, -1)) : pattern === target;
}

export function scopeCovers(scope: RevocationScope, a: RevocableAction): boolean {
  if (scope.workspaceId !== '*' && scope.workspaceId !== a.workspaceId) return false;
  if (scope.runtime !== undefined && scope.runtime !== a.runtime) return false;
  switch (scope.kind) {
    case 'runtime':
      return scope.value === a.runtime;
    case 'target':
      return targetMatches(scope.value, a.target);
    case 'tool':
      return (a.tools ?? []).includes(scope.value);
    case 'runtimeVersion':
      // Known only where the adapter reports a version; unknown never matches.
      return a.runtimeVersion !== undefined && scope.value === a.runtimeVersion;
    default:
      return false;
  }
}

/** The first revocation in force that covers the action, if any. */
export function revocationCovering(revocations: readonly Revocation[], a: RevocableAction): Revocation | undefined {
  return revocations.find((r) => r.liftedAt === undefined && scopeCovers(r.scope, a));
}
