/**
 * A small support agent on the OpenAI Agents SDK whose refund tool is governed: the refund waits for
 * a person, so the SDK run stops with an interruption; the agent saves the serialised run state and
 * ends. Later (another request, another process) it loads the state, sees the governed run decided
 * and finishes the SDK run. The model is scripted (no LLM, no network), so CI runs this file
 * (test/agents/openai-agents.test.ts). See docs/agents.md "OpenAI Agents SDK".
 */
import { randomUUID } from 'node:crypto';
import { Agent, type AgentOutputItem, type Model, type ModelRequest, type ModelResponse, type RunResult, RunState, Runner, Usage, setTracingDisabled } from '@openai/agents';
import { PortariumClient, loadConfig } from 'portarium-worker';
import { type GovernedAgent, type GovernedToolSpec, governedInterruptions, governedTool } from 'portarium-worker/agents/openai-agents';

/** The texts of the tool results the model was given in one request (what it "read"). */
export function toolResultsIn(request: ModelRequest): string[] {
  if (typeof request.input === 'string') return [];
  return request.input.flatMap((item) => {
    if (item.type !== 'function_call_result') return [];
    const out = item.output as unknown;
    if (typeof out === 'string') return [out];
    const parts = Array.isArray(out) ? out : [out];
    return [parts.map((p) => (p && typeof p === 'object' && 'text' in p ? String((p as { text: unknown }).text) : JSON.stringify(p))).join('')];
  });
}

/**
 * The SDK's `Model` interface, scripted: `script` turns each request into the model's output items
 * (a function call, a final message). Every request is kept, to show what the model was given.
 */
export class ScriptedModel implements Model {
  readonly requests: ModelRequest[] = [];
  constructor(private readonly script: (request: ModelRequest, turn: number) => AgentOutputItem[]) {}
  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    this.requests.push(request);
    return { usage: new Usage(), output: this.script(request, this.requests.length - 1), responseId: `resp_${randomUUID()}` };
  }
  async *getStreamedResponse(): AsyncIterable<never> {
    throw new Error('ScriptedModel does not stream');
  }
}

export const functionCall = (name: string, args: object, callId: string): AgentOutputItem => ({ type: 'function_call', callId, name, arguments: JSON.stringify(args), status: 'completed' });
export const message = (text: string): AgentOutputItem => ({ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text }] });

export const refundTool: GovernedToolSpec = {
  name: 'issue_refund',
  description: 'Refund an order (a person approves)',
  parameters: { type: 'object', properties: { orderId: { type: 'string' }, amount: { type: 'number' } }, required: ['orderId', 'amount'], additionalProperties: false },
};

/** The scripted support model: asks for the refund once, then answers with what the tool said. */
const supportModel = () =>
  new ScriptedModel((request) => {
    const [result] = toolResultsIn(request);
    return result === undefined ? [functionCall('issue_refund', { orderId: 'A-1', amount: 30 }, `call_${randomUUID()}`)] : [message(`Refund: ${result}`)];
  });

function supportAgent(governed: GovernedAgent) {
  return new Agent({ name: 'support', instructions: 'Refund orders when asked.', model: supportModel(), tools: [governedTool(governed, refundTool)] });
}

// No OpenAI account here: no trace export.
setTracingDisabled(true);
const runner = new Runner({ tracingDisabled: true });

export type SupportTurn = { done: true; answer: string } | { done: false; savedState: string; waitingOn: string[] };

async function finish(governed: GovernedAgent, result: RunResult<any, any>): Promise<SupportTurn> {
  if (result.interruptions.length === 0) return { done: true, answer: String(result.finalOutput) };
  // Save the SDK's run state (a string: a database row, a queue message) and the runs it waits on.
  const waiting = await governedInterruptions(governed, result.state, [refundTool.name]);
  return { done: false, savedState: result.state.toString(), waitingOn: waiting.map((w) => w.workflowId) };
}

/** A user's request: runs until the agent answers or a tool call waits for a person. */
export async function startSupportAgent(governed: GovernedAgent, threadId: string, request: string): Promise<SupportTurn> {
  return finish(governed, await runner.run(supportAgent(governed), request, { context: { threadId } }));
}

/**
 * Later (e.g. on the run's decision event, or a periodic check): continue from the saved state. A
 * call still undecided interrupts again; a decided one returns its result or refusal to the model.
 */
export async function resumeSupportAgent(governed: GovernedAgent, savedState: string): Promise<SupportTurn> {
  const agent = supportAgent(governed);
  const state = await RunState.fromString(agent, savedState);
  return finish(governed, await runner.run(agent, state));
}

async function main(): Promise<void> {
  const client = await PortariumClient.connect(loadConfig());
  const governed: GovernedAgent = { client, workspaceId: 'demo', principal: { id: 'support-agent', roles: ['agent'] } };
  const turn = await startSupportAgent(governed, 'thread-1', 'Please refund order A-1 (30 EUR).');
  console.log(JSON.stringify(turn.done ? turn : { waitingOn: turn.waitingOn }));
  await client.close();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
