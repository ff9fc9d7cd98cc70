/** A worker process as deployed (`node dist/workers/main.js`) on the suite's dev server, started and awaited until it polls. */
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../../workers/config';
import { DEV_KEYS, shared, testKeyringFile } from './shared';

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
}

/** Start it with `env` (PATH and TEMPORAL_ADDRESS are filled in) and wait for its `pid=N polling` line. */
export function startWorkerProcess(env: Record<string, string>, readyTimeoutMs = 20_000): Promise<WorkerProcess> {
  // A worker on another keyring than the suite's reads a revocation registry of its own: the shared
  // one's memo is encrypted under the suite's keyring, which such a worker rightly cannot read.
  const ownRegistry = env.PORTARIUM_KEYRING_FILE && !env.PORTARIUM_REVOCATION_REGISTRY ? { PORTARIUM_REVOCATION_REGISTRY: `revocations-${process.pid}-${Date.now()}` } : {};
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'workers', 'main.js')], {
    env: { PATH: process.env.PATH ?? '', TEMPORAL_ADDRESS: shared.address ?? '', PORTARIUM_KEYRING_FILE: testKeyringFile(), ...DEV_KEYS, ...ownRegistry, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const worker = { child, output: () => out };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker not ready in ${readyTimeoutMs} ms: ${out}`)), readyTimeoutMs);
    child.stdout!.on('data', (d) => {
      out += String(d);
      if (/pid=\d+ polling/.test(out)) {
        clearTimeout(timer);
        resolve(worker);
      }
    });
    child.stderr!.on('data', (d) => (out += String(d)));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited ${code}: ${out}`));
    });
  });
}
