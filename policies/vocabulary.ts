/**
 * The words every floor shares, each written once: the shape of a workspace id and of a runtime
 * name, and the order of the tiers. This is the lowest floor (policies/ imports nothing from above),
 * so the policy files, the workflow (`workflows/ids.ts`, `workflows/types.ts`), the activities and
 * the workers can all use it. Pure: no imports.
 */

/**
 * A workspace id: 1-63 lower-case letters, digits, `_` or `-`, starting with a letter or digit.
 * It holds neither ':' nor '/' nor '.', so it is safe as a file or Vault path segment and as the
 * prefix of a workflow id (`workflows/ids.ts`).
 */
export const WORKSPACE_ID_SOURCE = '[a-z0-9][a-z0-9_-]{0,62}';
export const WORKSPACE_ID_PATTERN = new RegExp(`^${WORKSPACE_ID_SOURCE}$`);

/**
 * A runtime name, as `action.runtime` accepts it (workflows/schemas.ts): 1-64 letters, digits and
 * `. _ : @ / + -`, starting with a letter or digit. Every later check (quota keys, egress keys, the
 * secret stores) uses this same rule, so a runtime accepted as input is never refused for its name.
 * It may hold '/' and '..': a store that builds a path from it must keep it inside one segment.
 */
export const RUNTIME_NAME_MAX = 64;
export const RUNTIME_NAME_SOURCE = '[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,63}';
export const RUNTIME_NAME_PATTERN = new RegExp(`^${RUNTIME_NAME_SOURCE}$`);

/**
 * The characters of an identifier in run input (principal ids, roles, correlation ids, runtime,
 * operation and tool names): a letter or digit, then letters, digits and `. _ : @ / + -`. Lengths
 * are per field; a runtime name is an identifier of at most {@link RUNTIME_NAME_MAX} characters.
 */
export const IDENTIFIER_CHARS = /^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$/;

/** Every tier a run can be decided at, weakest first. `Deny` is stricter than all of them. */
export const TIER_ORDER = ['Auto', 'Assisted', 'HumanApprove', 'ManualOnly'] as const;
export type TierName = (typeof TIER_ORDER)[number];
/** How strict each tier and `Deny` is; higher wins. */
export const TIER_RANK: Readonly<Record<TierName | 'Deny', number>> = Object.freeze({
  ...(Object.fromEntries(TIER_ORDER.map((t, i) => [t, i])) as Record<TierName, number>),
  Deny: TIER_ORDER.length,
});

/** The rank of a tier (or `Deny`); undefined for any other string, so a caller can fail closed. */
export function tierRank(tier: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(TIER_RANK, tier) ? TIER_RANK[tier as TierName | 'Deny'] : undefined;
}

/** True when `a` is stricter than `b`. */
export function isStricterTier<T extends TierName | 'Deny'>(a: T, b: T): boolean {
  return TIER_RANK[a] > TIER_RANK[b];
}

/** The stricter of two tiers (the first when they are equal). */
export function stricterTier<T extends TierName | 'Deny'>(a: T, b: T): T {
  return TIER_RANK[b] > TIER_RANK[a] ? b : a;
}
