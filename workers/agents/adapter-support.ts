/**
 * What the framework adapters (openai-agents.ts, ai-sdk.ts) share on top of governed-tool.ts:
 * - "does this tool call wait for a person?", answered by the governed run itself (the call's run is
 *   started, or found by its call id, and watched until it ends or waits for a decision). The agent
 *   process never evaluates policy on its own, so its answer cannot drift from the worker's. The
 *   frameworks' `needsApproval` hooks use it to turn a long wait into their own interruption.
 * - the text the model reads, including refusals of requests that never became a run (arguments
 *   that are not an object, a call id reused with other arguments, a request the schema refuses).
 */
import { IdempotencyConflictError, InvalidMessageError } from '../client';
import { type GovernedAgent, type GovernedToolSpec, type ToolCallContext, callGovernedTool, outcomeText } from './governed-tool';
import { RunState, TERMINAL_STATES } from '../../workflows/types';

/** States in which the run waits for a person (approval, veto window, manual work, changes). */
const WAITS_FOR_PERSON: ReadonlySet<string> = new Set([RunState.AwaitingApproval, RunState.ChangesRequested, RunState.AwaitingManualCompletion, RunState.VetoWindow]);

const PROBE_POLL_MS = 150;

const isJsonObject = (v: unknown): boolean => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The refusal the model reads when its request could not become a run; undefined for other errors. */
function refusalBeforeRun(err: unknown): string | undefined {
  if (err instanceof IdempotencyConflictError) return 'Tool call refused: this tool call id was already used with other arguments. It did not run.';
  if (err instanceof InvalidMessageError) return `Tool call refused: ${err.message.slice(0, 300)}. It did not run.`;
  return undefined;
}

const NOT_AN_OBJECT = 'Tool call refused: the arguments must be a JSON object. It did not run.';

/**
 * True when the call's run waits for a person (or is still undecided after `probeMs`: interrupting
 * is the stricter answer, the agent resumes later). False when it has already ended (Auto ran it,
 * policy denied it, ...) or could not start: then the framework runs the tool, which reads that
 * outcome (or the refusal) at once.
 */
export async function governedCallAwaitsPerson(agent: GovernedAgent, tool: GovernedToolSpec, args: unknown, ctx: ToolCallContext, probeMs = 10_000): Promise<boolean> {
  if (!isJsonObject(args)) return false;
  let started;
  try {
    started = await callGovernedTool({ ...agent, waitMs: 0 }, tool, args, ctx);
  } catch (err) {
    if (refusalBeforeRun(err)) return false;
    throw err;
  }
  if (started.status !== 'pending') return false;
  const run = agent.client.run(started.workflowId);
  const until = Date.now() + probeMs;
  for (;;) {
    const { state } = await run.status();
    if (TERMINAL_STATES.has(state as RunState)) return false;
    if (WAITS_FOR_PERSON.has(state) || Date.now() >= until) return true;
    await new Promise<void>((r) => setTimeout(r, PROBE_POLL_MS));
  }
}

/** The governed call, as the text the model reads: the output, or a refusal it can act on. */
export async function governedCallText(agent: GovernedAgent, tool: GovernedToolSpec, args: unknown, ctx: ToolCallContext): Promise<string> {
  if (!isJsonObject(args)) return NOT_AN_OBJECT;
  try {
    return outcomeText(await callGovernedTool(agent, tool, args, ctx));
  } catch (err) {
    const refusal = refusalBeforeRun(err);
    if (refusal) return refusal;
    throw err;
  }
}
