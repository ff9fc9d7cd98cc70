/**
 * Finds the Temporal CLI and the time-skipping test server: an explicit variable first
 * (TEMPORAL_CLI, TEMPORAL_TEST_SERVER), then the PATH, then the pinned copies
 * `./temporal-dev.sh tools` installs in `.tools/bin` (the same order as the script).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../../workers/config';

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

function find(envVar: string, name: string): string {
  const explicit = process.env[envVar];
  if (explicit) {
    if (!fs.existsSync(explicit)) throw new Error(`${envVar}=${explicit}: no such file`);
    return explicit;
  }
  const local = path.join(PROJECT_ROOT, '.tools', 'bin', name);
  const found = onPath(name) ?? (fs.existsSync(local) ? local : undefined);
  if (!found) throw new Error(`no ${name} found: run "./temporal-dev.sh install", put ${name} on PATH, or set ${envVar}`);
  return found;
}

export const temporalCli = () => find('TEMPORAL_CLI', 'temporal');
export const temporalTestServer = () => find('TEMPORAL_TEST_SERVER', 'temporal-test-server');
