/**
 * LangGraph fixtures for the adapter suites: agent -> tools -> agent graphs whose agent is scripted (it
 * makes the given tool calls once, then repeats what the tools said), checkpointed in memory.
 */
import { AIMessage, type BaseMessage, HumanMessage, ToolMessage } from '@langchain/core/messages';
import { END, MemorySaver, MessagesAnnotation, START, StateGraph } from '@langchain/langgraph';
import type { governedToolsNode } from '../../workers/agents/langgraph';
import type { PortariumClient } from '../../workers/client';
import { waitForState } from './harness';

// tsc resolves packages the classic way here (moduleResolution node), which cannot see subpath exports;
// Node's require does, so the prebuilt ToolNode loads as a service would load it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const { ToolNode } = require('@langchain/langgraph/prebuilt') as typeof import('@langchain/langgraph/dist/prebuilt/index.js');

export type Call = { id: string; name: string; args: Record<string, unknown> };

/** The scripted agent: it makes `calls` once, then repeats what the tools said. */
const agentNode = (calls: Call[]) => (s: { messages: BaseMessage[] }) => {
  const results = s.messages.filter((m) => ToolMessage.isInstance(m));
  return { messages: [results.length ? new AIMessage(results.map((m) => String(m.content)).join('\n')) : new AIMessage({ content: '', tool_calls: calls })] };
};
const route = (s: { messages: BaseMessage[] }) => ((s.messages.at(-1) as AIMessage).tool_calls?.length ? 'tools' : END);

/** agent -> ToolNode(tools) -> agent. */
export function toolNodeGraph(tools: ConstructorParameters<typeof ToolNode>[0], calls: Call[]) {
  return new StateGraph(MessagesAnnotation)
    .addNode('agent', agentNode(calls))
    .addNode('tools', new ToolNode(tools))
    .addEdge(START, 'agent')
    .addConditionalEdges('agent', route, ['tools', END])
    .addEdge('tools', 'agent')
    .compile({ checkpointer: new MemorySaver() });
}

/** agent -> governed-tools node -> agent; `checkpointed: false` compiles it without a checkpointer. */
export function nodeGraph(node: ReturnType<typeof governedToolsNode>, calls: Call[], { checkpointed = true } = {}) {
  return new StateGraph(MessagesAnnotation)
    .addNode('agent', agentNode(calls))
    .addNode('tools', node)
    .addEdge(START, 'agent')
    .addConditionalEdges('agent', route, ['tools', END])
    .addEdge('tools', 'agent')
    .compile(checkpointed ? { checkpointer: new MemorySaver() } : {});
}

export const toolMessages = (messages: BaseMessage[]) => messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m));
export const ask = { messages: [new HumanMessage('go')] };

export async function awaitingApproval(portarium: PortariumClient, workflowId: string) {
  return waitForState(portarium.run(workflowId), 'AwaitingApproval');
}

