/**
 * Pure policy evaluation, imported by the governed run workflow. Deterministic and total: any error
 * fails closed (Deny). No matching rule means Deny. Strictest matching rule wins:
 * Deny > ManualOnly > HumanApprove > Assisted > Auto. A tier override may only make it stricter.
 * A rule whose `when` is unknown (a missing or mistyped field) is decided the strictest way it could
 * go: it applies when another rule matches for certain, and with no certain match the run is denied.
 * So a missing or mistyped field never picks a looser rule than a well-typed one could.
 */
import { type CondValue, checkCondition } from './condition';
import { ownValue } from './own';
import type { Duty, PolicySnapshot, PolicyTier, Rule } from './schema';
import { durationMs } from './duration';
import { type GrantTerms, grantTerms } from './grant-scope';
import { TOOL_CLASS_TIER, classifyTool } from './tools';
import { TIER_RANK, tierRank } from './vocabulary';

export interface PolicyRequest {
  action: { runtime: string; target: string; operation: string; tools?: string[]; input?: { [k: string]: unknown } };
  requestedBy: { id: string; roles: string[] };
  tierOverride?: Exclude<PolicyTier, 'Deny'>;
}

/** How to evaluate; the default is the current semantics. */
export interface EvaluateOptions {
  /**
   * Decide as before three-valued conditions (issue 14): an undecidable comparison is false and a
   * flow named like an `Object.prototype` member finds that member. Only for replaying histories
   * recorded before: the workflow passes `!patched(...)`. @default false
   */
  twoValuedConditions?: boolean;
}

/** Operations a rule's `when` condition may spend before evaluation fails closed. */
const CONDITION_BUDGET = 1000;

export interface EscalationStep {
  afterMs: number;
  addRoles: string[];
}

export interface PolicyDecision {
  effect: 'Allow' | 'Deny';
  /** Set when allowed. */
  tier?: Exclude<PolicyTier, 'Deny'>;
  /** Human-readable reasons: matched rule ids and what they matched, or why it was denied. */
  reasons: string[];
  matchedRules: string[];
  policyHash: string;
  quorum: number;
  eligibleRoles: string[];
  eligibleUsers: string[];
  requiredRoles: string[];
  coolingOffMs: number;
  freshnessMs: number;
  signed: boolean;
  expiresAfterMs: number;
  escalation: EscalationStep[];
  vetoWindowMs: number;
  manualExpiresAfterMs: number;
  operatorRoles: string[];
  incompatibleDuties: [Duty, Duty][];
  approverKeys: Record<string, string>;
  approverRoles: Record<string, string[]>;
  /** Standing approvals the deciding rule accepts; absent when it accepts none (then never set, so older decisions are unchanged). */
  grants?: GrantTerms;
}

/** How strict each tier is; higher wins. The one table, policies/vocabulary.ts, under its published name. */
export const TIER_STRENGTH: Readonly<Record<PolicyTier, number>> = TIER_RANK;

function matchesPattern(pattern: string | string[] | undefined, value: string): boolean {
  if (pattern === undefined) return true;
  const items = Array.isArray(pattern) ? pattern : [pattern];
  return items.some((p) => (p.endsWith('*') ? value.startsWith(p.slice(0, -1)) : p === value));
}

/** Thrown inside evaluation when a condition fails (an error, not unknown) or a tier is not one; evaluation then fails closed. */
class ConditionFailure extends Error {}

/** The strength of a tier; an unknown name (never from a checked snapshot) fails the evaluation closed. */
function strength(tier: string): number {
  const s = tierRank(tier);
  if (s === undefined) throw new ConditionFailure(`unknown tier ${JSON.stringify(String(tier).slice(0, 40))}`);
  return s;
}

/** A rule that matches: `unknown` lists why its `when` could not be decided, when it could not. */
interface Match { why: string; unknown?: string[] }

/** Why a rule matches (for certain, or because its condition is unknown), or undefined when it does not. */
function matchRule(rule: Rule, req: PolicyRequest, context: { [k: string]: CondValue }, twoValued: boolean): Match | undefined {
  const m = rule.match;
  const { runtime, target, operation, tools = [] } = req.action;
  if (!matchesPattern(m.runtime, runtime) || !matchesPattern(m.target, target) || !matchesPattern(m.operation, operation)) {
    return undefined;
  }
  if (m.requesterRoles && !m.requesterRoles.some((r) => req.requestedBy.roles.includes(r))) return undefined;
  if (m.tools !== undefined && !tools.some((t) => matchesPattern(m.tools, t))) return undefined;
  let unknown: string[] | undefined;
  if (rule.when !== undefined) {
    const r = checkCondition(rule.when, context, { budget: CONDITION_BUDGET, twoValued });
    if (!r.ok) throw new ConditionFailure(`rule ${rule.id}: condition failed: ${r.error}`);
    if (r.value === 'unknown') unknown = r.unknown;
    else if (!r.value) return undefined;
  }
  const what = [`runtime=${runtime}`, `operation=${operation}`, `target=${target}`];
  if (m.requesterRoles) what.push(`requester role in [${m.requesterRoles.join(',')}]`);
  if (m.tools !== undefined) what.push('tools matched');
  if (unknown) return { why: `rule ${rule.id} (${rule.tier}) counts as matching: its condition (${rule.when}) is unknown: ${unknown.join('; ')}`, unknown };
  if (rule.when !== undefined) what.push(`when (${rule.when})`);
  return { why: `rule ${rule.id} (${rule.tier}) matched ${what.join(' ')}` };
}

/** Tools first: a tool outside the flow's allow-list denies; each tool's class sets a least tier. */
function toolFloor(snapshot: PolicySnapshot, req: PolicyRequest, twoValued: boolean): { deny?: string; tier: Exclude<PolicyTier, 'Deny'>; reasons: string[] } {
  const { tools = [], target } = req.action;
  // The inherited read (then a TypeError, so Deny) only where old histories need it.
  const allowed = twoValued ? snapshot.defaults.flowTools?.[target] : ownValue(snapshot.defaults.flowTools, target);
  const reasons: string[] = [];
  let tier: Exclude<PolicyTier, 'Deny'> = 'Auto';
  for (const tool of tools) {
    if (allowed && !allowed.includes(tool)) return { deny: `tool ${tool} is not on the allow-list of flow ${target}`, tier, reasons };
    const cls = classifyTool(tool, snapshot.defaults.toolClasses);
    const least = TOOL_CLASS_TIER[cls];
    reasons.push(`tool ${tool} is ${cls}: at least ${least}`);
    if (strength(least) > strength(tier)) tier = least;
  }
  return { tier, reasons };
}

function conditionContext(snapshot: PolicySnapshot, req: PolicyRequest): { [k: string]: CondValue } {
  return {
    workspace: snapshot.workspaceId,
    action: { ...req.action, tools: req.action.tools ?? [], input: (req.action.input ?? {}) as CondValue } as CondValue,
    requester: { id: req.requestedBy.id, roles: req.requestedBy.roles },
  };
}

/** A denial computes nothing from the snapshot beyond its hash, so it cannot fail itself. */
function denied(snapshot: PolicySnapshot, reasons: string[], matchedRules: string[]): PolicyDecision {
  return {
    effect: 'Deny',
    reasons,
    matchedRules,
    policyHash: String(snapshot?.policyHash ?? ''),
    quorum: 0,
    eligibleRoles: [],
    eligibleUsers: [],
    requiredRoles: [],
    coolingOffMs: 0,
    freshnessMs: 0,
    signed: false,
    expiresAfterMs: 0,
    escalation: [],
    vetoWindowMs: 0,
    manualExpiresAfterMs: 0,
    operatorRoles: [],
    incompatibleDuties: [],
    approverKeys: {},
    approverRoles: {},
  };
}

function baseDecision(snapshot: PolicySnapshot, rule: Rule | undefined): PolicyDecision {
  const d = snapshot.defaults;
  const approval = rule?.approval ?? {};
  return {
    effect: 'Allow',
    reasons: [],
    matchedRules: [],
    policyHash: snapshot.policyHash,
    quorum: approval.quorum ?? d.approval.quorum,
    eligibleRoles: approval.eligibleRoles ?? d.approval.eligibleRoles,
    eligibleUsers: approval.eligibleUsers ?? [],
    requiredRoles: approval.requiredRoles ?? [],
    coolingOffMs: approval.coolingOff ? durationMs(approval.coolingOff) : 0,
    freshnessMs: approval.freshness ? durationMs(approval.freshness) : 0,
    signed: approval.signed ?? false,
    expiresAfterMs: durationMs(approval.expiresAfter ?? d.approval.expiresAfter),
    escalation: (approval.escalation ?? d.approval.escalation).map((s) => ({ afterMs: durationMs(s.after), addRoles: s.addRoles })),
    vetoWindowMs: durationMs(rule?.vetoWindow ?? d.vetoWindow),
    manualExpiresAfterMs: durationMs(d.manualExpiresAfter),
    operatorRoles: d.operatorRoles,
    incompatibleDuties: d.incompatibleDuties ?? [],
    approverKeys: d.approverKeys ?? {},
    approverRoles: d.approverRoles ?? {},
    ...(rule?.approval?.grants && { grants: grantTerms(rule.id, rule.approval.grants) }),
  };
}

/** Decide one request against a frozen snapshot. Never throws. */
export function evaluatePolicy(snapshot: PolicySnapshot, req: PolicyRequest, opts?: EvaluateOptions): PolicyDecision {
  const twoValued = opts?.twoValuedConditions === true;
  try {
    if (!snapshot.workspaceKnown) {
      return denied(snapshot, [`no policy set for workspace ${snapshot.workspaceId}: deny by default`], []);
    }
    const tools = toolFloor(snapshot, req, twoValued);
    if (tools.deny) return denied(snapshot, [tools.deny], []);
    const context = conditionContext(snapshot, req);
    let winner: Rule | undefined;
    let certain = 0;
    const reasons: string[] = [];
    const matchedRules: string[] = [];
    for (const rule of snapshot.rules) {
      const match = matchRule(rule, req, context, twoValued);
      if (!match) continue;
      reasons.push(match.why);
      matchedRules.push(rule.id);
      if (!match.unknown) certain++;
      // Strictest wins (unknown conditions count as matching); among equals the first listed decides approval details.
      if (!winner || strength(rule.tier) > strength(winner.tier)) winner = rule;
    }
    if (!winner) return denied(snapshot, ['no rule matched: deny by default'], []);
    if (!certain) {
      reasons.push('no rule matched for certain; the rules above apply only if their unknown conditions hold: denied (fail closed)');
      return denied(snapshot, reasons, matchedRules);
    }
    if (winner.tier === 'Deny') return denied(snapshot, reasons, matchedRules);
    const decision = { ...baseDecision(snapshot, winner), reasons, matchedRules };
    let tier: Exclude<PolicyTier, 'Deny'> = winner.tier;
    reasons.push(...tools.reasons);
    if (strength(tools.tier) > strength(tier)) {
      reasons.push(`agent tools raised the tier from ${tier} to ${tools.tier}`);
      tier = tools.tier;
    }
    if (req.tierOverride) {
      if (strength(req.tierOverride) > strength(tier)) {
        reasons.push(`tierOverride raised the tier from ${tier} to ${req.tierOverride}`);
        tier = req.tierOverride;
      } else if (req.tierOverride !== tier) {
        reasons.push(`tierOverride ${req.tierOverride} ignored: it is not stricter than ${tier}`);
      }
    }
    return { ...decision, tier };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return denied(snapshot, [`policy evaluation failed, denied (fail closed): ${message}`], []);
  }
}
