/**
 * The MCP proxy (workers/agents/mcp-proxy.ts) as an agent host runs it: a child process behind the
 * SDK's own stdio client, in front of the fixture upstream, on a real Temporal server; the tool runs in
 * the worker's `mcp` runtime (a second copy of the upstream that records each call). Auto returns the
 * upstream's result; HumanApprove waits for a second person; rejection, denial and the upstream's own
 * error read as `isError` text; a retried call id starts no second run; a short wait answers pending
 * with the run id and the same call id resumes; tools/list is the upstream's.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { AWAIT_TOOL, MCP_CALL_ID_META, MCP_STATUS_META, MCP_WORKFLOW_META, proxySettings } from '../../workers/agents/mcp-proxy';
import { mcpServersFileSchema } from '../../activities/runtimes/mcp';
import { loadPolicyDir } from '../../activities/policy/load';
import { PROJECT_ROOT } from '../../workers/config';
import { toolCallWorkflowId } from '../../workers/agents/governed-tool';
import { hashAction } from '../../workflows/hashing';
import { UPSTREAM_TOOLS } from '../fixtures/mcp/upstream';
import { TEST_POLICY_DIR, bob, decision, failureType, uid, waitForState } from '../support/harness';
import { AGENT_WORKSPACE, agentPrincipal, dropTool, refundTool, weatherTool } from '../support/agents';
import { MCP_SERVER, connectProxy, mcpPolicyDir, withMcpWorker } from '../support/mcp';
import { testEnv } from '../support/shared';

type Proxy = Awaited<ReturnType<typeof connectProxy>>;

const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
const call = (p: Proxy, name: string, args: Record<string, unknown>, callId: string) =>
  p.client.callTool({ name, arguments: args, _meta: { [MCP_CALL_ID_META]: callId } }) as Promise<CallToolResult>;

/** Poll until the tool call's run exists and waits for approval. */
async function awaitingApproval(h: { portarium: import('../../workers/client').PortariumClient }, p: Proxy, tool: string, callId: string) {
  const run = h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, tool, callId, p.correlationId));
  for (let i = 0; i < 100; i++) {
    const st = await waitForState(run, 'AwaitingApproval', 200).catch(() => undefined);
    if (st) return { run, st };
  }
  return { run, st: await waitForState(run, 'AwaitingApproval') };
}

describe('MCP proxy (real server, SDK stdio client, mcp runtime in the worker)', function () {
  this.timeout(90_000);
  let policyDir: string;
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue: uid('tq-mcp') });
  before(() => {
    policyDir = mcpPolicyDir();
  });

  async function withProxy(fn: (h: Parameters<Parameters<typeof withMcpWorker>[1]>[0], p: Proxy, ledger: Parameters<Parameters<typeof withMcpWorker>[1]>[1]) => Promise<void>, args: string[] = []) {
    await withMcpWorker(opts(), async (h, ledger) => {
      const p = await connectProxy(h, policyDir, args);
      try {
        await fn(h, p, ledger);
      } finally {
        await p.close();
      }
    });
  }

  it('tools/list is the upstream\'s: names, descriptions and schemas as they are', async function () {
    await withProxy(async (_h, p) => {
      const { tools } = await p.client.listTools();
      assert.deepEqual(tools, UPSTREAM_TOOLS);
      // The same tools the agent-tools policies govern, with the same argument schemas.
      assert.deepEqual(tools.map((t) => t.inputSchema), [weatherTool, refundTool, dropTool].map((t) => t.parameters));
    });
  });

  it('the proxy ends with its session: closing its stdin stops it at once, no orphan', async function () {
    await withMcpWorker(opts(), async (h) => {
      const p = await connectProxy(h, policyDir);
      const pid = p.pid()!;
      assert.ok(pid > 0);
      const t0 = Date.now();
      await p.close();
      // The SDK's client waits 2 s for the exit before it sends SIGTERM: an exit on stdin's end comes first.
      assert.ok(Date.now() - t0 < 1_900, `closed in ${Date.now() - t0} ms`);
      assert.throws(() => process.kill(pid, 0), /ESRCH/);
    });
  });

  it('Auto: the upstream runs once in the worker and its result comes back; the evidence binds the exact arguments and the output', async function () {
    await withProxy(async (h, p, ledger) => {
      const callId = uid('call');
      const res = await call(p, 'get_weather', { city: 'Oslo' }, callId);
      assert.equal(res.isError, undefined);
      assert.deepEqual(res.structuredContent, { city: 'Oslo', tempC: 21 });
      assert.equal(textOf(res), '{"city":"Oslo","tempC":21}');
      const workflowId = toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', callId, p.correlationId);
      assert.equal(res._meta?.[MCP_WORKFLOW_META], workflowId);
      const run = h.portarium.run(workflowId);
      const ev = (await run.evidence()).entries;
      const requested = ev.find((e) => e.event === 'RunRequested');
      assert.equal(requested?.actor.id, agentPrincipal.id);
      // The action hash is of exactly this call: runtime mcp, target shop/get_weather, these arguments.
      const action = { runtime: 'mcp', target: `${MCP_SERVER}/get_weather`, operation: 'call', input: { city: 'Oslo' } };
      assert.equal((requested?.data as { actionHash?: string }).actionHash, hashAction(action));
      assert.equal((await run.status()).actionHash, hashAction(action));
      const refs = ev.find((e) => e.event === 'StateSucceeded')?.payloadRefs ?? [];
      assert.deepEqual(refs.map((r) => r.kind).sort(), ['ActionInput', 'RuntimeOutput']);
      const calls = ledger.calls();
      assert.deepEqual(calls.map((c) => [c.tool, c.args]), [['get_weather', { city: 'Oslo' }]]);
      assert.equal(typeof calls[0].meta['portarium/dispatchId'], 'string');
    });
  });

  it('a retried call (same call id) starts no second run: the same answer, the upstream called once', async function () {
    await withProxy(async (h, p, ledger) => {
      const callId = uid('call');
      const first = await call(p, 'get_weather', { city: 'Rome' }, callId);
      const again = await call(p, 'get_weather', { city: 'Rome' }, callId);
      assert.deepEqual(again, first);
      assert.equal(ledger.calls().length, 1);
      assert.equal(again._meta?.[MCP_WORKFLOW_META], toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', callId, p.correlationId));
      assert.equal((await h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', callId, p.correlationId)).status()).state, 'Succeeded');
      // Other arguments under the same id are refused, and run nothing.
      const other = await call(p, 'get_weather', { city: 'Paris' }, callId);
      assert.equal(other.isError, true);
      assert.match(textOf(other), /already used/);
      assert.equal(ledger.calls().length, 1);
    });
  });

  it('HumanApprove: the call waits, the agent\'s own approval is refused, bob approves, the result comes back', async function () {
    await withProxy(async (_h, p, ledger) => {
      const callId = uid('call');
      const pending = call(p, 'issue_refund', { orderId: 'A-1', amount: 30 }, callId);
      const { run, st } = await awaitingApproval(_h, p, 'issue_refund', callId);
      await assert.rejects(run.decide({ kind: 'approve', ...decision(agentPrincipal, st.actionHash) }), (e: unknown) => failureType(e) === 'SelfApprovalRefused');
      assert.equal(ledger.calls().length, 0);
      await run.decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      const res = await pending;
      assert.equal(res.isError, undefined);
      assert.equal(textOf(res), 'refunded 30 on order A-1');
      assert.deepEqual(ledger.calls().map((c) => [c.tool, c.args]), [['issue_refund', { orderId: 'A-1', amount: 30 }]]);
    });
  });

  it('rejection reads as isError with the reviewer and rationale; denial with the policy reason; the upstream\'s own error with its text', async function () {
    await withProxy(async (h, p, ledger) => {
      const callId = uid('call');
      const pending = call(p, 'issue_refund', { orderId: 'B-2', amount: 9000 }, callId);
      const { run, st } = await awaitingApproval(h, p, 'issue_refund', callId);
      await run.decide({ kind: 'reject', ...decision(bob, st.actionHash), rationale: 'refunds over 500 need a ticket' });
      const rejected = await pending;
      assert.equal(rejected.isError, true);
      assert.match(textOf(rejected), /rejected by bob: refunds over 500 need a ticket/);
      assert.equal(rejected._meta?.[MCP_STATUS_META], 'rejected');
      const denied = await call(p, 'drop_table', { table: 'users' }, uid('call'));
      assert.equal(denied.isError, true);
      assert.match(textOf(denied), /denied by policy/);
      assert.equal(ledger.calls().length, 0);
      // Auto, but the upstream answers isError: it ran, and the run fails RuntimeRejected with its text.
      const failed = await call(p, 'get_weather', { city: 'Atlantis' }, uid('call'));
      assert.equal(failed.isError, true);
      assert.match(textOf(failed), /RuntimeRejected.*unknown city: Atlantis/);
      assert.deepEqual(ledger.calls().map((c) => c.tool), ['get_weather']);
    });
  });

  it('long wait: past the proxy\'s wait the call answers pending with the run id; the same call id later resumes it', async function () {
    await withProxy(async (h, p, ledger) => {
      const callId = uid('call');
      const first = await call(p, 'issue_refund', { orderId: 'C-3', amount: 5 }, callId);
      const workflowId = toolCallWorkflowId(AGENT_WORKSPACE, 'issue_refund', callId, p.correlationId);
      assert.equal(first.isError, true);
      assert.equal(first._meta?.[MCP_STATUS_META], 'pending');
      assert.equal(first._meta?.[MCP_WORKFLOW_META], workflowId);
      assert.match(textOf(first), new RegExp(`waiting for approval .*run ${workflowId}`));
      const st = await waitForState(h.portarium.run(workflowId), 'AwaitingApproval');
      await h.portarium.run(workflowId).decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      const later = await call(p, 'issue_refund', { orderId: 'C-3', amount: 5 }, callId);
      assert.equal(later.isError, undefined);
      assert.equal(textOf(later), 'refunded 5 on order C-3');
      assert.equal(ledger.calls().length, 1);
    }, ['--wait', '1s']);
  });

  it('long wait without a host call id: with --await-tool the model resumes by the run id it was given', async function () {
    await withProxy(async (h, p, ledger) => {
      const names = (await p.client.listTools()).tools.map((t) => t.name);
      assert.deepEqual(names, [...UPSTREAM_TOOLS.map((t) => t.name), AWAIT_TOOL]);
      const first = (await p.client.callTool({ name: 'issue_refund', arguments: { orderId: 'D-4', amount: 7 } })) as CallToolResult;
      assert.equal(first._meta?.[MCP_STATUS_META], 'pending');
      const workflowId = String(first._meta?.[MCP_WORKFLOW_META]);
      assert.ok(textOf(first).includes(`Call ${AWAIT_TOOL} with {"workflowId": ${JSON.stringify(workflowId)}}`), textOf(first));
      const run = h.portarium.run(workflowId);
      const st = await waitForState(run, 'AwaitingApproval');
      // Still waiting: the await tool answers pending again, and nothing ran.
      const still = (await p.client.callTool({ name: AWAIT_TOOL, arguments: { workflowId } })) as CallToolResult;
      assert.equal(still._meta?.[MCP_STATUS_META], 'pending');
      await run.decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      const done = (await p.client.callTool({ name: AWAIT_TOOL, arguments: { workflowId } })) as CallToolResult;
      assert.equal(done.isError, undefined);
      assert.equal(textOf(done), 'refunded 7 on order D-4');
      assert.equal(ledger.calls().length, 1);
    }, ['--wait', '1s', '--await-tool']);
  });

  it('an upstream that dies mid-call: the run fails RuntimeOutcomeUnknown (never resent), and the next call starts it again', async function () {
    await withProxy(async (_h, p, ledger) => {
      const died = await call(p, 'get_weather', { city: '__exit__' }, uid('call'));
      assert.equal(died.isError, true);
      assert.match(textOf(died), /RuntimeOutcomeUnknown/);
      assert.equal(ledger.calls().length, 1);
      const ok = await call(p, 'get_weather', { city: 'Oslo' }, uid('call'));
      assert.deepEqual(ok.structuredContent, { city: 'Oslo', tempC: 21 });
      const [a, b] = ledger.calls();
      assert.notEqual(a.pid, b.pid);
    });
  });

  it('the example (docs/examples/agents/mcp.md): its policy loads, its servers file and host configuration parse, the proxy takes its arguments', function () {
    const md = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'examples', 'agents', 'mcp.md'), 'utf8');
    const blocks = [...md.matchAll(/^```json\n([\s\S]*?)^```/gm)].map((m) => JSON.parse(m[1]) as Record<string, unknown>);
    assert.equal(blocks.length, 3);
    const [policy, serversFile, hostConfig] = blocks;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-mcp-example-'));
    fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
    fs.writeFileSync(path.join(dir, 'support.json'), JSON.stringify(policy));
    assert.ok(loadPolicyDir(dir).workspaces.includes('support'));
    assert.ok(mcpServersFileSchema.parse(serversFile).mcpServers.shop);
    const host = mcpServersFileSchema.parse(hostConfig).mcpServers.shop;
    // The proxy named by its path, never through npx (which may fetch a package of that name).
    assert.match(host.command, /\/portarium-mcp-proxy$/);
    const { options } = proxySettings(host.args!, { ...host.env, PORTARIUM_POLICY_DIR: dir });
    assert.deepEqual({ ws: options.workspaceId, principal: options.principal.id, server: options.server, awaitTool: options.awaitTool, upstream: options.upstream.command },
      { ws: 'support', principal: 'support-agent', server: 'shop', awaitTool: true, upstream: 'node' });
  });
});
