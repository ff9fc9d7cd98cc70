/**
 * `revocationSigning`: whether revocations for a workspace (or `*`: for all) must be signed, from the
 * worker's policies, and the operators' registered keys to verify with. A workspace requires it when
 * any of its rules requires signed decisions; `*` requires a signature valid in every such workspace.
 */
import type { LoadedPolicies } from '../policy/load';
import type { PolicySnapshot } from '../../policies/schema';
import type { RevocationSigning } from '../../workflows/revocation/signing';

function requiresSigned(s: PolicySnapshot): boolean {
  return s.rules.some((r) => r.approval?.signed === true);
}

export function createRevocationSigningActivities(policies: LoadedPolicies) {
  return {
    async revocationSigning({ workspaceId }: { workspaceId: string }): Promise<RevocationSigning> {
      const ids = workspaceId === '*' ? policies.workspaces : [workspaceId];
      const requiring = ids.map((id) => policies.snapshotFor(id)).filter(requiresSigned);
      return { required: requiring.length > 0, keySets: requiring.map((s) => ({ ...(s.defaults.approverKeys ?? {}) })) };
    },
  };
}

export type RevocationSigningActivities = ReturnType<typeof createRevocationSigningActivities>;
