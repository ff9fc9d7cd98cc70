/**
 * The break-glass ledger's counting rules, pure: sliding windows per principal and per workspace,
 * one use per claim id. `breakGlassLedger` (./ledger.ts) holds one book and answers claims with it.
 */
import type { BreakGlassClaim, BreakGlassClaimAnswer, BreakGlassLedgerStatus, BreakGlassUse } from './types';

/** Workflow id of a workspace's ledger. */
export const breakGlassLedgerId = (workspaceId: string) => `${workspaceId}/break-glass`;

/** Answers kept for retried claims that were refused (granted ones are found among the uses). */
const MAX_ANSWERS = 200;
const MAX_SHOWN = 100;

/** Uses per sliding window; answers each claim id once. */
export class BreakGlassBook {
  private readonly answers = new Map<string, BreakGlassClaimAnswer>();
  constructor(readonly uses: BreakGlassUse[] = [], public refused = 0) {}

  claim(c: BreakGlassClaim, now: Date): BreakGlassClaimAnswer {
    const granted = this.uses.find((u) => u.claimId === c.claimId);
    if (granted) return { claimId: c.claimId, granted: true, window: this.counted(this.window(c, new Date(granted.at))), at: granted.at };
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
    return { claimId: c.claimId, granted: true, window: this.counted(window), at };
  }

  /** The window with the granted use itself counted. */
  private counted(w: { principalUses: number; workspaceUses: number }) {
    return { principalUses: w.principalUses + 1, workspaceUses: w.workspaceUses + 1 };
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

