/**
 * Base for fake external systems: a real HTTP server on 127.0.0.1 (ephemeral port) that records every
 * request and answers through a route function. Each fake in this folder follows the wire contract in
 * shared/reference/runtime-contracts.md for its system.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Faults a remote-run fake can play on creating and polling executions. */
export interface CreateFaults {
  /** Drop the connection instead of answering creates. */
  hangUp?: boolean;
  /** With a failing create status or `hangUp`: the execution is created anyway, only the answer is lost. */
  butCreate?: boolean;
  /** The first n polls of each execution answer 500. */
  pollErrors?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  /** Raw body text. */
  text: string;
  /** Parsed JSON body, when it is JSON. */
  json?: unknown;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait this long before answering (slow server). */
  delayMs?: number;
  /** Destroy the socket without answering (after `delayMs`). */
  hangUp?: boolean;
}

export type Route = (req: RecordedRequest) => Reply | Promise<Reply>;

/**
 * How a gunicorn-style server closes idle keep-alive connections. It closes a connection idle for
 * `afterMs`; the close is "in flight" for `raceMs` more (on a real network: gunicorn's loop, the FIN on
 * its way), and a request arriving in that window is reset unread, the race a client loses when it
 * reuses a pooled connection just as the server closes it. Then the server sends its FIN.
 */
export interface IdleClose {
  afterMs: number;
  /** @default 0 */
  raceMs?: number;
}

/** Gunicorn's default `keepalive` (2 s), with a window wide enough that a reused socket loses the race. */
export const GUNICORN_IDLE: IdleClose = { afterMs: 2_000, raceMs: 3_000 };

interface Conn {
  busy: number;
  closing: boolean;
  timer?: NodeJS.Timeout;
}

export class HttpFake {
  readonly requests: RecordedRequest[] = [];
  private server?: http.Server;
  private readonly sockets = new Set<import('node:net').Socket>();
  /** Requests reset unread because they arrived on a connection the server was closing. */
  resets = 0;
  /**
   * @param idleClose close idle keep-alive connections like gunicorn; may be changed before `start`.
   *   Without it, Node's own keep-alive timeout (5 s) applies.
   */
  constructor(
    private readonly route: Route,
    public idleClose?: IdleClose,
  ) {}

  async start(): Promise<this> {
    const conns = new WeakMap<import('node:net').Socket, Conn>();
    this.server = http.createServer((req, res) => {
      const c = conns.get(req.socket);
      if (c?.closing) {
        this.resets++;
        req.socket.resetAndDestroy();
        return;
      }
      if (c) {
        clearTimeout(c.timer);
        c.busy++;
        res.on('close', () => {
          c.busy--;
          if (c.busy === 0) this.armIdleClose(req.socket, c);
        });
      }
      void this.handle(req, res);
    });
    if (this.idleClose) this.server.keepAliveTimeout = 0;
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      if (this.idleClose) {
        const c: Conn = { busy: 0, closing: false };
        conns.set(s, c);
        this.armIdleClose(s, c);
        s.on('close', () => clearTimeout(c.timer));
      }
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private armIdleClose(s: import('node:net').Socket, c: Conn): void {
    if (!this.idleClose || s.destroyed) return;
    const { afterMs, raceMs = 0 } = this.idleClose;
    c.timer = setTimeout(() => {
      c.closing = true;
      c.timer = setTimeout(() => s.destroy(), raceMs);
    }, afterMs);
  }

  /** Requests whose path starts with `prefix`. */
  calls(prefix: string, method?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.startsWith(prefix) && (!method || r.method === method));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const u = new URL(req.url ?? '/', 'http://fake');
    let json: unknown;
    if (/json/.test(String(req.headers['content-type'] ?? ''))) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    const recorded: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', path: u.pathname, query: u.searchParams, headers: req.headers, text, json };
    this.requests.push(recorded);
    let reply: Reply;
    try {
      reply = await this.route(recorded);
    } catch (err) {
      reply = { status: 500, body: { message: `fake failed: ${(err as Error).message}` } };
    }
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (reply.hangUp) {
      req.socket.destroy();
      return;
    }
    const body = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    const type = typeof reply.body === 'string' ? 'text/plain' : 'application/json';
    res.writeHead(reply.status, { 'content-type': type, ...reply.headers });
    res.end(body);
  }
}
