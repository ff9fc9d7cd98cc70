/**
 * Supply-chain checks CI runs (.ci/licenses.js, .ci/pins.js, .ci/audit.js), each as CI runs it (a node
 * child process) against a throwaway project: the failures name the package, version and license
 * or advisory, and what the policy allows passes.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../workers/config';

const CI = path.join(PROJECT_ROOT, '.ci');

function run(script: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(CI, script), ...args], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function write(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

/** A fake project whose node_modules holds these package.json bodies, keyed by install path. */
function fakeProject(packages: Record<string, Record<string, unknown>>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-supply-'));
  write(path.join(root, 'package.json'), { name: 'fake', version: '1.0.0' });
  for (const [rel, pkg] of Object.entries(packages)) write(path.join(root, rel, 'package.json'), pkg);
  return root;
}

const POLICY = { allowed: ['MIT', 'ISC', 'Apache-2.0'], exceptions: [] as unknown[] };

describe('supply chain', function () {
  const roots: string[] = [];
  after(() => {
    for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
  });
  const project = (packages: Record<string, Record<string, unknown>>, policy: unknown = POLICY) => {
    const root = fakeProject(packages);
    roots.push(root);
    write(path.join(root, 'licenses.json'), policy);
    return root;
  };
  const licenses = (root: string) => run('licenses.js', ['--root', root, '--policy', path.join(root, 'licenses.json'), '--out', path.join(root, 'licenses.txt')]);

  describe('license check (.ci/licenses.js)', function () {
    it('fails naming the GPL and the unlicensed package, version and license; the MIT one passes', function () {
      const root = project({
        'node_modules/ok-mit': { name: 'ok-mit', version: '1.2.3', license: 'MIT' },
        'node_modules/copyleft': { name: 'copyleft', version: '2.0.0', license: 'GPL-3.0' },
        'node_modules/@scope/anonymous': { name: '@scope/anonymous', version: '0.1.0' },
      });
      const r = licenses(root);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /NOT ALLOWED: copyleft@2\.0\.0 license "GPL-3\.0"/);
      assert.match(r.stderr, /NOT ALLOWED: @scope\/anonymous@0\.1\.0 license UNKNOWN \(no license field\)/);
      assert.doesNotMatch(r.stderr, /ok-mit/);
      assert.match(r.stderr, /2 package\(s\)/);
      const inventory = fs.readFileSync(path.join(root, 'licenses.txt'), 'utf8');
      assert.match(inventory, /^ok-mit\t1\.2\.3\tMIT\t/m);
      assert.match(inventory, /^copyleft\t2\.0\.0\tGPL-3\.0\t.*NOT ALLOWED/m);
      assert.match(inventory, /^@scope\/anonymous\t0\.1\.0\tUNKNOWN\t/m);
      assert.match(r.stdout, /1 {2}MIT/);
    });

    it('reads SPDX expressions: OR needs one allowed alternative, AND needs all; nested copies and legacy fields count', function () {
      const root = project({
        'node_modules/dual': { name: 'dual', version: '1.0.0', license: '(MIT OR GPL-3.0-only)' },
        'node_modules/both': { name: 'both', version: '1.0.0', license: 'MIT AND GPL-2.0-or-later' },
        'node_modules/nested-ok': { name: 'nested-ok', version: '1.0.0', license: '(Apache-2.0 AND (MIT OR LGPL-3.0))' },
        'node_modules/legacy': { name: 'legacy', version: '1.0.0', licenses: [{ type: 'Public Domain' }, { type: 'MIT' }] },
        'node_modules/object-form': { name: 'object-form', version: '1.0.0', license: { type: 'ISC' } },
        'node_modules/llvm': { name: 'llvm', version: '1.0.0', license: 'Apache-2.0 WITH LLVM-exception' },
        'node_modules/see-file': { name: 'see-file', version: '1.0.0', license: 'SEE LICENSE IN LICENSE.md' },
        'node_modules/dual/node_modules/inner': { name: 'inner', version: '3.0.0', license: 'AGPL-3.0' },
      });
      const r = licenses(root);
      assert.equal(r.code, 1);
      const denied = [...r.stderr.matchAll(/NOT ALLOWED: (\S+)@/g)].map((m) => m[1]).sort();
      assert.deepEqual(denied, ['both', 'inner', 'see-file']);
      assert.match(r.stderr, /inner@3\.0\.0 license "AGPL-3\.0" \(\?, node_modules\/dual\/node_modules\/inner\)/);
    });

    it('an exception for the exact name@version passes with its reason; another version fails again', function () {
      const policy = { ...POLICY, exceptions: [{ package: 'odd', version: '1.0.0', license: 'Unlicense', reason: 'LICENSE file is the Unlicense text' }] };
      const ok = licenses(project({ 'node_modules/odd': { name: 'odd', version: '1.0.0' }, 'node_modules/a': { name: 'a', version: '1.0.0', license: 'MIT' } }, policy));
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /exception odd@1\.0\.0 .*LICENSE file is the Unlicense text/);
      assert.match(ok.stdout, /all 2 packages allowed/);
      const next = licenses(project({ 'node_modules/odd': { name: 'odd', version: '1.1.0' } }, policy));
      assert.equal(next.code, 1);
      assert.match(next.stderr, /NOT ALLOWED: odd@1\.1\.0/);
      assert.match(next.stdout, /exception for odd@1\.0\.0 matches no installed package/);
    });

    it('an exception without a reason is refused', function () {
      const r = licenses(project({}, { ...POLICY, exceptions: [{ package: 'x', version: '1.0.0' }] }));
      assert.equal(r.code, 2);
      assert.match(r.stderr, /needs "package", "version" \(exact\) and a "reason"/);
    });
  });

  describe('exact pins (.ci/pins.js)', function () {
    it('fails naming each range that is not one exact version', function () {
      const root = project({});
      write(path.join(root, 'package.json'), {
        name: 'fake',
        version: '1.0.0',
        dependencies: { a: '^1.0.0', b: '2.0.0' },
        devDependencies: { c: '~3.1.0', d: 'latest' },
        overrides: { e: '>=1.2.0', b: { f: '1.0.0' }, g: '$b' },
      });
      write(path.join(root, 'package-lock.json'), {
        lockfileVersion: 3,
        packages: { '': { dependencies: { a: '^1.0.0', b: '2.0.0' }, devDependencies: { c: '~3.1.0', d: 'latest' } }, 'node_modules/b': { version: '2.0.0' } },
      });
      const r = run('pins.js', ['--root', root]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /dependencies\.a is "\^1\.0\.0", not an exact version/);
      assert.match(r.stderr, /devDependencies\.c is "~3\.1\.0"/);
      assert.match(r.stderr, /devDependencies\.d is "latest"/);
      assert.match(r.stderr, /overrides\.e is ">=1\.2\.0"/);
      assert.doesNotMatch(r.stderr, /dependencies\.b|overrides\.b|overrides\.g/);
    });

    it('an optional peer (an agent framework) may be a range from its exact devDependencies pin; any other range fails', function () {
      const root = project({});
      const peers = { fw: '^2.1.0', fw2: '>=0.13.5 <1', wide: '*', loose: '^2.0.0', hard: '^1.0.0' };
      write(path.join(root, 'package.json'), {
        name: 'fake',
        version: '1.0.0',
        devDependencies: { fw: '2.1.0', fw2: '0.13.5', wide: '1.0.0', loose: '2.1.0' },
        peerDependencies: peers,
        peerDependenciesMeta: { fw: { optional: true }, fw2: { optional: true }, wide: { optional: true }, loose: { optional: true } },
      });
      const locked = Object.fromEntries(['fw', 'fw2', 'wide', 'loose'].map((n) => [`node_modules/${n}`, { version: { fw: '2.1.0', fw2: '0.13.5', wide: '1.0.0', loose: '2.1.0' }[n] }]));
      write(path.join(root, 'package-lock.json'), {
        lockfileVersion: 3,
        packages: { '': { devDependencies: { fw: '2.1.0', fw2: '0.13.5', wide: '1.0.0', loose: '2.1.0' }, peerDependencies: peers }, ...locked },
      });
      const r = run('pins.js', ['--root', root]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /peerDependencies\.wide is "\*": an optional peer/);
      assert.match(r.stderr, /peerDependencies\.loose is "\^2\.0\.0": an optional peer .*\(2\.1\.0\)/);
      assert.match(r.stderr, /peerDependencies\.hard is "\^1\.0\.0", not an exact version/, 'a required peer stays exact');
      assert.doesNotMatch(r.stderr, /peerDependencies\.fw\b|peerDependencies\.fw2/);
    });
  });

  describe('audit report (.ci/audit.js)', function () {
    const advisory = (name: string, severity: string, ghsa: string) => ({
      name,
      severity,
      isDirect: false,
      via: [{ source: 1, name, dependency: name, title: `bad ${name}`, url: `https://github.com/advisories/${ghsa}`, severity, range: '<2.0.0' }],
      effects: [],
      range: '<2.0.0',
      nodes: [`node_modules/${name}`],
      fixAvailable: true,
    });
    function audit(vulnerabilities: Record<string, unknown>, accepted: unknown[] = []) {
      const root = project({});
      write(path.join(root, 'package-lock.json'), { lockfileVersion: 3, packages: { '': {}, 'node_modules/prod-pkg': { version: '1.0.0' }, 'node_modules/dev-pkg': { version: '1.0.0', dev: true } } });
      write(path.join(root, 'audit-input.json'), { auditReportVersion: 2, vulnerabilities, metadata: {} });
      write(path.join(root, 'allow.json'), { accepted });
      return run('audit.js', ['--root', root, '--input', path.join(root, 'audit-input.json'), '--allow', path.join(root, 'allow.json'), '--out', path.join(root, 'audit.json')]);
    }

    it('fails on a critical advisory in a production package, naming it; high and dev-only critical are reported', function () {
      const r = audit({
        'prod-pkg': advisory('prod-pkg', 'critical', 'GHSA-aaaa-bbbb-cccc'),
        'dev-pkg': advisory('dev-pkg', 'critical', 'GHSA-dddd-eeee-ffff'),
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /FAIL: critical advisory GHSA-aaaa-bbbb-cccc in production package prod-pkg/);
      assert.doesNotMatch(r.stderr, /dev-pkg/);
      assert.match(r.stdout, /production: {3}1 critical/);
      assert.match(r.stdout, /dev-pkg .*\(dev only/);
      const high = audit({ 'prod-pkg': advisory('prod-pkg', 'high', 'GHSA-aaaa-bbbb-cccc') });
      assert.equal(high.code, 0);
      assert.match(high.stdout, /"production":\{"info":0,"low":0,"moderate":0,"high":1,"critical":0\}/);
    });

    it('an accepted advisory passes with its reason, until its date', function () {
      const vuln = { 'prod-pkg': advisory('prod-pkg', 'critical', 'GHSA-aaaa-bbbb-cccc') };
      const ok = audit(vuln, [{ advisory: 'GHSA-aaaa-bbbb-cccc', package: 'prod-pkg', reason: 'not reachable: we never call it' }]);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /accepted: not reachable/);
      const lapsed = audit(vuln, [{ advisory: 'GHSA-aaaa-bbbb-cccc', reason: 'until fixed', until: '2000-01-01' }]);
      assert.equal(lapsed.code, 1);
    });

    it('an audit endpoint that does not answer is reported as unavailable, not a failure', function () {
      const root = project({});
      write(path.join(root, 'err.json'), { message: '405 Method Not Allowed - POST https://registry.example/-/npm/v1/security/advisories/bulk', statusCode: 405 });
      const r = run('audit.js', ['--root', root, '--input', path.join(root, 'err.json'), '--out', path.join(root, 'audit.json')]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /npm audit unavailable \(405 Method Not Allowed/);
      assert.equal(JSON.parse(fs.readFileSync(path.join(root, 'audit.json'), 'utf8')).available, false);
    });
  });
});
