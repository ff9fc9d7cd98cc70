/**
 * The one outbound HTTP client every runtime adapter uses. For each call it enforces the workspace's
 * per-runtime host allow-list (default deny), refuses link-local and metadata addresses (also after DNS,
 * so a name cannot resolve its way past the guard), follows redirects only to the same host, caps the
 * response size, and tells the adapter whether a failed request may have reached the server.
 */
import { promises as dns } from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import axios, { type AxiosResponse } from 'axios';
import type { EgressRule } from '../../policies/connections';
import { FailureType, refusal, runtimeRejected } from '../../workflows/failures';
import { allowListAdmits, hostKey } from '../../policies/egress';
import { blockedAddress, blockedName, isAddress } from './egress';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method: HttpMethod;
  url: string;
  headers?: Record<string, string>;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as multipart/form-data. */
  form?: FormData;
  /** Sent as it is, with the content type from `headers`. */
  body?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Follow 3xx to the same host (default); when false, a 3xx is returned as the response. */
  followRedirects?: boolean;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** Parsed JSON when the body is JSON, otherwise the text. */
  body: unknown;
  text: string;
  /** Final URL after same-host redirects. */
  url: string;
}

/**
 * The request failed without an HTTP answer. `sent` is false only when the server certainly did not
 * receive it: no connection was ever made (refused, unknown host, DNS or connect timeout, TLS handshake
 * refused, cancelled before connecting; for a non-GET call, only on its first hop: a server that
 * answered with a redirect may have acted); adapters may then retry freely. Otherwise the call may have been applied, and a
 * non-idempotent call must be looked up before it is sent again.
 */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    message: string,
    readonly code: string,
    readonly sent: boolean,
  ) {
    super(message);
  }
}

/**
 * The response, or the transport failure as a value, so an adapter maps every outcome of a call in one
 * place. Other errors (EgressDenied and other typed failures) are thrown as they are.
 */
export async function requestOrTransportError(http: HttpClient, req: HttpRequest): Promise<HttpResponse | TransportError> {
  try {
    return await http.request(req);
  } catch (err) {
    if (err instanceof TransportError) return err;
    throw err;
  }
}

export interface HttpClient {
  request(req: HttpRequest): Promise<HttpResponse>;
}

export interface GuardOptions {
  workspaceId: string;
  runtime: string;
  /** The workspace's allow-list for this runtime; undefined refuses every call. */
  rule: EgressRule | undefined;
  /** Largest response body accepted. @default 8 MiB */
  maxResponseBytes?: number;
  /** Headers added to every call (correlation ids, traceparent). */
  headers?: Record<string, string>;
  /** Name resolution; tests inject one to exercise the post-DNS check. @default node:dns lookup */
  resolve?: (host: string, family: number) => Promise<{ address: string; family: number }[]>;
}

const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const MAX_REDIRECTS = 5;

/*
 * Connections. A server closes idle keep-alive connections (gunicorn, under Langflow, after 2 s), and a
 * request written to a pooled connection just as it closes is reset unread, which looks exactly like a
 * server that took the request and died. So:
 * - everything but GET goes on a fresh connection (`Connection: close`): a reset after connecting then
 *   really is "maybe sent", and no call that starts work is ever lost to that race. Measured on loopback
 *   through this client, a fresh connection adds under 1 ms; over a network, one round trip (and the
 *   TLS handshake), small beside the work such a call starts;
 * - GETs (polls, look-ups: safe to repeat) keep connections alive, in a pool of their own per client, so
 *   a socket whose address one workspace's rule checked never serves another workspace. Idle sockets
 *   close after 1 s, before common server idle timeouts (gunicorn 2 s, uvicorn and Node 5 s), and a GET
 *   reset on a reused socket before an answer (no response headers) is sent once more, on a fresh
 *   connection.
 * A socket is marked once connected (TLS: handshake done); a failure on a socket never connected, or
 * before one was assigned, is "not sent".
 */
const POOL_IDLE_MS = 1_000;
const CONNECTED = Symbol('connected');
type Tracked = Duplex & { encrypted?: boolean; [CONNECTED]?: boolean };

function tracked<A extends http.Agent>(agent: A): A {
  const create = agent.createConnection.bind(agent);
  const mark = (socket: Duplex | null | undefined) => {
    const s = socket as Tracked | null | undefined;
    if (!s || s[CONNECTED] !== undefined) return;
    s[CONNECTED] = false;
    s.once(s.encrypted ? 'secureConnect' : 'connect', () => (s[CONNECTED] = true));
  };
  agent.createConnection = (options, cb) => {
    const socket = create(options, cb && ((err, s) => (mark(s), cb(err, s))));
    mark(socket);
    return socket;
  };
  return agent;
}

interface Agents {
  http: http.Agent;
  https: https.Agent;
}

/** No socket here is ever reused, so one set serves every client. */
const FRESH: Agents = { http: tracked(new http.Agent({ keepAlive: false })), https: tracked(new https.Agent({ keepAlive: false })) };

/**
 * Idle sockets close after POOL_IDLE_MS. Not the agent's `timeout` option: that also applies while a
 * socket connects, and would cut a slow connect (one lost SYN takes a second) short.
 */
function idleClose<A extends http.Agent>(agent: A): A {
  // Node uses the boolean this returns (keep or destroy); the typings say void.
  const a = agent as unknown as { keepSocketAlive(socket: Socket): boolean };
  const keep = a.keepSocketAlive.bind(a);
  a.keepSocketAlive = (socket) => {
    const kept = keep(socket);
    if (!socket.timeout || socket.timeout > POOL_IDLE_MS) socket.setTimeout(POOL_IDLE_MS);
    return kept;
  };
  return agent;
}

const pooled = (): Agents => ({
  http: tracked(idleClose(new http.Agent({ keepAlive: true }))),
  https: tracked(idleClose(new https.Agent({ keepAlive: true }))),
});

/** Whether the failed request could have reached the server; unknown (no tracked socket state) counts as yes. */
function reached(err: unknown): boolean | undefined {
  const request = (err as { request?: unknown }).request;
  if (!(request instanceof http.ClientRequest)) return undefined;
  const socket = request.socket as Tracked | null;
  if (!socket) return false;
  return socket[CONNECTED] !== false;
}

/** A request reset on a reused socket before an answer: the server may have closed it under us. */
function lostKeepAliveRace(err: unknown): boolean {
  const e = err as { request?: unknown; code?: string; response?: unknown };
  const request = e.request;
  return request instanceof http.ClientRequest && request.reusedSocket && !(request as { res?: unknown }).res && !e.response && (e.code === 'ECONNRESET' || e.code === 'EPIPE');
}

const egressDenied = (opts: GuardOptions, why: string) =>
  refusal(FailureType.EgressDenied, `egress refused for ${opts.runtime} in workspace ${opts.workspaceId}: ${why}`);

function checkUrl(opts: GuardOptions, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw egressDenied(opts, `not a URL: ${raw.slice(0, 200)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw egressDenied(opts, `protocol ${url.protocol} is not allowed`);
  if (url.username || url.password) throw egressDenied(opts, 'URLs with credentials are not allowed');
  const { host, port } = hostKey(url);
  if (!allowListAdmits(opts.rule, url)) throw egressDenied(opts, `${host}:${port} is not on the allow-list`);
  const allowLinkLocal = opts.rule?.allowLinkLocal ?? false;
  const why = isAddress(host) ? blockedAddress(host, allowLinkLocal, opts.rule?.deny) : blockedName(host, allowLinkLocal);
  if (why) throw egressDenied(opts, `${host} is ${why}`);
  return url;
}

/**
 * DNS lookup that refuses blocked addresses. Node connects to what this returns (axios hands it to
 * `http.request` as `lookup`), so the address connected to is the one checked, also on a rebinding
 * name: every address is checked, not only the first.
 */
function guardedLookup(opts: GuardOptions) {
  return async (hostname: string, options: { family?: number }) => {
    const family = options.family ?? 0;
    const found = opts.resolve ? await opts.resolve(hostname, family) : await dns.lookup(hostname, { all: true, family });
    for (const a of found) {
      const why = isAddress(a.address) ? blockedAddress(a.address, opts.rule?.allowLinkLocal ?? false, opts.rule?.deny) : 'not an address';
      if (why) throw new EgressLookupError(`${hostname} resolves to ${String(a.address).slice(0, 100)}, ${why}`);
    }
    return found.map((a) => ({ address: a.address, family: a.family }));
  };
}

class EgressLookupError extends Error {
  override readonly name = 'EgressLookupError';
}

function parseBody(text: string, contentType: string): unknown {
  if (!text) return undefined;
  if (/json/i.test(contentType) || /^\s*[[{]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

function lowerHeaders(res: AxiosResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers ?? {})) if (v !== undefined && v !== null) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  return out;
}

async function send(opts: GuardOptions, pool: Agents, url: URL, req: HttpRequest): Promise<AxiosResponse<string>> {
  const maxBytes = opts.maxResponseBytes ?? 8 * 1024 * 1024;
  const keepAlive = req.method === 'GET';
  try {
    return await attempt(opts, keepAlive ? pool : FRESH, url, req, maxBytes);
  } catch (err) {
    if (!keepAlive || !lostKeepAliveRace(err) || req.signal?.aborted) throw transportFailure(opts, err, maxBytes);
  }
  try {
    return await attempt(opts, FRESH, url, req, maxBytes);
  } catch (err) {
    throw transportFailure(opts, err, maxBytes);
  }
}

function attempt(opts: GuardOptions, agents: Agents, url: URL, req: HttpRequest, maxBytes: number): Promise<AxiosResponse<string>> {
  return axios.request<string>({
    method: req.method,
    url: url.toString(),
    headers: { 'user-agent': 'portarium-worker', ...opts.headers, ...req.headers, ...(req.json !== undefined ? { 'content-type': 'application/json' } : {}) },
    data: req.form ?? (req.json !== undefined ? JSON.stringify(req.json) : req.body),
    timeout: req.timeoutMs,
    signal: req.signal,
    maxRedirects: 0,
    maxContentLength: maxBytes,
    maxBodyLength: 64 * 1024 * 1024,
    responseType: 'text',
    transformResponse: [(d: string) => d],
    validateStatus: () => true,
    proxy: false,
    httpAgent: agents.http,
    httpsAgent: agents.https,
    // Node hands it to the agent for each new connection: every connection is checked with this client's rule.
    lookup: guardedLookup(opts),
  } as Parameters<typeof axios.request>[0]);
}

function transportFailure(opts: GuardOptions, err: unknown, maxBytes: number): Error {
  const e = err as { code?: string; message?: string; cause?: unknown };
  const causes = [err, e.cause, (e.cause as { cause?: unknown } | undefined)?.cause];
  const lookup = causes.find((c) => c instanceof EgressLookupError) as EgressLookupError | undefined;
  if (lookup) return egressDenied(opts, lookup.message);
  if (/maxContentLength/.test(e.message ?? '')) return runtimeRejected(`${opts.runtime} answered with more than ${maxBytes} bytes`);
  const code = e.code ?? (e.message === 'canceled' ? 'ERR_CANCELED' : 'UNKNOWN');
  const sent = !NOT_SENT.has(code) && reached(err) !== false;
  if (code === 'ERR_CANCELED') return new TransportError(`${opts.runtime}: request aborted`, 'ABORTED', sent);
  const timedOut = code === 'ECONNABORTED' || code === 'ETIMEDOUT';
  return new TransportError(`${opts.runtime}: ${timedOut ? 'no answer in time' : e.message ?? code} (${code})`, timedOut ? 'TIMEOUT' : code, sent);
}

/** A client bound to one workspace and runtime. */
export function createGuardedHttp(opts: GuardOptions): HttpClient {
  const pool = pooled();
  return {
    async request(req: HttpRequest): Promise<HttpResponse> {
      let url = checkUrl(opts, req.url);
      let current = req;
      for (let hop = 0; ; hop++) {
        const res = await send(opts, pool, url, current).catch((err: unknown) => {
          // The server answered an earlier hop of this call, and may have acted on it (a 303 after a
          // POST is "done, see there"): a later hop that never connects does not make it "not sent".
          if (hop > 0 && req.method !== 'GET' && err instanceof TransportError && !err.sent) throw new TransportError(err.message, err.code, true);
          throw err;
        });
        const location = res.headers?.location as string | undefined;
        if (res.status < 300 || res.status > 399 || !location || req.followRedirects === false) {
          const text = typeof res.data === 'string' ? res.data : '';
          const headers = lowerHeaders(res);
          return { status: res.status, headers, body: parseBody(text, headers['content-type'] ?? ''), text, url: url.toString() };
        }
        if (hop >= MAX_REDIRECTS) throw runtimeRejected(`${opts.runtime}: more than ${MAX_REDIRECTS} redirects`);
        const next = new URL(location, url);
        const [a, b] = [hostKey(url), hostKey(next)];
        if (a.host !== b.host || a.port !== b.port || next.protocol !== url.protocol) {
          throw egressDenied(opts, `redirect from ${a.host}:${a.port} to another host (${b.host}:${b.port}) refused`);
        }
        url = checkUrl(opts, next.toString());
        // 303, and 301/302 after a POST, turn into a GET without a body, as browsers and curl do.
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && current.method === 'POST')) {
          current = { ...current, method: 'GET', json: undefined, form: undefined, body: undefined };
        }
      }
    },
  };
}
