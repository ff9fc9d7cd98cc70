/**
 * Public entry of the npm package for policy tooling: `portarium-worker/policies`. Load and check a
 * policy folder as the worker does (`portarium policy check`), and evaluate a request against a
 * workspace's snapshot as a run would, e.g. in a CI step or an editor plugin.
 */
// MAINTENANCE: package.json `exports` and `typesVersions` name this file; test/package.test.ts imports only the entries.
export { type LoadedPolicies, type PolicyCheck, type PolicyProblem, PolicyLoadError, checkPolicyDir, loadPolicyDir } from '../../activities/policy/load';
export { type EvaluateOptions, type PolicyDecision, type PolicyRequest, TIER_STRENGTH, evaluatePolicy } from '../../policies/evaluate';
export type { DefaultsFile, PolicySnapshot, PolicyTier, Rule, WorkspaceFile } from '../../policies/schema';
