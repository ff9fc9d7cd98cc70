/**
 * Search attributes kept current at every transition, so operators filter runs in the Web UI and CLI:
 * `temporal workflow list --query 'PortariumWorkspace="demo" AND PortariumState="AwaitingApproval"'`.
 * They are never encrypted: they carry ids and states only, no secrets or personal data.
 * MAINTENANCE: keep temporal-dev.sh (registration) and README in sync.
 */
import { defineSearchAttributeKey } from '@temporalio/common';

export const WorkspaceKey = defineSearchAttributeKey('PortariumWorkspace', 'KEYWORD');
export const CorrelationKey = defineSearchAttributeKey('PortariumCorrelationId', 'KEYWORD');
export const StateKey = defineSearchAttributeKey('PortariumState', 'KEYWORD');
export const TierKey = defineSearchAttributeKey('PortariumTier', 'KEYWORD');

export const SEARCH_ATTRIBUTE_KEYS = [WorkspaceKey, CorrelationKey, StateKey, TierKey];

/** `--search-attribute` arguments for `temporal server start-dev` and `operator search-attribute create`. */
export function searchAttributeArgs(): string[] {
  return SEARCH_ATTRIBUTE_KEYS.flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]);
}
