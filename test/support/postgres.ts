/**
 * A throwaway PostgreSQL server for tests: a fresh cluster in a temporary folder, listening on
 * 127.0.0.1 only, with a password-protected (scram-sha-256) superuser. The server refuses to run as
 * root, so as root it runs as the `postgres` OS user that the Debian package creates. `.ci/run`
 * installs the package; without it the suites that need a server fail, they do not skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './dev-server';

const ADMIN = 'portarium_admin';

/** The folder holding `initdb`, `pg_ctl` and `postgres`, if a server is installed. */
export function pgAvailable(): string | undefined {
  if (process.env.PORTARIUM_PG_BIN) return process.env.PORTARIUM_PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'postgres'))) : [];
  if (versions.length) return path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0], 'bin');
  const found = spawnSync('sh', ['-c', 'command -v postgres'], { encoding: 'utf8' }).stdout?.trim();
  return found ? path.dirname(found) : undefined;
}

export interface TestPostgres {
  /** Superuser connection URL (database `postgres`). */
  url: string;
  port: number;
  password: string;
  /** A URL for another role on the same database. */
  urlFor(user: string, password: string): string;
  /** Stop the server and remove its folder; safe to call twice. */
  stop(): Promise<void>;
}

export async function startPostgres(opts: { fsync?: boolean } = {}): Promise<TestPostgres> {
  const bin = pgAvailable();
  if (!bin || !fs.existsSync(path.join(bin, 'pg_ctl'))) {
    throw new Error('no PostgreSQL server found: install the Debian package `postgresql` (bash .ci/run does) or point PORTARIUM_PG_BIN at its bin folder');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'log');
  const password = randomBytes(16).toString('hex');
  // The password goes to initdb in a file in the private folder, never on a command line.
  fs.writeFileSync(path.join(dir, 'pw'), password, { mode: 0o600 });
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) =>
    execFileSync(asRoot ? 'runuser' : path.join(bin, cmd), asRoot ? ['-u', 'postgres', '--', path.join(bin, cmd), ...args] : args, { stdio: 'pipe', timeout: 120_000 });
  const logTail = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-2000) : '');
  let running = false;
  // If the test process dies without stop(), do not leave a server behind.
  const onExit = () => {
    if (running) spawnSync(asRoot ? 'runuser' : path.join(bin, 'pg_ctl'), [...(asRoot ? ['-u', 'postgres', '--', path.join(bin, 'pg_ctl')] : []), '-D', data, '-m', 'immediate', 'stop']);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  try {
    if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
    run('initdb', ['-D', data, '-U', ADMIN, '--pwfile', path.join(dir, 'pw'), '-A', 'scram-sha-256', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    // Password logins over 127.0.0.1 only: no unix-socket or other-address entries.
    fs.writeFileSync(path.join(data, 'pg_hba.conf'), 'host all all 127.0.0.1/32 scram-sha-256\n');
    const port = await freePort();
    const durable = opts.fsync ? 'on' : 'off';
    const settings = `-c listen_addresses=127.0.0.1 -p ${port} -k '${dir}' -c unix_socket_permissions=0700 -c fsync=${durable} -c synchronous_commit=${durable} -c full_page_writes=${durable}`;
    try {
      run('pg_ctl', ['-D', data, '-o', settings, '-l', log, '-w', '-t', '60', 'start']);
    } catch (err) {
      throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${logTail()}`);
    }
    running = true;
    const urlFor = (user: string, pw: string) => `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@127.0.0.1:${port}/postgres`;
    return {
      url: urlFor(ADMIN, password),
      port,
      password,
      urlFor,
      async stop() {
        try {
          if (running) run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
          running = false;
        } finally {
          process.removeListener('exit', onExit);
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    process.removeListener('exit', onExit);
    onExit();
    throw err;
  }
}
