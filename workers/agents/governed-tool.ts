/**
 * The governed tool call, framework-neutral: an agent's tool call becomes a `governedRun` whose action
 * is the call with its exact arguments, requested by the agent's principal, correlated with the agent
 * run or thread, and keyed by the tool call id (a retried or resumed step finds the same run). Policy
 * decides the tier; the agent never chooses it. The caller gets the tool's result or a typed outcome
 * the model can read (denied, rejected with the reviewer's rationale, expired, ...), or, when it
 * cannot block, `pending` with the workflow id to resume from later.
 * The adapters (openai-agents.ts, ai-sdk.ts, langgraph.ts, mcp-proxy.ts) wrap this for each framework.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import type { PortariumClient, RunHandle } from '../client';
import { AGENT_TOOLS_RUNTIME } from '../../activities/runtimes/agent-tools';
import { type GovernedRunResult, type JsonValue, type Principal, RunState, TERMINAL_STATES } from '../../workflows/types';

/** A tool, as the agent sees it, and where it runs when approved. */
export interface GovernedToolSpec {
  /** Tool name the model calls; also the default `target`. */
  name: string;
  description?: string;
  /** JSON schema of the arguments (an object schema), shown to the model. */
  parameters: { [k: string]: JsonValue };
  /** Where the approved call runs: default the in-process `agent-tools` runtime, target = name. */
  runtime?: string;
  target?: string;
  /** @default 'call' */
  operation?: string;
}

/** Who asks and in which workspace; shared by every tool of one agent. */
export interface GovernedAgent {
  client: PortariumClient;
  workspaceId: string;
  /** The agent's principal: it requests, so it can never approve its own tool calls. */
  principal: Principal;
  /**
   * How long one call blocks for the outcome before it answers `pending` (the run goes on; resume with
   * `resumeGovernedTool`). @default until the run ends
   */
  waitMs?: number;
}

export interface ToolCallContext {
  /** The framework's id of this tool call: the same on a retried or resumed step. */
  toolCallId: string;
  /** The agent run, conversation or thread id. */
  correlationId: string;
}

export type GovernedToolOutcome =
  | { status: 'succeeded'; workflowId: string; output: JsonValue }
  | { status: 'pending'; workflowId: string; state: string; approvalsNeeded: number }
  | { status: 'denied'; workflowId: string; reasons: string[] }
  | { status: 'rejected'; workflowId: string; by?: string; rationale?: string }
  | { status: 'expired' | 'cancelled' | 'revoked'; workflowId: string; reason?: string }
  | { status: 'failed'; workflowId: string; type: string; message: string };

/**
 * A correlation id the run accepts, from any thread or conversation id: kept when it already fits the
 * id rules, else made to fit with a hash that keeps distinct ids apart.
 */
export function correlationIdOf(raw: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}$/.test(raw)) return raw;
  const digest = createHash('sha256').update(raw).digest('hex').slice(0, 16);
  return `thread.${raw.replace(/[^A-Za-z0-9._:@/+-]/g, '_').slice(0, 80)}.${digest}`;
}

/**
 * The run's idempotency key for one tool call: readable, and the same for the same tool, call id and
 * thread. The thread is part of it: call ids repeat across threads (counters, replays, scripted
 * models), and one thread must never read another's run. The hash keeps long or odd ids apart.
 */
export function toolCallKey(toolName: string, toolCallId: string, correlationId: string): string {
  const safe = `${toolName}.${toolCallId}`.replace(/[^A-Za-z0-9._:@/+-]/g, '_').slice(0, 80);
  const digest = createHash('sha256').update(`${toolName}\u0000${toolCallId}\u0000${correlationIdOf(correlationId)}`).digest('hex').slice(0, 16);
  return `tool.${safe.replace(/^[^A-Za-z0-9]+/, '')}.${digest}`;
}

/** The workflow id of a tool call's run, for an agent that stored only its call id and thread. */
export function toolCallWorkflowId(workspaceId: string, toolName: string, toolCallId: string, correlationId: string): string {
  return `${workspaceId}:${toolCallKey(toolName, toolCallId, correlationId)}`;
}

function argsObject(args: unknown): { [k: string]: JsonValue } {
  if (typeof args === 'string') {
    try {
      return argsObject(JSON.parse(args));
    } catch {
      throw new TypeError('tool arguments are not JSON');
    }
  }
  if (!args || typeof args !== 'object' || Array.isArray(args)) throw new TypeError('tool arguments must be a JSON object');
  return JSON.parse(JSON.stringify(args)) as { [k: string]: JsonValue };
}

/** Start (or find) the run of one tool call and wait for its outcome, at most `agent.waitMs`. */
export async function callGovernedTool(agent: GovernedAgent, tool: GovernedToolSpec, args: unknown, ctx: ToolCallContext): Promise<GovernedToolOutcome> {
  const { run } = await agent.client.startRun({
    workspaceId: agent.workspaceId,
    correlationId: correlationIdOf(ctx.correlationId),
    requestedBy: agent.principal,
    action: { runtime: tool.runtime ?? AGENT_TOOLS_RUNTIME, target: tool.target ?? tool.name, operation: tool.operation ?? 'call', input: argsObject(args) },
    idempotencyKey: toolCallKey(tool.name, ctx.toolCallId, ctx.correlationId),
    reason: `agent tool call ${tool.name} (${ctx.toolCallId})`.slice(0, 500),
  });
  return outcomeOf(run, agent.waitMs);
}

/**
 * Withdraw a tool call whose run still waits (the agent's side refused or abandoned it): the agent's
 * principal is its requester, who may always cancel. A run that already ended is left as it is.
 */
export async function withdrawGovernedCall(agent: GovernedAgent, workflowId: string, reason: string): Promise<void> {
  const run = agent.client.run(workflowId);
  const s = await run.status();
  if (TERMINAL_STATES.has(s.state as RunState)) return;
  await run.cancel({ cancelId: `withdraw-${createHash('sha256').update(workflowId).digest('hex').slice(0, 16)}`, requestedBy: agent.principal, reason: reason.slice(0, 500) });
}

/** The outcome of a tool call started earlier (by workflow id), waiting at most `waitMs`. */
export async function resumeGovernedTool(client: PortariumClient, workflowId: string, waitMs?: number): Promise<GovernedToolOutcome> {
  return outcomeOf(client.run(workflowId), waitMs);
}

async function outcomeOf(run: RunHandle, waitMs: number | undefined): Promise<GovernedToolOutcome> {
  const workflowId = run.workflowId;
  let result: GovernedRunResult;
  try {
    if (waitMs !== undefined) {
      // Polls status rather than leave a result long-poll open per unanswered call.
      const until = Date.now() + waitMs;
      for (;;) {
        const s = await run.status();
        if (TERMINAL_STATES.has(s.state as RunState)) break;
        if (Date.now() >= until) return { status: 'pending', workflowId, state: s.state, approvalsNeeded: s.approvalsNeeded };
        await sleep(Math.min(POLL_MS, until - Date.now()));
      }
    }
    result = await run.result();
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const f = appFailure(err);
      return { status: 'failed', workflowId, type: f?.type ?? 'unknown', message: f?.message ?? err.message };
    }
    throw err;
  }
  switch (result.state) {
    case RunState.Succeeded:
    case RunState.ManuallyCompleted:
      return { status: 'succeeded', workflowId, output: result.output ?? null };
    case RunState.Denied:
      return { status: 'denied', workflowId, reasons: result.reasons };
    case RunState.Rejected:
      return { status: 'rejected', workflowId, ...(await rejection(run)) };
    case RunState.Expired:
      return { status: 'expired', workflowId, reason: result.reasons.at(-1) };
    case RunState.Cancelled:
      return { status: 'cancelled', workflowId, reason: result.reasons.at(-1) };
    case RunState.Revoked:
      return { status: 'revoked', workflowId, reason: result.reasons.at(-1) };
    default:
      return { status: 'failed', workflowId, type: 'UnexpectedState', message: `run ended in state ${result.state}` };
  }
}

/** The run's own typed failure in the cause chain, if any. */
function appFailure(err: unknown): ApplicationFailure | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 20; e = e.cause, depth++) if (e instanceof ApplicationFailure && e.type) return e;
  return undefined;
}

/** Who rejected and why, from the run's evidence (the `Rejected` entry). */
async function rejection(run: RunHandle): Promise<{ by?: string; rationale?: string }> {
  try {
    const entry = [...(await run.evidence()).entries].reverse().find((e) => e.event === 'Rejected');
    return entry ? { by: entry.actor.id, rationale: entry.summary } : {};
  } catch {
    return {};
  }
}

const POLL_MS = 500;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What the model reads: the output as JSON, or one line that says what happened and what to do. */
export function outcomeText(o: GovernedToolOutcome): string {
  switch (o.status) {
    case 'succeeded':
      return JSON.stringify(o.output);
    case 'pending':
      return `Tool call is waiting for approval (${o.approvalsNeeded} more needed; run ${o.workflowId}). It has not run yet; do not retry it with other arguments.`;
    case 'denied':
      return `Tool call denied by policy: ${o.reasons.join('; ')}. It did not run.`;
    case 'rejected':
      return `Tool call rejected${o.by ? ` by ${o.by}` : ''}${o.rationale ? `: ${o.rationale}` : ''}. It did not run.`;
    case 'expired':
      return `Tool call expired without approval${o.reason ? ` (${o.reason})` : ''}. It did not run.`;
    case 'cancelled':
      return `Tool call was cancelled${o.reason ? `: ${o.reason}` : ''}.`;
    case 'revoked':
      return `Tool call refused: the tool or its runtime is revoked${o.reason ? ` (${o.reason})` : ''}. It did not run.`;
    case 'failed':
      return `Tool call failed (${o.type}): ${o.message}`;
  }
}
