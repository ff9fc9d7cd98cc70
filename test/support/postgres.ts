/**
 * A throwaway PostgreSQL server for tests: a fresh cluster in a temporary folder, listening on
 * 127.0.0.1 only, with a password-protected superuser. The server refuses to run as root, so as root
 * it runs as the `postgres` OS user that the Debian package creates. `.ci/run` installs the package.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './dev-server';

/** The folder holding `initdb`, `pg_ctl` and `postgres`, if a server is installed. */
export function pgBinDir(): string | undefined {
  if (process.env.PORTARIUM_PG_BIN) return process.env.PORTARIUM_PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'postgres'))) : [];
  if (versions.length) return path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0], 'bin');
  const found = spawnSync('sh', ['-c', 'command -v postgres'], { encoding: 'utf8' }).stdout.trim();
  return found ? path.dirname(found) : undefined;
}

export interface TestPostgres {
  /** Superuser connection URL. */
  url: string;
  port: number;
  password: string;
  /** A URL for another role on the same database. */
  urlFor(user: string, password: string): string;
  stop(): Promise<void>;
}

export async function startPostgres(opts: { fsync?: boolean } = {}): Promise<TestPostgres> {
  const bin = pgBinDir();
  if (!bin) throw new Error('no PostgreSQL server found: install the Debian package `postgresql` (bash .ci/run does) or set PORTARIUM_PG_BIN');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-pg-'));
  const data = path.join(dir, 'data');
  const password = randomBytes(12).toString('hex');
  fs.writeFileSync(path.join(dir, 'pw'), password);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const run = (cmd: string, args: string[]) =>
    execFileSync(asRoot ? 'runuser' : path.join(bin, cmd), asRoot ? ['-u', 'postgres', '--', path.join(bin, cmd), ...args] : args, { stdio: 'pipe' });
  run('initdb', ['-D', data, '-U', 'portarium_admin', '--pwfile', path.join(dir, 'pw'), '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const settings = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=${opts.fsync ? 'on' : 'off'} -c synchronous_commit=${opts.fsync ? 'on' : 'off'}`;
  run('pg_ctl', ['-D', data, '-o', settings, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
  const urlFor = (user: string, pw: string) => `postgres://${user}:${encodeURIComponent(pw)}@127.0.0.1:${port}/postgres`;
  return {
    url: urlFor('portarium_admin', password),
    port,
    password,
    urlFor,
    async stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
