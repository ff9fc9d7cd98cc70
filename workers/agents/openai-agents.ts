/**
 * OpenAI Agents SDK adapter (`@openai/agents`, optional peer dependency: only this module loads it).
 * `governedTool` is the SDK's function tool whose call is a governed run (see governed-tool.ts); its
 * `needsApproval` asks that run whether it waits for a person, so a long wait becomes the SDK's own
 * interruption (a serialisable RunState) instead of a blocked agent. Approval itself happens in
 * Portarium (eligible reviewers, SoD, signed decisions, evidence): the SDK's `state.approve()` only
 * lets the tool read the run's outcome and can never make the call run without that decision.
 */
import { type RunContext, type RunState as AgentRunState, type RunToolApprovalItem, type FunctionTool, tool } from '@openai/agents';
import { governedCallAwaitsPerson, governedCallText } from './adapter-support';
import { type GovernedAgent, type GovernedToolOutcome, type GovernedToolSpec, resumeGovernedTool, toolCallWorkflowId } from './governed-tool';

export interface OpenAIGovernedToolOptions {
  /**
   * The agent run or thread id the tool calls are correlated with. @default the run context's
   * `threadId` (`run(agent, input, { context: { threadId } })`); a call without one is refused
   */
  correlationId?: (runContext: RunContext<unknown> | undefined) => string | undefined;
  /**
   * `'policy'` (default): a call whose run waits for a person interrupts the SDK run (resume it
   * later from its serialised state); `false`: the tool blocks for the outcome up to `agent.waitMs`.
   */
  needsApproval?: 'policy' | false;
  /** How long `needsApproval` watches a fresh run before it interrupts anyway. @default 10 s */
  probeMs?: number;
}

/** Thrown (before any run starts) when a tool call has no correlation id. */
export class MissingCorrelationError extends Error {
  override readonly name = 'MissingCorrelationError';
}

function threadIdOf(runContext: RunContext<unknown> | undefined): string | undefined {
  const ctx = runContext?.context as { threadId?: unknown } | undefined;
  return typeof ctx?.threadId === 'string' && ctx.threadId.length > 0 ? ctx.threadId : undefined;
}

function callContext(spec: GovernedToolSpec, opts: OpenAIGovernedToolOptions, runContext: RunContext<unknown> | undefined, callId: string | undefined) {
  const correlationId = (opts.correlationId ?? threadIdOf)(runContext);
  if (!correlationId) throw new MissingCorrelationError(`tool ${spec.name}: no correlation id (give the run context a threadId)`);
  if (!callId) throw new MissingCorrelationError(`tool ${spec.name}: the SDK gave no tool call id`);
  return { toolCallId: callId, correlationId };
}

/**
 * The SDK function tool for a governed tool: the model sees `spec`'s name, description and JSON
 * schema; each call (keyed by the SDK's call id) is one governed run; the model reads its result or
 * a refusal (denied, rejected with the reviewer's rationale, expired, ...).
 */
export function governedTool(agent: GovernedAgent, spec: GovernedToolSpec, opts: OpenAIGovernedToolOptions = {}): FunctionTool<unknown> {
  const needsApproval =
    opts.needsApproval === false
      ? false
      : async (runContext: RunContext, input: unknown, callId?: string) => governedCallAwaitsPerson(agent, spec, input, callContext(spec, opts, runContext, callId), opts.probeMs);
  return tool({
    name: spec.name,
    description: spec.description ?? spec.name,
    // The schema is the tool's own (possibly non-strict) JSON schema; arguments reach the run as given.
    parameters: spec.parameters as never,
    strict: false,
    needsApproval,
    execute: async (input, runContext, details) => {
      const ctx = callContext(spec, opts, runContext as RunContext<unknown> | undefined, details?.toolCall?.callId);
      return governedCallText(agent, spec, input, ctx);
    },
  }) as FunctionTool<unknown>;
}

/** A paused tool call of an interrupted SDK run, with its governed run's outcome so far. */
export interface GovernedInterruption {
  item: RunToolApprovalItem;
  toolName: string;
  callId: string;
  workflowId: string;
  outcome: GovernedToolOutcome;
}

/**
 * The governed runs behind an interrupted SDK run's approval items (`result.interruptions`, or
 * `state.getInterruptions()` after `RunState.fromString`), each with its outcome so far (`pending`
 * while a person has not decided). Items of tools outside `workspaceId`'s governed tools are skipped.
 */
export async function governedInterruptions(agent: GovernedAgent, state: AgentRunState<any, any>, toolNames: readonly string[], correlationId?: string): Promise<GovernedInterruption[]> {
  // The thread the calls were made in: given, else the run context's threadId (as the tool reads it).
  const thread = correlationId ?? threadIdOf(state._context);
  if (!thread) throw new MissingCorrelationError('governedInterruptions: no correlation id (give it, or a threadId in the run context)');
  const out: GovernedInterruption[] = [];
  for (const item of state.getInterruptions()) {
    const raw = item.rawItem as { type?: string; name?: string; callId?: string };
    if (raw.type !== 'function_call' || !raw.name || !raw.callId || !toolNames.includes(raw.name)) continue;
    const workflowId = toolCallWorkflowId(agent.workspaceId, raw.name, raw.callId, thread);
    out.push({ item, toolName: raw.name, callId: raw.callId, workflowId, outcome: await resumeGovernedTool(agent.client, workflowId, 0) });
  }
  return out;
}

/**
 * True when every governed interruption's run has ended, so `run(agent, state)` continues: each
 * tool's `needsApproval` then finds its run ended and the tool returns the outcome to the model.
 * The SDK-side `state.approve()` is not needed (and cannot bypass the governed decision).
 */
export async function governedInterruptionsDecided(agent: GovernedAgent, state: AgentRunState<any, any>, toolNames: readonly string[], correlationId?: string): Promise<boolean> {
  return (await governedInterruptions(agent, state, toolNames, correlationId)).every((i) => i.outcome.status !== 'pending');
}

export { type GovernedAgent, type GovernedToolOutcome, type GovernedToolSpec, callGovernedTool, outcomeText, resumeGovernedTool, toolCallWorkflowId, withdrawGovernedCall } from './governed-tool';
