/**
 * A small support agent on the Vercel AI SDK whose refund tool is governed: the refund waits for a
 * person, so `generateText` ends with a `tool-approval-request`; the agent keeps the messages and
 * ends. Later it answers the request from the governed run's decision and continues. The model is
 * the SDK's own `MockLanguageModelV3` (no LLM, no network), so CI runs this file
 * (test/agents/ai-sdk.test.ts). See docs/agents.md "Vercel AI SDK".
 */
import { randomUUID } from 'node:crypto';
import { type ModelMessage, generateText, stepCountIs } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { PortariumClient, loadConfig } from 'portarium-worker';
import { type GovernedAgent, type GovernedToolSpec, governedApprovalResponses, governedTool } from 'portarium-worker/agents/ai-sdk';

type CallOptions = MockLanguageModelV3['doGenerateCalls'][number];
type GenerateResult = Awaited<ReturnType<MockLanguageModelV3['doGenerate']>>;

/** The tool results the model was given in one call (what it "read"), as text. */
export function toolResultsIn(call: CallOptions): string[] {
  return call.prompt.flatMap((m) =>
    m.role !== 'tool'
      ? []
      : m.content.flatMap((p) => {
          if (p.type !== 'tool-result') return [];
          const o = p.output;
          if (o.type === 'text' || o.type === 'error-text') return [o.value];
          if (o.type === 'execution-denied') return [`execution denied: ${o.reason ?? ''}`];
          return [JSON.stringify('value' in o ? o.value : o)];
        }),
  );
}

const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };
export const toolCallResult = (toolName: string, args: object, toolCallId: string): GenerateResult => ({
  content: [{ type: 'tool-call', toolCallId, toolName, input: JSON.stringify(args) }],
  finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
  usage,
  warnings: [],
});
export const textResult = (text: string): GenerateResult => ({ content: [{ type: 'text', text }], finishReason: { unified: 'stop', raw: 'stop' }, usage, warnings: [] });

/** A scripted model: calls `toolName` once, then answers with what the tool (or the refusal) said. */
export function scriptedModel(toolName: string, args: object, toolCallId = `call_${randomUUID()}`): MockLanguageModelV3 {
  return new MockLanguageModelV3({
    doGenerate: async (call) => {
      const [result] = toolResultsIn(call);
      return result === undefined ? toolCallResult(toolName, args, toolCallId) : textResult(`tool said: ${result}`);
    },
  });
}

export const refundTool: GovernedToolSpec = {
  name: 'issue_refund',
  description: 'Refund an order (a person approves)',
  parameters: { type: 'object', properties: { orderId: { type: 'string' }, amount: { type: 'number' } }, required: ['orderId', 'amount'], additionalProperties: false },
};

export type SupportTurn = { done: true; answer: string } | { done: false; messages: ModelMessage[]; waitingOn: string[] };

async function step(governed: GovernedAgent, threadId: string, messages: ModelMessage[]): Promise<SupportTurn> {
  const result = await generateText({
    model: scriptedModel('issue_refund', { orderId: 'A-1', amount: 30 }),
    tools: { issue_refund: governedTool(governed, refundTool) },
    messages,
    stopWhen: stepCountIs(2),
    experimental_context: { threadId },
  });
  const all = [...messages, ...result.response.messages];
  const waiting = result.content.filter((p) => p.type === 'tool-approval-request');
  if (waiting.length === 0) return { done: true, answer: result.text };
  // Keep the messages (a database row); the approval requests name the governed runs.
  const { pending } = await governedApprovalResponses(governed, all, [refundTool.name], threadId);
  return { done: false, messages: all, waitingOn: pending.map((p) => p.workflowId) };
}

/** A user's request: runs until the agent answers or a tool call waits for a person. */
export async function askSupportAgent(governed: GovernedAgent, threadId: string, request: string): Promise<SupportTurn> {
  return step(governed, threadId, [{ role: 'user', content: request }]);
}

/**
 * Later: answer the approval requests whose governed runs have ended and continue; while a run is
 * undecided the turn stays where it is.
 */
export async function resumeSupportAgent(governed: GovernedAgent, threadId: string, messages: ModelMessage[]): Promise<SupportTurn> {
  const { responses, pending } = await governedApprovalResponses(governed, messages, [refundTool.name], threadId);
  if (pending.length > 0 || responses.length === 0) return { done: false, messages, waitingOn: pending.map((p) => p.workflowId) };
  return step(governed, threadId, [...messages, { role: 'tool', content: responses }]);
}

async function main(): Promise<void> {
  const client = await PortariumClient.connect(loadConfig());
  const governed: GovernedAgent = { client, workspaceId: 'demo', principal: { id: 'support-agent', roles: ['agent'] } };
  const turn = await askSupportAgent(governed, 'thread-1', 'Please refund order A-1 (30 EUR).');
  console.log(JSON.stringify(turn.done ? turn : { waitingOn: turn.waitingOn }));
  await client.close();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
