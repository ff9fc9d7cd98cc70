/**
 * The break-glass ledger's activity: `claimBreakGlass` starts the workspace's `breakGlassLedger` if it
 * is not running (on the task queue of the run that asks) and sends it the `claim` update. The claim
 * id is the run's and release's, so a retried activity is answered as the first attempt was.
 */
import { Context } from '@temporalio/activity';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { executeUpdateAgain } from './update-again';
import { check, describeIssues } from '../workflows/schemas';
import { FailureType, refusal } from '../workflows/failures';
import { breakGlassClaimUpdate } from '../workflows/run/messages';
import { breakGlassClaimSchema } from '../workflows/break-glass/schemas';
import { breakGlassLedgerId } from '../workflows/break-glass/book';
import type { BreakGlassClaim, BreakGlassClaimAnswer, BreakGlassLedgerInput } from '../workflows/break-glass/types';
import { workspaceIdSchema } from '../workflows/ids';

export interface BreakGlassClaimAsk {
  workspaceId: string;
  claim: BreakGlassClaim;
}

export function createBreakGlassActivities() {
  return {
    async claimBreakGlass(raw: BreakGlassClaimAsk): Promise<BreakGlassClaimAnswer> {
      const ws = check(workspaceIdSchema(), raw?.workspaceId);
      const claim = check(breakGlassClaimSchema(), raw?.claim);
      if (!ws.ok || !claim.ok) throw refusal(FailureType.InvalidMessage, `invalid break-glass claim: ${describeIssues([...(ws.ok ? [] : ws.issues), ...(claim.ok ? [] : claim.issues)])}`);
      const ctx = Context.current();
      const workflowId = breakGlassLedgerId(ws.value);
      const input: BreakGlassLedgerInput = { schemaVersion: 1, workspaceId: ws.value };
      // A ledger that finished between start and update refuses it as closed: start it again, once more.
      for (let attempt = 0; ; attempt++) {
        await ctx.client.workflow.start('breakGlassLedger', { workflowId, taskQueue: ctx.info.taskQueue, args: [input], workflowIdConflictPolicy: 'USE_EXISTING' });
        try {
          return await executeUpdateAgain(ctx.client.workflow.getHandle(workflowId), breakGlassClaimUpdate, { args: [claim.value] });
        } catch (err) {
          if (err instanceof WorkflowUpdateFailedError || attempt >= 2) throw err;
        }
      }
    },
  };
}

export type BreakGlassActivities = ReturnType<typeof createBreakGlassActivities>;
