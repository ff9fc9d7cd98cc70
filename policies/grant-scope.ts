/**
 * Standing approvals, the pure part: a rule's terms for grants as a run's decision carries them, and
 * whether one grant's scope covers an action. A grant's condition must hold for certain: an unknown or
 * failing condition never lets a grant count (fail closed). Bundle-safe (no zod).
 */
import { type CondValue, checkCondition, compileCondition } from './condition';
import { durationMs } from './duration';
import type { GrantsAccepted } from './grants';

/** What a run's decision says about grants (durations in ms), set only for a rule that accepts them. */
export interface GrantTerms {
  /** The rule a grant must name. */
  ruleId: string;
  grantorRoles: string[];
  grantorUsers: string[];
  maxUses: number;
  maxValidityMs: number;
}

export function grantTerms(ruleId: string, g: GrantsAccepted): GrantTerms {
  return { ruleId, grantorRoles: g.grantors.roles ?? [], grantorUsers: g.grantors.users ?? [], maxUses: g.maxUses, maxValidityMs: durationMs(g.maxValidity) };
}

/** Where a grant applies. Patterns are exact text or a prefix ending in `*`, as in rules. */
export interface GrantScope {
  runtime?: string;
  target?: string;
  operation?: string;
  /** A condition in the policy condition language, over the same `action`, `requester`, `workspace`. */
  when?: string;
}

/** The action facts a grant is judged against (the rule's condition context). */
export interface GrantSubject {
  workspace: string;
  action: { runtime: string; target: string; operation: string; tools?: string[]; input?: unknown };
  requester: { id: string; roles: string[] };
}

const covers = (pattern: string | undefined, value: string) => pattern === undefined || (pattern.endsWith('*') ? value.startsWith(pattern.slice(0, -1)) : pattern === value);

/** Undefined when the grant's scope covers the action for certain; otherwise why not. */
export function grantScopeMiss(scope: GrantScope, subject: GrantSubject): string | undefined {
  const a = subject.action;
  if (!covers(scope.runtime, a.runtime)) return `runtime ${a.runtime} is outside ${scope.runtime}`;
  if (!covers(scope.target, a.target)) return `target ${a.target} is outside ${scope.target}`;
  if (!covers(scope.operation, a.operation)) return `operation ${a.operation} is outside ${scope.operation}`;
  if (scope.when === undefined) return undefined;
  const context = {
    workspace: subject.workspace,
    action: { ...a, tools: a.tools ?? [], input: (a.input ?? {}) as CondValue } as CondValue,
    requester: { id: subject.requester.id, roles: subject.requester.roles },
  };
  const r = checkCondition(scope.when, context, { budget: 10_000 });
  if (!r.ok) return `its condition failed: ${r.error}`;
  if (r.value === 'unknown') return `its condition is unknown on this action: ${r.unknown.join('; ').slice(0, 200)}`;
  return r.value ? undefined : 'its condition does not hold';
}

/** Why a grant's condition can never be evaluated (it does not compile), or undefined. */
export function grantConditionError(when: string | undefined): string | undefined {
  if (when === undefined) return undefined;
  const c = compileCondition(when);
  return c.ok ? undefined : `its condition does not compile: ${c.error}`;
}
