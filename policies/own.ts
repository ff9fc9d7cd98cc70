/**
 * Own-property lookups for maps keyed by user input (approver ids, flow ids, runtime names). A plain
 * object inherits `toString`, `constructor` and `__proto__`; reading `map[id]` with such an id finds
 * a function or the prototype instead of nothing. Policy maps travel through activities and history
 * as JSON, so null-prototype objects do not survive: every read goes through here instead. Pure.
 */

/** The value `map` holds under `key` as its own property, else undefined. Never throws. */
export function ownValue<V>(map: Readonly<Record<string, V>> | null | undefined, key: string): V | undefined {
  if (typeof map !== 'object' || map === null || typeof key !== 'string') return undefined;
  return Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined;
}

/** Whether `map` holds `key` as its own property. */
export function ownHas(map: object | null | undefined, key: string): boolean {
  return typeof map === 'object' && map !== null && typeof key === 'string' && Object.prototype.hasOwnProperty.call(map, key);
}
