/**
 * MCP proxy fixtures: the agent-tools policy folder plus rules for the `mcp` runtime's server `shop`
 * (the fixture upstream, test/fixtures/mcp/upstream.ts: weather Auto, refund HumanApprove, drop_* Deny),
 * a worker whose `mcp` runtime starts that upstream (recording every call in a ledger file), and the
 * proxy as a child process behind the SDK's own stdio client, as an agent host starts it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { createMcpRuntime, type McpRuntime } from '../../activities/runtimes/mcp';
import { PROJECT_ROOT } from '../../workers/config';
import { AGENT_WORKSPACE, agentPolicyDir, agentPrincipal } from './agents';
import { type Harness, type HarnessOptions, uid, withWorker } from './harness';
import { DEV_KEYS, shared, testKeyringFile } from './shared';

export const MCP_SERVER = 'shop';
export const UPSTREAM_JS = path.join(PROJECT_ROOT, 'dist', 'test', 'fixtures', 'mcp', 'upstream.js');
export const PROXY_JS = path.join(PROJECT_ROOT, 'dist', 'workers', 'agents', 'mcp-proxy.js');

/** The agents policy folder with the `mcp` rules added to workspace `agents`. */
export function mcpPolicyDir(): string {
  const dir = agentPolicyDir();
  const file = path.join(dir, `${AGENT_WORKSPACE}.json`);
  const policy = JSON.parse(fs.readFileSync(file, 'utf8')) as { rules: unknown[] };
  policy.rules.push(
    { id: 'mcp-weather-auto', match: { runtime: 'mcp', target: `${MCP_SERVER}/get_weather` }, tier: 'Auto' },
    { id: 'mcp-refund-approve', match: { runtime: 'mcp', target: `${MCP_SERVER}/issue_refund` }, tier: 'HumanApprove', approval: { quorum: 1, eligibleRoles: ['approver'], expiresAfter: '1h' } },
    { id: 'mcp-drop-deny', match: { runtime: 'mcp', target: `${MCP_SERVER}/drop_*` }, tier: 'Deny' },
  );
  fs.writeFileSync(file, JSON.stringify(policy));
  return dir;
}

/** What the upstream the worker started really ran. */
export interface UpstreamCall {
  tool: string;
  args: unknown;
  meta: Record<string, unknown>;
  pid: number;
}

export class UpstreamLedger {
  readonly file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-mcp-')), 'calls.jsonl');
  calls(): UpstreamCall[] {
    if (!fs.existsSync(this.file)) return [];
    return fs.readFileSync(this.file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as UpstreamCall);
  }
}

/** A worker with the `mcp` runtime on the fixture upstream as server `shop`; its servers are stopped after. */
export async function withMcpWorker<T>(opts: HarnessOptions, fn: (h: Harness, ledger: UpstreamLedger, runtime: McpRuntime) => Promise<T>): Promise<T> {
  const ledger = new UpstreamLedger();
  const runtime = createMcpRuntime({ servers: { [MCP_SERVER]: { command: process.execPath, args: [UPSTREAM_JS], env: { MCP_FIXTURE_LEDGER: ledger.file } } } });
  try {
    return await withWorker({ ...opts, runtimes: [runtime] }, (h) => fn(h, ledger, runtime));
  } finally {
    await runtime.close();
  }
}

/**
 * The proxy as a host starts it (`node mcp-proxy.js --workspace agents --principal support-agent ...
 * -- node upstream.js`), on the suite's server and the worker's queue, connected with the SDK's client.
 * Its session's correlation id is given (`--correlation-id`), so a test can name a call's run by it.
 */
export async function connectProxy(h: Harness, policyDir: string, extraArgs: string[] = []): Promise<{ client: Client; correlationId: string; stderr: () => string; pid: () => number | null; close(): Promise<void> }> {
  const correlationId = uid('mcp-thread');
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [PROXY_JS, '--workspace', AGENT_WORKSPACE, '--principal', agentPrincipal.id, '--roles', agentPrincipal.roles.join(','), '--server', MCP_SERVER, '--correlation-id', correlationId, ...extraArgs, '--', process.execPath, UPSTREAM_JS],
    env: {
      TEMPORAL_ADDRESS: shared.address ?? '',
      PORTARIUM_KEYRING_FILE: testKeyringFile(),
      ...DEV_KEYS,
      PORTARIUM_POLICY_DIR: policyDir,
      PORTARIUM_TASK_QUEUE: h.taskQueue,
    },
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (d) => (err += String(d)));
  const client = new Client({ name: 'portarium-test-host', version: '1' });
  await client.connect(transport);
  return { client, correlationId, stderr: () => err, pid: () => transport.pid, close: () => client.close() };
}
