/**
 * Warnings for `portarium policy check` about rules whose outcome a missing or mistyped field changes.
 * An ordered comparison (`amount > 1000`) on a stricter rule is unknown when the field is missing or
 * not a number; the stricter rule then applies (or, with no certain match, the run is denied), where
 * before it quietly fell through to the looser rule. Warnings only: such rules are correct, but the
 * integrator should know that a connector sending `"250000"` now waits for approval. Pure; no I/O.
 */
import { compileCondition, orderedComparisons } from './condition';
import { isStricterTier } from './vocabulary';
import type { Rule } from './schema';

/** One item of a match pattern: exact text, or a prefix ending in `*`. */
function itemsOverlap(a: string, b: string): boolean {
  const [pa, pb] = [a.endsWith('*'), b.endsWith('*')];
  const [sa, sb] = [pa ? a.slice(0, -1) : a, pb ? b.slice(0, -1) : b];
  if (pa && pb) return sa.startsWith(sb) || sb.startsWith(sa);
  if (pa) return b.startsWith(sa);
  if (pb) return a.startsWith(sb);
  return a === b;
}

/** Whether some value matches both patterns (absent: any value). */
export function patternsOverlap(a: string | string[] | undefined, b: string | string[] | undefined): boolean {
  if (a === undefined || b === undefined) return true;
  const [xs, ys] = [Array.isArray(a) ? a : [a], Array.isArray(b) ? b : [b]];
  return xs.some((x) => ys.some((y) => itemsOverlap(x, y)));
}

/**
 * Whether one action can match both rules' `match`. Requester roles and tools are not compared: a
 * requester may hold roles of both lists and a run may enable tools of both.
 */
function matchesOverlap(a: Rule['match'], b: Rule['match']): boolean {
  return patternsOverlap(a.runtime, b.runtime) && patternsOverlap(a.operation, b.operation) && patternsOverlap(a.target, b.target);
}

export interface ConditionWarning {
  /** Index of the stricter rule in `rules`. */
  index: number;
  message: string;
}

/** For each stricter rule guarded by an ordered comparison on a path: the looser rules it overlaps. */
export function orderedGuardWarnings(rules: readonly Rule[]): ConditionWarning[] {
  const warnings: ConditionWarning[] = [];
  rules.forEach((rule, index) => {
    if (rule.when === undefined) return;
    const compiled = compileCondition(rule.when);
    if (!compiled.ok) return;
    const comparisons = orderedComparisons(compiled.condition);
    if (!comparisons.length) return;
    const looser = rules.filter((r) => r !== rule && isStricterTier(rule.tier, r.tier) && matchesOverlap(rule.match, r.match));
    if (!looser.length) return;
    const fields = [...new Set(comparisons.flatMap((c) => c.paths))].join(', ');
    warnings.push({
      index,
      message: `'${comparisons.map((c) => c.text).join("', '")}' guards ${rule.id} (${rule.tier}), which overlaps the looser `
        + `${looser.map((r) => `${r.id} (${r.tier})`).join(', ')}: when ${fields} is missing or not of the compared type `
        + `(e.g. the string "250000"), the condition is unknown and ${rule.id} applies (or the run is denied if no rule matches for certain)`,
    });
  });
  return warnings;
}
