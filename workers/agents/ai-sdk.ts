/**
 * Vercel AI SDK adapter (`ai` 6, optional peer dependency: only this module loads it). `governedTool`
 * is an AI SDK tool whose call is a governed run (see governed-tool.ts), keyed by the SDK's
 * `toolCallId`. With `needsApproval: 'policy'` (default) a call whose run waits for a person ends
 * `generateText` with the SDK's own `tool-approval-request`; the app keeps the messages and, once the
 * governed run is decided, answers it with `governedApprovalResponses` and calls `generateText` again.
 * The decision itself is Portarium's (eligible reviewers, SoD, evidence): an SDK-side
 * `approved: true` only lets the tool read the run's outcome, it never makes the call run.
 */
import { type ModelMessage, type Tool, type ToolApprovalResponse, jsonSchema, tool } from 'ai';
import { governedCallAwaitsPerson, governedCallText } from './adapter-support';
import { type GovernedAgent, type GovernedToolOutcome, type GovernedToolSpec, outcomeText, resumeGovernedTool, toolCallWorkflowId } from './governed-tool';

export interface AiSdkGovernedToolOptions {
  /**
   * The agent run or thread id the tool calls are correlated with. @default `experimental_context.threadId`
   * of `generateText`; a call without one is refused before any run starts
   */
  correlationId?: (experimentalContext: unknown) => string | undefined;
  /**
   * `'policy'` (default): a call whose run waits for a person becomes a `tool-approval-request`
   * (resume later); `false`: the tool blocks for the outcome up to `agent.waitMs`.
   */
  needsApproval?: 'policy' | false;
  /** How long `needsApproval` watches a fresh run before it asks for approval anyway. @default 10 s */
  probeMs?: number;
}

/** Thrown (before any run starts) when a tool call has no correlation id. */
export class MissingCorrelationError extends Error {
  override readonly name = 'MissingCorrelationError';
}

function threadIdOf(experimentalContext: unknown): string | undefined {
  const t = (experimentalContext as { threadId?: unknown } | undefined)?.threadId;
  return typeof t === 'string' && t.length > 0 ? t : undefined;
}

function callContext(spec: GovernedToolSpec, opts: AiSdkGovernedToolOptions, o: { toolCallId: string; experimental_context?: unknown }) {
  const correlationId = (opts.correlationId ?? threadIdOf)(o.experimental_context);
  if (!correlationId) throw new MissingCorrelationError(`tool ${spec.name}: no correlation id (pass experimental_context: { threadId })`);
  return { toolCallId: o.toolCallId, correlationId };
}

/**
 * True when the conversation already holds an approval request for this call. The SDK asks
 * `needsApproval` again when it reads the approval response, and refuses a response for a call that
 * "needs none": by then the governed run has ended, yet its decision still has to come through.
 */
function askedBefore(messages: readonly ModelMessage[], toolCallId: string): boolean {
  return messages.some((m) => typeof m.content !== 'string' && m.content.some((p) => p.type === 'tool-approval-request' && p.toolCallId === toolCallId));
}

/**
 * The AI SDK tool for a governed tool (put it under `spec.name` in `tools`): the model sees the
 * description and JSON schema; each call is one governed run; the model reads the result or a refusal.
 */
export function governedTool(agent: GovernedAgent, spec: GovernedToolSpec, opts: AiSdkGovernedToolOptions = {}): Tool<unknown, string> {
  return tool<unknown, string>({
    description: spec.description ?? spec.name,
    inputSchema: jsonSchema<unknown>(spec.parameters as never),
    needsApproval:
      opts.needsApproval === false
        ? false
        : async (input, o) => askedBefore(o.messages, o.toolCallId) || governedCallAwaitsPerson(agent, spec, input, callContext(spec, opts, o), opts.probeMs),
    execute: async (input, o) => governedCallText(agent, spec, input, callContext(spec, opts, o)),
  });
}

/** An unanswered approval request of a governed tool, with its run's outcome so far. */
export interface GovernedApprovalRequest {
  approvalId: string;
  toolCallId: string;
  toolName: string;
  workflowId: string;
  outcome: GovernedToolOutcome;
}

/** The unanswered `tool-approval-request`s of governed tools (`toolNames`) in a conversation. */
export async function governedApprovalRequests(agent: GovernedAgent, messages: readonly ModelMessage[], toolNames: readonly string[], correlationId: string): Promise<GovernedApprovalRequest[]> {
  const calls = new Map<string, string>();
  const requests: { approvalId: string; toolCallId: string }[] = [];
  const answered = new Set<string>();
  for (const m of messages) {
    if (typeof m.content === 'string') continue;
    for (const part of m.content) {
      if (part.type === 'tool-call') calls.set(part.toolCallId, part.toolName);
      else if (part.type === 'tool-approval-request') requests.push({ approvalId: part.approvalId, toolCallId: part.toolCallId });
      else if (part.type === 'tool-approval-response') answered.add(part.approvalId);
    }
  }
  const out: GovernedApprovalRequest[] = [];
  for (const r of requests) {
    const toolName = calls.get(r.toolCallId);
    if (answered.has(r.approvalId) || !toolName || !toolNames.includes(toolName)) continue;
    const workflowId = toolCallWorkflowId(agent.workspaceId, toolName, r.toolCallId, correlationId);
    out.push({ ...r, toolName, workflowId, outcome: await resumeGovernedTool(agent.client, workflowId, 0) });
  }
  return out;
}

/**
 * The SDK approval responses for the governed calls whose runs have ended, and the ones still
 * waiting. A run that succeeded is answered `approved` (the tool then returns its result); any other
 * end is answered `approved: false` with the refusal the model reads (rejected with the rationale,
 * denied, expired, ...). Append `{ role: 'tool', content: responses }` and call `generateText` again
 * when `pending` is empty.
 */
export async function governedApprovalResponses(agent: GovernedAgent, messages: readonly ModelMessage[], toolNames: readonly string[], correlationId: string): Promise<{ responses: ToolApprovalResponse[]; pending: GovernedApprovalRequest[] }> {
  const requests = await governedApprovalRequests(agent, messages, toolNames, correlationId);
  const pending = requests.filter((r) => r.outcome.status === 'pending');
  const responses = requests
    .filter((r) => r.outcome.status !== 'pending')
    .map((r): ToolApprovalResponse => (r.outcome.status === 'succeeded' ? { type: 'tool-approval-response', approvalId: r.approvalId, approved: true } : { type: 'tool-approval-response', approvalId: r.approvalId, approved: false, reason: outcomeText(r.outcome) }));
  return { responses, pending };
}

export { type GovernedAgent, type GovernedToolOutcome, type GovernedToolSpec, callGovernedTool, outcomeText, resumeGovernedTool, toolCallWorkflowId, withdrawGovernedCall } from './governed-tool';
