#!/usr/bin/env node
/**
 * `portarium-mcp-proxy`: an MCP server over stdio that an agent host starts in front of another MCP
 * server. It lists the upstream's tools as they are, and turns each `tools/call` into a governed run
 * (runtime `mcp`, target `<server>/<tool>`): policy decides the tier, a person may have to approve,
 * and the tool runs in the worker's `mcp` runtime (activities/runtimes/mcp.ts), never here. The host
 * gets the tool's result, or `isError` with a line the model reads (denied, rejected with the
 * reviewer's rationale, still waiting with the run id to resume from).
 *
 *   portarium-mcp-proxy --workspace W --principal ID [--roles a,b] --server NAME [--wait 50s]
 *                       [--correlation-id C] [--await-tool] [-- upstream-command args...]
 *
 * Without `-- command`, the upstream is the server NAME of the PORTARIUM_MCP_SERVERS file (the one
 * the worker uses). Temporal and policies come from the usual TEMPORAL_* and PORTARIUM_* variables.
 * Stdout is the protocol: every log line goes to stderr.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type ListToolsResult,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { MCP_RUNTIME, MCP_SERVER_NAME, type McpServerConfig } from '../../activities/runtimes/mcp';
import { PortariumClient } from '../client';
import { type PortariumConfig, loadConfig } from '../config';
import { WORKSPACE_ID_PATTERN } from '../../workflows/ids';
import { principalSchema } from '../../workflows/schemas';
import { normalizePrincipalId } from '../../workflows/run/signatures';
import type { Principal } from '../../workflows/types';
import { type GovernedAgent, type GovernedToolOutcome, callGovernedTool, outcomeText, resumeGovernedTool } from './governed-tool';

/** `_meta` key of a host's own id for a tool call: the same id on a retry finds the same run. */
export const MCP_CALL_ID_META = 'portarium/toolCallId';
/** `_meta` key of a per-call correlation id (the host's conversation), overriding the proxy's. */
export const MCP_CORRELATION_META = 'portarium/correlationId';
/** `_meta` keys of every answer: the run's workflow id and the outcome's status. */
export const MCP_WORKFLOW_META = 'portarium/workflowId';
export const MCP_STATUS_META = 'portarium/status';
/** The proxy's own tool (with `--await-tool`): wait again for a call that answered pending, by its run id. */
export const AWAIT_TOOL = 'portarium_await_run';
/** One call blocks this long before it answers "pending": under the SDK clients' default 60 s request timeout. */
const DEFAULT_WAIT_MS = 50_000;
/** While waiting, a progress notification this often (when the host asked for progress). */
const PROGRESS_EVERY_MS = 5_000;

export interface McpProxyOptions {
  agent: GovernedAgent;
  /** The upstream's name in targets (`<server>/<tool>`); the worker's `mcp` runtime knows it by this name. */
  server: string;
  /** How to start the upstream, to list its tools. */
  upstream: McpServerConfig;
  /** The agent run or session; default one per proxy process. */
  correlationId?: string;
  /** How long one call waits for its outcome before it answers pending. @default 50 s */
  waitMs?: number;
  log?: (line: string) => void;
  /**
   * Add the tool `portarium_await_run` ({workflowId}) to the upstream's: the model resumes a call that
   * answered pending, for hosts that send no call id of their own. @default false
   */
  awaitTool?: boolean;
}

const callIdSchema = z.string().min(1).max(256);
const awaitArgsSchema = z.strictObject({ workflowId: z.string().min(1).max(1000) });
const awaitToolSpec = {
  name: AWAIT_TOOL,
  description: 'Wait again for a tool call that answered that it is waiting for approval, by the run id it gave. Returns the tool\'s result once approved, or why it did not run.',
  inputSchema: { type: 'object' as const, properties: { workflowId: { type: 'string', description: 'the run id from the waiting answer' } }, required: ['workflowId'], additionalProperties: false },
};
const text = (t: string): CallToolResult['content'] => [{ type: 'text', text: t }];

/** The MCP answer for an outcome: the tool's own result, or `isError` with what the model reads. */
export function toolResultOf(o: GovernedToolOutcome): CallToolResult {
  const _meta = { [MCP_WORKFLOW_META]: o.workflowId, [MCP_STATUS_META]: o.status };
  if (o.status !== 'succeeded') return { content: text(outcomeText(o)), isError: true, _meta };
  const out = o.output as { content?: unknown; structuredContent?: unknown } | null;
  // The mcp runtime's output is the tool's result; anything else (a manual completion) reads as JSON.
  if (out && typeof out === 'object' && Array.isArray(out.content)) {
    return { content: out.content as CallToolResult['content'], ...(out.structuredContent !== undefined && { structuredContent: out.structuredContent as Record<string, unknown> }), _meta };
  }
  return { content: text(JSON.stringify(o.output)), _meta };
}

/** Start the proxy on `transport` (stdio in the bin). Resolves once it serves; `close()` stops it and the upstream. */
export async function startMcpProxy(opts: McpProxyOptions, transport = new StdioServerTransport()): Promise<{ server: Server; close(): Promise<void> }> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const correlationId = opts.correlationId ?? `mcp-${randomUUID()}`;
  const session = randomUUID();
  const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
  const server = new Server({ name: 'portarium-mcp-proxy', version: '1' }, { capabilities: { tools: { listChanged: true } } });

  // The upstream serves only tools/list here; started now so a broken command shows at once, again after it died.
  let upstream: Promise<Client> | undefined;
  const connectUpstream = (): Promise<Client> => {
    if (upstream) return upstream;
    const started = (async () => {
      const u = opts.upstream;
      const client = new Client({ name: 'portarium-mcp-proxy', version: '1' }, { capabilities: {} });
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => server.sendToolListChanged().catch(() => undefined));
      client.onclose = () => {
        if (upstream === started) upstream = undefined;
      };
      await client.connect(new StdioClientTransport({ command: u.command, args: u.args, env: u.env, cwd: u.cwd, stderr: 'inherit' }));
      return client;
    })();
    upstream = started;
    started.catch(() => {
      if (upstream === started) upstream = undefined;
    });
    return started;
  };
  await connectUpstream();

  server.setRequestHandler(ListToolsRequestSchema, async (req): Promise<ListToolsResult> => {
    const listed = await (await connectUpstream()).listTools(req.params);
    const own = opts.awaitTool && !listed.nextCursor ? [awaitToolSpec] : [];
    return { tools: [...listed.tools.filter((t) => !(opts.awaitTool && t.name === AWAIT_TOOL)), ...own], ...(listed.nextCursor && { nextCursor: listed.nextCursor }) };
  });

  type Extra = Parameters<Parameters<typeof server.setRequestHandler>[1]>[1];
  /** Keep waiting in short steps until the deadline (progress for hosts that asked), or the host gave up. */
  async function waitOn(first: GovernedToolOutcome, meta: Record<string, unknown>, extra: Extra, deadline: number): Promise<GovernedToolOutcome> {
    let out = first;
    const progressToken = meta.progressToken as string | number | undefined;
    for (let n = 1; out.status === 'pending' && Date.now() < deadline && !extra.signal.aborted; n++) {
      if (progressToken !== undefined) {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: n, message: `waiting for approval (run ${out.workflowId})` } }).catch(() => undefined);
      }
      out = await resumeGovernedTool(opts.agent.client, out.workflowId, Math.min(PROGRESS_EVERY_MS, Math.max(0, deadline - Date.now())));
    }
    return out;
  }

  /** The answer, telling the model how to resume a pending call when it can. */
  const answer = (o: GovernedToolOutcome): CallToolResult => {
    const r = toolResultOf(o);
    if (o.status === 'pending' && opts.awaitTool) r.content = text(`${outcomeText(o)} Call ${AWAIT_TOOL} with {"workflowId": ${JSON.stringify(o.workflowId)}} later for its result.`);
    return r;
  };

  /** `portarium_await_run`: only this agent's own mcp calls on this server, in this workspace. */
  async function awaitRun(args: unknown, meta: Record<string, unknown>, extra: Extra): Promise<CallToolResult> {
    const parsed = awaitArgsSchema.safeParse(args);
    const refuse = (why: string): CallToolResult => ({ content: text(`${AWAIT_TOOL} refused: ${why}.`), isError: true });
    if (!parsed.success) return refuse('expected {"workflowId": "<run id from the waiting answer>"}');
    const { workflowId } = parsed.data;
    if (!workflowId.startsWith(`${opts.agent.workspaceId}:`)) return refuse('not a run of this workspace');
    let st;
    try {
      st = await opts.agent.client.run(workflowId).status();
    } catch {
      return refuse(`no run ${workflowId} can be read`);
    }
    const mine = st.workspaceId === opts.agent.workspaceId && st.requestedBy === normalizePrincipalId(opts.agent.principal.id) && st.action.runtime === MCP_RUNTIME && st.action.target.startsWith(`${opts.server}/`);
    // The same answer for a run that is not ours as for one that does not exist: nothing about it leaks.
    if (!mine) return refuse(`no run ${workflowId} can be read`);
    const first = await resumeGovernedTool(opts.agent.client, workflowId, Math.min(PROGRESS_EVERY_MS, waitMs));
    return answer(await waitOn(first, meta, extra, Date.now() + waitMs));
  }

  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const name = req.params.name;
    const meta = (req.params._meta ?? {}) as Record<string, unknown>;
    const givenId = meta[MCP_CALL_ID_META];
    const givenCorrelation = meta[MCP_CORRELATION_META];
    if ((givenId !== undefined && !callIdSchema.safeParse(givenId).success) || (givenCorrelation !== undefined && !callIdSchema.safeParse(givenCorrelation).success)) {
      return { content: text(`Tool call refused: _meta ${MCP_CALL_ID_META} and ${MCP_CORRELATION_META} must be strings of 1 to 256 characters. It did not run.`), isError: true };
    }
    if (opts.awaitTool && name === AWAIT_TOOL) {
      try {
        return await awaitRun(req.params.arguments, meta, extra);
      } catch (err) {
        return { content: text(`${AWAIT_TOOL} failed: ${(err instanceof Error ? err.message : String(err)).slice(0, 1000)}`), isError: true };
      }
    }
    const corr = (givenCorrelation as string | undefined) ?? correlationId;
    // Without the host's id, the JSON-RPC request id, which is only unique within this session: a
    // random session id (never configurable) keeps a restarted host from reading an old run.
    const toolCallId = (givenId as string | undefined) ?? `${session}#${String(extra.requestId)}`;
    const spec = { name, parameters: {}, runtime: MCP_RUNTIME, target: `${opts.server}/${name}` };
    try {
      const deadline = Date.now() + waitMs;
      const first = await callGovernedTool({ ...opts.agent, waitMs: Math.min(PROGRESS_EVERY_MS, waitMs) }, spec, req.params.arguments ?? {}, { toolCallId, correlationId: corr });
      const out = await waitOn(first, meta, extra, deadline);
      log(`portarium-mcp-proxy: ${name} (${toolCallId}) -> ${out.status} ${out.workflowId}`);
      return answer(out);
    } catch (err) {
      // Refused at the start (another call under this id, invalid input) or unreadable (Temporal unreachable).
      const msg = (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 1000);
      log(`portarium-mcp-proxy: ${name} (${toolCallId}) no outcome: ${msg}`);
      return { content: text(`Tool call could not be started or its outcome read: ${msg}`), isError: true };
    }
  });

  await server.connect(transport);
  return {
    server,
    async close() {
      await server.close().catch(() => undefined);
      const u = upstream;
      upstream = undefined;
      await u?.then((c) => c.close()).catch(() => undefined);
    },
  };
}

const PROXY_ENV = ['PORTARIUM_MCP_WORKSPACE', 'PORTARIUM_MCP_PRINCIPAL', 'PORTARIUM_MCP_ROLES', 'PORTARIUM_MCP_SERVER', 'PORTARIUM_MCP_CORRELATION_ID', 'PORTARIUM_MCP_WAIT', 'PORTARIUM_MCP_AWAIT_TOOL'] as const;

function durationMs(d: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d.trim());
  if (!m) throw new Error(`--wait: expected e.g. 500ms, 50s, 5m (given ${JSON.stringify(d)})`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

/** The proxy's settings from flags, then PORTARIUM_MCP_* variables; the rest of `env` is the usual configuration. */
export function proxySettings(argv: string[], env: NodeJS.ProcessEnv): { config: PortariumConfig; options: Omit<McpProxyOptions, 'agent'> & { workspaceId: string; principal: Principal } } {
  const dash = argv.indexOf('--');
  const { values } = parseArgs({
    args: dash >= 0 ? argv.slice(0, dash) : argv,
    options: {
      workspace: { type: 'string' },
      principal: { type: 'string' },
      roles: { type: 'string' },
      server: { type: 'string' },
      'correlation-id': { type: 'string' },
      wait: { type: 'string' },
      'await-tool': { type: 'boolean' },
    },
    strict: true,
  });
  const rest: NodeJS.ProcessEnv = { ...env };
  for (const k of PROXY_ENV) delete rest[k];
  const config = loadConfig(rest);
  const workspaceId = values.workspace ?? env.PORTARIUM_MCP_WORKSPACE;
  const server = values.server ?? env.PORTARIUM_MCP_SERVER;
  if (!workspaceId || !WORKSPACE_ID_PATTERN.test(workspaceId)) throw new Error('--workspace (or PORTARIUM_MCP_WORKSPACE): a workspace id is required');
  if (!server || !MCP_SERVER_NAME.test(server)) throw new Error('--server (or PORTARIUM_MCP_SERVER): the upstream\'s name in the worker\'s mcp runtime is required (letters, digits, . _ -)');
  const roles = (values.roles ?? env.PORTARIUM_MCP_ROLES ?? '').split(',').map((r) => r.trim()).filter(Boolean);
  const principal: Principal = principalSchema().parse({ id: values.principal ?? env.PORTARIUM_MCP_PRINCIPAL, roles });
  const upstream: McpServerConfig | undefined = dash >= 0 && argv[dash + 1] ? { command: argv[dash + 1], args: argv.slice(dash + 2) } : config.mcpServers?.[server];
  if (!upstream) throw new Error(`no upstream: give its command after --, or name a server of the PORTARIUM_MCP_SERVERS file (${server} is not in it)`);
  const correlationId = values['correlation-id'] ?? env.PORTARIUM_MCP_CORRELATION_ID;
  if (correlationId !== undefined && !callIdSchema.safeParse(correlationId).success) throw new Error('--correlation-id: 1 to 256 characters');
  return {
    config,
    options: {
      workspaceId,
      principal,
      server,
      upstream,
      correlationId,
      waitMs: durationMs(values.wait ?? env.PORTARIUM_MCP_WAIT ?? `${DEFAULT_WAIT_MS}ms`),
      awaitTool: values['await-tool'] ?? ['1', 'true'].includes(env.PORTARIUM_MCP_AWAIT_TOOL ?? ''),
    },
  };
}

/** The bin: connect to Temporal, serve on stdio until the host closes it. */
export async function main(argv = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const { config, options } = proxySettings(argv, env);
  const { workspaceId, principal, ...rest } = options;
  const client = await PortariumClient.connect(config);
  const proxy = await startMcpProxy({ agent: { client, workspaceId, principal }, ...rest });
  process.stderr.write(`portarium-mcp-proxy pid=${process.pid} serving ${rest.server} for ${principal.id} in ${workspaceId} (Temporal ${config.temporal.address})\n`);
  // The host closing our stdin (the SDK's transport does not watch for its end) or a signal ends the
  // session: stop the upstream and go, or the open Temporal connection would keep an orphan alive.
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void proxy.close().finally(() => process.exit(0));
  };
  proxy.server.onclose = stop;
  process.stdin.once('end', stop);
  process.stdin.once('close', stop);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, stop);
}

if (require.main === module) {
  // Stdout is the protocol: nothing else may print there.
  console.log = console.info = console.debug = console.error;
  main().catch((err) => {
    process.stderr.write(`portarium-mcp-proxy failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
