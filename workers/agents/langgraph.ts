/**
 * LangGraph.js / LangChain adapter: an agent's tool call becomes a governed run (workers/agents/governed-tool.ts),
 * keyed by the tool call id and correlated with the graph's thread id.
 * - `governedTool`: a LangChain `tool()` that blocks for the outcome; use it in a `ToolNode` like any tool.
 * - `governedToolsNode`: for long waits. It starts the runs of the last AI message's tool calls and, while any of
 *   them waits for a person, calls LangGraph's `interrupt()`. The graph checkpoints and the process may exit.
 *   Resuming the thread re-checks the same runs. The resume value is ignored, so only the governed run decides:
 *   a resume cannot approve anything.
 * This module imports `@langchain/core` and `@langchain/langgraph` (optional peers); only a service that uses them
 * loads it.
 */
import { AIMessage, type BaseMessage, ToolMessage } from '@langchain/core/messages';
import { type DynamicStructuredTool, type ToolRunnableConfig, ToolInputParsingException, tool } from '@langchain/core/tools';
import type { JSONSchema } from '@langchain/core/utils/json_schema';
import { type LangGraphRunnableConfig, interrupt } from '@langchain/langgraph';
import { type GovernedAgent, type GovernedToolOutcome, type GovernedToolSpec, callGovernedTool, correlationIdOf, outcomeText } from './governed-tool';
import { IdempotencyConflictError, InvalidMessageError } from '../client';

export { type GovernedAgent, type GovernedToolOutcome, type GovernedToolSpec, callGovernedTool, outcomeText, resumeGovernedTool, toolCallWorkflowId, withdrawGovernedCall } from './governed-tool';

/** The `kind` of the interrupts this module raises, to tell them from the graph's other interrupts. */
export const GOVERNED_TOOLS_INTERRUPT = 'portarium.governed-tools';

/** The value of a `governedToolsNode` interrupt: the runs still waiting, one per tool call. */
export interface GovernedToolsInterrupt {
  kind: typeof GOVERNED_TOOLS_INTERRUPT;
  /** The correlation id the runs carry (the thread id). */
  correlationId: string;
  pending: PendingToolRun[];
}

export interface PendingToolRun {
  toolCallId: string;
  tool: string;
  /** The run an approver decides on (`npx portarium decide <workflowId> approve|reject ...`); then resume the thread. */
  workflowId: string;
  /** Where the run is: `AwaitingApproval`, or still running the tool. */
  state: string;
  approvalsNeeded: number;
}

export interface GovernedToolsNodeOptions {
  /**
   * How long the node waits for each call's outcome before it interrupts the graph. A call at Auto usually
   * completes within it. A longer one interrupts too and is picked up on resume.
   * @default 2000
   */
  waitMs?: number;
  /**
   * Most tool calls of one AI message that start runs. The calls beyond it answer the model with an error
   * and start nothing, so a runaway model cannot open runs without bound.
   * @default 32
   */
  maxCallsPerStep?: number;
}

/** What `governedTool` returns: a structured tool on a JSON schema whose calls answer with a `ToolMessage`. */
export type GovernedLangChainTool = DynamicStructuredTool<JSONSchema, Record<string, unknown>, Record<string, unknown>, ToolMessage>;

const DEFAULT_NODE_WAIT_MS = 2_000;
const DEFAULT_MAX_CALLS_PER_STEP = 32;

/**
 * A LangChain tool whose call is a governed run: the policy tier applies, and the model reads the result or
 * the refusal (`outcomeText`). The returned `ToolMessage` carries the outcome as its `artifact` (status and
 * workflow id) and has status `error` unless the call succeeded. The tool must be called with a tool call
 * (a `ToolNode` does so). Its id keys the run: a retried step finds the same run. The call blocks for the
 * outcome, or answers `pending` after `agent.waitMs`.
 */
export function governedTool(agent: GovernedAgent, spec: GovernedToolSpec): GovernedLangChainTool {
  return tool(
    async (args: unknown, config: ToolRunnableConfig): Promise<ToolMessage> => {
      const toolCallId = config.toolCall?.id;
      // No call id, no idempotency key: a retry would start a second run.
      if (!toolCallId) throw new Error(`governed tool ${spec.name} needs a tool call id: call it from a ToolNode or with tool.invoke(toolCall)`);
      const outcome = await callGovernedTool(agent, spec, args, { toolCallId, correlationId: threadCorrelationId(config, toolCallId) });
      return toolMessage(spec.name, toolCallId, outcome);
    },
    { name: spec.name, description: spec.description ?? `${spec.name} (governed)`, schema: spec.parameters as JSONSchema },
  );
}

/**
 * A graph node (in place of a `ToolNode`) that runs the last AI message's tool calls as governed runs and
 * interrupts the graph while any of them waits. The graph needs a checkpointer. The interrupt's value is a
 * {@link GovernedToolsInterrupt}. Resume with `new Command({ resume: ... })` or by invoking the thread with
 * `null`. Either way the node re-checks every call of the step under the same call id, so nothing starts
 * twice, and it continues only once the runs have ended. A call to a tool not in `tools`, with arguments
 * that do not match its schema, or beyond `maxCallsPerStep` answers the model with an error and starts no run.
 */
export function governedToolsNode(agent: GovernedAgent, tools: GovernedToolSpec[], options: GovernedToolsNodeOptions = {}): GovernedToolsNode {
  const waiting: GovernedAgent = { ...agent, waitMs: options.waitMs ?? DEFAULT_NODE_WAIT_MS };
  const byName = new Map(tools.map((spec) => [spec.name, governedTool(waiting, spec)]));
  const maxCalls = options.maxCallsPerStep ?? DEFAULT_MAX_CALLS_PER_STEP;
  return async (state: { messages: BaseMessage[] }, config: LangGraphRunnableConfig): Promise<{ messages: ToolMessage[] }> => {
    const calls = unansweredToolCalls(state.messages);
    const messages = await Promise.all(
      calls.map(async (call, i): Promise<ToolMessage> => {
        const governed = byName.get(call.name);
        if (!call.id) return refusal(call.name, '', `Tool call to ${call.name} has no id; nothing ran.`);
        if (i >= maxCalls) return refusal(call.name, call.id, `More than ${maxCalls} tool calls in one step; this one did not run. Make fewer calls at a time.`);
        if (!governed) return refusal(call.name, call.id, `Unknown tool ${call.name}; nothing ran.`);
        try {
          return (await governed.invoke({ ...call, id: call.id, type: 'tool_call' }, config)) as ToolMessage;
        } catch (err) {
          if (err instanceof ToolInputParsingException) return refusal(call.name, call.id, `Arguments for ${call.name} do not match its schema; it did not run. ${err.message}`);
          // A refusal the model can read, not a throw: a throw would fail every resume of the thread.
          if (err instanceof IdempotencyConflictError) return refusal(call.name, call.id, 'Tool call refused: this tool call id was already used with other arguments. It did not run.');
          if (err instanceof InvalidMessageError) return refusal(call.name, call.id, `Tool call refused: ${err.message.slice(0, 300)}. It did not run.`);
          throw err;
        }
      }),
    );
    const pending = messages.flatMap((m) => pendingRun(m));
    if (pending.length > 0) {
      const value: GovernedToolsInterrupt = { kind: GOVERNED_TOOLS_INTERRUPT, correlationId: threadCorrelationId(config, pending[0].toolCallId), pending };
      // The runs were just re-checked. Every earlier resume of this step returns here at once, and its value
      // is ignored. The first unanswered interrupt pauses the graph again.
      for (;;) interrupt<GovernedToolsInterrupt, unknown>(value);
    }
    return { messages };
  };
}

/** The node `governedToolsNode` returns, for `StateGraph.addNode` on any state with a `messages` channel. */
export type GovernedToolsNode = (state: { messages: BaseMessage[] }, config: LangGraphRunnableConfig) => Promise<{ messages: ToolMessage[] }>;

/** The governed-tools interrupts in a graph result (`result.__interrupt__`), or none. */
export function governedInterrupts(result: unknown): GovernedToolsInterrupt[] {
  const raw = (result as { __interrupt__?: unknown } | null)?.__interrupt__;
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((i: { value?: unknown } | null) => {
    const v = i?.value as Partial<GovernedToolsInterrupt> | undefined;
    return v?.kind === GOVERNED_TOOLS_INTERRUPT && Array.isArray(v.pending) ? [v as GovernedToolsInterrupt] : [];
  });
}

/** The last AI message's tool calls that no tool message answers yet (as `ToolNode` picks them). */
function unansweredToolCalls(messages: BaseMessage[]) {
  const answered = new Set(messages.flatMap((m) => (ToolMessage.isInstance(m) ? [m.tool_call_id] : [])));
  const last = [...messages].reverse().find((m) => AIMessage.isInstance(m));
  return (last && AIMessage.isInstance(last) ? (last.tool_calls ?? []) : []).filter((c) => !c.id || !answered.has(c.id));
}

function pendingRun(m: ToolMessage): PendingToolRun[] {
  const o = m.artifact as GovernedToolOutcome | undefined;
  return o?.status === 'pending' ? [{ toolCallId: m.tool_call_id, tool: m.name ?? '', workflowId: o.workflowId, state: o.state, approvalsNeeded: o.approvalsNeeded }] : [];
}

function toolMessage(name: string, toolCallId: string, outcome: GovernedToolOutcome): ToolMessage {
  return new ToolMessage({ content: outcomeText(outcome), artifact: outcome, tool_call_id: toolCallId, name, status: outcome.status === 'succeeded' ? 'success' : 'error' });
}

function refusal(name: string, toolCallId: string, content: string): ToolMessage {
  return new ToolMessage({ content, tool_call_id: toolCallId, name, status: 'error' });
}

/**
 * The run's correlation id: the thread id (`configurable.thread_id`), else the call id. Made to fit the id
 * rules (thread ids may be long or hold other characters), with a hash that keeps distinct ids apart.
 */
function threadCorrelationId(config: { configurable?: Record<string, unknown> }, toolCallId: string): string {
  const thread = config.configurable?.thread_id;
  return correlationIdOf(typeof thread === 'string' || typeof thread === 'number' ? String(thread) : toolCallId);
}
