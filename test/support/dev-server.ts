/**
 * Starts a real `temporal server start-dev` on free loopback ports and waits until it answers.
 * Started here rather than by `TestWorkflowEnvironment.createLocal`, whose 5 s start limit is too
 * tight for a loaded CI machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import { Connection } from '@temporalio/client';
import { searchAttributeArgs } from '../../workflows/search-attributes';
import { temporalCli } from './temporal-binaries';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface DevServer {
  address: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  readyTimeoutMs?: number;
  /** Serve the Web UI on this loopback port (the shared test server runs headless). */
  ui?: { port: number; codecEndpoint?: string };
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const [port, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const ui = opts.ui
    ? ['--ui-ip', '127.0.0.1', '--ui-port', String(opts.ui.port), '--ui-disable-news-fetch', ...(opts.ui.codecEndpoint ? ['--ui-codec-endpoint', opts.ui.codecEndpoint] : [])]
    : ['--headless'];
  const args = ['server', 'start-dev', ...ui, '--ip', '127.0.0.1', '--port', String(port), '--http-port', String(httpPort),
    '--metrics-port', String(metricsPort), '--log-level', 'error', ...searchAttributeArgs()];
  const child = spawn(temporalCli(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`temporal dev server exited with ${child.exitCode}: ${stderr}`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      await conn.workflowService.getSystemInfo({});
      await conn.close();
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`temporal dev server not ready at ${address} after ${opts.readyTimeoutMs ?? 60_000} ms: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    address,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}
