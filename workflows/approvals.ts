/**
 * Approval state of one run: who approved which action hash, which decision ids were seen, and the
 * pure rules that accept or refuse a decision. No Temporal imports; the workflow feeds it time.
 */
import { canonicalJson } from './hashing';
import { FailureType } from './failures';
import type { ApprovalRecord, Decision, DecisionKind, RunState } from './types';

export type DecisionVerdict =
  | { ok: true; kind: DecisionKind; counted: boolean; /** A repeat of a decision already applied. */ replayed?: boolean }
  | { ok: false; type: FailureType; message: string };

/** What a decision is judged against. */
export interface DecisionContext {
  state: RunState;
  actionHash: string;
  requesterId: string;
  eligibleRoles: readonly string[];
}

/** Decisions each waiting state takes. Assisted: approve releases early, reject vetoes. */
const ACCEPTS: Partial<Record<RunState, readonly DecisionKind[]>> = {
  AwaitingApproval: ['approve', 'reject', 'requestChanges'],
  VetoWindow: ['approve', 'reject'],
  ChangesRequested: ['reject'],
};

/** Governance checks, in order; the first that fails names the refusal. */
export function judgeDecision(ctx: DecisionContext, kind: DecisionKind, d: Decision): DecisionVerdict {
  if (!(ACCEPTS[ctx.state] ?? []).includes(kind)) {
    return { ok: false, type: FailureType.DecisionNotExpected, message: `a ${kind} decision is not taken in state ${ctx.state}` };
  }
  if (d.actionHash !== ctx.actionHash) {
    return {
      ok: false,
      type: FailureType.ActionHashMismatch,
      message: `decision is for action ${d.actionHash.slice(0, 12)}…, the run's action is ${ctx.actionHash.slice(0, 12)}…`,
    };
  }
  if (d.approver.id === ctx.requesterId) {
    return {
      ok: false,
      type: FailureType.SelfApprovalRefused,
      message: `${d.approver.id} requested this run and may not decide on it (use cancelRun to withdraw)`,
    };
  }
  if (!d.approver.roles.some((r) => ctx.eligibleRoles.includes(r))) {
    return {
      ok: false,
      type: FailureType.ApproverNotEligible,
      message: `${d.approver.id} holds none of the eligible roles [${ctx.eligibleRoles.join(', ')}]`,
    };
  }
  return { ok: true, kind, counted: true };
}

/** Approvals for the current action, one per distinct approver, and every decision id seen. */
export class ApprovalBook {
  private readonly byApprover = new Map<string, ApprovalRecord>();
  private readonly seen = new Map<string, { fingerprint: string; verdict: DecisionVerdict }>();

  get approvals(): ApprovalRecord[] {
    return [...this.byApprover.values()];
  }

  get count(): number {
    return this.byApprover.size;
  }

  /** A decision id seen before: its earlier verdict if the content is the same, a conflict if not. */
  replay(kind: DecisionKind, d: Decision): DecisionVerdict | undefined {
    const prior = this.seen.get(d.decisionId);
    if (!prior) return undefined;
    if (prior.fingerprint === fingerprint(kind, d)) return prior.verdict.ok ? { ...prior.verdict, replayed: true } : prior.verdict;
    return { ok: false, type: FailureType.DecisionConflict, message: `decision id ${d.decisionId} was already used for another decision` };
  }

  /** Remember the verdict; an accepted approve counts once per approver. */
  settle(kind: DecisionKind, d: Decision, verdict: DecisionVerdict, at: Date): DecisionVerdict {
    let final = verdict;
    if (verdict.ok && kind === 'approve') {
      if (this.byApprover.has(d.approver.id)) final = { ...verdict, counted: false };
      else this.byApprover.set(d.approver.id, { decisionId: d.decisionId, approverId: d.approver.id, at: at.toISOString() });
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
}

function fingerprint(kind: DecisionKind, d: Decision): string {
  return canonicalJson({ kind, ...d });
}
