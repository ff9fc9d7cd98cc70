/**
 * `governedRun`: one action, from request through policy, approvals and dispatch, to evidence.
 * This file wires messages to `GovernedRunState` and awaits the steps in order; rules live in pure
 * modules (`run-state`, `approvals`, `evidence-chain`, `policies/evaluate`). Deterministic: no I/O.
 */
import {
  ApplicationFailure,
  ActivityCancellationType,
  CancellationScope,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { DispatchActivities } from '../../activities/runtimes/dispatch';
import type { EvidenceActivities } from '../../activities/evidence/activity';
import type { PolicyActivities } from '../../activities/policy/snapshot';
import type { QuotaLimits } from '../../policies/quotas';
import { evaluatePolicy } from '../../policies/evaluate';
import { IN_RUN_BUDGET, pumpEvents } from '../events/pump';
import { type EvidenceEntry, type EvidencePayloadRef, chunked, redactText, utf8Length } from '../evidence-chain';
import { succeededSummary } from './outcome';
import { canonicalJson } from '../hashing';
import { FailureType, NON_RETRYABLE_DISPATCH_FAILURES, refusal } from '../failures';
import * as msg from './messages';
import { oneLine, runDetails, timerSummary } from './details';
import { runEventDelivery } from '../events/delivery';
import { CONTINUE_AS_NEW_PATCH, type Continuation, continueDue, continueWhenReady, continuedSnapshot } from './continuation';
import { isContinuedInput } from './snapshot';
import { GovernedRunState, type Verdict } from './state';
import { observeTransition } from './metrics';
import { quotaFor } from '../quota/book';
import { QUOTA_PATCH, acquireQuota, releaseQuota, wireQuotaHandlers } from '../quota/run-side';
import { STANDING_GRANTS_PATCH, applyStandingGrants } from '../grants/run-side';
import { holdBreakGlassReview, wireBreakGlass } from '../break-glass/run-side';
import { observeRevoked, revocationOfFailure, wireRevocationHandler } from '../revocation/run-side';
import {
  amendRequestSchema,
  cancelRequestSchema,
  check,
  decideRequestSchema,
  decisionSchema,
  describeIssues,
  governedRunInputSchema,
  type IdOptions,
  manualCompletionSchema,
  parsedOrRefuse as parsedOrThrow,
} from '../schemas';
import { ApproverRolesKey, CorrelationKey, StateKey, TierKey, WorkspaceKey } from '../search-attributes';
import { IDENTIFIER_CHARS, runWorkspaceCrossing } from '../ids';
import type { PolicySnapshot } from '../../policies/schema';
import { now, nowMs, withPinnedClock } from './clock';
import { patchApplies } from './patches';
import { type DecisionKind, type DispatchRequest, type DispatchResult, type EvidenceReceipt, type GovernedRunResult, type OutcomeEvidenceRequest, RunState, TERMINAL_STATES } from '../types';

// Summaries name each command on the run page (user metadata: not checked on replay, so no patch).
const policyActivityOptions = { startToCloseTimeout: '10s', retry: { maximumAttempts: 3 }, summary: 'policy snapshot' } as const;
// A local activity: runs from before POLICY_ACTIVITY_PATCH, and lean runs since LEAN_LOCAL_SNAPSHOT_PATCH
// (on a pinned clock, ./clock). Workflow time after a local activity can differ between the live run and
// a replay, and evidence entries carry workflow time: the runs in between used a regular activity.
const { loadPolicySnapshot: loadPolicySnapshotLocally } = proxyLocalActivities<PolicyActivities>(policyActivityOptions);
const { loadPolicySnapshot } = proxyActivities<PolicyActivities>(policyActivityOptions);
const POLICY_ACTIVITY_PATCH = 'portarium-policy-snapshot-activity-v1';

const dispatchOptions = {
  // Long enough for any runtime's own run timeout (at most 7d, policies/connections.ts); adapters stop
  // remote runs at that timeout, and heartbeats notice a dead worker in seconds.
  startToCloseTimeout: '8d',
  // Runtimes heartbeat while they wait, so a dead worker is noticed in seconds and cancel reaches them.
  heartbeatTimeout: '10s',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_DISPATCH_FAILURES,
  },
} as const;
/** The dispatch activity, summarised on the run page as what it dispatches to. */
const dispatchActionOf = (run: GovernedRunState) =>
  proxyActivities<DispatchActivities>({ ...dispatchOptions, summary: oneLine(`dispatch to ${run.action.runtime} ${run.action.target}`) }).dispatchAction;

// Evidence is written before the action runs and when the run ends. The run waits for a sink that is
// down (retried without limit) rather than act without durable evidence; a fork is never retried.
const { persistEvidence } = proxyActivities<EvidenceActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', nonRetryableErrorTypes: [FailureType.EvidenceConflict] },
  summary: 'evidence write',
});

/**
 * Runs started on the lean path: this one marker stands for every patch before it (none of them is
 * asked, so none records a marker); the pre-dispatch evidence is stored by the dispatch activity
 * before it calls the runtime (no activity and workflow task of its own); search attributes are
 * upserted once before each wait, not per transition.
 */
export const LEAN_RUN_PATCH = 'portarium-lean-run-v1';
/**
 * Lean runs that load their policy snapshot with a local activity: one marker event in the first
 * workflow task instead of an activity and a workflow task of their own (an Auto run: 16 events, not
 * 21). The activations from the ask through the one that resolves it read a pinned time
 * (`withPinnedClock`, ./clock): core may time and group them differently on replay, and evidence
 * hashes workflow time. This marker stands for LEAN_RUN_PATCH too.
 */
export const LEAN_LOCAL_SNAPSHOT_PATCH = 'portarium-lean-run-v2';

/** Whether `id` applies to this run: always on the lean path, else as recorded. */
const has = (run: GovernedRunState, id: string) => run.lean || patched(id);

/** Runs recorded before evidence sinks existed replay without the sink writes. */
const EVIDENCE_SINK_PATCH = 'portarium-evidence-sink-v1';

/** Runs from before evidence chains were kept per Temporal execution write under the workflow id alone. */
const EVIDENCE_PER_EXECUTION_PATCH = 'portarium-evidence-per-execution-v1';
/** One evidence write carries at most this much, far below Temporal's payload limit. */
const EVIDENCE_BATCH = { entries: 500, bytes: 512 * 1024 } as const;

/** Runs from before workspace checks ran even when their workflow id names another workspace. */
const WORKSPACE_IDS_PATCH = 'portarium-workspace-ids-v1';

/**
 * Runs started after the hostile-input round: v2 signatures bound to the first execution and required
 * for cancel, amend and manual completion under signed rules; freshness re-judged after the
 * pre-dispatch evidence write (and any quota wait), before the run enters Dispatching.
 */
export const HOSTILE_INPUT_PATCH = 'portarium-hostile-input-v1';

/** Runs from before escalation published the roles it added (search attributes, details) replay without it. */
const ESCALATION_PUBLISH_PATCH = 'portarium-escalation-publish-v1';

/** Runs recorded before domain events replay without publishing them. */
const RUN_EVENTS_PATCH = 'portarium-run-events-v1';
/**
 * How long a finished run waits for its last events to be taken before it hands them to
 * `runEventDelivery` and completes: a healthy subscriber answers in milliseconds, a down one costs
 * the run this much and no more.
 */
const EVENTS_GRACE_MS = 5_000;
/** Longest a `decide` that completed a quorum waits for the dispatch step to show its outcome. */
const DECIDE_REPLY_WAIT_MS = 10_000;

/** Time left until `iso`; at least 1 ms, since a zero timeout is not a timer. */
const msUntil = (iso: string | undefined) => (iso ? Math.max(1, Date.parse(iso) - nowMs()) : undefined);

export async function governedRun(rawInput: unknown): Promise<GovernedRunResult> {
  // Decided first: runs from before them keep ids as sent (their stored evidence hashes them so).
  const localSnapshot = patched(LEAN_LOCAL_SNAPSHOT_PATCH);
  const lean = localSnapshot || patched(LEAN_RUN_PATCH);
  const hostileInput = lean || patched(HOSTILE_INPUT_PATCH);
  // A continued execution goes on from its predecessor's state: no new request, no policy load.
  if (isContinuedInput(rawInput)) {
    const carried = continuedSnapshot(rawInput, workflowInfo().workflowId);
    const continued = new GovernedRunState(carried.input, workflowInfo().workflowId, now(), carried.firstExecutionRunId, carried, lean, localSnapshot);
    return runGoverned(continued, true, { normalizeIds: true });
  }
  const ids: IdOptions = { normalizeIds: hostileInput };
  const parsed = check(governedRunInputSchema(ids), rawInput);
  if (!parsed.ok) {
    throw refusal(FailureType.InvalidRunInput, `invalid governedRun input: ${describeIssues(parsed.issues)}`, parsed.issues);
  }
  // Checked only when the ids disagree, so other runs' histories carry no marker for it.
  const crossing = runWorkspaceCrossing(workflowInfo().workflowId, parsed.value);
  if (crossing && patched(WORKSPACE_IDS_PATCH)) {
    log.warn('governed run refused: workspace crossing', { workflowId: workflowInfo().workflowId, reason: crossing });
    throw refusal(FailureType.WorkspaceMismatch, crossing);
  }
  const run = new GovernedRunState(parsed.value, workflowInfo().workflowId, now(), hostileInput ? workflowInfo().firstExecutionRunId : undefined, undefined, lean, localSnapshot);
  return runGoverned(run, false, ids);
}

async function runGoverned(run: GovernedRunState, resumed: boolean, ids: IdOptions): Promise<GovernedRunResult> {
  // Created only for the dispatch: every promise a workflow makes costs a stack capture in the SDK.
  const dispatch: { scope?: CancellationScope } = {};
  const continuation: Continuation = { enabled: has(run, CONTINUE_AS_NEW_PATCH), blocked: false };
  wireHandlers(run, dispatch, continuation.enabled, ids);
  // Set at once, so a continued execution is findable by its search attributes whatever the server copied.
  if (resumed) publishState(run);
  else run.recordRequested(now());
  showDetails(run);
  try {
    const result = await govern(run, dispatch, continuation, resumed);
    flushState(run);
    // Break-glass: the result waits for the post-hoc review (confirmed, flagged or overdue).
    await holdBreakGlassReview(run, now);
    if (!allHandlersFinished()) await condition(allHandlersFinished);
    await storeEvidence(run);
    await settleEvents(run);
    return result;
  } catch (err) {
    if (isCancellation(err) && !TERMINAL_STATES.has(run.state)) {
      await CancellationScope.nonCancellable(async () => finish(run, RunState.Cancelled, 'cancelled through Temporal'));
    }
    if (TERMINAL_STATES.has(run.state) && !isCancellation(err)) {
      // Break-glass: a failed run holds its post-hoc review too (a Temporal cancel does not wait for it).
      flushState(run);
      await holdBreakGlassReview(run, now);
    }
    if (TERMINAL_STATES.has(run.state)) {
      await CancellationScope.nonCancellable(() => storeEvidence(run)).catch((e) => log.error('evidence not stored', { workflowId: run.workflowId, error: String(e) }));
      await CancellationScope.nonCancellable(() => settleEvents(run)).catch((e) => log.error('events not handed off', { workflowId: run.workflowId, error: String(e) }));
    }
    throw err;
  }
}

/** Start publishing lifecycle events when the workspace has subscribers (the snapshot says so). */
function startEvents(run: GovernedRunState, publishes: boolean, resumed: boolean): void {
  if (resumed && !run.outbox.publishing) return;
  if (!resumed && (!publishes || !has(run, RUN_EVENTS_PATCH))) return run.outbox.disable();
  run.outbox.enable();
  const target = { workspaceId: run.input.workspaceId, runId: run.workflowId };
  // Not cancellable: the events of a run cancelled through Temporal (its `cancelled` event too) still go out.
  CancellationScope.nonCancellable(() => pumpEvents(run.outbox, target, IN_RUN_BUDGET, () => run.eventsClosing)).catch((e) =>
    log.error('event pump stopped', { workflowId: run.workflowId, error: String(e) }),
  );
}

/**
 * At the end: give the last events a short grace to be taken, then hand whatever is still pending to
 * `runEventDelivery` (abandoned by this run) so completing the run neither waits for nor drops them.
 */
async function settleEvents(run: GovernedRunState): Promise<void> {
  flushState(run);
  if (!run.outbox.publishing) return;
  run.closeEvents();
  if (await condition(() => run.outbox.idle, EVENTS_GRACE_MS)) return;
  const workflowId = `${run.workflowId}/events`;
  const events = run.outbox.drain();
  run.outbox.handedOffTo = workflowId;
  await startChild(runEventDelivery, {
    workflowId,
    args: [{ workspaceId: run.input.workspaceId, runId: run.workflowId, events }],
    parentClosePolicy: ParentClosePolicy.ABANDON,
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
  });
}

/**
 * Hand the entries the sink has not acknowledged to it, until it holds them all (handlers may record
 * more while a write is under way). A receipt that names another head than ours means the sink holds
 * a different chain for this run: treated as a fork.
 *
 * Chains are kept per Temporal execution (EVIDENCE_PER_EXECUTION_PATCH); the activity keys them by the
 * execution that scheduled it. A reset execution replays the receipts of the run it was reset from;
 * asked to continue that chain, the activity answers EvidenceExecutionMoved and this execution writes
 * its own from seq 0. Every decision here follows from results in history, never from the run id.
 */
async function storeEvidence(run: GovernedRunState): Promise<void> {
  flushState(run);
  if (run.evidenceRefused || !has(run, EVIDENCE_SINK_PATCH)) return;
  while (run.unpersisted.length) {
    const stored = run.evidenceStored;
    const { execution, entries } = nextEvidenceBatch(run);
    let receipt;
    try {
      receipt = await persistEvidence({ workspaceId: run.input.workspaceId, runId: run.workflowId, ...(execution === undefined ? {} : { execution }), entries });
    } catch (err) {
      const type = failureOf(err).type;
      if (type === FailureType.EvidenceExecutionMoved && stored) {
        run.forgetReceipt();
        continue;
      }
      if (type === FailureType.EvidenceConflict) run.refuseEvidence();
      throw err;
    }
    acceptReceipt(run, receipt);
  }
}

/** The next bounded batch of unstored entries, and the execution whose chain it continues. */
function nextEvidenceBatch(run: GovernedRunState): { execution?: string; entries: EvidenceEntry[] } {
  const execution = chainExecution(run);
  // Bounded batches for per-execution chains (older runs replay their one unbounded write).
  const entries = execution === undefined ? run.unpersisted : chunked(run.unpersisted.slice(0, EVIDENCE_BATCH.entries), EVIDENCE_BATCH.entries, EVIDENCE_BATCH.bytes, (e) => utf8Length(canonicalJson(e)))[0];
  return { execution, entries };
}

/** The execution whose chain the next write continues. */
function chainExecution(run: GovernedRunState): string | undefined {
  const stored = run.evidenceStored;
  return stored ? stored.execution : has(run, EVIDENCE_PER_EXECUTION_PATCH) ? workflowInfo().runId : undefined;
}

/** Take the sink's receipt as what is stored (`GovernedRunState.acceptReceipt`), or fail with why not. */
function acceptReceipt(run: GovernedRunState, receipt: EvidenceReceipt | undefined): void {
  throwIfRefused(run.acceptReceipt(receipt));
}

/**
 * A signal handler that never throws: anything unexpected becomes a recorded refusal. A thrown error
 * would fail the workflow task on every retry, and the run would never move or answer again.
 */
function totalSignal(run: GovernedRunState, via: string, handler: (raw: unknown) => Promise<void>): (raw: unknown) => Promise<void> {
  return async (raw) => {
    try {
      await handler(raw);
    } catch (err) {
      if (isCancellation(err)) throw err;
      run.refuse(via, undefined, FailureType.InvalidMessage, `could not be handled (${err instanceof Error ? err.name : 'error'})`, now());
    }
  };
}

/** `totalSignal` for a handler that needs no wait: it runs at once, without a promise. */
function totalSignalNow(run: GovernedRunState, via: string, handler: (raw: unknown) => void): (raw: unknown) => void {
  return (raw) => {
    try {
      handler(raw);
    } catch (err) {
      if (isCancellation(err)) throw err;
      run.refuse(via, undefined, FailureType.InvalidMessage, `could not be handled (${err instanceof Error ? err.name : 'error'})`, now());
    }
  };
}

/** An update handler whose unexpected errors become a recorded `InvalidMessage` refusal, thrown as such. */
function totalUpdate<T>(run: GovernedRunState, via: string, handler: (raw: unknown) => Promise<T>): (raw: unknown) => Promise<T> {
  return async (raw) => {
    try {
      return await handler(raw);
    } catch (err) {
      if (err instanceof ApplicationFailure || isCancellation(err)) throw err;
      const v = run.refuse(via, undefined, FailureType.InvalidMessage, `could not be handled (${err instanceof Error ? err.name : 'error'})`, now());
      throw refusal(FailureType.InvalidMessage, v.ok ? '' : v.message);
    } finally {
      showDetails(run);
    }
  };
}

/** `build()` once, on first use: a zod schema costs far more to build than to check a message with. */
function once<T>(build: () => T): () => T {
  let built: T | undefined;
  return () => (built ??= build());
}

function wireHandlers(run: GovernedRunState, dispatch: { scope?: CancellationScope }, direct: boolean, ids: IdOptions): void {
  // Messages that arrive before policy has decided wait for it, in arrival order, instead of
  // being refused: an early cancel or approval is not lost.
  const policyDecided = () => condition(() => run.state !== RunState.Evaluating);
  /**
   * A signal handler around `body`. Newer runs (`direct`) handle a signal at once, without a promise,
   * once policy has decided: the SDK captures a stack for every promise a workflow makes, which a
   * flood of messages would pay per message. Older runs replay the waiting handler they recorded.
   */
  const signal = (via: string, handle: (raw: unknown) => void) => {
    // Approvals and refusals change the details without a transition.
    const body = (raw: unknown) => {
      try {
        handle(raw);
      } finally {
        showDetails(run);
      }
    };
    const waiting = totalSignal(run, via, async (raw: unknown) => {
      await policyDecided();
      body(raw);
    });
    if (!direct) return waiting;
    const atOnce = totalSignalNow(run, via, body);
    return (raw: unknown) => (run.state === RunState.Evaluating ? waiting(raw) : atOnce(raw));
  };
  // Built per run, on first use, and kept: a flood of messages must not rebuild them per message.
  const decisionSchemas = { approve: once(() => decisionSchema('approve', ids)), reject: once(() => decisionSchema('reject', ids)), requestChanges: once(() => decisionSchema('requestChanges', ids)) };
  const decideSchema = once(() => decideRequestSchema(ids));
  const amendSchema = once(() => amendRequestSchema(ids));
  const cancelSchema = once(() => cancelRequestSchema(ids));
  const manualSchema = once(() => manualCompletionSchema(ids));
  // Runs from before the hostile-input round keep the unbounded refusal texts their evidence hashed.
  const bounded = ids.normalizeIds === true;
  const decisionSignal = (kind: DecisionKind) => signal(kind, (raw: unknown) => {
    const d = check(decisionSchemas[kind](), raw, bounded);
    if (!d.ok) run.refuse(kind, undefined, FailureType.InvalidMessage, describeIssues(d.issues, bounded), now(), claimedRef(raw));
    else run.applyDecision(kind, d.value, kind, now());
  });
  setHandler(msg.approveSignal, decisionSignal('approve'));
  setHandler(msg.rejectSignal, decisionSignal('reject'));
  setHandler(msg.requestChangesSignal, decisionSignal('requestChanges'));

  setHandler(
    msg.decideUpdate,
    totalUpdate(run, 'decide', async (raw) => {
      await policyDecided();
      const req = parsedOrThrow(decideSchema(), raw);
      const tick = run.wakeups;
      const verdict = run.applyDecision(req.kind, req, 'decide', now());
      if (!verdict.ok) throw refusal(verdict.type, verdict.message);
      // Reply after the main loop has acted on it (Dispatching, Rejected, or still waiting when a
      // stale approval was voided), not with the state the decision found.
      // A main loop already past its wait (writing pre-dispatch evidence) wakes no more: then the
      // dispatch step below, or the end of the run, is the answer. Unbounded, this kept a finished run
      // waiting for its handlers forever.
      if (!verdict.replayed && decisionMovesRun(run, req.kind)) await condition(() => run.wakeups > tick || run.dispatchPending || TERMINAL_STATES.has(run.state));
      // Quorum met: reply with where dispatch went (Dispatching, AwaitingQuota, or waiting again for a
      // stale approval), not the moment in between; a sink that is down bounds the wait.
      if (run.dispatchPending) await condition(() => !run.dispatchPending, DECIDE_REPLY_WAIT_MS);
      return { decisionId: req.decisionId, kind: req.kind, counted: verdict.counted, state: run.state, approvalsNeeded: run.approvalsNeeded(now()) };
    }),
    { validator: (raw) => validateOrThrow(decideSchema(), raw) },
  );

  setHandler(
    msg.amendActionUpdate,
    totalUpdate(run, 'amendAction', async (raw) => {
      await policyDecided();
      throwIfRefused(run.applyAmendment(parsedOrThrow(amendSchema(), raw), now()));
      // The main loop decides the amended action by policy; reply with that decision.
      await condition(() => run.state !== RunState.ChangesRequested);
      return run.status(now());
    }),
    { validator: (raw) => validateOrThrow(amendSchema(), raw) },
  );

  setHandler(msg.cancelRunSignal, signal('cancelRun', (raw) => {
    const c = check(cancelSchema(), raw, bounded);
    if (!c.ok) return void run.refuse('cancelRun', undefined, FailureType.InvalidMessage, describeIssues(c.issues, bounded), now(), claimedRef(raw, 'cancelId'));
    // Cancelling the scope reaches a dispatch in flight; before dispatch the main loop sees `run.cancel`.
    if (run.applyCancel(c.value, now()).ok && run.state === RunState.Dispatching) dispatch.scope?.cancel();
  }));

  setHandler(msg.manualCompletionSignal, signal('manualCompletion', (raw) => {
    const m = check(manualSchema(), raw, bounded);
    if (!m.ok) run.refuse('manualCompletion', undefined, FailureType.InvalidMessage, describeIssues(m.issues, bounded), now(), claimedRef(raw, 'completionId'));
    else run.applyManualCompletion(m.value, now());
  }));

  wireQuotaHandlers(run, now);
  wireBreakGlass(run, { policyDecided, total: (via, h) => totalUpdate(run, via, h), parse: parsedOrThrow, now }, ids);
  wireRevocationHandler(run, () => dispatch.scope?.cancel(), now);
  setHandler(msg.statusQuery, () => run.status(now()));
  setHandler(msg.evidenceQuery, () => ({ head: run.chain.head, count: run.chain.entries.length, entries: [...run.chain.entries] }));
}

/**
 * The id and action hash a refused message claims, when they are well-formed strings, so its sender
 * can find the refusal (`status.refusals`, evidence). Read defensively: the message failed its schema.
 */
function claimedRef(raw: unknown, idField = 'decisionId'): { decisionId?: string; actionHash?: string } {
  if (typeof raw !== 'object' || raw === null) return {};
  const field = (name: string, pattern: RegExp) => {
    const v = Object.hasOwn(raw, name) ? (raw as Record<string, unknown>)[name] : undefined;
    return typeof v === 'string' && v.length <= 128 && pattern.test(v) ? v : undefined;
  };
  return { decisionId: field(idField, IDENTIFIER_CHARS), actionHash: field('actionHash', /^[0-9a-f]{64}$/) };
}

/** Whether this decision wakes the main loop (which then acts and counts a wakeup). */
function decisionMovesRun(run: GovernedRunState, kind: DecisionKind): boolean {
  return kind !== 'approve' || run.quorumMetAt(now()) || run.released;
}

/** Update validators refuse malformed payloads only; governance refusals are recorded by the handler. */
function validateOrThrow(schema: Parameters<typeof check>[0], raw: unknown): void {
  parsedOrThrow(schema, raw);
}


function throwIfRefused(v: Verdict): void {
  if (!v.ok) throw refusal(v.type, v.message);
}

async function govern(run: GovernedRunState, dispatchHolder: { scope?: CancellationScope }, c: Continuation, resumed: boolean): Promise<GovernedRunResult> {
  // A continued run keeps the snapshot it was decided by: a policy edit never changes a run already started.
  const snapshot = run.policySnapshot ?? (await policySnapshotFor(run));
  run.usePolicySnapshot(snapshot);
  startEvents(run, snapshot.publishesEvents === true, resumed);
  // Waits that a continued run resumes skip their entry (deadlines and transition are carried).
  let resume = resumed;
  const wait: Waiting = { run, c, resume: () => resume };
  // Each pass decides the current action; an amendment after requestChanges starts another pass.
  for (;;) {
    let decision = run.policy!;
    if (!resume) {
      // Runs started before three-valued conditions keep the two-valued reading they were decided with.
      decision = evaluatePolicy(snapshot, {
        action: run.action,
        requestedBy: run.input.requestedBy,
        tierOverride: run.input.tierOverride,
      }, { twoValuedConditions: !has(run, HOSTILE_INPUT_PATCH) });
      run.applyPolicy(decision, now());
      if (decision.effect === 'Deny') return finish(run, RunState.Denied, decision.reasons.join('; '));
      if (run.cancel) return finish(run, RunState.Cancelled, run.cancel.reason);
    }
    let outcome: 'dispatch' | 'amended' | GovernedRunResult;
    for (;;) {
      switch (decision.tier) {
        case 'Auto':
          outcome = 'dispatch';
          break;
        case 'Assisted':
          outcome = await vetoWindow(wait);
          break;
        case 'HumanApprove':
          outcome = await awaitApprovals(wait);
          break;
        default:
          return awaitManualCompletion(wait);
      }
      resume = false;
      if (outcome !== 'dispatch') break;
      run.dispatchDecided();
      const done = await dispatch(run, (dispatchHolder.scope = new CancellationScope()), quotaFor(snapshot.quotas, run.action.runtime));
      // Approvals went stale while the run waited for quota or the evidence sink: wait for them again.
      if (done !== 'stale') return done;
      run.dispatchWentStale();
    }
    if (outcome !== 'amended') return outcome;
  }
}

/** The workspace's policy snapshot, loaded the way this run's history recorded it. */
function policySnapshotFor(run: GovernedRunState): Promise<PolicySnapshot> {
  const { workspaceId } = run.input;
  if (run.localSnapshot) return withPinnedClock(() => loadPolicySnapshotLocally(workspaceId));
  return has(run, POLICY_ACTIVITY_PATCH) ? loadPolicySnapshot(workspaceId) : loadPolicySnapshotLocally(workspaceId);
}

/** A waiting step: the run, whether it may continue as new, and whether it resumes a carried wait. */
interface Waiting {
  run: GovernedRunState;
  c: Continuation;
  resume(): boolean;
}

/**
 * `condition` for the main loop; counts the wakeup so `decide` can reply after the loop acted. While
 * it waits, the run continues as new when its history grows past the bounds (it never returns then).
 */
async function waitFor({ run, c }: Waiting, fn: () => boolean, timeoutMs: number, summary: string): Promise<boolean> {
  const until = nowMs() + timeoutMs;
  const timer = { summary };
  for (;;) {
    flushState(run);
    // Checked once per wait before the patch existed, so older histories replay unchanged.
    const met = c.enabled
      ? await condition(() => fn() || continueDue(run, c), Math.max(1, until - nowMs()), timer)
      : await condition(fn, timeoutMs, timer);
    if (met && !fn() && continueDue(run, c)) {
      await continueWhenReady(run, c, fn, until);
      if (!fn() && nowMs() < until) continue;
    }
    run.wake();
    return fn();
  }
}

async function vetoWindow(w: Waiting): Promise<'dispatch' | GovernedRunResult> {
  const { run } = w;
  if (!w.resume()) {
    run.openVetoWindow(now());
    enter(run, RunState.VetoWindow, `plan announced; veto window until ${run.deadlines.vetoEndsAt}`);
  }
  await waitFor(w, () => run.released || !!run.rejectedBy || !!run.cancel || !!run.revocation, msUntil(run.deadlines.vetoEndsAt)!, timerSummary('veto window', run.deadlines.vetoEndsAt));
  if (run.cancel) return finish(run, RunState.Cancelled, run.cancel.reason);
  if (run.revocation) return revoked(run);
  if (run.rejectedBy) return finish(run, RunState.Rejected, `vetoed by ${run.rejectedBy}`);
  return 'dispatch';
}

async function awaitApprovals(w: Waiting): Promise<'dispatch' | 'amended' | GovernedRunResult> {
  const { run } = w;
  run.openApprovalRound();
  if (w.resume() && run.state === RunState.ChangesRequested) return awaitAmendment(w);
  if (!w.resume()) {
    enter(run, RunState.AwaitingApproval, `waiting for ${run.approvalsNeeded(now())} approval(s) from [${run.eligibleRoles.join(', ')}]`);
    // Standing approvals count first; the patch is asked only under a rule that accepts them.
    if (run.policy?.grants && patchApplies(run, STANDING_GRANTS_PATCH)) await applyStandingGrants(run, now);
  }
  for (;;) {
    // Wake for escalation, expiry, or an approval whose cooling-off ends.
    const next = [run.deadlines.escalatesAt, run.deadlines.expiresAt, run.book.nextCountsFrom(now())].filter((d): d is string => !!d).sort()[0];
    const what = next === run.deadlines.expiresAt ? 'expiry' : next === run.deadlines.escalatesAt ? 'escalation' : 'cooling-off';
    await waitFor(w, () => run.quorumMetAt(now()) || run.breakGlassReleased || !!run.rejectedBy || !!run.changesRequestedBy || !!run.cancel || !!run.revocation, msUntil(next)!, timerSummary(what, next));
    if (run.cancel) return finish(run, RunState.Cancelled, run.cancel.reason);
    if (run.revocation) return revoked(run);
    if (run.rejectedBy) return finish(run, RunState.Rejected, `rejected by ${run.rejectedBy}`);
    // Break-glass: released now, without the quorum or its cooling-off (judged when it was granted).
    if (run.breakGlassReleased) return 'dispatch';
    // A change request beats an approval that arrived in the same activation.
    if (run.changesRequestedBy) return awaitAmendment({ ...w, resume: () => false });
    // Freshness is judged at dispatch time: stale approvals are voided and must be renewed.
    if (run.quorumMetAt(now()) && (!run.voidStaleApprovals(now()) || run.quorumMetAt(now()))) return 'dispatch';
    if (nowMs() >= Date.parse(run.deadlines.expiresAt!)) return finish(run, RunState.Expired, 'no quorum before the deadline');
    if (run.escalationDue(now())) {
      const step = run.escalate(now());
      log.warn('governed run escalated', { workflowId: run.workflowId, addRoles: step.addRoles });
      // The approval inbox of the added roles (`PortariumApproverRoles`): one more upsert, so asked.
      if (patchApplies(run, ESCALATION_PUBLISH_PATCH)) publishState(run);
    }
  }
}

async function awaitAmendment(w: Waiting): Promise<'amended' | GovernedRunResult> {
  const { run } = w;
  if (!w.resume()) enter(run, RunState.ChangesRequested, `changes requested by ${run.changesRequestedBy}; waiting for amendAction`);
  await waitFor(w, () => run.amended || !!run.rejectedBy || !!run.cancel || !!run.revocation, msUntil(run.deadlines.expiresAt)!, timerSummary('amendment expiry', run.deadlines.expiresAt));
  if (run.cancel) return finish(run, RunState.Cancelled, run.cancel.reason);
  if (run.revocation) return revoked(run);
  if (run.rejectedBy) return finish(run, RunState.Rejected, `rejected by ${run.rejectedBy}`);
  if (!run.amended) return finish(run, RunState.Expired, 'not amended before the deadline');
  return 'amended';
}

async function awaitManualCompletion(w: Waiting): Promise<GovernedRunResult> {
  const { run } = w;
  if (!w.resume()) {
    run.openManualWindow(now());
    enter(run, RunState.AwaitingManualCompletion, 'never dispatched by the system; waiting for manualCompletion');
  }
  await waitFor(w, () => !!run.manual || !!run.cancel || !!run.revocation, msUntil(run.deadlines.expiresAt)!, timerSummary('manual completion expiry', run.deadlines.expiresAt));
  if (run.cancel) return finish(run, RunState.Cancelled, run.cancel.reason);
  if (run.revocation && !run.manual) return revoked(run);
  if (!run.manual) return finish(run, RunState.Expired, 'no manual completion before the deadline');
  const m = run.manual;
  if (m.outcome === 'Failed') return finish(run, RunState.Failed, `manual work reported failed by ${m.completedBy.id}`);
  return finish(run, RunState.ManuallyCompleted, `completed by ${m.completedBy.id}: ${m.evidenceRef}`);
}

/**
 * Dispatch, under a lease of the workspace's quota when one applies to the runtime. The lease is
 * asked for before the pre-dispatch evidence write, so a run enters Dispatching (and publishes
 * `dispatched`) once, after it waited; it is released however the dispatch ends.
 */
async function dispatch(run: GovernedRunState, scope: CancellationScope, limits: QuotaLimits | undefined): Promise<GovernedRunResult | 'stale'> {
  if (!limits || !has(run, QUOTA_PATCH)) return dispatchNow(run, scope);
  flushState(run);
  // The quota steps wait right after they move the run: published at once.
  const asked = await acquireQuota(run, limits, {
    enter: (state, summary) => { enter(run, state, summary); flushState(run); },
    finish: (state, summary) => { const r = state === RunState.Revoked ? revoked(run) : finish(run, state, summary); flushState(run); return r; },
  }, now);
  if (asked !== 'granted') return asked;
  try {
    return await dispatchNow(run, scope);
  } finally {
    await releaseQuota(run, 'done');
  }
}

async function dispatchNow(run: GovernedRunState, scope: CancellationScope): Promise<GovernedRunResult | 'stale'> {
  if (run.lean) return dispatchLean(run, scope);
  // Newer runs write evidence first and judge freshness after that wait, at the moment of dispatch.
  const rejudge = patched(HOSTILE_INPUT_PATCH);
  if (!rejudge) {
    run.clearDeadlines();
    enter(run, RunState.Dispatching, `dispatching to ${run.action.runtime}`);
  }
  // Approvals and the decision are durable outside Temporal before anything acts.
  await storeOrFail(run);
  // A cancel that arrived while evidence was written (a local, so `run.cancel` is not narrowed below).
  const cancelledMeanwhile = run.cancel;
  if (cancelledMeanwhile) return finish(run, RunState.Cancelled, cancelledMeanwhile.reason);
  if (rejudge) {
    // Freshness at the moment of dispatch: the quota and evidence waits may have outlived approvals.
    const stop = rejudged(run);
    if (stop) return stop;
    run.clearDeadlines();
    enter(run, RunState.Dispatching, `dispatching to ${run.action.runtime}`);
  }
  try {
    const result = await scope.run(() => dispatchActionOf(run)(dispatchRequest(run)));
    return succeeded(run, result);
  } catch (err) {
    return dispatchFailed(run, err);
  }
}

function dispatchRequest(run: GovernedRunState): DispatchRequest {
  const { workspaceId, correlationId } = run.input;
  return {
    workspaceId,
    correlationId,
    workflowId: run.workflowId,
    ...run.action,
    tier: run.tier,
    actionHash: run.actionHash,
    dispatchKey: `${run.workflowId}/${run.actionHash}`,
  };
}

/**
 * The outcome entry the dispatch activity may build and store itself (`DispatchResult.outcome`): the
 * run then ends in the dispatch's own workflow task, without an evidence activity. Not asked when the
 * sink refused the chain.
 */
function outcomeRequest(run: GovernedRunState): OutcomeEvidenceRequest | undefined {
  const last = run.chain.entries[run.chain.entries.length - 1];
  if (run.evidenceRefused || !last) return undefined;
  const execution = chainExecution(run);
  return { ...(execution === undefined ? {} : { execution }), after: { seq: last.seq, hash: last.hash, occurredAt: last.occurredAt } };
}

function succeeded(run: GovernedRunState, result: DispatchResult): GovernedRunResult {
  run.recordOutput(result.output);
  // The activity's outcome entry, when it is exactly our next one; otherwise the run records its own
  // (a result recorded before the activity built one, or one that does not fit, which the sink refuses).
  const adopted = result.outcome && endAdopting(run, result.outcome.entry);
  if (adopted && result.outcome?.stored) acceptReceipt(run, result.outcome.stored);
  if (!adopted) run.chainDeferred();
  // Revoked while the runtime ran, and it finished anyway: the outcome is kept, the revocation recorded.
  if (run.revocation) {
    run.revocationEffect('revoked-while-running', now());
    observeRevoked('revoked-while-running');
  }
  if (adopted) return resultOf(run, RunState.Succeeded);
  return finish(run, RunState.Succeeded, succeededSummary(result.runtime), result.externalRef ? { externalRef: result.externalRef } : undefined, result.payloadRefs);
}

/** `finish` with the outcome entry the dispatch activity built; false if it is not our next entry. */
function endAdopting(run: GovernedRunState, entry: EvidenceEntry): boolean {
  if (!run.endWith(RunState.Succeeded, entry, () => observeTransition(run, RunState.Succeeded, now()))) return false;
  publishState(run);
  return true;
}

function dispatchFailed(run: GovernedRunState, err: unknown): GovernedRunResult {
  if (isCancellation(err) && run.cancel) return finish(run, RunState.Cancelled, `dispatch cancelled: ${run.cancel.reason}`);
  if (isCancellation(err) && run.revocation) return revoked(run);
  if (isCancellation(err)) throw err;
  const cause = failureOf(err);
  // The dispatch activity found a revocation in force: nothing was stored or sent.
  const revocation = cause.type === FailureType.Revoked ? revocationOfFailure(innermost(err)?.details) : undefined;
  if (revocation) {
    run.applyRevocation(revocation, 'dispatch-refused', now());
    return revoked(run);
  }
  run.noteFailure(cause);
  finish(run, RunState.Failed, `${cause.type}: ${cause.message}`);
  throw refusal(cause.type as FailureType, cause.message); // the cause's own type, kept as it came
}

/**
 * What stops a run that was about to dispatch, judged now: a cancel, approvals gone stale (voided;
 * the run waits for them again), a rejection or change request accepted meanwhile.
 */
function rejudged(run: GovernedRunState): GovernedRunResult | 'stale' | undefined {
  const cancelled = run.cancel;
  if (cancelled) return finish(run, RunState.Cancelled, cancelled.reason);
  if (run.revocation) return revoked(run);
  // A break-glass release stands in for the quorum: nothing to renew.
  if (run.tier === 'HumanApprove' && !run.breakGlassReleased) {
    run.voidStaleApprovals(now());
    if (!run.quorumMetAt(now())) return 'stale';
  }
  if (run.rejectedBy) return finish(run, RunState.Rejected, `rejected by ${run.rejectedBy}`);
  // After a break-glass release a change request cannot send the run back (it would be released again).
  if (run.changesRequestedBy && !run.breakGlassReleased) return 'stale';
  return undefined;
}

/**
 * The lean dispatch: judged in the decision's own workflow task, then one activity stores the
 * unstored evidence and only then calls the runtime. A sink that does not take the evidence fails
 * that attempt before anything is sent; the run then waits for the sink here, judges again (the
 * wait may have outlived approvals) and dispatches.
 */
async function dispatchLean(run: GovernedRunState, scope: CancellationScope): Promise<GovernedRunResult | 'stale'> {
  const stop = rejudged(run);
  if (stop) return stop;
  if (!fitsOneBatch(run)) {
    // A long chain (a flood of refusals) is stored in bounded batches first, then judged again.
    const waited = await storeThenRejudge(run);
    if (waited) return waited;
  }
  const decidedIn = run.state;
  run.clearDeadlines();
  enter(run, RunState.Dispatching, `dispatching to ${run.action.runtime}`);
  let done: DispatchResult | undefined;
  for (;;) {
    try {
      const evidence = run.evidenceRefused || !run.unpersisted.length ? undefined : nextEvidenceBatch(run);
      const outcome = outcomeRequest(run);
      flushState(run);
      // Entries recorded while the runtime runs follow its outcome entry, which the activity builds.
      run.deferEvidence();
      const result = await scope.run(() => dispatchActionOf(run)(dispatchRequest(run), evidence ?? null, outcome));
      if (result.evidence) acceptReceipt(run, result.evidence);
      // Outside this catch: the runtime has answered, so nothing below may turn into a failed dispatch.
      done = result;
    } catch (err) {
      run.chainDeferred();
      const type = isCancellation(err) ? undefined : failureOf(err).type;
      // A worker that cannot read the revocations sends nothing: the run waits, as for the sink.
      if (type !== FailureType.EvidenceUnavailable && type !== FailureType.EvidenceExecutionMoved && type !== FailureType.RevocationsUnavailable) return dispatchFailed(run, err);
    }
    if (done) return succeeded(run, done);
    // Nothing was sent: wait for the sink as long as it takes (decisions still count meanwhile, as in
    // the state the run was decided in), then judge again before sending.
    run.holdDecisionsIn(decidedIn);
    const waited = await storeThenRejudge(run);
    if (waited) return waited;
    run.endHold();
  }
}

/** The unstored entries fit in one write that travels with the dispatch. */
function fitsOneBatch(run: GovernedRunState): boolean {
  return nextEvidenceBatch(run).entries.length === run.unpersisted.length;
}

/** Store the evidence with the run's own retries, then judge again; a failure or a stop ends the step. */
async function storeThenRejudge(run: GovernedRunState): Promise<GovernedRunResult | 'stale' | undefined> {
  await storeOrFail(run);
  return rejudged(run);
}

/** Store the evidence before dispatch; a sink that cannot take it fails the run, with nothing dispatched. */
async function storeOrFail(run: GovernedRunState): Promise<void> {
  try {
    await storeEvidence(run);
  } catch (err) {
    if (isCancellation(err)) throw err;
    const cause = failureOf(err);
    run.noteFailure(cause);
    finish(run, RunState.Failed, `evidence not stored, action not dispatched: ${cause.message}`);
    throw refusal(cause.type as FailureType, cause.message); // the cause's own type, kept as it came
  }
}

/** The innermost application failure of an activity error, if there is one. */
function innermost(err: unknown): ApplicationFailure | undefined {
  let e: unknown = err;
  while (e instanceof Error && !(e instanceof ApplicationFailure) && e.cause) e = e.cause;
  return e instanceof ApplicationFailure ? e : undefined;
}

/** The run ends `Revoked`: its revocation was applied before (status and evidence name it). */
function revoked(run: GovernedRunState): GovernedRunResult {
  const r = run.revocation!;
  observeRevoked(r.effect);
  return finish(run, RunState.Revoked, `revoked by ${r.revocationId} (${r.scope.kind} ${r.scope.value}): ${r.effect}`);
}

/** The innermost application failure of an activity error: what the runtime said. */
function failureOf(err: unknown): { type: string; message: string } {
  let e: unknown = err;
  while (e instanceof Error && !(e instanceof ApplicationFailure) && e.cause) e = e.cause;
  // Runtime error texts can quote credentials; only redacted text enters state, evidence and failures.
  if (e instanceof ApplicationFailure) return { type: e.type ?? 'RuntimeError', message: redactText(e.message) };
  return { type: FailureType.RuntimeUnavailable, message: redactText(e instanceof Error ? e.message : String(e)) };
}

function enter(run: GovernedRunState, state: RunState, summary: string): void {
  observeTransition(run, state, now());
  run.transition(state, now(), summary, { ...run.deadlines });
  publishState(run);
}

/**
 * One upsert (one history event) carrying all keys, so CLI-started runs are findable: per transition
 * for older runs; for lean ones, once before the main loop next waits (`flushState`), however many
 * transitions it made since. Flushed at fixed points of the main loop, never from a microtask: a
 * command issued from a queued promise lands elsewhere among the commands when a query replays the run.
 */
function publishState(run: GovernedRunState): void {
  showDetails(run);
  if (!run.lean) return upsertState(run);
  run.queuePublish();
}

/**
 * The run page's current details, from the same status the `status` query returns. Not a command:
 * the SDK answers the UI's metadata query with it, so it costs no history and is never compared on
 * replay.
 */
function showDetails(run: GovernedRunState): void {
  if (!run.queueDetails()) return;
  // Built once per activation, however many messages it carried (a flood must not pay per message),
  // from a microtask: safe here because setting details issues no command.
  void Promise.resolve().then(() => {
    run.detailsShown();
    setCurrentDetails(runDetails(run.workflowId, run.status(now())));
  });
}

/** Upsert the state a lean run published since it last waited. */
function flushState(run: GovernedRunState): void {
  if (run.takePublish()) upsertState(run);
}

function upsertState(run: GovernedRunState): void {
  upsertSearchAttributes([
    { key: WorkspaceKey, value: run.input.workspaceId },
    { key: CorrelationKey, value: run.input.correlationId },
    { key: StateKey, value: run.state },
    { key: TierKey, value: run.tier ?? 'None' },
    // The approval inbox: who may approve now. Contents of an upsert are not checked on replay.
    { key: ApproverRolesKey, value: run.state === RunState.AwaitingApproval ? run.eligibleRoles : [] },
  ]);
}

function finish(run: GovernedRunState, state: RunState, summary: string, data?: { externalRef: string }, payloadRefs?: EvidencePayloadRef[]): GovernedRunResult {
  observeTransition(run, state, now());
  run.end(state, now(), summary, data, payloadRefs);
  publishState(run);
  return resultOf(run, state);
}

function resultOf(run: GovernedRunState, state: RunState): GovernedRunResult {
  return {
    schemaVersion: 1,
    state,
    tier: run.tier,
    actionHash: run.actionHash,
    reasons: run.policy?.reasons ?? [],
    output: run.output,
    evidenceHead: run.chain.head,
  };
}
