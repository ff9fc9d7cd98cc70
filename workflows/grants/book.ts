/**
 * The grant registry's state and rules, as one object: add, revoke, take and give back uses, what is
 * usable. Pure: the registry workflow passes time in and turns refusals into typed failures. One
 * update runs at a time and none awaits inside these methods, so the last use of a grant goes to one
 * run only, however many ask at once.
 */
import { grantConditionError } from '../../policies/grant-scope';
import { utf8Length } from '../evidence-chain';
import { FailureType } from '../failures';
import { normalizePrincipalId } from '../run/signatures';
import { grantSignatureRefusal, signedFieldsOf } from './signing';
import type { Grant, GrantRegistryState, GrantRequest, GrantRuleView, GrantsView, RevokeGrantRequest, UseGrantsRequest, UseGrantsResult } from './types';

/** Grants held at once (usable or not yet pruned); a full registry refuses more. */
export const MAX_GRANTS = 200;
/** Ended grants kept for `grant list --all`; older ones remain in the registry's history. */
const MAX_ENDED = 100;
const MAX_REQUESTS = 1000;
/**
 * Bytes (UTF-8 JSON) the held grants may take when one is added. The whole state travels in the
 * continue-as-new input, which Temporal refuses past 2 MB (the registry would then be stuck): grants
 * 800 KB, plus at most ~240 KB that revocations add, uses ~310 KB, requests ~220 KB, signed ~115 KB.
 */
export const MAX_GRANT_BYTES = 800_000;
/** Uses remembered for idempotent retries (a retry comes within seconds). */
const MAX_USES_REMEMBERED = 1000;
/**
 * A signed grant is added within this long of `signedAt` (clocks may be this far ahead), and its
 * request id is remembered as long: a signature replayed later, or after its grant ended and was
 * pruned, never adds the grant again (a revoked grant would come back with every use).
 */
export const SIGNED_GRANT_FRESH_MS = 15 * 60_000;
const MAX_SIGNED_REMEMBERED = 500;

export type GrantVerdict = { ok: true; grant: Grant } | { ok: false; type: FailureType; message: string };
const refused = (type: FailureType, message: string): GrantVerdict => ({ ok: false, type, message });

export const emptyGrantRegistry = (): GrantRegistryState => ({ nextId: 1, grants: [], requests: [], uses: [] });

/** Why a grant cannot be used at `now`, or undefined when it can. */
export function grantUnusable(g: Grant, now: Date): string | undefined {
  if (g.revokedAt) return `${g.id} was revoked by ${g.revokedBy} at ${g.revokedAt}`;
  if (Date.parse(g.expiresAt) <= now.getTime()) return `${g.id} expired at ${g.expiresAt}`;
  if (g.uses >= g.maxUses) return `${g.id} has no use left (${g.uses} of ${g.maxUses})`;
  return undefined;
}

/** Why policy would never count this grant, or undefined. Checked again by every run under its own snapshot. */
export function grantPolicyRefusal(req: GrantRequest, workspaceId: string, rule: GrantRuleView, now: Date): { type: FailureType; message: string } | undefined {
  // A principal that says it acts for another workspace is refused, as its decisions would be.
  if (req.grantor.workspaceId !== undefined && req.grantor.workspaceId !== workspaceId) {
    return { type: FailureType.WorkspaceMismatch, message: `${req.grantor.id} acts for workspace ${req.grantor.workspaceId}, not ${workspaceId}` };
  }
  const t = rule.terms;
  if (!t) return { type: FailureType.GrantRefused, message: `rule ${req.ruleId} of workspace ${workspaceId} accepts no standing approvals` };
  const roles = rule.signed ? (Object.hasOwn(rule.approverRoles, req.grantor.id) ? rule.approverRoles[req.grantor.id] : []) : req.grantor.roles;
  const user = t.grantorUsers.some((u) => normalizePrincipalId(u) === req.grantor.id);
  if (!user && !roles.some((r) => t.grantorRoles.includes(r))) {
    return { type: FailureType.GrantRefused, message: `${req.grantor.id} may not grant for rule ${req.ruleId} (grantors: roles [${t.grantorRoles.join(', ')}], users [${t.grantorUsers.join(', ')}])` };
  }
  const bad = grantConditionError(req.scope.when);
  if (bad) return { type: FailureType.GrantRefused, message: bad };
  if (req.maxUses > t.maxUses) return { type: FailureType.GrantRefused, message: `rule ${req.ruleId} allows at most ${t.maxUses} uses per grant` };
  const ms = Date.parse(req.expiresAt) - now.getTime();
  if (ms <= 0) return { type: FailureType.GrantRefused, message: `expiresAt ${req.expiresAt} is not in the future` };
  if (ms > t.maxValidityMs) return { type: FailureType.GrantRefused, message: `rule ${req.ruleId} allows grants valid for at most ${Math.round(t.maxValidityMs / 3_600_000)}h` };
  if (rule.signed) {
    const age = req.signedAt ? now.getTime() - Date.parse(req.signedAt) : NaN;
    if (!(Math.abs(age) <= SIGNED_GRANT_FRESH_MS)) return { type: FailureType.SignatureInvalid, message: `a signed grant is added within ${SIGNED_GRANT_FRESH_MS / 60_000} minutes of signedAt ${req.signedAt}: sign it again` };
    const why = grantSignatureRefusal(rule.approverKeys, signedFieldsOf({ ...req, workspaceId }), req.signature);
    if (why) return { type: FailureType.SignatureInvalid, message: why };
  }
  return undefined;
}

export class GrantBook {
  constructor(
    readonly workspaceId: string,
    private readonly s: GrantRegistryState,
  ) {}

  get state(): GrantRegistryState {
    return this.s;
  }

  find(id: string): Grant | undefined {
    return this.s.grants.find((g) => g.id === id);
  }

  view(now: Date): GrantsView {
    const copy = (g: Grant) => ({ ...g, grantor: { ...g.grantor, roles: [...g.grantor.roles] }, scope: { ...g.scope } });
    return {
      schemaVersion: 1,
      workspaceId: this.workspaceId,
      active: this.s.grants.filter((g) => !grantUnusable(g, now)).map(copy),
      ended: this.s.grants.filter((g) => grantUnusable(g, now)).map(copy),
    };
  }

  /** A request already answered (same requestId) returns its grant, while the registry holds it. */
  earlier(req: GrantRequest): Grant | undefined {
    if (!req.requestId) return undefined;
    const known = this.s.requests.find(([k]) => k === req.requestId)?.[1];
    return (known ? this.find(known) : undefined) ?? this.s.grants.find((g) => g.requestId === req.requestId);
  }

  /** Why `earlier` (found by request id) is not the answer to `req`: another grantor, rule, uses or scope took that id. */
  static otherRequest(earlier: Grant, req: GrantRequest): string | undefined {
    const sc = (x: Grant['scope']) => [x.runtime, x.target, x.operation, x.when].join('\u0000');
    const same = normalizePrincipalId(earlier.grantor.id) === normalizePrincipalId(req.grantor.id) && earlier.ruleId === req.ruleId && earlier.maxUses === req.maxUses && sc(earlier.scope) === sc(req.scope);
    return same ? undefined : `request id ${req.requestId} was used for another grant (${earlier.id}); use a new one`;
  }

  /** Why a request id already answered cannot add a grant again (its grant ended and was pruned), or undefined. */
  private answered(req: GrantRequest, now: Date): string | undefined {
    if (!req.requestId) return undefined;
    const known = this.s.requests.find(([k]) => k === req.requestId)?.[1];
    if (known) return `request ${req.requestId} was answered by ${known}, which has ended`;
    this.s.signed = (this.s.signed ?? []).filter(([, at]) => now.getTime() - Date.parse(at) <= SIGNED_GRANT_FRESH_MS);
    if (this.s.signed.some(([k]) => k === req.requestId)) return `signed request ${req.requestId} was answered already`;
    return undefined;
  }

  add(req: GrantRequest, now: Date): GrantVerdict {
    const earlier = this.earlier(req);
    if (earlier) {
      const other = GrantBook.otherRequest(earlier, req);
      return other ? refused(FailureType.GrantRefused, other) : { ok: true, grant: earlier };
    }
    const again = this.answered(req, now);
    if (again) return refused(FailureType.GrantRefused, again);
    if (req.signature && (this.s.signed?.length ?? 0) >= MAX_SIGNED_REMEMBERED) return refused(FailureType.GrantRefused, `${MAX_SIGNED_REMEMBERED} signed grants were added in the last ${SIGNED_GRANT_FRESH_MS / 60_000} minutes; try again later`);
    this.prune(now);
    if (this.s.grants.length >= MAX_GRANTS) return refused(FailureType.GrantRefused, `the registry holds ${MAX_GRANTS} grants; revoke some first`);
    const grant: Grant = {
      id: `grant-${this.s.nextId}`,
      workspaceId: this.workspaceId,
      ruleId: req.ruleId,
      grantor: { id: req.grantor.id, roles: [...req.grantor.roles] },
      scope: { ...req.scope },
      maxUses: req.maxUses,
      uses: 0,
      expiresAt: req.expiresAt,
      reason: req.reason,
      grantedAt: now.toISOString(),
      ...(req.requestId && { requestId: req.requestId }),
      ...(req.signature && { signature: req.signature, signedAt: req.signedAt }),
    };
    if (!this.fits(grant, now)) return refused(FailureType.GrantRefused, `the registry's grants would take more than ${MAX_GRANT_BYTES} bytes; revoke some, or grant with shorter texts`);
    this.s.nextId++;
    this.s.grants.push(grant);
    if (req.requestId) {
      this.s.requests.push([req.requestId, grant.id]);
      if (this.s.requests.length > MAX_REQUESTS) this.s.requests.shift();
      if (req.signature && req.signedAt) (this.s.signed ??= []).push([req.requestId, req.signedAt]);
    }
    return { ok: true, grant };
  }

  revoke(req: RevokeGrantRequest, now: Date): GrantVerdict {
    const g = this.find(req.grantId);
    if (!g) return refused(FailureType.GrantRefused, `no grant ${req.grantId} in workspace ${this.workspaceId}`);
    if (g.revokedAt) return { ok: true, grant: g };
    g.revokedBy = req.revokedBy.id;
    g.revokedAt = now.toISOString();
    g.revokeReason = req.reason;
    return { ok: true, grant: g };
  }

  /**
   * Take: each grant at most once per use key. A use is never given back: anyone who can send this
   * update can name a run's use key, so a give-back would let a grant count more often than its
   * grantor allowed. `release` is accepted (runs of the first build sent it) and ignored.
   */
  use(req: UseGrantsRequest, now: Date): UseGrantsResult {
    const released: string[] = [];
    const taken: UseGrantsResult['taken'] = [];
    for (const id of new Set(req.take ?? [])) {
      const g = this.find(id);
      if (!g) {
        taken.push({ grantId: id, ok: false, type: FailureType.GrantUnavailable, message: `no grant ${id}` });
        continue;
      }
      const key = `${id} ${req.useKey}`;
      // A retried activity finds its use already taken: the same answer, not a second use.
      if (this.s.uses.includes(key)) {
        taken.push({ grantId: id, ok: true, grant: { ...g } });
        continue;
      }
      const why = grantUnusable(g, now);
      if (why) {
        taken.push({ grantId: id, ok: false, type: FailureType.GrantUnavailable, message: why });
        continue;
      }
      g.uses++;
      this.s.uses.push(key);
      if (this.s.uses.length > MAX_USES_REMEMBERED) this.s.uses.splice(0, this.s.uses.length - MAX_USES_REMEMBERED);
      taken.push({ grantId: id, ok: true, grant: { ...g } });
    }
    return { taken, released };
  }

  /** Whether `grant` fits the byte budget, after dropping ended grants (oldest first) as needed. */
  private fits(grant: Grant, now: Date): boolean {
    const size = (x: unknown) => utf8Length(JSON.stringify(x));
    let bytes = size(this.s.grants) + size(grant) + 1;
    while (bytes > MAX_GRANT_BYTES) {
      const ended = this.s.grants.find((g) => grantUnusable(g, now));
      if (!ended) return false;
      this.s.grants.splice(this.s.grants.indexOf(ended), 1);
      bytes -= size(ended) + 1;
    }
    return true;
  }

  /** Drop the oldest ended grants beyond the bound (they stay in the registry's history). */
  private prune(now: Date): void {
    const ended = this.s.grants.filter((g) => grantUnusable(g, now));
    for (const g of ended.slice(0, Math.max(0, ended.length - MAX_ENDED))) this.s.grants.splice(this.s.grants.indexOf(g), 1);
  }
}
