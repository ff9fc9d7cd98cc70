/**
 * Headless Chromium (Debian's `chromium` package) for checking what the Web UI shows. Driven with
 * the Chrome DevTools Protocol over `--remote-debugging-pipe` (JSON messages, NUL-terminated, on
 * fds 3 and 4): no WebSocket client and no npm package needed. One fresh profile per browser,
 * nothing phoned home. `--dump-dom` is no use here: it dumps at the load event, before the UI's
 * single-page app has fetched anything, and a virtual-time budget never ends while the UI polls.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** The Chromium binary, or undefined when it is not installed (`apt-get install chromium`). */
export function chromiumPath(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p);
  return candidates.find((p) => fs.existsSync(p));
}

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--hide-scrollbars', '--window-size=1400,1600'];

type Json = Record<string, unknown>;

export class Chromium {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();
  private buffer = '';
  private stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly profile: string,
  ) {
    const input = child.stdio[4] as Readable;
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => this.receive(chunk));
    child.stderr?.on('data', (d) => (this.stderr = (this.stderr + d).slice(-4000)));
    child.once('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited with ${code}: ${this.stderr}`));
      this.pending.clear();
    });
  }

  static launch(): Chromium {
    const bin = chromiumPath();
    if (!bin) throw new Error('chromium not found: apt-get install -y --no-install-recommends chromium');
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-chromium-'));
    const child = spawn(bin, [...FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    return new Chromium(child, profile);
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let end;
    while ((end = this.buffer.indexOf('\0')) >= 0) {
      const message = JSON.parse(this.buffer.slice(0, end)) as { id?: number; result?: Json; error?: { message: string } };
      this.buffer = this.buffer.slice(end + 1);
      const p = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!p) continue;
      this.pending.delete(message.id!);
      if (message.error) p.reject(new Error(`CDP: ${message.error.message}`));
      else p.resolve(message.result ?? {});
    }
  }

  /** One CDP command; `sessionId` addresses a page attached with `open`. */
  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = this.nextId++;
    const out = this.child.stdio[3] as Writable;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      out.write(`${JSON.stringify({ id, method, params, ...(sessionId && { sessionId }) })}\0`);
    });
  }

  /** A new tab on `url`; returns its session id. */
  async open(url: string): Promise<string> {
    const { targetId } = await this.send('Target.createTarget', { url });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    return sessionId as string;
  }

  /** The page's visible text, polled until `done` accepts it or `timeoutMs` passes (then the last one). */
  async textWhen(session: string, done: (text: string) => boolean, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let text = '';
    for (;;) {
      const r = await this.send('Runtime.evaluate', { expression: 'document.body ? document.body.innerText : ""', returnByValue: true }, session);
      text = String((r.result as { value?: unknown } | undefined)?.value ?? '');
      if (done(text) || Date.now() > deadline) return text;
      await new Promise((res) => setTimeout(res, 500));
    }
  }

  /**
   * The visible text of the page's iframes (the UI renders Markdown, such as a run's details, in
   * iframes of its own origin), polled until `done` accepts it or `timeoutMs` passes.
   */
  async frameTextsWhen(session: string, done: (texts: string[]) => boolean, timeoutMs = 30_000): Promise<string[]> {
    const expression = `JSON.stringify([...document.querySelectorAll('iframe')].map((f) => f.contentDocument?.body?.innerText ?? ''))`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.send('Runtime.evaluate', { expression, returnByValue: true }, session);
      const texts = JSON.parse(String((r.result as { value?: unknown } | undefined)?.value ?? '[]')) as string[];
      if (done(texts) || Date.now() > deadline) return texts;
      await new Promise((res) => setTimeout(res, 500));
    }
  }

  /** A PNG of the page as shown. */
  async screenshot(session: string, file: string): Promise<void> {
    const { data } = await this.send('Page.captureScreenshot', { format: 'png' }, session);
    fs.writeFileSync(file, Buffer.from(String(data), 'base64'));
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      await this.send('Browser.close').catch(() => undefined);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.profile, { recursive: true, force: true });
  }
}
