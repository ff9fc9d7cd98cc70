#!/usr/bin/env node
/**
 * Optional codec server, so operators can read payloads in the Temporal Web UI and CLI (off by
 * default: a separate process, `portarium codec-server` or `node dist/workers/codec/server.js`).
 * Temporal's codec server contract: `POST /encode` and `POST /decode` with
 * `{"payloads":[{"metadata":{"k":"<base64>"},"data":"<base64>"}]}`, the namespace in `X-Namespace`.
 *
 * Auth: a bearer token (`Authorization: Bearer <token>`), or the token as the first path segments
 * `/t/<token>/decode`, because the Web UI's codec endpoint setting can carry no header without OIDC.
 * Tokens are compared in constant time. A token from PORTARIUM_CODEC_TOKENS_FILE may be limited to
 * workspaces: it decodes no payload encrypted under another workspace's key. Binds 127.0.0.1 unless
 * told otherwise; CORS allows only the configured Web UI origins. Payloads and tokens are never logged.
 *
 * `/decode` answers per payload: one this token may not read, or that cannot be decoded, comes back
 * as it was (still encrypted) with `portarium-decode-refused: <code>: <why>` added to its metadata,
 * the others decoded. Only a key store that is down fails the whole request (503: retry).
 *
 * `/encode` has no workflow id: the Temporal CLI (checked with 1.9.1) and Web UI send only the
 * payloads and `X-Namespace`. So an unscoped token encodes under the system key (any run accepts it);
 * a token of one workspace under that workspace's key; a token of several under the system key
 * limited to its workspaces (`encryption-readers`, authenticated), so it reads its own signals back
 * and a token of fewer workspaces does not.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload } from '@temporalio/common';
import { z } from 'zod';
import { type PayloadKeyProvider, PayloadKeyError, SCOPE_PATTERN, SYSTEM_SCOPE } from './keys-port';
import { WorkspacePayloadCodec, keyScopeOf, readersOf } from './codec';
import { ConfigError, type PortariumConfig, loadConfig } from '../config';
import { payloadKeyProvider } from './data-converter';

const MAX_BODY = 4 * 1024 * 1024;

export interface CodecToken {
  token: string;
  /** Workspaces this token may decode; all when absent. */
  workspaces?: string[];
}

export interface CodecServerOptions {
  /** host:port. @default 127.0.0.1:8888 */
  address: string;
  tokens: CodecToken[];
  corsOrigins: string[];
  /** Only this namespace is served (a request naming another in X-Namespace is refused). */
  namespace: string;
  keys: PayloadKeyProvider;
}

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');
const BodySchema = z.strictObject({
  // protojson omits an empty list: the CLI sends `{}` for a call without arguments.
  payloads: z.array(z.object({ metadata: z.record(z.string(), base64).optional(), data: base64.optional() })).max(10_000).default([]),
});
const TokensFileSchema = z.strictObject({
  tokens: z.array(z.strictObject({ token: z.string().min(16, 'tokens have at least 16 characters'), workspaces: z.array(z.string().regex(SCOPE_PATTERN, 'expected a workspace id')).min(1).optional() })).min(1),
});

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The token that matches, compared in constant time against every configured one. */
function matchToken(given: string | undefined, tokens: CodecToken[]): CodecToken | undefined {
  if (!given) return undefined;
  const g = digest(given);
  let found: CodecToken | undefined;
  for (const t of tokens) if (timingSafeEqual(g, digest(t.token)) && !found) found = t;
  return found;
}

/** Tokens from the configuration: PORTARIUM_CODEC_TOKEN (all workspaces) and the tokens file. */
export function codecTokens(config: PortariumConfig): CodecToken[] {
  const tokens: CodecToken[] = [];
  const { token, tokensFile } = config.codecServer;
  if (token) {
    if (token.length < 16) throw new ConfigError('PORTARIUM_CODEC_TOKEN: at least 16 characters');
    tokens.push({ token });
  }
  if (tokensFile) {
    let json: unknown;
    try {
      if (fs.statSync(tokensFile).mode & 0o077) throw new ConfigError(`PORTARIUM_CODEC_TOKENS_FILE: ${tokensFile} is readable by other users; chmod 600 it`);
      json = JSON.parse(fs.readFileSync(tokensFile, 'utf8'));
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`PORTARIUM_CODEC_TOKENS_FILE: cannot read ${tokensFile} as JSON`);
    }
    const parsed = TokensFileSchema.safeParse(json);
    // Issues name the place only (never the value: it may be a token).
    if (!parsed.success) throw new ConfigError(`PORTARIUM_CODEC_TOKENS_FILE: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    tokens.push(...parsed.data.tokens);
  }
  if (!tokens.length) throw new ConfigError('the codec server needs a token: set PORTARIUM_CODEC_TOKEN or PORTARIUM_CODEC_TOKENS_FILE');
  return tokens;
}

const toWire = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});
const fromWire = (p: z.infer<typeof BodySchema>['payloads'][number]): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});

const STATUS: Record<PayloadKeyError['code'], number> = { wrong_workspace: 403, forbidden: 403, unknown_key: 422, tampered: 422, foreign_keyring: 422, malformed: 400, unavailable: 503 };

/** Metadata added to a payload `/decode` hands back undecoded: `<code>: <why>`. */
export const DECODE_REFUSED_METADATA = 'portarium-decode-refused';

export interface RunningCodecServer {
  url: string;
  close(): Promise<void>;
}

export async function startCodecServer(opts: CodecServerOptions): Promise<RunningCodecServer> {
  const codec = new WorkspacePayloadCodec(opts.keys);
  const server = http.createServer((req, res) => {
    void handle(req, res).catch(() => reply(res, 500, { message: 'codec server error' }));
  });

  function cors(req: http.IncomingMessage, res: http.ServerResponse): void {
    const origin = req.headers.origin;
    if (origin && opts.corsOrigins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      // Echo what an allowed origin asks for (UI versions add their own headers); the token still decides.
      const asked = String(req.headers['access-control-request-headers'] ?? '');
      res.setHeader('Access-Control-Allow-Headers', /^[A-Za-z0-9-]+(\s*,\s*[A-Za-z0-9-]+)*$/.test(asked) ? asked : 'content-type, x-namespace, authorization');
      res.setHeader('Vary', 'Origin');
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    cors(req, res);
    if (req.method === 'OPTIONS') return reply(res, 204);
    let segments: string[];
    try {
      segments = new URL(req.url ?? '/', 'http://codec').pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return reply(res, 400, { message: 'malformed path' });
    }
    let pathToken: string | undefined;
    if (segments[0] === 't' && segments.length >= 2) {
      pathToken = segments[1];
      segments.splice(0, 2);
    }
    const op = segments.pop();
    // The CLI's `--codec-endpoint 'http://host/{namespace}'` puts the namespace in front.
    const namespace = String(req.headers['x-namespace'] ?? segments[0] ?? opts.namespace);
    if (req.method !== 'POST' || (op !== 'encode' && op !== 'decode') || segments.length > 1) return reply(res, 404, { message: 'POST /encode or /decode' });
    const bearer = /^Bearer\s+(.+)$/i.exec(String(req.headers.authorization ?? ''))?.[1]?.trim();
    // A UI may forward its own OIDC bearer token: then the path token, if any, decides.
    const token = (bearer !== undefined ? matchToken(bearer, opts.tokens) : undefined) ?? (pathToken !== undefined ? matchToken(pathToken, opts.tokens) : undefined);
    if (!token) return reply(res, 401, { message: 'a valid codec token is required' }, { 'WWW-Authenticate': 'Bearer' });
    if (namespace !== opts.namespace) return reply(res, 404, { message: `namespace ${namespace} is not served here` });
    const text = await readBody(req);
    if (text === undefined) return reply(res, 413, { message: `body larger than ${MAX_BODY} bytes` });
    let parsed;
    try {
      parsed = BodySchema.safeParse(JSON.parse(text));
    } catch {
      return reply(res, 400, { message: 'body is not JSON' });
    }
    if (!parsed.success) return reply(res, 400, { message: `invalid body: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).slice(0, 5).join('; ')}` });
    const payloads = parsed.data.payloads.map(fromWire);
    try {
      // No serialization context reaches a codec server (only X-Namespace): decode trusts the key id,
      // checked against the token; encode follows the token's workspaces (see the header).
      const out = op === 'decode' ? await Promise.all(payloads.map((p) => decodeOne(codec, token, p))) : await encodeFor(codec, token, payloads);
      return reply(res, 200, { payloads: out.map(toWire) });
    } catch (err) {
      if (err instanceof PayloadKeyError) return reply(res, STATUS[err.code], { message: err.message, code: err.code });
      throw err;
    }
  }

  const [host, port] = splitAddress(opts.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * A token of exactly one workspace encodes under its key (that workspace's runs accept it, others
 * refuse it); an unscoped token under the system key; a token of several under the system key limited
 * to them.
 */
function encodeFor(codec: WorkspacePayloadCodec, token: CodecToken, payloads: Payload[]): Promise<Payload[]> {
  const ws = token.workspaces;
  if (ws?.length === 1) return codec.encodeUnder(payloads, ws[0]);
  return codec.encodeUnder(payloads, SYSTEM_SCOPE, ws);
}

/** Whether `token` may read `p`: its own workspaces, and system-keyed payloads limited to some of them. */
function mayRead(token: CodecToken, p: Payload): boolean {
  const scope = keyScopeOf(p);
  if (!token.workspaces || scope === undefined || token.workspaces.includes(scope)) return true;
  // An unlimited system-keyed payload (an unscoped token's signal) may concern any workspace.
  const readers = scope === SYSTEM_SCOPE ? readersOf(p) : undefined;
  return !!readers && readers.every((r) => token.workspaces!.includes(r));
}

/** One payload decoded, or handed back as it was with why (a key store that is down throws: retry the request). */
async function decodeOne(codec: WorkspacePayloadCodec, token: CodecToken, p: Payload): Promise<Payload> {
  try {
    if (!mayRead(token, p)) {
      const scope = keyScopeOf(p);
      throw new PayloadKeyError('forbidden', `this token may not decode payloads of ${scope === SYSTEM_SCOPE ? 'the system key' : `workspace ${scope}`}`);
    }
    return (await codec.decode([p]))[0];
  } catch (err) {
    if (!(err instanceof PayloadKeyError) || err.code === 'unavailable') throw err;
    return { metadata: { ...p.metadata, [DECODE_REFUSED_METADATA]: Buffer.from(`${err.code}: ${err.message}`.slice(0, 500)) }, data: p.data };
  }
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1))];
}

function reply(res: http.ServerResponse, status: number, body?: object, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...(body && { 'content-type': 'application/json' }), ...headers });
  res.end(body ? JSON.stringify(body) : undefined);
}

async function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The configured codec server (keys of the configured provider); resolves when it is listening. */
export async function startConfiguredCodecServer(config: PortariumConfig, address = config.codecServer.address): Promise<RunningCodecServer & { keys: PayloadKeyProvider }> {
  const keys = payloadKeyProvider(config, { create: false });
  if (!keys) throw new ConfigError('PORTARIUM_PAYLOAD_ENCRYPTION is off: there is nothing for a codec server to decode');
  const server = await startCodecServer({ address, tokens: codecTokens(config), corsOrigins: config.codecServer.corsOrigins, namespace: config.temporal.namespace, keys });
  return { ...server, keys };
}

if (require.main === module) {
  startConfiguredCodecServer(loadConfig())
    .then((server) => {
      console.log(`portarium codec server pid=${process.pid} listening ${server.url}`);
      const stop = () => void server.close().then(() => server.keys.close()).then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    })
    .catch((err: Error) => {
      console.error(`portarium codec server failed: ${err.message}`);
      process.exit(err instanceof ConfigError ? 2 : 1);
    });
}
