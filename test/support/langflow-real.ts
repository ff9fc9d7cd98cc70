/**
 * A real Langflow server for the real-server suites: `langflow run` from the pinned install in
 * .tools/langflow, on a free 127.0.0.1 port, with a SQLite database and config in a temporary folder,
 * login required (no auto-login), a superuser, a fresh Fernet secret key, no telemetry and no starter
 * projects. `apiKey` and `flow` use Langflow's own API the way a person would through the UI: log in,
 * create an API key, save a flow.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort } from './dev-server';
import { type ServerProcess, baseEnv, langflowBinary, startProcess, tempDir, waitUntil } from './real-servers';

const SUPERUSER = 'portarium-admin';

/** One node of a flow: a component template from `/api/v1/all`, placed under an id. */
interface FlowNode {
  id: string;
  type: 'genericNode';
  position: { x: number; y: number };
  data: { id: string; type: string; node: Record<string, unknown> };
}

export class RealLangflow {
  private accessToken = '';

  private constructor(
    readonly url: string,
    readonly port: number,
    readonly proc: ServerProcess,
    private readonly dir: string,
    private readonly password: string,
  ) {}

  /** Start and wait for `/health_check` (the first start loads every component: allow minutes). */
  static async start(readyTimeoutMs = 240_000): Promise<RealLangflow> {
    const dir = tempDir('portarium-langflow-');
    const port = await freePort();
    const password = randomBytes(18).toString('base64url');
    const env = {
      ...baseEnv(dir),
      LANGFLOW_AUTO_LOGIN: 'false',
      LANGFLOW_SUPERUSER: SUPERUSER,
      LANGFLOW_SUPERUSER_PASSWORD: password,
      // A Fernet key: 32 random bytes, URL-safe base64.
      LANGFLOW_SECRET_KEY: randomBytes(32).toString('base64url') + '=',
      LANGFLOW_DATABASE_URL: `sqlite:///${path.join(dir, 'langflow.db')}`,
      LANGFLOW_CONFIG_DIR: path.join(dir, 'config'),
      LANGFLOW_CREATE_STARTER_PROJECTS: 'false',
      LANGFLOW_UPDATE_STARTER_PROJECTS: 'false',
      LANGFLOW_MCP_SERVER_ENABLED: 'false',
      LANGFLOW_STORE: 'false',
      LANGFLOW_OPEN_BROWSER: 'false',
      DO_NOT_TRACK: 'true',
      LANGFLOW_DO_NOT_TRACK: 'true',
    };
    const args = ['run', '--host', '127.0.0.1', '--port', String(port), '--workers', '1', '--backend-only', '--no-open-browser', '--log-level', 'warning'];
    const proc = startProcess('langflow', langflowBinary(), args, env, dir);
    const lf = new RealLangflow(`http://127.0.0.1:${port}`, port, proc, dir, password);
    try {
      await waitUntil(proc, 'answer on /health_check', readyTimeoutMs, async () => (await fetch(`${lf.url}/health_check`, { signal: AbortSignal.timeout(5000) })).status === 200);
      await lf.login();
    } catch (err) {
      await lf.stop();
      throw err;
    }
    return lf;
  }

  /** A call with the superuser's bearer token; throws unless 2xx. */
  async api(method: string, apiPath: string, body?: unknown): Promise<any> { // Langflow JSON, read per test
    const res = await fetch(`${this.url}${apiPath}`, {
      method,
      headers: { authorization: `Bearer ${this.accessToken}`, 'content-type': 'application/json', accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`langflow ${method} ${apiPath} answered ${res.status}: ${text.slice(0, 2000)}`);
    return text ? JSON.parse(text) : undefined;
  }

  /** `POST /api/v1/login` (OAuth2 password form) as the superuser. */
  private async login(): Promise<void> {
    const res = await fetch(`${this.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: SUPERUSER, password: this.password }).toString(),
      signal: AbortSignal.timeout(30_000),
    });
    if (res.status !== 200) throw new Error(`langflow login answered ${res.status}: ${await res.text()}`);
    this.accessToken = ((await res.json()) as { access_token: string }).access_token;
  }

  /** A new API key of the superuser (`POST /api/v1/api_key/`); the only time Langflow shows it. */
  async createApiKey(name: string): Promise<string> {
    return (await this.api('POST', '/api/v1/api_key/', { name })).api_key as string;
  }

  /** A component's template as the server describes it (`GET /api/v1/all`, by type name). */
  async component(type: string): Promise<Record<string, unknown>> {
    const all = (await this.api('GET', '/api/v1/all')) as Record<string, Record<string, Record<string, unknown>>>;
    for (const category of Object.values(all)) if (category[type]) return category[type];
    throw new Error(`langflow has no component ${type}`);
  }

  /**
   * Saves an echo flow, ChatInput -> ChatOutput with no model, built from the server's own component
   * templates in Langflow's flow JSON (the format of its starter projects); returns the flow id.
   */
  async createEchoFlow(name: string, endpointName?: string): Promise<string> {
    const node = async (type: string, id: string, x: number): Promise<FlowNode> => ({ id, type: 'genericNode', position: { x, y: 0 }, data: { id, type, node: await this.component(type) } });
    const input = await node('ChatInput', 'ChatInput-pRt01', 0);
    const output = await node('ChatOutput', 'ChatOutput-pRt02', 400);
    const sourceHandle = { dataType: 'ChatInput', id: input.id, name: 'message', output_types: ['Message'] };
    const inputTypes = ((output.data.node.template as Record<string, { input_types?: string[] }>).input_value?.input_types ?? ['Message']);
    const targetHandle = { fieldName: 'input_value', id: output.id, inputTypes, type: 'str' };
    // The UI's handle strings: the JSON with œ for each double quote.
    const handle = (h: object) => JSON.stringify(h).replace(/"/g, 'œ');
    const edge = {
      id: `reactflow__edge-${input.id}${handle(sourceHandle)}-${output.id}${handle(targetHandle)}`,
      source: input.id,
      target: output.id,
      sourceHandle: handle(sourceHandle),
      targetHandle: handle(targetHandle),
      data: { sourceHandle, targetHandle },
    };
    const flow = await this.api('POST', '/api/v1/flows/', {
      name,
      description: 'portarium real-server suite: echoes its input',
      data: { nodes: [input, output], edges: [edge], viewport: { x: 0, y: 0, zoom: 1 } },
      ...(endpointName && { endpoint_name: endpointName }),
    });
    return flow.id as string;
  }

  async stop(): Promise<void> {
    await this.proc.stop(15_000);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
