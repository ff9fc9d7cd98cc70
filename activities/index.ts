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
import type { RuntimeAdapter } from './runtimes/port';
import type { SecretStore } from './secrets/port';

export interface ActivityDeps {
  policies: LoadedPolicies;
  runtimes: RuntimeAdapter[];
  secrets: SecretStore;
  payloads: PayloadStore;
  evidence: EvidenceSink;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createPolicyActivities(deps.policies),
    ...createDispatchActivities(deps),
    ...createEvidenceActivities(deps.evidence),
    ...createEventDeliveryActivities(deps),
    ...createQuotaActivities(deps.policies),
    ...createBreakGlassActivities(),
  };
}
