/**
 * Continue-as-new for a waiting governed run. Every message is one history event, and the server
 * closes a run at its history limits (51,200 events or 50 MB by default): a flood of bad messages,
 * or a long wait with much traffic, would end a governed request. So a run that waits for people or
 * time (never while dispatching, waiting for quota, or with an activity or handler in flight) hands
 * its whole state to a new execution when the server suggests it or its history passes a bound.
 */
import { allHandlersFinished, condition, log, makeContinueAsNewFunc, workflowInfo } from '@temporalio/workflow';
import { verifyChain } from '../evidence-chain';
import { FailureType, refusal } from '../failures';
import type { GovernedRunResult } from '../types';
import type { GovernedRunState } from './state';
import { CONTINUABLE_STATES, MAX_HISTORY_BYTES, MAX_HISTORY_EVENTS, type RunSnapshot, continuedInputSchema, snapshotFits } from './snapshot';
import { describeIssues, jsonBytes } from '../schemas';

/** Runs recorded before continue-as-new never continue; newer ones may, while they wait. */
export const CONTINUE_AS_NEW_PATCH = 'portarium-continue-as-new-v1';

/** Largest continued input looked at (Temporal refuses payloads over 2 MB anyway). */
const MAX_CONTINUED_INPUT_BYTES = 2 * 1024 * 1024;

const invalid = (message: string) => refusal(FailureType.InvalidRunInput, message);

/**
 * The snapshot of a continued input, checked. Refused (`InvalidRunInput`) unless Temporal started this
 * execution by continue-as-new: nobody can start a run with a snapshot that claims approvals.
 */
export function continuedSnapshot(raw: { continued: unknown }, workflowId: string): RunSnapshot {
  if (!workflowInfo().continuedFromExecutionRunId) throw invalid('a continued run state is accepted only from continue-as-new');
  if (jsonBytes(raw) > MAX_CONTINUED_INPUT_BYTES) throw invalid('continued run state is too large');
  const parsed = continuedInputSchema().safeParse(raw);
  if (!parsed.success) {
    throw invalid(`invalid continued run state: ${describeIssues(parsed.error.issues.slice(0, 10).map((i) => ({ path: i.path.map(String).join('.') || '(root)', message: i.message })))}`);
  }
  const s = parsed.data.continued;
  const chain = verifyChain(s.evidence.entries, { workspaceId: s.input.workspaceId, runId: workflowId });
  if (!chain.ok) throw invalid(`continued evidence chain fails at seq ${chain.seq}: ${chain.reason}`);
  return s;
}

/** What the run needs to continue: whether it may (patched), and the policy snapshot it carries on. */
export interface Continuation {
  enabled: boolean;
  /** The state did not fit a payload once: this execution waits on without continuing. */
  blocked: boolean;
}

/** Whether the run should continue as new now: waiting, allowed, and its history past a bound. */
export function continueDue(run: GovernedRunState, c: Continuation): boolean {
  if (!c.enabled || c.blocked || !CONTINUABLE_STATES.includes(run.state)) return false;
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength > MAX_HISTORY_EVENTS || info.historySize > MAX_HISTORY_BYTES;
}

/**
 * Continue as new once every handler has finished and no event batch is being delivered. Returns
 * (without continuing) when `woken` holds meanwhile, so the run acts on what arrived first, or when
 * `until` (epoch ms) passes, so a deadline is never late.
 */
export async function continueWhenReady(run: GovernedRunState, c: Continuation, woken: () => boolean, until: number): Promise<void> {
  const ready = () => allHandlersFinished() && !run.outbox.delivering;
  run.outbox.held = true;
  try {
    await condition(() => ready() || woken(), Math.max(1, until - Date.now()));
  } finally {
    run.outbox.held = false;
  }
  if (!ready() || woken() || Date.now() >= until) return;
  const snapshot = run.policySnapshot && run.carry(run.policySnapshot);
  if (!snapshot || !snapshotFits(snapshot)) {
    c.blocked = true;
    log.warn('governed run cannot continue as new: its state is too large; it waits on in this execution', { workflowId: run.workflowId });
    return;
  }
  log.info('governed run continues as new', { workflowId: run.workflowId, historyLength: workflowInfo().historyLength, continuations: snapshot.continuations });
  // The memo goes along: clients find the run's request hash there (idempotent starts).
  const memo = workflowInfo().memo;
  await makeContinueAsNewFunc<(raw: unknown) => Promise<GovernedRunResult>>(memo ? { memo } : {})({ continued: snapshot });
}
