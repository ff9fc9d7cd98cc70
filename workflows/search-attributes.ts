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
/**
 * Roles that may approve the run now (escalation included), while it awaits approval; empty
 * otherwise. The approval inbox of a role: `PortariumApproverRoles = "secops"` (docs/operators.md).
 */
export const ApproverRolesKey = defineSearchAttributeKey('PortariumApproverRoles', 'KEYWORD_LIST');

export const SEARCH_ATTRIBUTE_KEYS = [WorkspaceKey, CorrelationKey, StateKey, TierKey, ApproverRolesKey];

/** A key's type as the Temporal CLI spells it (`--type`, `--search-attribute name=Type`). */
export const cliTypeOf = (k: (typeof SEARCH_ATTRIBUTE_KEYS)[number]) => (k.type === 'KEYWORD_LIST' ? 'KeywordList' : 'Keyword');

/** `--search-attribute` arguments for `temporal server start-dev`. */
export function searchAttributeArgs(): string[] {
  return SEARCH_ATTRIBUTE_KEYS.flatMap((k) => ['--search-attribute', `${k.name}=${cliTypeOf(k)}`]);
}
