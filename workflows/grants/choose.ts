/**
 * Which standing approvals a waiting run may count, before it takes a use of any: pure, so the same
 * facts always pick the same grants. A grant counts as one approval of its grantor, so every rule for
 * approvals still applies: never the requester's own run, one approval per person (never twice toward
 * a quorum), only an eligible approver whom the rule's policy lets grant, within the grant's scope and
 * condition, signed where the rule needs signatures, and with the grantor's own roles (so it never
 * satisfies a required role the grantor lacks). The run judges the approval again when it counts it.
 */
import { type GrantSubject, type GrantTerms, grantScopeMiss } from '../../policies/grant-scope';
import { normalizePrincipalId } from '../run/signatures';
import { grantSignatureRefusal, signedFieldsOf } from './signing';
import type { Grant } from './types';

export interface GrantChoiceContext {
  terms: GrantTerms;
  subject: GrantSubject;
  requesterId: string;
  /** People whose approval is already recorded for this action. */
  approvedBy: readonly string[];
  eligibleRoles: readonly string[];
  eligibleUsers: readonly string[];
  /** Set under a signed rule: keys to verify grants with, and the roles policy registers per person. */
  signed?: { keys: Record<string, string>; rolesOf: (id: string) => string[] };
  dutyConflict: (id: string) => string | undefined;
  /** Approvals still needed; roles still missing are preferred. */
  needed: number;
  missingRoles: readonly string[];
  now: Date;
}

export interface GrantChoice {
  picks: Grant[];
  skipped: { grantId: string; why: string }[];
}

/** Why this grant cannot count for the run, or undefined when it can. */
export function grantMiss(g: Grant, ctx: GrantChoiceContext): string | undefined {
  const t = ctx.terms;
  const id = normalizePrincipalId(g.grantor.id);
  if (g.ruleId !== t.ruleId) return `it is for rule ${g.ruleId}, the run was decided by rule ${t.ruleId}`;
  if (g.revokedAt) return `revoked by ${g.revokedBy}`;
  if (Date.parse(g.expiresAt) <= ctx.now.getTime()) return `expired at ${g.expiresAt}`;
  if (g.uses >= g.maxUses) return 'no use left';
  if (id === normalizePrincipalId(ctx.requesterId)) return `${g.grantor.id} requested this run`;
  if (ctx.approvedBy.some((a) => normalizePrincipalId(a) === id)) return `${g.grantor.id} already approved this action`;
  if (ctx.signed) {
    const why = grantSignatureRefusal(ctx.signed.keys, signedFieldsOf(g), g.signature);
    if (why) return why;
  }
  const roles = ctx.signed ? ctx.signed.rolesOf(g.grantor.id) : g.grantor.roles;
  const named = (list: readonly string[]) => list.some((u) => normalizePrincipalId(u) === id);
  if (!named(t.grantorUsers) && !roles.some((r) => t.grantorRoles.includes(r))) return `${g.grantor.id} may not grant for rule ${t.ruleId}`;
  if (!named(ctx.eligibleUsers) && !roles.some((r) => ctx.eligibleRoles.includes(r))) return `${g.grantor.id} is not an eligible approver of this run`;
  if (g.maxUses > t.maxUses) return `it allows ${g.maxUses} uses, the rule at most ${t.maxUses}`;
  if (Date.parse(g.expiresAt) - Date.parse(g.grantedAt) > t.maxValidityMs) return 'it is valid for longer than the rule allows';
  const conflict = ctx.dutyConflict(g.grantor.id);
  if (conflict) return conflict;
  return grantScopeMiss(g.scope, ctx.subject);
}

/** The grants to take, at most one per grantor and no more than needed; grantors with missing roles first. */
export function chooseGrants(offered: readonly Grant[], ctx: GrantChoiceContext): GrantChoice {
  const skipped: GrantChoice['skipped'] = [];
  const usable: Grant[] = [];
  for (const g of offered) {
    const why = grantMiss(g, ctx);
    if (why) skipped.push({ grantId: g.id, why });
    else usable.push(g);
  }
  const rolesOf = (g: Grant) => (ctx.signed ? ctx.signed.rolesOf(g.grantor.id) : g.grantor.roles);
  const fills = (g: Grant) => rolesOf(g).some((r) => ctx.missingRoles.includes(r));
  // Stable: among equals, the oldest grant first.
  const ordered = [...usable.filter(fills), ...usable.filter((g) => !fills(g))];
  const picks: Grant[] = [];
  const people = new Set<string>();
  let missing = [...ctx.missingRoles];
  for (const g of ordered) {
    const id = normalizePrincipalId(g.grantor.id);
    if (people.has(id)) {
      skipped.push({ grantId: g.id, why: `another grant of ${g.grantor.id} counts already` });
      continue;
    }
    const addsRole = rolesOf(g).some((r) => missing.includes(r));
    if (picks.length >= ctx.needed && !addsRole) continue;
    picks.push(g);
    people.add(id);
    missing = missing.filter((r) => !rolesOf(g).includes(r));
  }
  return { picks, skipped };
}
