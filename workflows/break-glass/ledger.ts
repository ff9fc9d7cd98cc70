/**
 * `breakGlassLedger`: counts a workspace's break-glass uses (id `<workspace>/break-glass`). Runs ask
 * through the `claimBreakGlass` activity with the `claim` update, which the ledger handles one at a
 * time, synchronously: two runs racing for the last use get one grant and one refusal, whatever
 * workers they run on. The answer reaches the run as its activity's result, so no other party can
 * forge a grant. Limits come with the claim, from the run's frozen policy snapshot; a forged claim
 * can only use up slots, never grant a run anything. The ledger finishes when no use counts any more
 * and nothing was asked for a while; the next claim starts it again.
 */
import { ApplicationFailure, allHandlersFinished, condition, continueAsNew, log, setHandler, workflowInfo } from '@temporalio/workflow';
import { FailureType } from '../failures';
import { check, describeIssues } from '../schemas';
import { workspaceOfWorkflowId } from '../ids';
import * as msg from '../run/messages';
import { breakGlassClaimSchema } from './schemas';
import { BreakGlassBook, breakGlassLedgerId } from './book';
import type { BreakGlassLedgerInput } from './types';

/** Idle this long (and no use counting) and the ledger finishes. */
const IDLE_FINISH_MS = 10 * 60_000;
const MAX_HISTORY_EVENTS = 2_000;
const now = () => new Date();

export async function breakGlassLedger(raw: BreakGlassLedgerInput): Promise<void> {
  const workspaceId = typeof raw?.workspaceId === 'string' ? raw.workspaceId : '';
  // A ledger started by hand under another workspace's id counts nothing.
  if (workspaceOfWorkflowId(workflowInfo().workflowId) !== workspaceId || workflowInfo().workflowId !== breakGlassLedgerId(workspaceId)) {
    return void log.error('breakGlassLedger: its id does not name its workspace', { workflowId: workflowInfo().workflowId });
  }
  const carried = Array.isArray(raw.uses) ? raw.uses : [];
  const book = new BreakGlassBook(carried, typeof raw.refused === 'number' ? raw.refused : 0);
  let lastAsked = Date.now();
  setHandler(
    msg.breakGlassClaimUpdate,
    (c) => {
      lastAsked = Date.now();
      const answer = book.claim(c, now());
      log.info('break-glass claim', { claimId: c.claimId, granted: answer.granted, limit: answer.limit });
      return answer;
    },
    {
      validator: (c) => {
        const r = check(breakGlassClaimSchema(), c);
        if (!r.ok) throw ApplicationFailure.create({ type: FailureType.InvalidMessage, message: describeIssues(r.issues), nonRetryable: true });
      },
    },
  );
  setHandler(msg.breakGlassLedgerStatusQuery, () => book.status(workspaceId));
  const tooLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_HISTORY_EVENTS;
  for (;;) {
    const finishAt = Math.max(lastAsked + IDLE_FINISH_MS, book.countsUntil);
    await condition(tooLong, Math.max(1, finishAt - Date.now()));
    if (tooLong()) {
      await condition(allHandlersFinished);
      book.prune(now());
      await continueAsNew<typeof breakGlassLedger>({ schemaVersion: 1, workspaceId, uses: book.uses, refused: book.refused });
    }
    book.prune(now());
    if (Date.now() >= Math.max(lastAsked + IDLE_FINISH_MS, book.countsUntil) && allHandlersFinished()) return;
  }
}
