/**
 * Approval state of one run: who approved which action hash, which decision ids were seen, and the
 * pure rules that accept or refuse a decision (separation of duties included). No Temporal imports;
 * the workflow feeds it time.
 */
import { canonicalJson, sha256Hex } from '../hashing';
import { FailureType } from '../failures';
import { normalizePrincipalId, verifyDecisionSignature } from './signatures';
import type { ApprovalRecord, Decision, DecisionKind, RunState } from '../types';

export type DecisionVerdict =
  | { ok: true; kind: DecisionKind; counted: boolean; /** A repeat of a decision already applied. */ replayed?: boolean }
  | { ok: false; type: FailureType; message: string };

/** What a decision is judged against. */
export interface DecisionContext {
  state: RunState;
  workflowId: string;
  actionHash: string;
  requesterId: string;
  eligibleRoles: readonly string[];
  eligibleUsers: readonly string[];
  /** Compare ids case-insensitively (runs after the hostile-input round); older runs compare as sent. */
  normalizedIds?: boolean;
  /** Set when policy requires signed decisions: approver id -> Ed25519 public key (hex). */
  approverKeys?: Readonly<Record<string, string>>;
  /** Why taking this decision would give the approver incompatible duties, if it would. */
  dutyConflict(approverId: string): string | undefined;
}

/** Decisions each waiting state takes. Assisted: approve releases early, reject vetoes. */
const ACCEPTS: Partial<Record<RunState, readonly DecisionKind[]>> = {
  AwaitingApproval: ['approve', 'reject', 'requestChanges'],
  VetoWindow: ['approve', 'reject'],
  ChangesRequested: ['reject'],
};

const refused = (type: FailureType, message: string): DecisionVerdict => ({ ok: false, type, message });

/** Governance checks, in order; the first that fails names the refusal. */
export function judgeDecision(ctx: DecisionContext, kind: DecisionKind, d: Decision): DecisionVerdict {
  if (!(ACCEPTS[ctx.state] ?? []).includes(kind)) {
    return refused(FailureType.DecisionNotExpected, `a ${kind} decision is not taken in state ${ctx.state}`);
  }
  if (d.actionHash !== ctx.actionHash) {
    return refused(FailureType.ActionHashMismatch, `decision is for action ${d.actionHash.slice(0, 12)}…, the run's action is ${ctx.actionHash.slice(0, 12)}…`);
  }
  if (d.approver.id === ctx.requesterId) {
    return refused(FailureType.SelfApprovalRefused, `${d.approver.id} requested this run and may not decide on it (use cancelRun to withdraw)`);
  }
  // Identity first: under signed rules the signature proves who decided.
  if (ctx.approverKeys) {
    const fields = { workflowId: ctx.workflowId, actionHash: d.actionHash, kind, decisionId: d.decisionId, approverId: d.approver.id, signedAt: d.signedAt ?? '' };
    const sig = d.signedAt ? verifyDecisionSignature(fields, d.signature, ctx.approverKeys) : ({ ok: false, reason: 'missing' } as const);
    if (!sig.ok) return refused(FailureType.SignatureInvalid, `policy requires a signed decision: signature ${sig.reason.replace('_', ' ')}`);
  }
  const norm = (id: string) => (ctx.normalizedIds ? normalizePrincipalId(id) : id);
  const approverId = norm(d.approver.id);
  if (!ctx.eligibleUsers.some((u) => norm(u) === approverId) && !d.approver.roles.some((r) => ctx.eligibleRoles.includes(r))) {
    return refused(FailureType.ApproverNotEligible, `${d.approver.id} holds none of the eligible roles [${ctx.eligibleRoles.join(', ')}]`);
  }
  const conflict = ctx.dutyConflict(d.approver.id);
  if (conflict) return refused(FailureType.IncompatibleDuties, conflict);
  return { ok: true, kind, counted: true };
}

/** An `ApprovalBook` as plain data, carried across continue-as-new. */
export interface ApprovalBookState {
  approvals: ApprovalRecord[];
  /** Every decision id seen, with its content fingerprint and first verdict, in the order seen. */
  seen: [string, { fingerprint: string; verdict: DecisionVerdict }][];
}

/** Approvals for the current action, one per distinct approver, and every decision id seen. */
export class ApprovalBook {
  private readonly byApprover = new Map<string, ApprovalRecord>();
  private readonly seen = new Map<string, { fingerprint: string; verdict: DecisionVerdict }>();

  constructor(state?: ApprovalBookState) {
    for (const a of state?.approvals ?? []) this.byApprover.set(a.approverId, { ...a });
    for (const [id, s] of state?.seen ?? []) this.seen.set(id, { fingerprint: s.fingerprint, verdict: { ...s.verdict } });
  }

  get state(): ApprovalBookState {
    return { approvals: this.approvals.map((a) => ({ ...a })), seen: [...this.seen].map(([id, s]) => [id, { fingerprint: s.fingerprint, verdict: { ...s.verdict } }]) };
  }

  get approvals(): ApprovalRecord[] {
    return [...this.byApprover.values()];
  }

  /** Approvals that count at `now` (cooling-off over). */
  counted(now: Date): ApprovalRecord[] {
    const t = now.toISOString();
    return this.approvals.filter((a) => a.countsFrom <= t);
  }

  /** The next time a waiting approval starts to count, if any. */
  nextCountsFrom(now: Date): string | undefined {
    const t = now.toISOString();
    return this.approvals.map((a) => a.countsFrom).filter((c) => c > t).sort()[0];
  }

  /** A decision id seen before: its earlier verdict if the content is the same, a conflict if not. */
  replay(kind: DecisionKind, d: Decision): DecisionVerdict | undefined {
    const prior = this.seen.get(d.decisionId);
    if (!prior) return undefined;
    if (prior.fingerprint === fingerprint(kind, d)) {
      if (!prior.verdict.ok) return prior.verdict;
      // It counts only while its approval stands: freshness or an amendment may have voided it since,
      // and a sender told `counted: true` would never renew it.
      const stands = kind !== 'approve' || this.byApprover.get(d.approver.id)?.decisionId === d.decisionId;
      return { ...prior.verdict, counted: prior.verdict.counted && stands, replayed: true };
    }
    return refused(FailureType.DecisionConflict, `decision id ${d.decisionId} was already used for another decision`);
  }

  /** Remember the verdict; an accepted approve counts once per approver, from `countsFrom`. */
  settle(kind: DecisionKind, d: Decision, verdict: DecisionVerdict, at: Date, countsFrom: Date, grantId?: string): DecisionVerdict {
    let final = verdict;
    if (verdict.ok && kind === 'approve') {
      if (this.byApprover.has(d.approver.id)) final = { ...verdict, counted: false };
      else {
        const start = countsFrom > at ? countsFrom : at;
        this.byApprover.set(d.approver.id, {
          decisionId: d.decisionId,
          approverId: d.approver.id,
          approverRoles: d.approver.roles,
          at: at.toISOString(),
          countsFrom: start.toISOString(),
          ...(grantId && { grantId }),
        });
      }
    }
    this.seen.set(d.decisionId, { fingerprint: fingerprint(kind, d), verdict: final });
    return final;
  }

  /** An amendment voids every approval given for the old action. Seen ids stay seen. */
  voidApprovals(): number {
    const n = this.byApprover.size;
    this.byApprover.clear();
    return n;
  }

  /** Freshness: void approvals given before `cutoff`; returns the approvers whose approval was voided. */
  voidGivenBefore(cutoff: Date): string[] {
    const t = cutoff.toISOString();
    const stale = this.approvals.filter((a) => a.at < t).map((a) => a.approverId);
    for (const id of stale) this.byApprover.delete(id);
    return stale;
  }
}

/** A digest of the decision's content: a repeat must match it exactly, and a digest keeps the book small. */
function fingerprint(kind: DecisionKind, d: Decision): string {
  return sha256Hex(canonicalJson({ kind, ...d }));
}
