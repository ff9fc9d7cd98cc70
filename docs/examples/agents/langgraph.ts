/**
 * A small LangGraph.js support agent whose tools are governed runs: the example in docs/agents.md
 * "LangGraph.js", run by CI (test/agents/langgraph.test.ts) against a real server. The model is scripted,
 * so there is no LLM and no network. A real agent binds the same tools to its chat model instead.
 * The refund waits for a person: the graph interrupts with the run's workflow id and checkpoints. The
 * agent resumes the thread later, and only the governed run's decision lets the refund happen.
 */
import { randomUUID } from 'node:crypto';
import { AIMessage, type BaseMessage, HumanMessage, ToolMessage } from '@langchain/core/messages';
import { type BaseCheckpointSaver, Command, END, MemorySaver, MessagesAnnotation, START, StateGraph } from '@langchain/langgraph';
import { PortariumClient, loadConfig } from 'portarium-worker';
import { type GovernedAgent, type GovernedToolSpec, type PendingToolRun, governedInterrupts, governedToolsNode } from 'portarium-worker/agents/langgraph';

export const tools: GovernedToolSpec[] = [
  {
    name: 'get_weather',
    description: 'Current temperature in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  },
  {
    name: 'issue_refund',
    description: 'Refund an order',
    parameters: { type: 'object', properties: { orderId: { type: 'string' }, amount: { type: 'number' } }, required: ['orderId', 'amount'], additionalProperties: false },
  },
];

/**
 * Stands in for `model.bindTools(tools).invoke(messages)`. First it calls both tools (fresh call ids, as a
 * provider gives), then it answers from what the tools returned, refusals included.
 */
export function scriptedModel(messages: BaseMessage[]): AIMessage {
  const results = messages.filter((m) => ToolMessage.isInstance(m));
  if (results.length === 0) {
    return new AIMessage({
      content: '',
      tool_calls: [
        { id: `call_${randomUUID()}`, name: 'get_weather', args: { city: 'Oslo' } },
        { id: `call_${randomUUID()}`, name: 'issue_refund', args: { orderId: 'A-1', amount: 30 } },
      ],
    });
  }
  return new AIMessage(results.map((m) => `${m.name}: ${String(m.content)}`).join('\n'));
}

/** The graph: agent -> governed tools -> agent, checkpointed so that a long wait survives a restart. */
export function supportAgent(agent: GovernedAgent, checkpointer: BaseCheckpointSaver) {
  return new StateGraph(MessagesAnnotation)
    .addNode('agent', (state) => ({ messages: [scriptedModel(state.messages)] }))
    .addNode('tools', governedToolsNode(agent, tools))
    .addEdge(START, 'agent')
    .addConditionalEdges('agent', (state) => ((state.messages.at(-1) as AIMessage).tool_calls?.length ? 'tools' : END), ['tools', END])
    .addEdge('tools', 'agent')
    .compile({ checkpointer });
}

export interface RunOptions {
  threadId?: string;
  /** A persistent checkpointer lets the process exit while it waits. @default new MemorySaver() */
  checkpointer?: BaseCheckpointSaver;
  /** How often to look again at runs that wait. @default 10000 */
  pollMs?: number;
  /** Told each time the graph waits: where to send the approver. */
  onWaiting?: (runs: PendingToolRun[]) => void | Promise<void>;
}

/** Asks the agent, waits out the approvals by resuming the thread, and returns the final answer. */
export async function main(agent: GovernedAgent, options: RunOptions = {}): Promise<string> {
  const graph = supportAgent(agent, options.checkpointer ?? new MemorySaver());
  const config = { configurable: { thread_id: options.threadId ?? `support-${randomUUID()}` } };
  let result = await graph.invoke({ messages: [new HumanMessage('Refund order A-1 (30 EUR). And how warm is Oslo?')] }, config);
  for (let waiting = governedInterrupts(result); waiting.length > 0; waiting = governedInterrupts(result)) {
    await options.onWaiting?.(waiting.flatMap((w) => w.pending));
    await new Promise((r) => setTimeout(r, options.pollMs ?? 10_000));
    // The resume value is ignored: resuming only makes the node look at the runs again.
    result = await graph.invoke(new Command({ resume: 'check' }), config);
  }
  return String(result.messages.at(-1)?.content ?? '');
}

if (require.main === module) {
  // Needs a worker that registers these tools' code (createAgentToolsRuntime) and a policy for workspace `agents`.
  void (async () => {
    const client = await PortariumClient.connect(loadConfig());
    const agent: GovernedAgent = { client, workspaceId: 'agents', principal: { id: 'support-agent', roles: ['agent'] } };
    const answer = await main(agent, { onWaiting: (runs) => console.log(`waiting for a decision on: ${runs.map((r) => r.workflowId).join(', ')}`) });
    console.log(answer);
    await client.close();
  })().catch((err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
