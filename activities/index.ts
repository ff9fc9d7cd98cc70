/** Every activity the governed run calls, built from injected dependencies (no module state). */
import type { LoadedPolicies } from '../policies/load';
import { createDispatchActivities } from './dispatch';
import { createPolicyActivities } from './policy-snapshot';
import type { RuntimeAdapter } from './runtime-port';

export interface ActivityDeps {
  policies: LoadedPolicies;
  runtimes: RuntimeAdapter[];
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createPolicyActivities(deps.policies),
    ...createDispatchActivities({ runtimes: deps.runtimes }),
  };
}
