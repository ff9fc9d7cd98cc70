/**
 * Hostile input to the MCP proxy and the `mcp` runtime: a host's malformed call id, targets that name
 * no configured server (or try prototype keys), a server that cannot start, hangs or floods its
 * answer, and a bad servers file. Each refusal is typed; nothing runs that policy did not allow, and
 * nothing is resent that may have run.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createMcpRuntime, MAX_MCP_OUTPUT_BYTES } from '../../activities/runtimes/mcp';
import { AWAIT_TOOL, MCP_CALL_ID_META } from '../../workers/agents/mcp-proxy';
import { ConfigError, loadConfig } from '../../workers/config';
import { configuredRuntimes } from '../../workers/worker';
import { loadPolicyDir } from '../../activities/policy/load';
import { alice, failureType, uid, waitForState } from '../support/harness';
import { AGENT_WORKSPACE } from '../support/agents';
import { testCall } from '../support/runtime-call';
import { MCP_SERVER, UPSTREAM_JS, UpstreamLedger, connectProxy, mcpPolicyDir, withMcpWorker } from '../support/mcp';
import { testEnv } from '../support/shared';

const typeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => failureType(e) ?? String(e));
const mcpCall = (target: string, input = {}) => testCall({ runtime: 'mcp', target, input, connections: {} });

describe('hostile: MCP proxy and mcp runtime', function () {
  this.timeout(90_000);

  it('a host call id that is not a short string is refused before any run starts; the upstream is not called', async function () {
    const policyDir = mcpPolicyDir();
    await withMcpWorker({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue: uid('tq-mcp-h') }, async (h, ledger) => {
      const p = await connectProxy(h, policyDir);
      try {
        for (const bad of [42, '', 'x'.repeat(257), { id: 'a' }]) {
          const res = (await p.client.callTool({ name: 'get_weather', arguments: { city: 'Oslo' }, _meta: { [MCP_CALL_ID_META]: bad } })) as CallToolResult;
          assert.equal(res.isError, true);
          assert.match((res.content[0] as { text: string }).text, /refused.*did not run/);
        }
        // The session still serves a well-formed call.
        const ok = (await p.client.callTool({ name: 'get_weather', arguments: { city: 'Oslo' }, _meta: { [MCP_CALL_ID_META]: uid('call') } })) as CallToolResult;
        assert.deepEqual(ok.structuredContent, { city: 'Oslo', tempC: 21 });
        assert.equal(ledger.calls().length, 1);
      } finally {
        await p.close();
      }
    });
  });

  it('the await tool reads no run that is not this agent\'s own mcp call: another requester\'s, another workspace\'s, a made-up id', async function () {
    const policyDir = mcpPolicyDir();
    await withMcpWorker({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue: uid('tq-mcp-h') }, async (h) => {
      const { run } = await h.portarium.startRun({
        workspaceId: AGENT_WORKSPACE,
        correlationId: uid('corr'),
        requestedBy: alice,
        action: { runtime: 'mcp', target: `${MCP_SERVER}/get_weather`, operation: 'call', input: { city: 'Secretville' } },
        idempotencyKey: uid('key'),
        reason: 'alice asks',
      });
      await waitForState(run, 'Succeeded');
      const p = await connectProxy(h, policyDir, ['--await-tool']);
      try {
        for (const args of [{ workflowId: run.workflowId }, { workflowId: 'test:some-run' }, { workflowId: `${AGENT_WORKSPACE}:nope` }, { workflowId: 7 }, {}]) {
          const res = (await p.client.callTool({ name: AWAIT_TOOL, arguments: args })) as CallToolResult;
          assert.equal(res.isError, true, JSON.stringify(args));
          const t = (res.content[0] as { text: string }).text;
          assert.match(t, /refused/);
          assert.ok(!t.includes('Secretville'), 'the other run\'s output does not leak');
        }
      } finally {
        await p.close();
      }
    });
  });

  it('targets that name no configured server (unknown, no slash, prototype keys) are RuntimeRejected without starting anything', async function () {
    const runtime = createMcpRuntime({ servers: { [MCP_SERVER]: { command: process.execPath, args: [UPSTREAM_JS] } } });
    try {
      for (const target of ['other/get_weather', 'get_weather', `${MCP_SERVER}/`, '__proto__/x', 'constructor/x', '/get_weather']) {
        assert.equal(await typeOf(runtime.execute(mcpCall(target))), 'RuntimeRejected', target);
      }
    } finally {
      await runtime.close();
    }
  });

  it('a server whose command does not start is RuntimeUnavailable (retried: nothing was sent)', async function () {
    const runtime = createMcpRuntime({ servers: { s: { command: path.join(os.tmpdir(), uid('no-such-mcp-server')) } } });
    try {
      assert.equal(await typeOf(runtime.execute(mcpCall('s/get_weather', { city: 'Oslo' }))), 'RuntimeUnavailable');
    } finally {
      await runtime.close();
    }
  });

  it('a server that got the call and never answers is RuntimeOutcomeUnknown after its timeout, never resent', async function () {
    const ledger = new UpstreamLedger();
    const runtime = createMcpRuntime({ servers: { s: { command: process.execPath, args: [UPSTREAM_JS], env: { MCP_FIXTURE_LEDGER: ledger.file }, timeoutMs: 1_000 } } });
    try {
      const c = mcpCall('s/get_weather', { city: '__hang__' });
      assert.equal(await typeOf(runtime.execute(c)), 'RuntimeOutcomeUnknown');
      assert.equal(ledger.calls().length, 1);
      assert.ok(c.heartbeats.length >= 1, 'it heartbeats while it waits');
    } finally {
      await runtime.close();
    }
  });

  it('a retry after a worker died mid-call (its last heartbeat says calling) is RuntimeOutcomeUnknown and sends nothing', async function () {
    const ledger = new UpstreamLedger();
    const runtime = createMcpRuntime({ servers: { s: { command: process.execPath, args: [UPSTREAM_JS], env: { MCP_FIXTURE_LEDGER: ledger.file } } } });
    try {
      const retry = testCall({ runtime: 'mcp', target: 's/issue_refund', input: { orderId: 'A-1', amount: 30 }, connections: {}, attempt: 2, previous: { server: 's', tool: 'issue_refund', phase: 'calling' } });
      assert.equal(await typeOf(runtime.execute(retry)), 'RuntimeOutcomeUnknown');
      // One that died while still connecting sent nothing: it runs, and records that it was calling.
      const early = testCall({ runtime: 'mcp', target: 's/issue_refund', input: { orderId: 'A-2', amount: 5 }, connections: {}, attempt: 2, previous: { server: 's', tool: 'issue_refund', phase: 'connecting' } });
      assert.equal(await typeOf(runtime.execute(early)), 'resolved');
      assert.deepEqual(ledger.calls().map((c) => c.args), [{ orderId: 'A-2', amount: 5 }]);
      assert.ok(early.heartbeats.some((d) => (d as { phase?: string }).phase === 'calling'));
    } finally {
      await runtime.close();
    }
  });

  it('an answer over the size bound is refused RuntimeRejected, saying the tool ran', async function () {
    const runtime = createMcpRuntime({ servers: { s: { command: process.execPath, args: [UPSTREAM_JS] } } });
    try {
      const err = await runtime.execute(mcpCall('s/get_weather', { city: '__big__' })).then(() => undefined, (e: Error) => e);
      assert.equal(failureType(err), 'RuntimeRejected');
      assert.match(String(err?.message), new RegExp(`ran, but returned \\d+ bytes, more than ${MAX_MCP_OUTPUT_BYTES}`));
    } finally {
      await runtime.close();
    }
  });

  it('a servers file that is not JSON or not the schema stops the start with a ConfigError that names no env value', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-mcp-cfg-'));
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{ nope');
    assert.throws(() => loadConfig({ PORTARIUM_MCP_SERVERS: bad }), (e: unknown) => e instanceof ConfigError && /PORTARIUM_MCP_SERVERS/.test(e.message));
    const wrong = path.join(dir, 'wrong.json');
    fs.writeFileSync(wrong, JSON.stringify({ mcpServers: { 'a/b': { command: 'x' }, ok: { command: 'y', env: { TOKEN: 's3cr3t-value' }, extra: 1 } } }));
    assert.throws(() => loadConfig({ PORTARIUM_MCP_SERVERS: wrong }), (e: unknown) => e instanceof ConfigError && !e.message.includes('s3cr3t-value'));
    // A good file gives the worker its mcp runtime; without it there is none.
    const good = path.join(dir, 'good.json');
    fs.writeFileSync(good, JSON.stringify({ mcpServers: { shop: { command: process.execPath, args: [UPSTREAM_JS] } } }));
    const policies = loadPolicyDir(mcpPolicyDir());
    assert.ok(configuredRuntimes(loadConfig({ PORTARIUM_MCP_SERVERS: good, PORTARIUM_ECHO_LEDGER: 'memory' }), policies).some((r) => r.name === 'mcp'));
    assert.ok(!configuredRuntimes(loadConfig({ PORTARIUM_ECHO_LEDGER: 'memory' }), policies).some((r) => r.name === 'mcp'));
  });
});
