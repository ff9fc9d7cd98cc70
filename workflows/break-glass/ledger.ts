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
import type { BreakGlassClaim, BreakGlassClaimAnswer, BreakGlassLedgerInput, BreakGlassLedgerStatus, BreakGlassUse } from './types';

/** Idle this long (and no use counting) and the ledger finishes. */
const IDLE_FINISH_MS = 10 * 60_000;
const MAX_HISTORY_EVENTS = 2_000;
/** Answers kept for retried claims that were refused (granted ones are found among the uses). */
const MAX_ANSWERS = 200;
const MAX_SHOWN = 100;

export const breakGlassLedgerId = (workspaceId: string) => `${workspaceId}/break-glass`;

/** The counting rules, pure: sliding windows per principal and per workspace. */
export class BreakGlassBook {
  private readonly answers = new Map<string, BreakGlassClaimAnswer>();
  constructor(readonly uses: BreakGlassUse[] = [], public refused = 0) {}

  claim(c: BreakGlassClaim, now: Date): BreakGlassClaimAnswer {
    const granted = this.uses.find((u) => u.claimId === c.claimId);
    if (granted) return { claimId: c.claimId, granted: true, window: this.window(c, new Date(granted.at)), at: granted.at };
    const prior = this.answers.get(c.claimId);
    if (prior) return prior;
    this.prune(now);
    const window = this.window(c, now);
    const limit = window.principalUses >= c.perPrincipal.count ? 'perPrincipal' : window.workspaceUses >= c.perWorkspace.count ? 'perWorkspace' : undefined;
    const at = now.toISOString();
    if (limit) {
      this.refused++;
      const answer: BreakGlassClaimAnswer = { claimId: c.claimId, granted: false, limit, window, at };
      this.answers.set(c.claimId, answer);
      if (this.answers.size > MAX_ANSWERS) this.answers.delete(this.answers.keys().next().value!);
      return answer;
    }
    const until = new Date(now.getTime() + Math.max(c.perPrincipal.perMs, c.perWorkspace.perMs)).toISOString();
    this.uses.push({ claimId: c.claimId, runId: c.runId, principalId: c.principalId, at, until });
    return { claimId: c.claimId, granted: true, window: { principalUses: window.principalUses + 1, workspaceUses: window.workspaceUses + 1 }, at };
  }

  /** Uses in the claim's windows before `now` (not counting one made at `now` by this claim). */
  private window(c: BreakGlassClaim, now: Date) {
    const t = now.getTime();
    const inWindow = (u: BreakGlassUse, perMs: number) => Date.parse(u.at) > t - perMs && Date.parse(u.at) < t + 1 && u.claimId !== c.claimId;
    return {
      principalUses: this.uses.filter((u) => u.principalId === c.principalId && inWindow(u, c.perPrincipal.perMs)).length,
      workspaceUses: this.uses.filter((u) => inWindow(u, c.perWorkspace.perMs)).length,
    };
  }

  /** Forget uses no window counts any more. */
  prune(now: Date): void {
    const t = now.getTime();
    for (let i = this.uses.length - 1; i >= 0; i--) if (Date.parse(this.uses[i].until) <= t) this.uses.splice(i, 1);
  }

  /** When the last counted use stops counting (epoch ms), or 0. */
  get countsUntil(): number {
    return this.uses.reduce((m, u) => Math.max(m, Date.parse(u.until)), 0);
  }

  status(workspaceId: string): BreakGlassLedgerStatus {
    return { workspaceId, uses: this.uses.slice(0, MAX_SHOWN).map((u) => ({ ...u })), useCount: this.uses.length, refused: this.refused };
  }
}

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
