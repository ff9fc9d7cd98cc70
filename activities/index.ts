/** Every activity the governed run calls, built from injected dependencies (no module state). */
import type { LoadedPolicies } from './policy/load';
import { createDispatchActivities } from './runtimes/dispatch';
import { createEventDeliveryActivities } from './events/delivery';
import { createEvidenceActivities } from './evidence/activity';
import type { EvidenceSink } from './evidence/sink';
import type { PayloadStore } from './payload-store';
import { createPolicyActivities } from './policy/snapshot';
import { createQuotaActivities } from './quota';
import { createBreakGlassActivities } from './break-glass';
import { REVOCATION_REGISTRY_ID } from '../workflows/revocation/types';
import type { RuntimeAdapter } from './runtimes/port';
import type { SecretStore } from './secrets/port';
import { type RevocationDeps, createRevocationActivities } from './revocation/fan-out';
import { createRevocationSigningActivities } from './revocation/signing';
import { createGrantActivities } from './grants/grants';
import type { RevocationCheck } from './runtimes/dispatch';

export interface ActivityDeps {
  policies: LoadedPolicies;
  runtimes: RuntimeAdapter[];
  secrets: SecretStore;
  payloads: PayloadStore;
  evidence: EvidenceSink;
  /** The worker's revocation cache, checked by the dispatch activity. */
  revocations?: RevocationCheck;
  /** Where the revocation registry runs. */
  revocationRegistry?: RevocationDeps;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createPolicyActivities(deps.policies),
    ...createDispatchActivities(deps),
    ...createEvidenceActivities(deps.evidence),
    ...createEventDeliveryActivities(deps),
    ...createQuotaActivities(deps.policies),
    ...createBreakGlassActivities(),
    ...createRevocationSigningActivities(deps.policies),
    ...createGrantActivities(deps.policies),
    ...createRevocationActivities(deps.revocationRegistry ?? { registryId: REVOCATION_REGISTRY_ID }),
  };
}
