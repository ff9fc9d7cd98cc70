/**
 * "Does this tool call wait for a person?", answered by the governed run itself: the call's run is
 * started (or found, by its call id) and watched until it either ends or waits for a decision. The
 * agent process never evaluates policy on its own, so its answer cannot drift from the worker's.
 * Used by the frameworks' own approval hooks (the OpenAI Agents SDK's and the AI SDK's `needsApproval`)
 * to turn a long wait into the framework's interruption instead of a blocked agent.
 */
import { type GovernedAgent, type GovernedToolSpec, type ToolCallContext, callGovernedTool } from './governed-tool';
import { RunState, TERMINAL_STATES } from '../../workflows/types';

/** States in which the run waits for a person (approval, veto window, manual work, changes). */
const WAITS_FOR_PERSON: ReadonlySet<string> = new Set([RunState.AwaitingApproval, RunState.ChangesRequested, RunState.AwaitingManualCompletion, RunState.VetoWindow]);

const PROBE_POLL_MS = 150;

/**
 * True when the call's run waits for a person (or is still undecided after `probeMs`: interrupting
 * is the stricter answer, the agent resumes later), false when it has already ended (Auto ran it,
 * policy denied it, ...): then the framework runs the tool, which reads that outcome at once.
 */
export async function governedCallAwaitsPerson(agent: GovernedAgent, tool: GovernedToolSpec, args: unknown, ctx: ToolCallContext, probeMs = 10_000): Promise<boolean> {
  const started = await callGovernedTool({ ...agent, waitMs: 0 }, tool, args, ctx);
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
