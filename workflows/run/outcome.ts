/**
 * The outcome entry of a dispatch that succeeded. Pure and shared: the dispatch activity builds it
 * (and stores it right after the runtime answered), and the workflow builds the same bytes when it
 * records the outcome itself, so either way the chain holds one identical entry.
 */
import { EvidenceCategory, type EvidenceInput, type EvidencePayloadRef, SYSTEM_ACTOR } from '../evidence-chain';

export interface SucceededDispatch {
  runtime: string;
  externalRef?: string;
  payloadRefs?: EvidencePayloadRef[];
}

/** What the run says when its runtime executed the action. */
export const succeededSummary = (runtime: string) => `${runtime} executed the action`;

/** The `StateSucceeded` entry, as `GovernedRunState.transition` records it. */
export function succeededEvidence(d: SucceededDispatch): EvidenceInput {
  return {
    category: EvidenceCategory.Action,
    event: 'StateSucceeded',
    actor: SYSTEM_ACTOR,
    summary: succeededSummary(d.runtime),
    data: d.externalRef ? { externalRef: d.externalRef } : undefined,
    payloadRefs: d.payloadRefs,
  };
}
