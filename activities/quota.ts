/**
 * The quota protocol's activities. A run mints its lease secret (`mintQuotaSecret`: random bytes, so
 * it exists only in the run's history, encrypted by the payload codec, and in its coordinator's) and
 * asks with it (`requestQuotaLease`: `signalWithStart` of `workspaceQuota`, through the worker's own
 * client, on the task queue of the run that asks). A coordinator loads its limits from the worker's
 * policy (`loadQuotaLimits`), never from a request. The request is keyed by the run's lease id, so a
 * retried activity never counts twice.
 */
import { randomBytes } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { Context } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { LoadedPolicies } from './policy/load';
import type { QuotaLimits } from '../policies/quotas';
import { check, describeIssues } from '../workflows/schemas';
import { refusal, FailureType } from '../workflows/failures';
import { quotaRequestSignal } from '../workflows/run/messages';
import { quotaFor } from '../workflows/quota/book';
import type { WorkspaceQuotaInput } from '../workflows/types';
import { type QuotaLeaseAsk, type QuotaPolicyAsk, quotaLeaseAskSchema, quotaPolicyAskSchema } from '../workflows/quota/schemas';
import { quotaWorkflowId } from '../workflows/ids';

export interface QuotaLeaseAsked {
  /** Workflow id of the coordinator that holds the request. */
  coordinator: string;
}

export interface QuotaSecret {
  /** Proofs to the run are keyed by it; only a release that carries it is honoured. 32 random bytes, base64url. */
  secret: string;
  /** Random part of the lease id, so nobody can ask for (and so bind) a lease id before the run does. */
  tag: string;
}

export interface QuotaLimitsLoaded {
  /** The workspace's limits for the runtime now; `{}` when its policy has none. */
  limits: QuotaLimits;
}

function parsed<T>(schema: Parameters<typeof check<T>>[0], raw: unknown, what: string): T {
  const r = check(schema, raw);
  if (!r.ok) throw refusal(FailureType.InvalidMessage, `invalid ${what}: ${describeIssues(r.issues)}`);
  return r.value;
}

/** Whether any worker has polled `taskQueue` for workflow tasks lately (the server keeps recent pollers). */
async function polled(client: Client, namespace: string, taskQueue: string): Promise<boolean> {
  const res = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (res.pollers?.length ?? 0) > 0;
}

export function createQuotaActivities(policies: LoadedPolicies) {
  return {
    async mintQuotaSecret(raw: QuotaPolicyAsk): Promise<QuotaSecret> {
      parsed(quotaPolicyAskSchema(), raw, 'quota secret request');
      return { secret: randomBytes(32).toString('base64url'), tag: randomBytes(12).toString('hex') };
    },

    async requestQuotaLease(raw: QuotaLeaseAsk): Promise<QuotaLeaseAsked> {
      const { workspaceId, runtime, request } = parsed(quotaLeaseAskSchema(), raw, 'quota request');
      const ctx = Context.current();
      const coordinator = quotaWorkflowId(workspaceId, runtime);
      const ask = () =>
        ctx.client.workflow.signalWithStart<(raw: WorkspaceQuotaInput) => Promise<void>, [typeof request]>('workspaceQuota', {
          workflowId: coordinator,
          taskQueue: ctx.info.taskQueue,
          args: [{ schemaVersion: 1, workspaceId, runtime }],
          signal: quotaRequestSignal,
          signalArgs: [request],
        });
      const handle = await ask();
      // Anyone who may start workflows could start the coordinator first on a task queue no worker
      // polls: it would take every request and never answer. One stranded like that is replaced.
      const { taskQueue } = await handle.describe();
      if (taskQueue && taskQueue !== ctx.info.taskQueue && !(await polled(ctx.client, ctx.client.options.namespace, taskQueue))) {
        ctx.log.warn('quota coordinator stranded on a task queue no worker polls: replaced', { coordinator, taskQueue, replacedOn: ctx.info.taskQueue });
        await handle.terminate(`stranded on task queue ${taskQueue}, which no worker polls; replaced on ${ctx.info.taskQueue}`).catch((err: unknown) => {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        });
        await ask();
      }
      return { coordinator };
    },

    async loadQuotaLimits(raw: QuotaPolicyAsk): Promise<QuotaLimitsLoaded> {
      const { workspaceId, runtime } = parsed(quotaPolicyAskSchema(), raw, 'quota policy request');
      return { limits: { ...(quotaFor(policies.snapshotFor(workspaceId).quotas, runtime) ?? {}) } };
    },
  };
}

export type QuotaActivities = ReturnType<typeof createQuotaActivities>;
