/**
 * Asks a workspace's quota coordinator for a lease: `signalWithStart` of `workspaceQuota`, through the
 * worker's own client, on the task queue of the run that asks (a workspace may have a dedicated one).
 * The request is keyed by the run's lease id, so a retried activity never counts twice.
 */
import { Context } from '@temporalio/activity';
import { check, describeIssues } from '../workflows/schemas';
import { refusal, FailureType } from '../workflows/failures';
import { quotaRequestSignal } from '../workflows/messages';
import { type QuotaLeaseAsk, quotaLeaseAskSchema } from '../workflows/quota-schemas';
import { quotaWorkflowId } from '../workflows/workflow-ids';
import type { workspaceQuota } from '../workflows/workspace-quota';

export interface QuotaLeaseAsked {
  /** Workflow id of the coordinator that holds the request. */
  coordinator: string;
}

export function createQuotaActivities() {
  return {
    async requestQuotaLease(raw: QuotaLeaseAsk): Promise<QuotaLeaseAsked> {
      const parsed = check(quotaLeaseAskSchema(), raw);
      if (!parsed.ok) throw refusal(FailureType.InvalidMessage, `invalid quota request: ${describeIssues(parsed.issues)}`);
      const { workspaceId, runtime, request } = parsed.value;
      const ctx = Context.current();
      const coordinator = quotaWorkflowId(workspaceId, runtime);
      await ctx.client.workflow.signalWithStart<typeof workspaceQuota, [typeof request]>('workspaceQuota', {
        workflowId: coordinator,
        taskQueue: ctx.info.taskQueue,
        args: [{ schemaVersion: 1, workspaceId, runtime }],
        signal: quotaRequestSignal,
        signalArgs: [request],
      });
      return { coordinator };
    },
  };
}

export type QuotaActivities = ReturnType<typeof createQuotaActivities>;
