/**
 * Hands a run the frozen policy snapshot of its workspace, as loaded when the worker started. Run as an
 * activity (local only for runs from before portarium-policy-snapshot-activity-v1): the snapshot is
 * recorded in history, so replay and later policy edits never change a run already started.
 */
import type { LoadedPolicies } from './load';
import type { PolicySnapshot } from '../../policies/schema';

export function createPolicyActivities(policies: LoadedPolicies) {
  return {
    async loadPolicySnapshot(workspaceId: string): Promise<PolicySnapshot> {
      return policies.snapshotFor(workspaceId);
    },
  };
}

export type PolicyActivities = ReturnType<typeof createPolicyActivities>;
