/**
 * The `mcp` runtime: an approved action `<server>/<tool>` is a `tools/call` on an MCP server the worker
 * starts over stdio (its command from the worker's configuration), inside the governed run's dispatch
 * activity, so the approval and the call are one run whose evidence holds the exact arguments and the
 * output. One client per server, started on first use and again after it died; `close()` stops them.
 * Failures: a tool's `isError` result, or an error the server answers, is `RuntimeRejected` (the model
 * reads the text); a server that cannot be started or reached before the request went out is
 * `RuntimeUnavailable` (retried); a request that went out and got no answer (the server died, timed
 * out) is `RuntimeOutcomeUnknown`: MCP has no way to look a call up, so it is never resent.
 * The SDK is an optional peer dependency, loaded on the first call, so a worker without it still starts.
 */
import { z } from 'zod';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { runtimeOutcomeUnknown, runtimeRejected, runtimeUnavailable } from '../../workflows/failures';
import type { JsonValue } from '../../workflows/types';
import type { RuntimeAdapter, RuntimeCall, RuntimeOutcome } from './port';

export const MCP_RUNTIME = 'mcp';
/** Largest tool result kept, as JSON bytes (it is stored in the run's result and evidence references). */
export const MAX_MCP_OUTPUT_BYTES = 256 * 1024;
/** Where the dispatch id goes in the request's `_meta`, so a server can tell retries of one dispatch apart. */
export const MCP_DISPATCH_META = 'portarium/dispatchId';
const DEFAULT_CALL_TIMEOUT_MS = 10 * 60_000;
const CONNECT_TIMEOUT_MS = 30_000;
const HEARTBEAT_MS = 2_000;

/** How to start one MCP server: the `mcpServers` entry of agent hosts' configuration files. */
export const mcpServerSchema = z.strictObject({
  command: z.string().min(1).max(4096),
  args: z.array(z.string().max(4096)).max(256).optional(),
  /** Added to the SDK's short default environment (PATH, HOME, ...); the worker's own is not passed on. */
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().max(32_768)).optional(),
  cwd: z.string().min(1).max(4096).optional(),
  /** How long one `tools/call` may take, reset by the server's progress notifications. @default 10 min */
  timeoutMs: z.number().int().min(1_000).max(7 * 24 * 3_600_000).optional(),
});
export type McpServerConfig = z.infer<typeof mcpServerSchema>;
/** Server names are the first part of a target (`<server>/<tool>`), so they hold no `/`. */
export const MCP_SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const mcpServersSchema = z.record(z.string().regex(MCP_SERVER_NAME, 'expected a server name without /'), mcpServerSchema);
/** A servers file: `{"mcpServers": {"<name>": {"command", "args", "env", "cwd"}}}`. */
export const mcpServersFileSchema = z.strictObject({ mcpServers: mcpServersSchema });

export interface McpRuntimeOptions {
  servers: Record<string, McpServerConfig>;
  /** @default 'mcp' */
  name?: string;
}

/** The runtime, plus `close()`: stops the servers it started (call it when the worker stops). */
export interface McpRuntime extends RuntimeAdapter {
  close(): Promise<void>;
}

/** What the runtime heartbeats: `calling` once the call may have gone out. */
interface McpHeartbeat {
  server: string;
  tool: string;
  phase: 'connecting' | 'calling';
}

interface Connection {
  client: Client;
  transport: StdioClientTransport;
  /** Dispatch ids whose request was handed to the server's stdin. */
  sent: Set<string>;
}

type Sdk = {
  Client: typeof import('@modelcontextprotocol/sdk/client/index.js').Client;
  StdioClientTransport: typeof import('@modelcontextprotocol/sdk/client/stdio.js').StdioClientTransport;
  McpError: typeof import('@modelcontextprotocol/sdk/types.js').McpError;
  ErrorCode: typeof import('@modelcontextprotocol/sdk/types.js').ErrorCode;
};
let sdk: Promise<Sdk> | undefined;
function loadSdk(): Promise<Sdk> {
  sdk ??= Promise.all([
    import('@modelcontextprotocol/sdk/client/index.js'),
    import('@modelcontextprotocol/sdk/client/stdio.js'),
    import('@modelcontextprotocol/sdk/types.js'),
  ]).then(([c, s, t]) => ({ Client: c.Client, StdioClientTransport: s.StdioClientTransport, McpError: t.McpError, ErrorCode: t.ErrorCode }));
  sdk.catch(() => (sdk = undefined));
  return sdk;
}

const clip = (s: string, n = 1000) => (s.length > n ? `${s.slice(0, n)}...` : s);
const messageOf = (err: unknown) => clip(err instanceof Error ? err.message : String(err));

/** The text parts of a tool result, what the model reads when it is an error. */
function resultText(content: unknown): string {
  const parts = Array.isArray(content) ? content : [];
  const text = parts.filter((p): p is { type: 'text'; text: string } => p?.type === 'text' && typeof p.text === 'string').map((p) => p.text).join('\n');
  return clip(text || '(no text)');
}

function boundedOutput(target: string, value: unknown): JsonValue {
  const text = JSON.stringify(value);
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_MCP_OUTPUT_BYTES) throw runtimeRejected(`tool ${target} ran, but returned ${bytes} bytes, more than ${MAX_MCP_OUTPUT_BYTES}; the result is not kept`);
  return JSON.parse(text) as JsonValue;
}

export function createMcpRuntime(options: McpRuntimeOptions): McpRuntime {
  const name = options.name ?? MCP_RUNTIME;
  const servers = mcpServersSchema.parse(options.servers);
  const connections = new Map<string, Promise<Connection>>();
  let closed = false;

  function connect(server: string, cfg: McpServerConfig, lib: Sdk): Promise<Connection> {
    const existing = connections.get(server);
    if (existing) return existing;
    const started = (async () => {
      const transport = new lib.StdioClientTransport({ command: cfg.command, args: cfg.args, env: cfg.env, cwd: cfg.cwd, stderr: 'inherit' });
      const sent = new Set<string>();
      // Marks a call as sent before its bytes are written: a send that fails threw before writing.
      const send = transport.send.bind(transport);
      transport.send = async (message) => {
        const params = (message as { method?: string; params?: { _meta?: Record<string, unknown> } }).params;
        const marker = (message as { method?: string }).method === 'tools/call' ? params?._meta?.[MCP_DISPATCH_META] : undefined;
        if (typeof marker === 'string') sent.add(marker);
        try {
          await send(message);
        } catch (err) {
          if (typeof marker === 'string') sent.delete(marker);
          throw err;
        }
      };
      const client = new lib.Client({ name: 'portarium-worker', version: '1' }, { capabilities: {} });
      // A server that exits is started again on the next call.
      client.onclose = () => {
        if (connections.get(server) === started) connections.delete(server);
      };
      try {
        await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS });
      } catch (err) {
        await transport.close().catch(() => undefined);
        throw err;
      }
      return { client, transport, sent };
    })();
    connections.set(server, started);
    started.catch(() => {
      if (connections.get(server) === started) connections.delete(server);
    });
    return started;
  }

  async function callTool(call: RuntimeCall, server: string, tool: string, cfg: McpServerConfig, calling: () => void): Promise<RuntimeOutcome> {
    const { target, input } = call.request;
    let lib: Sdk;
    try {
      lib = await loadSdk();
    } catch (err) {
      throw runtimeRejected(`the ${name} runtime needs the @modelcontextprotocol/sdk package on this worker: ${messageOf(err)}`);
    }
    if (closed) throw runtimeUnavailable(`the ${name} runtime of this worker is shut down`);
    let conn: Connection;
    try {
      conn = await connect(server, cfg, lib);
    } catch (err) {
      throw runtimeUnavailable(`MCP server ${server} could not be started or did not answer initialize: ${messageOf(err)}`);
    }
    const marker = call.dispatchId;
    // Recorded before the call goes out: a retry after this worker died mid-call must not send it again.
    calling();
    let result: Awaited<ReturnType<Client['callTool']>>;
    try {
      result = await conn.client.callTool(
        { name: tool, arguments: input as Record<string, unknown>, _meta: { [MCP_DISPATCH_META]: marker } },
        undefined,
        { signal: call.signal, timeout: cfg.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS, resetTimeoutOnProgress: true },
      );
    } catch (err) {
      const wasSent = conn.sent.has(marker);
      if (!wasSent) throw runtimeUnavailable(`MCP server ${server} could not be sent the call: ${messageOf(err)}`);
      const code = err instanceof lib.McpError ? err.code : undefined;
      // The server answered with an error: it refused or failed the call; resending would not help.
      if (code !== undefined && code !== lib.ErrorCode.ConnectionClosed && code !== lib.ErrorCode.RequestTimeout) {
        throw runtimeRejected(`MCP server ${server} refused ${tool}: ${messageOf(err)}`);
      }
      throw runtimeOutcomeUnknown(`MCP server ${server} got the call of ${tool} but gave no answer (${messageOf(err)}); it may have run: check before deciding again`);
    } finally {
      conn.sent.delete(marker);
    }
    if (result.isError) throw runtimeRejected(`tool ${target} failed: ${resultText(result.content)}`);
    const output = { content: result.content ?? [], ...(result.structuredContent !== undefined && { structuredContent: result.structuredContent }) };
    return { output: boundedOutput(target, output), externalRef: `${name}:${server}:${call.dispatchId.slice(0, 16)}` };
  }

  return {
    name,
    async execute(call: RuntimeCall): Promise<RuntimeOutcome> {
      const { target } = call.request;
      const slash = target.indexOf('/');
      const server = slash > 0 ? target.slice(0, slash) : '';
      const tool = target.slice(slash + 1);
      const cfg = Object.hasOwn(servers, server) ? servers[server] : undefined;
      if (!cfg || !tool) throw runtimeRejected(`target ${clip(target, 200)} names no MCP server of the ${name} runtime on this worker (expected <server>/<tool>; servers: ${Object.keys(servers).join(', ') || 'none'})`);
      // An earlier attempt of this dispatch may have sent the call (its worker died waiting): never resend.
      if ((call.previous as Partial<McpHeartbeat> | undefined)?.phase === 'calling') {
        throw runtimeOutcomeUnknown(`an earlier attempt sent the call of ${tool} to MCP server ${server} and got no answer; it may have run: check before deciding again`);
      }
      // The server may take long; the dispatch activity's heartbeat timeout is seconds.
      const state: McpHeartbeat = { server, tool, phase: 'connecting' };
      const beat = () => call.heartbeat({ ...state });
      const timer = setInterval(beat, HEARTBEAT_MS);
      try {
        beat();
        return await callTool(call, server, tool, cfg, () => {
          state.phase = 'calling';
          beat();
        });
      } finally {
        clearInterval(timer);
      }
    },
    async close() {
      closed = true;
      const all = [...connections.values()];
      connections.clear();
      await Promise.all(all.map((p) => p.then((c) => c.client.close(), () => undefined).catch(() => undefined)));
    },
  };
}
