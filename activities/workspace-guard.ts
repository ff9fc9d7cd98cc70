/**
 * The activity boundary between workspaces. Every activity a worker runs belongs to a workflow whose
 * id names its workspace (workflows/ids.ts). Before any activity touches a runtime, a secret,
 * evidence or a subscriber, this guard checks that
 *   - the worker serves that workspace: the activity came in on the task queue its isolation setting
 *     routes it to (`WrongTaskQueue`), so a dedicated worker never does another workspace's I/O;
 *   - the activity's input asks for that same workspace (`WorkspaceMismatch`), so a run of A can never
 *     read B's secrets or evidence, whatever its input says.
 * Refusals are non-retryable, logged as `cross-workspace refusal` and counted in
 * `portarium_workspace_refusals`.
 */
import { ApplicationFailure, type Context } from '@temporalio/activity';
import type { ActivityInboundCallsInterceptor, ActivityInterceptorsFactory } from '@temporalio/worker';
import type { TaskQueueRouting } from '../policies/isolation';
import { FailureType } from '../workflows/failures';
import { workspaceOfWorkflowId } from '../workflows/ids';

/** The workspace an activity's input asks for: a bare id (loadPolicySnapshot) or `{ workspaceId }`. */
function requestedWorkspace(args: readonly unknown[]): string | undefined {
  const first = args[0];
  if (typeof first === 'string') return first;
  if (first && typeof first === 'object' && 'workspaceId' in first) {
    // Anything but a string (an array, an object) could be coerced into another id further down.
    return typeof first.workspaceId === 'string' ? first.workspaceId : `(not a workspace id: ${typeof first.workspaceId})`;
  }
  return undefined;
}

/** Activities of system workflows (no workspace in their id). */
const SYSTEM_ACTIVITIES: ReadonlySet<string> = new Set(['fanOutRevocation', 'revocationSigning']);

/** Why this activity may not run here, if it may not. Pure, for tests. */
export function workspaceRefusal(
  routing: TaskQueueRouting,
  info: { taskQueue: string; workflowId?: string; activityType: string },
  args: readonly unknown[],
): { type: FailureType; message: string } | undefined {
  const owner = info.workflowId === undefined ? undefined : workspaceOfWorkflowId(info.workflowId);
  // The revocation registry's fan-out belongs to no workspace: it only signals runs a revocation id, which each run confirms itself.
  if (owner === undefined && SYSTEM_ACTIVITIES.has(info.activityType)) return undefined;
  if (owner === undefined) {
    return { type: FailureType.WorkspaceMismatch, message: `${info.activityType}: workflow ${info.workflowId ?? '(none)'} names no workspace` };
  }
  const expected = routing.queueFor(owner);
  if (info.taskQueue !== expected) {
    return { type: FailureType.WrongTaskQueue, message: `${info.activityType}: workspace ${owner} runs on task queue ${expected}, not ${info.taskQueue}` };
  }
  const asked = requestedWorkspace(args);
  if (asked !== undefined && asked !== owner) {
    return { type: FailureType.WorkspaceMismatch, message: `${info.activityType}: a run of workspace ${owner} asked for workspace ${asked}` };
  }
  return undefined;
}

export function workspaceGuard(routing: TaskQueueRouting): ActivityInterceptorsFactory {
  return (ctx: Context) => ({ inbound: new WorkspaceGuardInterceptor(ctx, routing) });
}

class WorkspaceGuardInterceptor implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly ctx: Context,
    private readonly routing: TaskQueueRouting,
  ) {}

  async execute(input: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[0], next: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[1]): Promise<unknown> {
    const { info } = this.ctx;
    const refusal = workspaceRefusal(this.routing, { taskQueue: info.taskQueue, workflowId: info.workflowExecution?.workflowId, activityType: info.activityType }, input.args);
    if (refusal) {
      this.ctx.log.warn('cross-workspace refusal', { refusal: refusal.type, reason: refusal.message, workflowId: info.workflowExecution?.workflowId, taskQueue: info.taskQueue });
      this.ctx.metricMeter.createCounter('portarium_workspace_refusals', '1', 'Activities refused for crossing workspaces or task queues').add(1, { refusal: refusal.type });
      throw ApplicationFailure.create({ type: refusal.type, message: refusal.message, nonRetryable: true });
    }
    return next(input);
  }
}
