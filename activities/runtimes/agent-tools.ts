/**
 * The in-process runtime for agent tools (`agent-tools`): a service registers its tools' code with
 * the worker, and an approved tool call runs here, inside the governed run's dispatch activity, so
 * the approval and the call are one run whose evidence holds the exact arguments and the output.
 * `target` names the tool. A tool that throws is `RuntimeRejected` (the model reads why), unless it
 * throws a `runtimeUnavailable` failure to be retried; an output that is not bounded JSON is refused.
 */
import { ApplicationFailure } from '@temporalio/common';
import { runtimeRejected } from '../../workflows/failures';
import type { JsonValue } from '../../workflows/types';
import type { RuntimeAdapter, RuntimeCall, RuntimeOutcome } from './port';

export const AGENT_TOOLS_RUNTIME = 'agent-tools';
/** Largest tool output kept (it is stored in the run's result and evidence references). */
export const MAX_TOOL_OUTPUT_BYTES = 256 * 1024;

export interface AgentToolCall {
  /** The same on every attempt of this dispatch: a tool with side effects uses it to apply once. */
  dispatchKey: string;
  workflowId: string;
  attempt: number;
  signal: AbortSignal;
  heartbeat(details?: unknown): void;
}

export type AgentToolImplementation = (args: { [k: string]: JsonValue }, call: AgentToolCall) => Promise<JsonValue> | JsonValue;

function jsonOutput(tool: string, value: unknown): JsonValue {
  let text: string | undefined;
  try {
    text = JSON.stringify(value ?? null);
  } catch (err) {
    throw runtimeRejected(`tool ${tool} returned something that is not JSON: ${(err as Error).message}`);
  }
  if (text === undefined) throw runtimeRejected(`tool ${tool} returned something that is not JSON`);
  if (Buffer.byteLength(text) > MAX_TOOL_OUTPUT_BYTES) throw runtimeRejected(`tool ${tool} ran, but returned ${Buffer.byteLength(text)} bytes, more than ${MAX_TOOL_OUTPUT_BYTES}: its output is not kept (do not call it again to get it)`);
  return JSON.parse(text) as JsonValue;
}

/** A runtime that runs the given tools by name (`action.target`). */
export function createAgentToolsRuntime(tools: Record<string, AgentToolImplementation>, name = AGENT_TOOLS_RUNTIME): RuntimeAdapter {
  const byName = new Map(Object.entries(tools));
  return {
    name,
    async execute(call: RuntimeCall): Promise<RuntimeOutcome> {
      const { target, input, dispatchKey, workflowId } = call.request;
      const impl = byName.get(target);
      if (!impl) throw runtimeRejected(`no tool ${target} is registered with the ${name} runtime on this worker`);
      let output: unknown;
      try {
        output = await impl(input as { [k: string]: JsonValue }, { dispatchKey, workflowId, attempt: call.attempt, signal: call.signal, heartbeat: (d) => call.heartbeat(d) });
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        throw runtimeRejected(`tool ${target} failed: ${(err instanceof Error ? err.message : String(err)).slice(0, 1000)}`);
      }
      return { output: jsonOutput(target, output), externalRef: `${name}:${call.dispatchId.slice(0, 16)}` };
    },
  };
}
