/**
 * Everything one governed run knows and decides, as one object: the action and its hash, the policy
 * decision, approvals, refusals, deadlines and the evidence chain. Pure: the workflow passes time in
 * and turns verdicts into Temporal failures. Handlers call the `apply*` methods; the main loop reads
 * the flags they set and moves the run through named steps (`openApprovalRound`, `escalate`,
 * `acceptReceipt`, `end`, ...). Fields are private behind getters: every change goes through a method.
 */
import type { PolicyDecision } from '../../policies/evaluate';
import { ownValue } from '../../policies/own';
import type { Duty, PolicySnapshot } from '../../policies/schema';
import { ApprovalBook, type DecisionVerdict, judgeDecision } from './approvals';
import { EvidenceCategory, type EvidenceActor, EvidenceChain, type EvidenceEntry, type EvidenceInput, type EvidencePayloadRef, SYSTEM_ACTOR } from '../evidence-chain';
import { FailureType } from '../failures';
import { QuotaLease } from '../quota/lease';
import type { RunSnapshot } from './snapshot';
import { RunOutbox, buildRunEvent, eventsForState } from '../events/run-events';
import { hashAction } from '../hashing';
import type { Revocation, RunRevocation } from '../revocation/types';
import { type SignedKind, normalizePrincipalId, verifyDecisionSignature } from './signatures';
import { BreakGlassRecord, rateRefusal, releaseRefusal } from '../break-glass/release';
import type { BreakGlassClaimAnswer, BreakGlassRequest, BreakGlassReviewRequest } from '../break-glass/types';
import {
  type AmendRequest,
  type CancelRequest,
  type Decision,
  type DecisionKind,
  type EvidenceReceipt,
  type GovernedAction,
  type GovernedRunInput,
  type JsonValue,
  type ManualCompletion,
  type Principal,
  type RefusalRecord,
  type RunDeadlines,
  RunState,
  type RunStatus,
  type Tier,
} from '../types';

const MAX_REFUSALS_SHOWN = 20;
/**
 * Refusals recorded one entry each in the evidence chain before further ones are only counted (and
 * summarised in one entry at the next transition): a flood of bad messages must not grow the chain,
 * the `evidence` query or the sink's batches without bound.
 */
export const MAX_REFUSAL_ENTRIES = 100;
/** Approvals repeated by an approver already counted, recorded one by one before they are only counted. */
const MAX_REPEAT_ENTRIES = 20;
/** Longest refusal text kept in status, lastError and evidence. */
const MAX_REFUSAL_TEXT = 1000;

/** What a refused message named about itself, so its sender can find the refusal. */
export interface RefusalRef {
  decisionId?: string;
  actionHash?: string;
}

const clipText = (s: string, max: number) => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);
/** An own property of a policy map keyed by a user-supplied id, never an inherited one (`toString`). */
const ownList = (map: Readonly<Record<string, string[]>> | undefined, key: string): string[] | undefined => {
  const v = ownValue(map, key);
  return Array.isArray(v) ? v.filter((r): r is string => typeof r === 'string') : undefined;
};

export type Verdict = { ok: true } | { ok: false; type: FailureType; message: string };

const isoAfter = (from: Date, ms: number) => new Date(from.getTime() + ms).toISOString();

const user = (id: string): EvidenceActor => ({ kind: 'User', id });
const SYSTEM = SYSTEM_ACTOR;

export class GovernedRunState {
  // Every field that changes is private and changed only by a method below; the workflow reads the
  // getters. So each rule of the run (who may move it, to what, with which evidence) lives here.
  private _state: RunState = RunState.Evaluating;
  private _tier?: Tier;
  private _action: GovernedAction;
  private _actionHash: string;
  private _policy?: PolicyDecision;
  readonly book: ApprovalBook;
  readonly chain: EvidenceChain;
  readonly refusals: RefusalRecord[] = [];
  private _refusalsTotal = 0;
  /** Approvals accepted but not counted again (the approver already counted). */
  private _repeatedApprovals = 0;
  /** Refusals recorded as their own evidence entry so far. */
  private refusalEntries = 0;
  /** Refusals past MAX_REFUSAL_ENTRIES not yet summarised in evidence, by `via type`. */
  private unrecordedRefusals = new Map<string, number>();
  private _deadlines: RunDeadlines = {};
  /** Start of the current approval round: the request, or the last amendment. */
  private _roundStartedAt: Date;
  private _escalationStepsDone = 0;
  private _escalationRoles: string[] = [];
  /** Duties each person has taken in this run, for the incompatible-duties check. */
  readonly duties = new Map<string, Set<Duty>>();
  private _lastError?: { type: string; message: string };
  private _output?: JsonValue;
  /** What the evidence sink acknowledged last; entries past `count` are not stored yet. */
  private _evidenceStored?: EvidenceReceipt;
  /** The sink refused this run's entries (a fork): stop writing, fail the run. */
  private _evidenceRefused = false;
  /**
   * Entries recorded while the dispatch activity runs (it may store the outcome entry itself, right
   * after the head it was given): chained once the outcome is known, after it when it was adopted.
   */
  private deferred?: { input: EvidenceInput; at: Date }[];
  /** The outcome entry came from the dispatch activity (`endWith`): its time is the worker's clock. */
  private adoptedOutcome = false;
  /** Lifecycle CloudEvents for the workspace's subscribers, in order. */
  readonly outbox: RunOutbox;
  /** The policy snapshot the run was decided by (carried across continue-as-new, never loaded again). */
  private _policySnapshot?: PolicySnapshot;
  /** Executions before this one in the continue-as-new chain. */
  private _continuations = 0;
  /** What the sink acknowledged for an earlier execution of the chain (status shows it until this one writes). */
  private _evidenceInherited?: EvidenceReceipt;
  /** The run has ended: the event pump stops once the outbox is empty. */
  private _eventsClosing = false;
  /** The workspace quota lease of the dispatch, when a quota applies to its runtime. */
  private _quota?: QuotaLease;
  /** The state changed since the last search-attribute upsert (lean runs upsert before the main loop waits). */
  private publishQueued = false;
  /** The Web UI's current details are rebuilt at the end of this activation (governed-run `showDetails`). */
  private detailsQueued = false;
  /**
   * Lean runs, while Dispatching but nothing is sent yet (the sink did not take the pre-dispatch
   * evidence, the run waits for it): the state decisions are judged in, as before the dispatch.
   */
  private _heldFrom?: RunState;

  // Set by handlers, read by the main loop.
  private _rejectedBy?: string;
  private _released = false;
  private _changesRequestedBy?: string;
  private _cancel?: CancelRequest;
  private _manual?: ManualCompletion;
  private _amended = false;
  /** How many times the main loop woke from a wait; `decide` replies after the next one. */
  private _wakeups = 0;
  /**
   * The main loop decided to dispatch and is writing evidence before it re-judges freshness: `decide`
   * waits (briefly) for the outcome, Dispatching or waiting again, instead of replying in between.
   */
  private _dispatchPending = false;
  /** Revocation: the one the registry confirmed covers this run, and what it did (portarium-revocation-v1). */
  private _revocation?: RunRevocation;

  get state(): RunState { return this._state; }
  get tier(): Tier | undefined { return this._tier; }
  get action(): GovernedAction { return this._action; }
  get actionHash(): string { return this._actionHash; }
  get policy(): PolicyDecision | undefined { return this._policy; }
  get refusalsTotal(): number { return this._refusalsTotal; }
  get repeatedApprovals(): number { return this._repeatedApprovals; }
  get deadlines(): Readonly<RunDeadlines> { return this._deadlines; }
  get roundStartedAt(): Date { return this._roundStartedAt; }
  get escalationStepsDone(): number { return this._escalationStepsDone; }
  get escalationRoles(): readonly string[] { return this._escalationRoles; }
  get lastError(): { type: string; message: string } | undefined { return this._lastError; }
  get output(): JsonValue | undefined { return this._output; }
  get evidenceStored(): EvidenceReceipt | undefined { return this._evidenceStored; }
  get evidenceRefused(): boolean { return this._evidenceRefused; }
  get policySnapshot(): PolicySnapshot | undefined { return this._policySnapshot; }
  get continuations(): number { return this._continuations; }
  get evidenceInherited(): EvidenceReceipt | undefined { return this._evidenceInherited; }
  get eventsClosing(): boolean { return this._eventsClosing; }
  get quota(): QuotaLease | undefined { return this._quota; }
  get heldFrom(): RunState | undefined { return this._heldFrom; }
  get rejectedBy(): string | undefined { return this._rejectedBy; }
  get released(): boolean { return this._released; }
  get changesRequestedBy(): string | undefined { return this._changesRequestedBy; }
  get cancel(): CancelRequest | undefined { return this._cancel; }
  get manual(): ManualCompletion | undefined { return this._manual; }
  get amended(): boolean { return this._amended; }
  get wakeups(): number { return this._wakeups; }
  get dispatchPending(): boolean { return this._dispatchPending; }

  // Break-glass (workflows/break-glass/): the release, once granted, and whether a claim is under way.
  private _breakGlass?: BreakGlassRecord;
  private _breakGlassClaiming = false;
  get breakGlass(): BreakGlassRecord | undefined { return this._breakGlass; }
  /** A break-glass release was granted: the main loop dispatches without the quorum. */
  get breakGlassReleased(): boolean { return this._breakGlass !== undefined; }
  get revocation(): RunRevocation | undefined { return this._revocation; }
  constructor(
    readonly input: GovernedRunInput,
    readonly workflowId: string,
    now: Date,
    /**
     * Run id of the first execution. Set (runs after SIGNED_V2_PATCH): signatures must be v2, bound to
     * it, and cancel, amend and manual completion need them too under a signed rule. Unset: v1 as before.
     */
    readonly firstExecutionRunId?: string,
    /** The state of the execution this one continues (already checked, chain verified). */
    carried?: RunSnapshot,
    /**
     * Started on the lean path (LEAN_RUN_PATCH in governed-run): one patch marker implies every earlier
     * patch, the pre-dispatch evidence travels with the dispatch, and search attributes are upserted
     * once before each wait of the main loop.
     */
    readonly lean = false,
    /**
     * Started after LEAN_LOCAL_SNAPSHOT_PATCH: every patch before it applies without being asked
     * (`patchApplies` in ./patches). A marker asked in the activation that resolves the policy snapshot's
     * local activity is one core cannot match on replay.
     */
    readonly localSnapshot = false,
  ) {
    this._action = carried?.action ?? input.action;
    this._actionHash = carried?.actionHash ?? hashAction(input.action);
    this._roundStartedAt = carried ? new Date(carried.roundStartedAt) : now;
    this.chain = new EvidenceChain({ workspaceId: input.workspaceId, correlationId: input.correlationId, runId: workflowId }, carried?.evidence.entries, { bounded: firstExecutionRunId !== undefined });
    this.book = new ApprovalBook(carried?.approvals);
    this.outbox = new RunOutbox(carried?.outbox);
    if (carried) this.restore(carried);
    else this.takeDuty(input.requestedBy.id, 'requester');
  }

  /** Everything but what the constructor set; the run goes on in the state it was in. */
  private restore(c: RunSnapshot): void {
    this._state = c.state;
    this._tier = c.tier;
    this._policy = c.policy;
    this._policySnapshot = c.policySnapshot;
    this._continuations = c.continuations;
    for (const [id, duties] of c.duties) this.duties.set(id, new Set(duties));
    // The sink keys chains per execution: this one stores the whole chain (same entries, same hashes) under its own.
    this._evidenceInherited = c.evidence.stored;
    this.refusals.push(...c.refusals);
    this._refusalsTotal = c.refusalsTotal;
    this.refusalEntries = c.refusalEntries;
    this._repeatedApprovals = c.repeatedApprovals ?? 0;
    this.unrecordedRefusals = new Map(c.unrecordedRefusals);
    this._lastError = c.lastError;
    this._deadlines = { ...c.deadlines };
    this._escalationStepsDone = c.escalationStepsDone;
    this._escalationRoles = [...c.escalationRoles];
    this._released = c.released;
    this._changesRequestedBy = c.changesRequestedBy;
    this._cancel = c.cancel;
    this._manual = c.manual;
    if (c.quota) {
      const q = (this._quota = new QuotaLease(c.quota.coordinator, c.quota.leaseId, c.quota.limits));
      q.phase = c.quota.phase;
      q.queued = c.quota.queued;
      q.waitingFor = c.quota.waitingFor;
      q.grantedAt = c.quota.grantedAt;
    }
  }

  /** The whole state as one plain object, for continue-as-new (only while waiting, between batches). */
  carry(policySnapshot: PolicySnapshot): RunSnapshot {
    return {
      schemaVersion: 1,
      input: this.input,
      policySnapshot,
      ...(this.firstExecutionRunId !== undefined && { firstExecutionRunId: this.firstExecutionRunId }),
      continuations: this.continuations + 1,
      state: this.state,
      ...(this.tier !== undefined && { tier: this.tier }),
      action: this.action,
      actionHash: this.actionHash,
      policy: this.policy!,
      approvals: this.book.state,
      duties: [...this.duties].map(([id, held]) => [id, [...held]]),
      evidence: { entries: [...this.chain.entries], ...((this.evidenceStored ?? this.evidenceInherited) && { stored: this.evidenceStored ?? this.evidenceInherited }) },
      refusals: this.refusals.map((r) => ({ ...r })),
      refusalsTotal: this.refusalsTotal,
      refusalEntries: this.refusalEntries,
      repeatedApprovals: this.repeatedApprovals,
      unrecordedRefusals: [...this.unrecordedRefusals],
      ...(this.lastError && { lastError: this.lastError }),
      deadlines: { ...this.deadlines },
      roundStartedAt: this.roundStartedAt.toISOString(),
      escalationStepsDone: this.escalationStepsDone,
      escalationRoles: [...this.escalationRoles],
      released: this.released,
      ...(this.changesRequestedBy !== undefined && { changesRequestedBy: this.changesRequestedBy }),
      ...(this.cancel && { cancel: this.cancel }),
      ...(this.manual && { manual: this.manual }),
      outbox: this.outbox.state,
      ...(this.quota && { quota: { ...this.quota.status(), ...(this.quota.grantedAt && { grantedAt: this.quota.grantedAt }) } }),
    };
  }

  takeDuty(personId: string, duty: Duty): void {
    const held = this.duties.get(personId) ?? new Set<Duty>();
    held.add(duty);
    this.duties.set(personId, held);
  }

  /** Why taking `duty` would break an incompatible-duties rule of the policy, if it would. */
  dutyConflict(personId: string, duty: Duty): string | undefined {
    const held = this.duties.get(personId);
    if (!held) return undefined;
    for (const [a, b] of this.policy?.incompatibleDuties ?? []) {
      const other = duty === a ? b : duty === b ? a : undefined;
      if (other && other !== duty && held.has(other)) return `${personId} is ${other} of this run and may not also be ${duty}`;
    }
    return undefined;
  }

  get requesterId(): string {
    return this.input.requestedBy.id;
  }

  get eligibleRoles(): string[] {
    return [...(this.policy?.eligibleRoles ?? []), ...this.escalationRoles];
  }

  /** Approvals still needed at `now` (approvals in cooling-off do not count yet). */
  approvalsNeeded(now: Date): number {
    return this.tier === 'HumanApprove' && this.policy ? Math.max(0, this.policy.quorum - this.book.counted(now).length) : 0;
  }

  /** Specialist roles that no counted approver holds at `now`. */
  missingRoles(now: Date): string[] {
    if (this.tier !== 'HumanApprove' || !this.policy) return [];
    const counted = this.book.counted(now);
    return this.policy.requiredRoles.filter((r) => !counted.some((a) => a.approverRoles.includes(r)));
  }

  quorumMetAt(now: Date): boolean {
    return this.tier === 'HumanApprove' && this.approvalsNeeded(now) === 0 && this.missingRoles(now).length === 0;
  }

  /** Freshness: void approvals older than the policy allows at `now`; true if any were voided. */
  voidStaleApprovals(now: Date): boolean {
    const freshness = this.policy?.freshnessMs ?? 0;
    if (!freshness) return false;
    const voided = this.book.voidGivenBefore(new Date(now.getTime() - freshness));
    if (!voided.length) return false;
    this.record(EvidenceCategory.Approval, 'ApprovalsVoided', SYSTEM, `approvals older than ${freshness} ms are void; renew them`, now, {
      approvers: voided,
    });
    return true;
  }

  record(category: EvidenceCategory, event: string, actor: EvidenceActor, summary: string, now: Date, data?: { [k: string]: JsonValue }, payloadRefs?: EvidencePayloadRef[]): void {
    const input = { category, event, actor, summary, data, payloadRefs };
    if (this.deferred) this.deferred.push({ input, at: now });
    // After an outcome stamped by the dispatch activity's clock (a worker's, maybe ahead of the
    // server's): never earlier than it. Only such runs, so recorded chains replay as they were.
    else if (this.adoptedOutcome) this.appendNoEarlier(input, now);
    else this.chain.append(input, now);
  }

  /** Append `input` stamped `at`, or the last entry's time if that is later (time never goes backwards). */
  private appendNoEarlier(input: EvidenceInput, at: Date): void {
    const last = this.chain.entries[this.chain.entries.length - 1]?.occurredAt;
    this.chain.append(input, last && last > at.toISOString() ? new Date(last) : at);
  }

  /** From now until `chainDeferred`, entries wait outside the chain (the dispatch activity holds its head). */
  deferEvidence(): void {
    this.deferred ??= [];
  }

  /**
   * Chain the entries recorded since `deferEvidence`, in order; each is stamped no earlier than the
   * entry before it (one recorded while the runtime ran follows an outcome the activity stamped later).
   */
  chainDeferred(): void {
    const held = this.deferred;
    this.deferred = undefined;
    for (const { input, at } of held ?? []) this.appendNoEarlier(input, at);
  }

  /**
   * The run ends in `state` with `entry` as its outcome entry, built and stored by the dispatch
   * activity right after the head it was given. Entries recorded meanwhile follow it. False, and
   * nothing changed, when the entry is not exactly the next one of this chain for `state`.
   * `beforeEnd` runs once the entry is taken, while the run is still in its previous state.
   */
  endWith(state: RunState, entry: EvidenceEntry, beforeEnd?: () => void): boolean {
    if (!saysOutcome(state, entry) || !this.chain.adopt(entry)) return false;
    beforeEnd?.();
    this.adoptedOutcome = true;
    this._deadlines = {};
    this._dispatchPending = false;
    this._heldFrom = undefined;
    this._state = state;
    for (const name of eventsForState(state, this.tier)) this.publish(name);
    this.chainDeferred();
    this.summariseRefusals(new Date(this.chain.entries[this.chain.entries.length - 1].occurredAt));
    return true;
  }

  /** Entries the evidence sink has not acknowledged yet. */
  get unpersisted(): EvidenceEntry[] {
    return this.chain.entries.slice(this.evidenceStored?.count ?? 0);
  }

  /**
   * Refuses (and records) a message from a principal of another workspace. Principals without a
   * `workspaceId` are judged by roles and keys as before.
   */
  private refusedForeign(via: string, p: Principal, now: Date, ref?: RefusalRef): { ok: false; type: FailureType; message: string } | undefined {
    if (p.workspaceId === undefined || p.workspaceId === this.input.workspaceId) return undefined;
    const message = `${p.id} acts for workspace ${p.workspaceId}, not ${this.input.workspaceId}`;
    this.refuse(via, p.id, FailureType.WorkspaceMismatch, message, now, ref);
    return { ok: false, type: FailureType.WorkspaceMismatch, message };
  }

  /**
   * A refused request: kept in `status`, `lastError` and the evidence chain, with the id and action
   * hash the message named. Bounded: texts are clipped, an identical repeat bumps the last record's
   * `count`, and past MAX_REFUSAL_ENTRIES refusals are counted and summarised at the next transition.
   */
  refuse(via: string, by: string | undefined, type: FailureType, message: string, now: Date, ref: RefusalRef = {}): Verdict {
    // Runs from before the hostile-input round recorded texts whole and every refusal as an entry.
    const bounded = this.firstExecutionRunId !== undefined;
    const text = bounded ? clipText(message, MAX_REFUSAL_TEXT) : message;
    const at = now.toISOString();
    const { decisionId, actionHash } = ref;
    this._refusalsTotal++;
    const last = this.refusals[this.refusals.length - 1];
    if (last && last.type === type && last.via === via && last.by === by && last.message === text && last.decisionId === decisionId && last.actionHash === actionHash) {
      last.count = (last.count ?? 1) + 1;
      last.at = at;
    } else {
      this.refusals.push({ type, message: text, via, by, ...(decisionId !== undefined && { decisionId }), ...(actionHash !== undefined && { actionHash }), at });
      if (this.refusals.length > MAX_REFUSALS_SHOWN) this.refusals.shift();
    }
    this._lastError = { type, message: text };
    if (!bounded || this.refusalEntries < MAX_REFUSAL_ENTRIES) {
      this.refusalEntries++;
      // Runs from before the hostile-input round (no first execution id) stored refusals without the
      // ids; a replayed chain must hash as stored.
      const named = this.firstExecutionRunId !== undefined;
      this.record(EvidenceCategory.Approval, 'RequestRefused', by ? user(by) : SYSTEM, `${via} refused: ${text}`, now, {
        via,
        type,
        ...(named && decisionId !== undefined && { decisionId }),
        ...(named && actionHash !== undefined && { actionHash }),
      });
    } else this.countUnrecorded(`${via} ${type}`);
    return { ok: false, type, message: text };
  }

  /** Count a request that is not recorded one by one; at most 50 distinct kinds are told apart. */
  private countUnrecorded(key: string): void {
    const slot = this.unrecordedRefusals.has(key) || this.unrecordedRefusals.size < 50 ? key : 'other';
    this.unrecordedRefusals.set(slot, (this.unrecordedRefusals.get(slot) ?? 0) + 1);
  }

  /** Summarise refusals that were only counted since the last summary, in one evidence entry. */
  private summariseRefusals(now: Date): void {
    if (!this.unrecordedRefusals.size) return;
    const counts: { [k: string]: JsonValue } = {};
    let total = 0;
    for (const [k, n] of this.unrecordedRefusals) {
      counts[k] = n;
      total += n;
    }
    this.unrecordedRefusals = new Map();
    this.record(EvidenceCategory.Approval, 'RequestsRefusedSummary', SYSTEM, `${total} more request(s) refused or repeated (counted, not recorded one by one)`, now, { counts, total });
  }

  transition(state: RunState, now: Date, summary: string, data?: { [k: string]: JsonValue }, payloadRefs?: EvidencePayloadRef[]): void {
    this.summariseRefusals(now);
    this._dispatchPending = false;
    this._heldFrom = undefined;
    this._state = state;
    const category = state === RunState.Dispatching || state === RunState.Succeeded || state === RunState.Failed
      ? EvidenceCategory.Action
      : EvidenceCategory.System;
    this.record(category, `State${state}`, SYSTEM, summary, now, data, payloadRefs);
    for (const name of eventsForState(state, this.tier)) this.publish(name);
  }

  /** The run ends in `state`: nothing is due any more. */
  end(state: RunState, now: Date, summary: string, data?: { [k: string]: JsonValue }, payloadRefs?: EvidencePayloadRef[]): void {
    this._deadlines = {};
    this.transition(state, now, summary, data, payloadRefs);
  }

  /** Nothing is due while the run dispatches or once its lease is granted. */
  clearDeadlines(): void {
    this._deadlines = {};
  }

  /** An Assisted run announces its plan: anyone eligible may veto it until `vetoEndsAt`. */
  openVetoWindow(now: Date): void {
    this._deadlines = { vetoEndsAt: isoAfter(now, this._policy!.vetoWindowMs) };
  }

  /** The approval round's deadlines, from its start: expiry, and the next escalation step not yet taken. */
  openApprovalRound(): void {
    this._deadlines = { expiresAt: isoAfter(this._roundStartedAt, this._policy!.expiresAfterMs), escalatesAt: this.escalatesAt(this._escalationStepsDone) };
  }

  private escalatesAt(step: number): string | undefined {
    const steps = this._policy!.escalation;
    return step < steps.length ? isoAfter(this._roundStartedAt, steps[step].afterMs) : undefined;
  }

  /** An escalation step is due at `now`. */
  escalationDue(now: Date): boolean {
    return !!this._deadlines.escalatesAt && now.getTime() >= Date.parse(this._deadlines.escalatesAt);
  }

  /**
   * Take the next escalation step: its roles may approve too (a role already eligible is not added
   * again), the step after it gets its deadline, and the evidence says so. Returns the step taken.
   */
  escalate(now: Date): { addRoles: string[] } {
    const step = this._policy!.escalation[this._escalationStepsDone++];
    this._escalationRoles.push(...step.addRoles.filter((r) => !this.eligibleRoles.includes(r)));
    this._deadlines = { ...this._deadlines, escalatesAt: this.escalatesAt(this._escalationStepsDone) };
    this.record(EvidenceCategory.Approval, 'Escalated', SYSTEM, `escalated: [${step.addRoles.join(', ')}] may now approve`, now, {
      addRoles: step.addRoles,
      step: this._escalationStepsDone,
    });
    return step;
  }

  /** Nobody dispatches a ManualOnly action: people report it done before `expiresAt`. */
  openManualWindow(now: Date): void {
    this._deadlines = { expiresAt: isoAfter(now, this._policy!.manualExpiresAfterMs) };
  }

  /** The run holds `lease` of its workspace's quota and waits for the grant. */
  askForQuota(lease: QuotaLease): void {
    this._quota = lease;
    this._deadlines = {};
  }

  /** The coordinator queued the run: status shows when a slot frees, when it knows. */
  quotaQueued(freesAt: string | undefined): void {
    this._deadlines = freesAt ? { quotaFreesAt: freesAt } : {};
  }

  /** Decided by this snapshot for the rest of the run (carried across continue-as-new). */
  usePolicySnapshot(snapshot: PolicySnapshot): void {
    this._policySnapshot = snapshot;
  }

  /** The main loop woke from a wait: a `decide` that moved the run replies after this. */
  wake(): void {
    this._wakeups++;
  }

  /** The main loop decided to dispatch: `decide` waits for where the dispatch step goes. */
  dispatchDecided(): void {
    this._dispatchPending = true;
  }

  /** Approvals went stale before the dispatch: the run waits for them again. */
  dispatchWentStale(): void {
    this._dispatchPending = false;
  }

  /** A lean dispatch waits for the evidence sink: decisions are judged in `state`, as before it. */
  holdDecisionsIn(state: RunState): void {
    this._heldFrom = state;
  }

  endHold(): void {
    this._heldFrom = undefined;
  }

  // --- Revocation (portarium-revocation-v1) ---

  /**
   * A revocation confirmed by the registry covers this run: the main loop ends it (or its dispatch is
   * cancelled); `effect` says what it did, and each effect is an evidence entry naming the revocation.
   */
  applyRevocation(r: Revocation, effect: RunRevocation['effect'], now: Date): void {
    const first = !this._revocation;
    this._revocation = { revocationId: r.id, scope: { ...r.scope }, reason: r.reason, revokedBy: r.revokedBy, revokedAt: r.revokedAt, effect };
    this.record(EvidenceCategory.System, first ? 'RevocationApplied' : 'RevocationEffect', user(r.revokedBy), `${r.id}: ${effect}: ${clipText(r.reason, 300)}`, now, {
      revocationId: r.id,
      scope: { workspaceId: r.scope.workspaceId, kind: r.scope.kind, value: r.scope.value, runtime: r.scope.runtime ?? null },
      revokedAt: r.revokedAt,
      effect,
    });
  }

  /** What the revocation did in the end (the dispatch was cancelled, or the runtime finished anyway). */
  revocationEffect(effect: RunRevocation['effect'], now: Date): void {
    const r = this._revocation;
    if (!r || r.effect === effect) return;
    this._revocation = { ...r, effect };
    this.record(EvidenceCategory.System, 'RevocationEffect', SYSTEM, `${r.revocationId}: ${effect}`, now, { revocationId: r.revocationId, effect });
  }

  // --- end revocation ---

  /** What the runtime returned; status and the result show it. */
  recordOutput(output: JsonValue | undefined): void {
    this._output = output;
  }

  /** Why the run failed (the runtime's or the sink's failure, redacted), shown in status. */
  noteFailure(cause: { type: string; message: string }): void {
    this._lastError = cause;
  }

  /**
   * Take the sink's receipt as what is stored. A receipt that did not decode (or is not one) proves
   * nothing was stored; one that names another head than ours means the sink holds a different chain
   * (a fork): the run stops writing.
   */
  acceptReceipt(receipt: EvidenceReceipt | undefined): Verdict {
    if (typeof receipt?.count !== 'number' || !Number.isInteger(receipt.count) || typeof receipt.head !== 'string') {
      return { ok: false, type: FailureType.EvidenceUnavailable, message: 'the evidence sink answered with something that is not a receipt' };
    }
    const ours = this.chain.entries[receipt.count - 1]?.hash;
    if (receipt.count < (this._evidenceStored?.count ?? 0) || receipt.count > this.chain.entries.length || ours !== receipt.head) {
      this._evidenceRefused = true;
      return { ok: false, type: FailureType.EvidenceConflict, message: `the evidence sink holds another chain for this run (count ${receipt.count}, head ${receipt.head})` };
    }
    this._evidenceStored = receipt;
    return { ok: true };
  }

  /** The sink refused the chain (a fork): nothing more is written. */
  refuseEvidence(): void {
    this._evidenceRefused = true;
  }

  /** The sink keys chains per execution and this one moved: the whole chain is written afresh under it. */
  forgetReceipt(): void {
    this._evidenceStored = undefined;
  }

  /** The run has ended: the event pump stops once the outbox is empty. */
  closeEvents(): void {
    this._eventsClosing = true;
  }

  /** Lean runs: the search attributes are upserted at the next flush. */
  queuePublish(): void {
    this.publishQueued = true;
  }

  /** Whether an upsert was queued since the last flush; taking it empties the queue. */
  takePublish(): boolean {
    const queued = this.publishQueued;
    this.publishQueued = false;
    return queued;
  }

  /** Whether the details must be rebuilt now: false while a rebuild is already queued for this activation. */
  queueDetails(): boolean {
    if (this.detailsQueued) return false;
    this.detailsQueued = true;
    return true;
  }

  detailsShown(): void {
    this.detailsQueued = false;
  }

  /** Queue event `name`, reporting the newest evidence entry. */
  private publish(name: Parameters<typeof buildRunEvent>[0]): void {
    const { workspaceId, correlationId } = this.input;
    const { runtime, target, operation } = this.action;
    const entry = this.chain.entries[this.chain.entries.length - 1];
    this.outbox.add(buildRunEvent(name, {
      runId: this.workflowId, workspaceId, correlationId, state: this.state, tier: this.tier,
      actionHash: this.actionHash, action: { runtime, target, operation }, requestedBy: this.requesterId,
    }, entry));
  }

  recordRequested(now: Date): void {
    const { requestedBy, action, reason, idempotencyKey, tierOverride } = this.input;
    this.record(EvidenceCategory.Plan, 'RunRequested', user(requestedBy.id), reason, now, {
      actionHash: this.actionHash,
      runtime: action.runtime,
      target: action.target,
      operation: action.operation,
      tools: action.tools ?? [],
      requesterRoles: requestedBy.roles,
      idempotencyKey,
      tierOverride: tierOverride ?? null,
    });
    this.publish('requested');
  }

  applyPolicy(decision: PolicyDecision, now: Date): void {
    this._policy = decision;
    this._tier = decision.tier;
    // A new decision by policy consumes the amendment that asked for it.
    this._amended = false;
    this.record(EvidenceCategory.Policy, decision.effect === 'Allow' ? 'PolicyAllowed' : 'PolicyDenied', SYSTEM,
      decision.effect === 'Allow' ? `allowed at tier ${decision.tier}` : 'denied by policy', now, {
        policyHash: decision.policyHash,
        tier: decision.tier ?? null,
        matchedRules: decision.matchedRules,
        reasons: decision.reasons,
        actionHash: this.actionHash,
      });
  }

  /**
   * Under a signed rule: whether `signature` by `signerId` covers this message. v2 (bound to the first
   * execution) where the run has one, else v1. Checked before anything is looked up by the claimed id.
   */
  verifySigned(kind: SignedKind, id: string, signerId: string, actionHash: string, signature: string | undefined, signedAt: string | undefined): Verdict {
    const keys = this.policy?.approverKeys ?? {};
    const fields = { workflowId: this.workflowId, actionHash, kind, decisionId: id, approverId: signerId, signedAt: signedAt ?? '' };
    const v2 = this.firstExecutionRunId !== undefined;
    const sig = signedAt ? verifyDecisionSignature(v2 ? { ...fields, firstExecutionRunId: this.firstExecutionRunId } : fields, signature, keys) : ({ ok: false, reason: 'missing' } as const);
    if (sig.ok) return { ok: true };
    return { ok: false, type: FailureType.SignatureInvalid, message: `policy requires a signed ${kind}: signature ${sig.reason.replace('_', ' ')}` };
  }

  /** Whether this run's messages must be signed beyond the three decisions (v2 runs under a signed rule). */
  get signsEverything(): boolean {
    return !!this.policy?.signed && this.firstExecutionRunId !== undefined;
  }

  /** Roles registered in policy for `id` (own properties, ids compared normalised); [] when none. */
  registeredRoles(id: string): string[] {
    const map = this.policy?.approverRoles;
    const exact = ownList(map, id);
    if (exact) return exact;
    // Older runs looked ids up exactly as sent.
    if (!map || typeof map !== 'object' || this.firstExecutionRunId === undefined) return [];
    const wanted = normalizePrincipalId(id);
    for (const k of Object.keys(map)) if (normalizePrincipalId(k) === wanted) return ownList(map, k) ?? [];
    return [];
  }

  /**
   * Judge and apply a validated decision. A repeated decision id returns its first verdict. With
   * `grantId`, the decision is a standing approval the run itself built from a grant whose signature
   * (where the rule needs one) it has verified; everything else is judged as for any approval.
   */
  applyDecision(kind: DecisionKind, claimed: Decision, via: string, now: Date, grantId?: string): DecisionVerdict {
    const ref: RefusalRef = { decisionId: claimed.decisionId, actionHash: claimed.actionHash };
    const foreign = this.refusedForeign(via, claimed.approver, now, ref);
    if (foreign) return foreign;
    // Identity first: under signed rules the signature proves who decided, before anything is looked
    // up by the claimed id (the replay book, the registered roles).
    if (this.policy?.signed && this.firstExecutionRunId !== undefined && !grantId) {
      const sig = this.verifySigned(kind, claimed.decisionId, claimed.approver.id, claimed.actionHash, claimed.signature, claimed.signedAt);
      if (!sig.ok) return this.refuse(via, claimed.approver.id, sig.type, sig.message, now, ref) as DecisionVerdict;
    }
    // Under signed rules the key proves who decided; their roles come from policy, not the message.
    const registered = this.policy?.signed ? this.registeredRoles(claimed.approver.id) : undefined;
    const d: Decision = registered ? { ...claimed, approver: { id: claimed.approver.id, roles: registered } } : claimed;
    const replayed = this.book.replay(kind, d);
    if (replayed) {
      if (!replayed.ok) this.refuse(via, d.approver.id, replayed.type, replayed.message, now, ref);
      return replayed;
    }
    const judgedIn = this.heldFrom ?? this.state;
    const duty: Duty = judgedIn === RunState.VetoWindow ? 'reviewer' : 'approver';
    const judged = judgeDecision(
      {
        state: judgedIn,
        workflowId: this.workflowId,
        actionHash: this.actionHash,
        requesterId: this.requesterId,
        eligibleRoles: this.eligibleRoles,
        eligibleUsers: this.policy?.eligibleUsers ?? [],
        normalizedIds: this.firstExecutionRunId !== undefined,
        // v2 runs verified the signature above; v1 runs verify it in order, as they always did.
        approverKeys: this.policy?.signed && this.firstExecutionRunId === undefined && !grantId ? this.policy.approverKeys : undefined,
        dutyConflict: (id) => this.dutyConflict(id, duty),
      },
      kind,
      d,
    );
    if (!judged.ok) {
      this.refuse(via, d.approver.id, judged.type, judged.message, now, ref);
      return judged;
    }
    this.takeDuty(d.approver.id, duty);
    const countsFrom = new Date(this.roundStartedAt.getTime() + (this.policy?.coolingOffMs ?? 0));
    const verdict = this.book.settle(kind, d, judged, now, countsFrom, grantId);
    const data = { decisionId: d.decisionId, kind, actionHash: d.actionHash, approverRoles: d.approver.roles, via, signed: !!d.signature, ...(grantId && { grantId }) };
    if (kind === 'approve') {
      if (judgedIn === RunState.VetoWindow) this._released = true;
      const repeat = verdict.ok && !verdict.counted;
      const note = repeat ? ' (already counted for this approver)' : '';
      // A repeat changes nothing: past a few, repeats are counted and summarised, not recorded one by one.
      if (repeat && this.firstExecutionRunId !== undefined && ++this._repeatedApprovals > MAX_REPEAT_ENTRIES) {
        this.countUnrecorded('approve AlreadyCounted');
        return verdict;
      }
      this.record(EvidenceCategory.Approval, 'ApprovalRecorded', user(d.approver.id), `approved${note}`, now, {
        ...data,
        counted: verdict.ok && verdict.counted,
        countsFrom: countsFrom > now ? countsFrom.toISOString() : now.toISOString(),
        approvalsNeeded: this.approvalsNeeded(now),
      });
    } else if (kind === 'reject') {
      this._rejectedBy = d.approver.id;
      this.record(EvidenceCategory.Approval, 'Rejected', user(d.approver.id), d.rationale ?? '', now, data);
    } else {
      this._changesRequestedBy = d.approver.id;
      this.record(EvidenceCategory.Approval, 'ChangesRequested', user(d.approver.id), d.rationale ?? '', now, data);
    }
    return verdict;
  }

  applyCancel(req: CancelRequest, now: Date): Verdict {
    const by = req.requestedBy;
    const ref: RefusalRef = { decisionId: req.cancelId, actionHash: this.actionHash };
    const foreign = this.refusedForeign('cancelRun', by, now, ref);
    if (foreign) return foreign;
    // Signed everywhere: under a signed rule a cancel is signed like a decision, and roles come from policy.
    if (this.signsEverything) {
      const sig = req.cancelId
        ? this.verifySigned('cancelRun', req.cancelId, by.id, this.actionHash, req.signature, req.signedAt)
        : ({ ok: false, type: FailureType.SignatureInvalid, message: 'policy requires a signed cancelRun: cancelId missing' } as const);
      if (!sig.ok) return this.refuse('cancelRun', by.id, sig.type, sig.message, now, ref);
    }
    const roles = this.policy?.signed && this.firstExecutionRunId !== undefined ? this.registeredRoles(by.id) : by.roles;
    const operator = roles.some((r) => (this.policy?.operatorRoles ?? []).includes(r));
    if (by.id !== this.requesterId && !operator) {
      return this.refuse('cancelRun', by.id, FailureType.CancelNotAllowed, `${by.id} is neither the requester nor an operator`, now, ref);
    }
    if (this.cancel) return { ok: true };
    this._cancel = req;
    this.record(EvidenceCategory.System, 'CancelRequested', user(by.id), req.reason, now);
    return { ok: true };
  }

  applyManualCompletion(m: ManualCompletion, now: Date): Verdict {
    const ref: RefusalRef = { decisionId: m.completionId, actionHash: m.actionHash };
    const refuse = (message: string) =>
      this.refuse('manualCompletion', m.completedBy.id, FailureType.ManualCompletionRefused, message, now, ref);
    const foreign = this.refusedForeign('manualCompletion', m.completedBy, now, ref);
    if (foreign) return foreign;
    if (this.signsEverything) {
      const sig = this.verifySigned('manualCompletion', m.completionId, m.completedBy.id, m.actionHash, m.signature, m.signedAt);
      if (!sig.ok) return this.refuse('manualCompletion', m.completedBy.id, sig.type, sig.message, now, ref);
    }
    if (this.state !== RunState.AwaitingManualCompletion) return refuse(`not awaiting manual completion (state ${this.state})`);
    if (m.actionHash !== this.actionHash) return refuse('completion names another action hash');
    const allowed = [...this.eligibleRoles, ...(this.policy?.operatorRoles ?? [])];
    const roles = this.signsEverything ? this.registeredRoles(m.completedBy.id) : m.completedBy.roles;
    if (!roles.some((r) => allowed.includes(r))) return refuse(`${m.completedBy.id} holds none of [${allowed.join(', ')}]`);
    const conflict = this.dutyConflict(m.completedBy.id, 'manualExecutor');
    if (conflict) return this.refuse('manualCompletion', m.completedBy.id, FailureType.IncompatibleDuties, conflict, now, ref);
    this.takeDuty(m.completedBy.id, 'manualExecutor');
    this._manual = m;
    this.record(EvidenceCategory.Action, 'ManualCompletionReported', user(m.completedBy.id), m.notes ?? 'work reported done', now, {
      completionId: m.completionId,
      completedAt: m.completedAt,
      evidenceRef: m.evidenceRef,
      outcome: m.outcome ?? 'Succeeded',
      actionHash: m.actionHash,
    });
    return { ok: true };
  }

  applyAmendment(req: AmendRequest, now: Date): Verdict {
    const ref: RefusalRef = { decisionId: req.amendmentId, actionHash: this.actionHash };
    const refuse = (message: string) => this.refuse('amendAction', req.amendedBy.id, FailureType.AmendNotAllowed, message, now, ref);
    const foreign = this.refusedForeign('amendAction', req.amendedBy, now, ref);
    if (foreign) return foreign;
    if (this.signsEverything) {
      // Signed over the amended action's hash: the signature says what the action becomes.
      const sig = this.verifySigned('amendAction', req.amendmentId, req.amendedBy.id, hashAction(req.action), req.signature, req.signedAt);
      if (!sig.ok) return this.refuse('amendAction', req.amendedBy.id, sig.type, sig.message, now, ref);
    }
    if (this.state !== RunState.ChangesRequested) return refuse(`no changes were requested (state ${this.state})`);
    if (req.amendedBy.id !== this.requesterId) return refuse('only the requester may amend the action');
    if (req.action.runtime !== this.action.runtime) return refuse('an amendment keeps the runtime; start a new run for another runtime');
    const conflict = this.dutyConflict(req.amendedBy.id, 'amender');
    if (conflict) return this.refuse('amendAction', req.amendedBy.id, FailureType.IncompatibleDuties, conflict, now, ref);
    this.takeDuty(req.amendedBy.id, 'amender');
    const previous = this.actionHash;
    this._action = req.action;
    this._actionHash = hashAction(req.action);
    const voided = this.book.voidApprovals();
    this._amended = true;
    this._changesRequestedBy = undefined;
    this._roundStartedAt = now;
    this.record(EvidenceCategory.Plan, 'ActionAmended', user(req.amendedBy.id), req.reason, now, {
      amendmentId: req.amendmentId,
      previousActionHash: previous,
      actionHash: this.actionHash,
      approvalsVoided: voided,
    });
    return { ok: true };
  }

  // ---- Break-glass (rules in workflows/break-glass/release.ts) ----

  /** Roles that count for `p`: under a signed rule those registered in policy, else those claimed. */
  private rolesOf(p: Principal): string[] {
    return this.policy?.signed ? this.registeredRoles(p.id) : p.roles;
  }

  private breakGlassContext() {
    return {
      // Not the state a held dispatch judges decisions in: a run already on its way to dispatch needs no release.
      state: this.state,
      tier: this.tier,
      actionHash: this.actionHash,
      requesterId: this.requesterId,
      policy: this.policySnapshot?.breakGlass,
      decidedOtherwise: !!this.rejectedBy || !!this.changesRequestedBy,
      cancelled: !!this.cancel,
    };
  }

  /**
   * Judge a `breakGlass` release before the ledger is asked: identity (signature under a signed
   * rule), one release per run, then `releaseRefusal`. Refusals are recorded. A repeat of the
   * granted release answers `replayed`.
   */
  judgeBreakGlass(req: BreakGlassRequest, now: Date): Verdict & { replayed?: boolean } {
    const ref: RefusalRef = { decisionId: req.decisionId, actionHash: req.actionHash };
    const foreign = this.refusedForeign('breakGlass', req.by, now, ref);
    if (foreign) return foreign;
    if (this.policy?.signed) {
      const sig = this.verifySigned('breakGlass', req.decisionId, req.by.id, req.actionHash, req.signature, req.signedAt);
      if (!sig.ok) return this.refuse('breakGlass', req.by.id, sig.type, sig.message, now, ref);
    }
    const done = this._breakGlass?.status;
    if (done && done.decisionId === req.decisionId && done.by === req.by.id) return { ok: true, replayed: true };
    if (done || this._breakGlassClaiming) {
      return this.refuse('breakGlass', req.by.id, FailureType.BreakGlassNotAllowed, done ? `already released by break-glass (${done.decisionId})` : 'another break-glass release is being counted', now, ref);
    }
    const r = releaseRefusal(this.breakGlassContext(), req, this.rolesOf(req.by));
    if (r) return this.refuse('breakGlass', req.by.id, r.type, r.message, now, ref);
    this._breakGlassClaiming = true;
    return { ok: true };
  }

  /**
   * The ledger answered: a refused use is recorded as such; a granted one releases the run unless it
   * moved on while the ledger was asked (then the use stays counted and the release is refused).
   */
  applyBreakGlass(req: BreakGlassRequest, answer: BreakGlassClaimAnswer, now: Date): Verdict {
    this._breakGlassClaiming = false;
    const ref: RefusalRef = { decisionId: req.decisionId, actionHash: req.actionHash };
    if (!answer.granted) {
      const r = rateRefusal(answer);
      return this.refuse('breakGlass', req.by.id, r.type, r.message, now, ref);
    }
    const roles = this.rolesOf(req.by);
    const ctx = this.breakGlassContext();
    const again = releaseRefusal(ctx, req, roles);
    if (again) return this.refuse('breakGlass', req.by.id, again.type, `${again.message} (the run moved on while the use was counted)`, now, ref);
    this._breakGlass = BreakGlassRecord.granted(req, roles, ctx.state, answer, ctx.policy!, this.eligibleRoles, now);
    if (ctx.state === RunState.VetoWindow) this._released = true;
    const s = this._breakGlass.status;
    this.record(EvidenceCategory.Approval, 'BreakGlassUsed', user(req.by.id), req.reason, now, {
      decisionId: req.decisionId,
      actionHash: req.actionHash,
      roles,
      releasedFrom: ctx.state,
      approvalsBypassed: this.approvalsNeeded(now),
      principalUses: s.window.principalUses,
      workspaceUses: s.window.workspaceUses,
      reviewDueAt: s.review.dueAt,
      reviewersNeeded: s.review.needed,
      signed: !!req.signature,
    });
    this.publish('break_glass_used');
    return { ok: true };
  }

  /** The ledger could not be asked: fail closed, the release is refused and recorded. */
  breakGlassUncounted(req: BreakGlassRequest, message: string, now: Date): Verdict {
    this._breakGlassClaiming = false;
    return this.refuse('breakGlass', req.by.id, FailureType.BreakGlassRateLimited, `the break-glass ledger could not count the use: ${message}`, now, { decisionId: req.decisionId, actionHash: req.actionHash });
  }

  /** Judge and apply a post-hoc review of the release; a repeat of a recorded review answers `replayed`. */
  applyBreakGlassReview(req: BreakGlassReviewRequest, now: Date): Verdict & { replayed?: boolean } {
    const ref: RefusalRef = { decisionId: req.reviewId, actionHash: this.actionHash };
    const foreign = this.refusedForeign('reviewBreakGlass', req.reviewer, now, ref);
    if (foreign) return foreign;
    if (this.policy?.signed) {
      const sig = this.verifySigned('reviewBreakGlass', req.reviewId, req.reviewer.id, this.actionHash, req.signature, req.signedAt);
      if (!sig.ok) return this.refuse('reviewBreakGlass', req.reviewer.id, sig.type, sig.message, now, ref);
    }
    const bg = this._breakGlass;
    if (!bg) return this.refuse('reviewBreakGlass', req.reviewer.id, FailureType.BreakGlassReviewRefused, 'this run was not released by break-glass', now, ref);
    const prior = bg.reviewed(req.reviewId);
    if (prior && prior.reviewerId === req.reviewer.id && prior.verdict === req.verdict) return { ok: true, replayed: true };
    const r = bg.reviewRefusal(req, this.rolesOf(req.reviewer), this.requesterId, this.policy?.eligibleUsers ?? []);
    if (r) return this.refuse('reviewBreakGlass', req.reviewer.id, r.type, r.message, now, ref);
    const ended = bg.addReview(req, now);
    this.record(EvidenceCategory.Approval, 'BreakGlassReviewed', user(req.reviewer.id), req.rationale, now, {
      reviewId: req.reviewId,
      verdict: req.verdict,
      breakGlassDecisionId: bg.status.decisionId,
      confirmations: bg.confirmations,
      needed: bg.status.review.needed,
      reviewState: ended,
    });
    if (ended === 'flagged') this.publish('break_glass_flagged');
    if (ended === 'confirmed') this.publish('break_glass_confirmed');
    return { ok: true };
  }

  /** The review deadline passed with the review pending: recorded, and announced like approval_needed. */
  breakGlassReviewOverdue(now: Date): void {
    const bg = this._breakGlass;
    if (!bg?.open) return;
    bg.overdue(now);
    this.record(EvidenceCategory.Approval, 'BreakGlassReviewOverdue', SYSTEM, `break-glass review overdue: ${bg.confirmations} of ${bg.status.review.needed} confirmation(s) by ${bg.status.review.dueAt}`, now, {
      breakGlassDecisionId: bg.status.decisionId,
      confirmations: bg.confirmations,
      needed: bg.status.review.needed,
      dueAt: bg.status.review.dueAt,
    });
    this.publish('break_glass_review_overdue');
  }

  status(now: Date): RunStatus {
    const { workspaceId, correlationId } = this.input;
    const { runtime, target, operation, tools } = this.action;
    return {
      schemaVersion: 1,
      workspaceId,
      correlationId,
      state: this.state,
      tier: this.tier,
      actionHash: this.actionHash,
      action: { runtime, target, operation, tools },
      requestedBy: this.requesterId,
      policyHash: this.policy?.policyHash,
      reasons: this.policy?.reasons ?? [],
      approvals: this.book.approvals,
      approvalsNeeded: this.approvalsNeeded(now),
      eligibleRoles: this.eligibleRoles,
      eligibleUsers: this.policy?.eligibleUsers ?? [],
      signedDecisions: this.policy?.signed ?? false,
      missingRoles: this.missingRoles(now),
      escalated: this.escalationStepsDone > 0,
      deadlines: this.deadlines,
      ...(this.firstExecutionRunId !== undefined && { firstExecutionRunId: this.firstExecutionRunId }),
      refusals: this.refusals.map((r) => ({ ...r })),
      refusalsTotal: this.refusalsTotal,
      lastError: this.lastError,
      output: this.output,
      evidenceHead: this.chain.head,
      evidenceCount: this.chain.entries.length,
      evidenceStored: this.evidenceStored ?? this.evidenceInherited,
      ...(this.continuations > 0 && { continuations: this.continuations }),
      ...(this.outbox.publishing && { events: this.outbox.status() }),
      ...(this.quota && { quota: this.quota.status() }),
      ...(this._breakGlass && { breakGlass: this._breakGlass.view() }),
      ...(this._revocation && { revocation: { ...this._revocation } }),
    };
  }
}

/** Whether `entry` says the run ended in `state`, by the system (its place in the chain is checked apart). */
function saysOutcome(state: RunState, entry: EvidenceEntry): boolean {
  return entry?.event === `State${state}` && entry.category === EvidenceCategory.Action && entry.actor?.kind === 'System' && entry.actor.id === SYSTEM.id;
}
