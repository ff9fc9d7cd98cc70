/**
 * Agent-tool fixtures: a policy folder whose workspace `agents` governs the in-process `agent-tools`
 * runtime (weather: Auto; refund: HumanApprove by one approver; drop_*: Deny), the tools' code, and
 * a worker running them, for the adapter suites (test/agents/).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAgentToolsRuntime, type AgentToolImplementation } from '../../activities/runtimes/agent-tools';
import type { GovernedAgent, GovernedToolSpec } from '../../workers/agents/governed-tool';
import type { Principal } from '../../workflows/types';
import { TEST_POLICY_DIR, type Harness, type HarnessOptions, withWorker } from './harness';

export const AGENT_WORKSPACE = 'agents';
/** The agent's own principal: it requests every tool call, so it may never approve one. */
export const agentPrincipal: Principal = { id: 'support-agent', roles: ['agent', 'approver'] };

export function agentPolicyDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-agents-'));
  for (const f of fs.readdirSync(TEST_POLICY_DIR)) fs.copyFileSync(path.join(TEST_POLICY_DIR, f), path.join(dir, f));
  const rules = [
    { id: 'weather-auto', match: { runtime: 'agent-tools', target: 'get_weather' }, tier: 'Auto' },
    { id: 'refund-approve', match: { runtime: 'agent-tools', target: 'issue_refund' }, tier: 'HumanApprove', approval: { quorum: 1, eligibleRoles: ['approver'], expiresAfter: '1h' } },
    { id: 'drop-deny', match: { runtime: 'agent-tools', target: 'drop_*' }, tier: 'Deny' },
  ];
  fs.writeFileSync(path.join(dir, `${AGENT_WORKSPACE}.json`), JSON.stringify({ schemaVersion: 1, kind: 'workspace', workspace: AGENT_WORKSPACE, rules }));
  return dir;
}

export const weatherTool: GovernedToolSpec = {
  name: 'get_weather',
  description: 'Current temperature in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
};
export const refundTool: GovernedToolSpec = {
  name: 'issue_refund',
  description: 'Refund an order (needs approval)',
  parameters: { type: 'object', properties: { orderId: { type: 'string' }, amount: { type: 'number' } }, required: ['orderId', 'amount'], additionalProperties: false },
};
export const dropTool: GovernedToolSpec = {
  name: 'drop_table',
  description: 'Drop a table (never allowed)',
  parameters: { type: 'object', properties: { table: { type: 'string' } }, required: ['table'], additionalProperties: false },
};

/** What the tools did, by dispatch key: a retried call must not apply twice. */
export class ToolLedger {
  readonly calls: { tool: string; args: unknown; dispatchKey: string }[] = [];
  readonly tools: Record<string, AgentToolImplementation> = {
    get_weather: (args, call) => this.note('get_weather', args, call.dispatchKey, { city: args.city ?? null, tempC: 21 }),
    issue_refund: (args, call) => this.note('issue_refund', args, call.dispatchKey, { refunded: args.amount ?? null, orderId: args.orderId ?? null }),
    drop_table: (args, call) => this.note('drop_table', args, call.dispatchKey, { dropped: true }),
  };
  private note<T>(tool: string, args: unknown, dispatchKey: string, result: T): T {
    this.calls.push({ tool, args, dispatchKey });
    return result;
  }
}

/** A worker running the echo runtime and the agent tools, on the given policies. */
export async function withAgentWorker<T>(opts: HarnessOptions, fn: (h: Harness, tools: ToolLedger) => Promise<T>): Promise<T> {
  const tools = new ToolLedger();
  return withWorker({ ...opts, runtimes: [createAgentToolsRuntime(tools.tools)] }, (h) => fn(h, tools));
}

export const governedAgent = (h: Harness, waitMs?: number): GovernedAgent => ({ client: h.portarium, workspaceId: AGENT_WORKSPACE, principal: agentPrincipal, ...(waitMs !== undefined && { waitMs }) });
