/**
 * Pure policy evaluation, imported by the governed run workflow. Deterministic and total: any error
 * fails closed (Deny). No matching rule means Deny. Strictest matching rule wins:
 * Deny > ManualOnly > HumanApprove > Assisted > Auto. A tier override may only make it stricter.
 */
import type { PolicySnapshot, PolicyTier, Rule } from './schema';
import { durationMs } from './duration';

export interface PolicyRequest {
  action: { runtime: string; target: string; operation: string; tools?: string[] };
  requestedBy: { id: string; roles: string[] };
  tierOverride?: Exclude<PolicyTier, 'Deny'>;
}

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
  expiresAfterMs: number;
  escalation: EscalationStep[];
  vetoWindowMs: number;
  manualExpiresAfterMs: number;
  operatorRoles: string[];
}

const STRENGTH: Record<PolicyTier, number> = { Auto: 0, Assisted: 1, HumanApprove: 2, ManualOnly: 3, Deny: 4 };

export function tierStrength(tier: PolicyTier): number {
  return STRENGTH[tier];
}

function matchesPattern(pattern: string | string[] | undefined, value: string): boolean {
  if (pattern === undefined) return true;
  const items = Array.isArray(pattern) ? pattern : [pattern];
  return items.some((p) => (p.endsWith('*') ? value.startsWith(p.slice(0, -1)) : p === value));
}

/** Why a rule matches, or undefined when it does not. */
function matchRule(rule: Rule, req: PolicyRequest): string | undefined {
  const m = rule.match;
  const { runtime, target, operation } = req.action;
  if (!matchesPattern(m.runtime, runtime) || !matchesPattern(m.target, target) || !matchesPattern(m.operation, operation)) {
    return undefined;
  }
  if (m.requesterRoles && !m.requesterRoles.some((r) => req.requestedBy.roles.includes(r))) return undefined;
  const what = [`runtime=${runtime}`, `operation=${operation}`, `target=${target}`];
  if (m.requesterRoles) what.push(`requester role in [${m.requesterRoles.join(',')}]`);
  return `rule ${rule.id} (${rule.tier}) matched ${what.join(' ')}`;
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
    expiresAfterMs: 0,
    escalation: [],
    vetoWindowMs: 0,
    manualExpiresAfterMs: 0,
    operatorRoles: [],
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
    expiresAfterMs: durationMs(approval.expiresAfter ?? d.approval.expiresAfter),
    escalation: (approval.escalation ?? d.approval.escalation).map((s) => ({ afterMs: durationMs(s.after), addRoles: s.addRoles })),
    vetoWindowMs: durationMs(rule?.vetoWindow ?? d.vetoWindow),
    manualExpiresAfterMs: durationMs(d.manualExpiresAfter),
    operatorRoles: d.operatorRoles,
  };
}

/** Decide one request against a frozen snapshot. Never throws. */
export function evaluatePolicy(snapshot: PolicySnapshot, req: PolicyRequest): PolicyDecision {
  try {
    if (!snapshot.workspaceKnown) {
      return denied(snapshot, [`no policy set for workspace ${snapshot.workspaceId}: deny by default`], []);
    }
    let winner: Rule | undefined;
    const reasons: string[] = [];
    const matchedRules: string[] = [];
    for (const rule of snapshot.rules) {
      const why = matchRule(rule, req);
      if (!why) continue;
      reasons.push(why);
      matchedRules.push(rule.id);
      // Strictest wins; among equals the first listed decides approval details.
      if (!winner || STRENGTH[rule.tier] > STRENGTH[winner.tier]) winner = rule;
    }
    if (!winner) return denied(snapshot, ['no rule matched: deny by default'], []);
    if (winner.tier === 'Deny') return denied(snapshot, reasons, matchedRules);
    const decision = { ...baseDecision(snapshot, winner), reasons, matchedRules };
    let tier: Exclude<PolicyTier, 'Deny'> = winner.tier;
    if (req.tierOverride) {
      if (STRENGTH[req.tierOverride] > STRENGTH[tier]) {
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
