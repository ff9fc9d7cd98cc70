/**
 * Services can depend on the package: `npm pack` makes the tarball a service installs, a fresh project
 * gets it in node_modules, and a small TypeScript service, worker and policy tool (test/package-app/)
 * compile against it (strict, importing only the public entry points) and run against the suite's
 * Temporal server.
 *
 * Context: no network. The tarball is unpacked into the project's node_modules/portarium-worker,
 * where `npm install` puts it, and each of its declared dependencies is linked from this repository's
 * node_modules (what `npm ci` installed). Node resolves a linked package from its real path, so the
 * dependencies' own dependencies resolve there too, while an undeclared dependency of the package
 * stays unresolvable, as it would be for a service.
 */
import * as assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../workers/config';
import { TEST_POLICY_DIR, uid, withWorker } from './support/harness';
import { shared, testEnv, testKeyringFile } from './support/shared';

const run = promisify(execFile);
const APP_SOURCES = path.join(PROJECT_ROOT, 'test', 'package-app');
const PACKAGE = 'portarium-worker';
const TSC = path.join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

interface Packed {
  filename: string;
  files: { path: string }[];
}

/** `npm pack` into `dest`; scripts off, because `npm test` has just built dist/. */
async function pack(dest: string): Promise<Packed> {
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' },
    maxBuffer: 16 * 1024 * 1024,
  });
  return (JSON.parse(stdout) as Packed[])[0];
}

/** Link `name` from this repository's node_modules into `modules` (scoped names keep their scope folder). */
function linkDependency(modules: string, name: string): void {
  const target = path.join(PROJECT_ROOT, 'node_modules', name);
  assert.ok(fs.existsSync(target), `${name} is not installed here (run npm ci)`);
  fs.mkdirSync(path.dirname(path.join(modules, name)), { recursive: true });
  fs.symlinkSync(target, path.join(modules, name), 'dir');
}

/** A fresh project with the tarball installed and the app's sources compiled to dist/. */
async function installAndCompile(dir: string, tarball: string): Promise<void> {
  const modules = path.join(dir, 'node_modules');
  const installed = path.join(modules, PACKAGE);
  fs.mkdirSync(installed, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
  const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const name of Object.keys(manifest.dependencies)) linkDependency(modules, name);
  // The service's own dev dependency: Node's types, for `process` and `console`.
  linkDependency(modules, '@types/node');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'a-service', private: true, dependencies: { [PACKAGE]: `file:${tarball}` } }));
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'node16', moduleResolution: 'node16', strict: true, outDir: 'dist', rootDir: 'src', types: ['node'], skipLibCheck: true },
    include: ['src/*.ts'],
  }));
  fs.cpSync(APP_SOURCES, path.join(dir, 'src'), { recursive: true });
  await run(process.execPath, [TSC, '-p', dir]).catch((err: { stdout?: string }) => assert.fail(`the service does not compile against the package:\n${err.stdout}`));
}

/** Run a compiled app program to its end; its last output line is JSON. */
async function runApp(dir: string, program: string, args: string[], env: Record<string, string>): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [path.join(dir, 'dist', program), ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 40_000 })
    .catch((err: { stderr?: string }) => assert.fail(`${program} failed:\n${err.stderr}`));
  return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

describe('npm package', function () {
  let tmp: string;
  let app: string;
  let packed: Packed;
  /** What the app's processes share with the suite's worker: the server, the test policies and the payload keys. */
  const envFor = (taskQueue: string) => ({
    TEMPORAL_ADDRESS: shared.address!,
    PORTARIUM_TASK_QUEUE: taskQueue,
    PORTARIUM_POLICY_DIR: TEST_POLICY_DIR,
    PORTARIUM_KEYRING_FILE: testKeyringFile(),
    PORTARIUM_DATA_DIR: path.join(tmp, 'data'),
  });

  before(async function () {
    this.timeout(120_000);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-package-'));
    app = path.join(tmp, 'app');
    packed = await pack(tmp);
    await installAndCompile(app, path.join(tmp, packed.filename));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('the tarball holds the runtime code, its types, the prebuilt bundle and the CLI, and no tests', function () {
    const files = packed.files.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/workflow-bundle.js', 'dist/workers/cli.js', 'dist/workers/package/client.js', 'dist/workers/package/client.d.ts',
      'dist/workers/package/worker.d.ts', 'dist/workers/package/policies.d.ts', 'dist/workflows/types.d.ts', 'dist/workers/codec/failure-converter.js']) {
      assert.ok(files.includes(f), `the tarball lacks ${f}`);
    }
    const stray = files.filter((f) => !/^(package\.json|README\.md|LICENSE)$/.test(f) && !/^dist\/(workflow-bundle\.js|(workers|workflows|activities|policies)\/.+\.(js|d\.ts))$/.test(f));
    assert.deepEqual(stray, [], 'only runtime files, their types and the docs (no tests, benchmarks, histories, source maps or sources)');
  });

  it('every module and type the tarball refers to is in it or a declared dependency', function () {
    const installed = path.join(app, 'node_modules', PACKAGE);
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; peerDependencies?: Record<string, string> };
    const missing: string[] = [];
    for (const { path: file } of packed.files.filter((f) => /^dist\/.+\/.+\.(js|d\.ts)$/.test(f.path))) {
      const text = fs.readFileSync(path.join(installed, file), 'utf8');
      const ext = file.endsWith('.d.ts') ? '.d.ts' : '.js';
      for (const [, spec] of text.matchAll(/(?:from |require\(|import\()['"]([^'"]+)['"]/g)) {
        if (spec.startsWith('.')) {
          const base = path.join(path.dirname(path.join(installed, file)), spec);
          if (!fs.existsSync(base + ext) && !fs.existsSync(path.join(base, `index${ext}`))) missing.push(`${file}: ${spec}`);
          continue;
        }
        const name = spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
        if (!spec.startsWith('node:') && !builtinModules.includes(name) && !(name in manifest.dependencies) && !(name in (manifest.peerDependencies ?? {}))) missing.push(`${file}: ${spec} (not a dependency)`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it('a service compiled against the installed package starts a run, is refused self-approval, approves it and reads it', async function () {
    await withWorker({ connection: testEnv().nativeConnection, client: testEnv().client }, async (h) => {
      const key = uid('pkg');
      const out = await runApp(app, 'service.js', [key], envFor(h.taskQueue));
      assert.deepEqual(out, {
        workflowId: `test:${key}`,
        waiting: { state: 'AwaitingApproval', tier: 'HumanApprove', approvalsNeeded: 1 },
        selfApproval: 'refused',
        decided: { counted: true, approvalsNeeded: 0 },
        result: 'Succeeded',
        status: { state: 'Succeeded', approvers: ['bob'], refusals: ['SelfApprovalRefused'] },
      });
      assert.equal((await h.ledger.counts()).applied, 1, 'the approved action was dispatched once, by the suite\'s worker');
    });
  });

  it('a service on the classic `node` module resolution finds the same typed entry points', function () {
    // Context: many services still compile with `moduleResolution: node`, which ignores `exports`; `typesVersions` serves
    // them. Checked by its mapping rather than a second compile, which would double this suite's time (TypeScript 5.9 was
    // seen to resolve these names under `node`, and to fail without the mapping).
    const manifest = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', PACKAGE, 'package.json'), 'utf8')) as {
      types: string;
      exports: Record<string, { types: string } | string>;
      typesVersions: Record<string, Record<string, string[]>>;
    };
    const viaExports = Object.entries(manifest.exports).flatMap(([k, v]) => (typeof v === 'object' ? [[k.replace(/^\.\/?/, ''), path.normalize(v.types)]] : []));
    const viaClassic = viaExports.map(([k]) => [k, path.normalize(k === '' ? manifest.types : manifest.typesVersions['*'][k]?.[0] ?? '(none)')]);
    assert.deepEqual(viaClassic, viaExports);
    for (const [, types] of viaExports) assert.ok(fs.existsSync(path.join(app, 'node_modules', PACKAGE, types)), `${types} is in the tarball`);
  });

  it('a worker compiled against the installed package runs runs with the package\'s prebuilt bundle', async function () {
    const taskQueue = uid('tq');
    const worker = spawn(process.execPath, [path.join(app, 'dist', 'worker.js')], { cwd: app, env: { PATH: process.env.PATH ?? '', ...envFor(taskQueue) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    worker.stdout.on('data', (d) => (out += String(d)));
    worker.stderr.on('data', (d) => (out += String(d)));
    const exited = new Promise<number | null>((resolve) => worker.once('exit', resolve));
    try {
      const ready = await Promise.race([
        new Promise<string>((resolve) => worker.stdout.on('data', () => {
          const line = out.split('\n').slice(0, -1).find((l) => l.startsWith('{"polling"'));
          if (line) resolve(line);
        })),
        exited.then((code) => assert.fail(`the worker exited ${code}:\n${out}`)),
      ]);
      const { polling, bundle } = JSON.parse(ready) as { polling: string[]; bundle: string };
      assert.deepEqual(polling, [taskQueue]);
      assert.equal(fs.realpathSync(bundle), fs.realpathSync(path.join(app, 'node_modules', PACKAGE, 'dist', 'workflow-bundle.js')), 'the bundle inside node_modules');
      const key = uid('pkgw');
      const result = await runApp(app, 'service.js', [key], envFor(taskQueue));
      assert.equal(result.result, 'Succeeded');
      assert.equal((await testEnv().client.workflow.getHandle(`test:${key}`).describe()).taskQueue, taskQueue, 'the package\'s worker ran it');
    } finally {
      worker.kill('SIGTERM');
      await exited;
    }
  });

  it('policy tooling compiled against the installed package checks a folder and evaluates requests as a run would', async function () {
    assert.deepEqual(await runApp(app, 'policies.js', [TEST_POLICY_DIR], {}), { ok: true, workspaces: ['sod', 'test'], write: 'HumanApprove', unknown: 'Deny' });
    const broken = fs.mkdtempSync(path.join(tmp, 'policies-'));
    fs.writeFileSync(path.join(broken, 'defaults.json'), JSON.stringify({ schemaVersion: 1, kind: 'defaults', defaults: { tier: 'Sometimes' } }));
    const refused = await runApp(app, 'policies.js', [broken], {});
    assert.equal(refused.ok, false);
    assert.ok((refused.problems as string[]).length > 0, 'the problems are named');
  });
});
