/** Durations in policy files: a whole number and a unit, e.g. `90s`, `15m`, `4h`, `7d`. Pure. */

export const DURATION_PATTERN = /^(\d{1,9})(ms|s|m|h|d)$/;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration string; throws on a malformed one (schemas check the pattern first). */
export function durationMs(text: string): number {
  const m = DURATION_PATTERN.exec(text);
  if (!m) throw new RangeError(`not a duration: ${JSON.stringify(text)} (expected e.g. 90s, 15m, 4h, 7d)`);
  return Number(m[1]) * UNIT_MS[m[2]];
}
