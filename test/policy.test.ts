/**
 * Policy evaluation (pure) and policy files: deny by default, strictest wins, stricter-only override,
 * fail closed, and load errors that name the file and the path inside it.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type PolicyRequest, evaluatePolicy } from '../policies/evaluate';
import { PolicyLoadError, loadPolicyDir } from '../policies/load';
import type { PolicySnapshot, Rule } from '../policies/schema';
import { PROJECT_ROOT } from '../workers/config';
import { TEST_POLICY_DIR } from './support/harness';

const defaults: PolicySnapshot['defaults'] = {
  approval: { quorum: 1, eligibleRoles: ['approver'], expiresAfter: '24h', escalation: [] },
  vetoWindow: '15m',
  manualExpiresAfter: '7d',
  operatorRoles: ['operator'],
};
const snapshot = (rules: Rule[], workspaceKnown = true): PolicySnapshot => ({ policyHash: 'h', workspaceId: 'w', workspaceKnown, defaults, rules });
const req = (operation: string, extra: Partial<PolicyRequest> = {}): PolicyRequest => ({
  action: { runtime: 'echo', target: 'crm/contacts', operation },
  requestedBy: { id: 'alice', roles: ['dev'] },
  ...extra,
});

describe('policy evaluation', function () {
  const rules: Rule[] = [
    { id: 'r-auto', match: { runtime: 'echo', operation: ['read', 'list'] }, tier: 'Auto' },
    { id: 'r-crm', match: { target: 'crm/*' }, tier: 'Assisted' },
    { id: 'r-write', match: { operation: 'write' }, tier: 'HumanApprove', approval: { quorum: 2, eligibleRoles: ['lead'] } },
    { id: 'r-ops', match: { operation: 'write', requesterRoles: ['sre'] }, tier: 'ManualOnly' },
    { id: 'r-del', match: { operation: 'delete' }, tier: 'Deny' },
  ];
  const table: [string, PolicyRequest, string, string[]][] = [
    ['strictest of Auto and Assisted', req('read'), 'Assisted', ['r-auto', 'r-crm']],
    ['HumanApprove over Assisted', req('write'), 'HumanApprove', ['r-crm', 'r-write']],
    ['requester role makes it ManualOnly', req('write', { requestedBy: { id: 'sam', roles: ['sre'] } }), 'ManualOnly', ['r-crm', 'r-write', 'r-ops']],
    ['Deny beats everything', req('delete'), 'Deny', ['r-crm', 'r-del']],
    ['no match outside crm', req('archive', { action: { runtime: 'echo', target: 'erp/x', operation: 'archive' } }), 'Deny', []],
  ];
  for (const [name, request, tier, matched] of table) {
    it(name, function () {
      const d = evaluatePolicy(snapshot(rules), request);
      assert.equal(d.effect === 'Deny' ? 'Deny' : d.tier, tier);
      assert.deepEqual(d.matchedRules, matched);
    });
  }

  it('takes approval requirements from the winning rule', function () {
    const d = evaluatePolicy(snapshot(rules), req('write'));
    assert.deepEqual([d.quorum, d.eligibleRoles, d.expiresAfterMs], [2, ['lead'], 24 * 3600_000]);
  });

  it('an empty or unknown policy set denies', function () {
    assert.equal(evaluatePolicy(snapshot([]), req('read')).effect, 'Deny');
    assert.match(evaluatePolicy(snapshot(rules, false), req('read')).reasons[0], /deny by default/);
  });

  it('a tier override raises the tier but never lowers it', function () {
    assert.equal(evaluatePolicy(snapshot(rules), req('write', { tierOverride: 'ManualOnly' })).tier, 'ManualOnly');
    assert.equal(evaluatePolicy(snapshot(rules), req('write', { tierOverride: 'Auto' })).tier, 'HumanApprove');
    assert.equal(evaluatePolicy(snapshot(rules), req('delete', { tierOverride: 'Auto' })).effect, 'Deny');
  });

  it('fails closed when the snapshot is broken', function () {
    const broken = snapshot([{ id: 'bad', match: {}, tier: 'HumanApprove', approval: { expiresAfter: 'soon' } }]);
    const d = evaluatePolicy(broken, req('write'));
    assert.equal(d.effect, 'Deny');
    assert.match(d.reasons[0], /fail closed/);
    assert.equal(evaluatePolicy(null as unknown as PolicySnapshot, req('read')).effect, 'Deny');
  });
});

describe('policy files', function () {
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-pol-'));
  const write = (dir: string, name: string, body: unknown) => fs.writeFileSync(path.join(dir, name), JSON.stringify(body));

  it('the shipped and test policy sets load, each with a content hash', function () {
    const shipped = loadPolicyDir(path.join(PROJECT_ROOT, 'policies', 'sets'));
    assert.deepEqual(shipped.workspaces, ['demo', 'ops']);
    const demo = shipped.snapshotFor('demo');
    assert.match(demo.policyHash, /^[0-9a-f]{64}$/);
    assert.ok(Object.isFrozen(demo.rules));
    assert.equal(evaluatePolicy(demo, req('read', { action: { runtime: 'echo', target: 'demo/x', operation: 'read' } })).tier, 'Auto');
    assert.notEqual(loadPolicyDir(TEST_POLICY_DIR).snapshotFor('test').policyHash, demo.policyHash);
    assert.equal(shipped.snapshotFor('nobody').workspaceKnown, false);
  });

  it('a bad file is refused with the file and the path inside it', function () {
    const dir = tmp();
    fs.copyFileSync(path.join(PROJECT_ROOT, 'policies', 'sets', 'defaults.json'), path.join(dir, 'defaults.json'));
    write(dir, 'ops.json', { schemaVersion: 1, kind: 'workspace', workspace: 'ops', rules: [{ id: 'x', match: {}, tier: 'Maybe' }] });
    write(dir, 'misnamed.json', { schemaVersion: 1, kind: 'workspace', workspace: 'other', rules: [] });
    write(dir, 'slow.json', { schemaVersion: 1, kind: 'workspace', workspace: 'slow', rules: [{ id: 'y', match: {}, tier: 'Assisted', vetoWindow: '999999999d' }] });
    try {
      loadPolicyDir(dir);
      assert.fail('expected a PolicyLoadError');
    } catch (err) {
      assert.ok(err instanceof PolicyLoadError);
      const where = err.problems.map((p) => `${path.basename(p.file)}:${p.path}`);
      assert.deepEqual(where.sort(), ['misnamed.json:workspace', 'ops.json:rules.0.tier', 'slow.json:rules.0.vetoWindow']);
    }
  });

  it('YAML files load; a YAML syntax error or a bad condition names the file and the place', function () {
    const dir = tmp();
    fs.copyFileSync(path.join(PROJECT_ROOT, 'policies', 'sets', 'defaults.json'), path.join(dir, 'defaults.json'));
    fs.writeFileSync(path.join(dir, 'ok.yaml'), 'schemaVersion: 1\nkind: workspace\nworkspace: ok\nrules:\n  - { id: a, match: { operation: read }, tier: Auto }\n');
    assert.deepEqual(loadPolicyDir(dir).workspaces, ['ok']);
    fs.writeFileSync(path.join(dir, 'broken.yml'), 'schemaVersion: 1\nkind: [workspace\n');
    fs.writeFileSync(path.join(dir, 'cond.yaml'), "schemaVersion: 1\nkind: workspace\nworkspace: cond\nrules:\n  - { id: c, match: {}, when: 'action.input.x > (', tier: Auto }\n");
    try {
      loadPolicyDir(dir);
      assert.fail('expected a PolicyLoadError');
    } catch (err) {
      assert.ok(err instanceof PolicyLoadError);
      const where = err.problems.map((p) => `${path.basename(p.file)}:${p.path}`).sort();
      assert.deepEqual(where, ['broken.yml:(file)', 'cond.yaml:rules.0.when']);
      assert.match(err.problems.find((p) => p.file.endsWith('broken.yml'))!.message, /YAML/);
    }
  });

  it('changing a rule changes the policy hash', function () {
    const dir = tmp();
    fs.copyFileSync(path.join(PROJECT_ROOT, 'policies', 'sets', 'defaults.json'), path.join(dir, 'defaults.json'));
    const ws = { schemaVersion: 1, kind: 'workspace', workspace: 'ops', rules: [{ id: 'x', match: {}, tier: 'Auto' }] };
    write(dir, 'ops.json', ws);
    const before = loadPolicyDir(dir).snapshotFor('ops').policyHash;
    write(dir, 'ops.json', { ...ws, rules: [{ id: 'x', match: {}, tier: 'Assisted' }] });
    assert.notEqual(loadPolicyDir(dir).snapshotFor('ops').policyHash, before);
  });
});

describe('policy evaluation is total and deterministic (property)', function () {
  // Seeded PRNG so a failure reproduces.
  function mulberry32(seed: number) {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const rnd = mulberry32(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const words = ['echo', 'read', 'write', 'crm/*', 'crm/contacts', '*', '', 'delete', 'send_email', 'run_shell', 'x'];
  const tiers = ['Auto', 'Assisted', 'HumanApprove', 'ManualOnly', 'Deny'] as const;
  const whens = ['action.input.amount > 10', "'finance' in requester.roles", 'action.input.flag', '(((', 'true && 1', 'action.tools contains "x"', undefined];
  const randomRule = (i: number): Rule => ({
    id: `r${i}`,
    match: { ...(rnd() < 0.5 ? { runtime: pick(words) } : {}), ...(rnd() < 0.5 ? { operation: pick(words) } : {}), ...(rnd() < 0.3 ? { tools: pick(words) } : {}) },
    when: pick(whens),
    tier: pick(tiers),
    approval: rnd() < 0.2 ? { expiresAfter: pick(['1h', 'soon', '5m']) } : undefined,
  });
  const randomValue = (): unknown => pick([1, 5000, '5000', true, null, [1, 2], { a: 1 }, -0.5, 'x']);

  it('never throws, decides Deny on any error, and gives the same answer twice', function () {
    for (let n = 0; n < 1500; n++) {
      const snap = snapshot(Array.from({ length: Math.floor(rnd() * 6) }, (_, i) => randomRule(i)), rnd() < 0.9);
      const request = req(pick(words), {
        action: { runtime: pick(words), target: pick(words), operation: pick(words), tools: rnd() < 0.5 ? [pick(words)] : undefined, input: { amount: randomValue(), flag: randomValue() } },
        requestedBy: { id: 'p', roles: rnd() < 0.5 ? ['finance'] : [] },
        tierOverride: rnd() < 0.2 ? pick(['Auto', 'HumanApprove', 'ManualOnly'] as const) : undefined,
      });
      const first = evaluatePolicy(snap, request);
      const again = evaluatePolicy(JSON.parse(JSON.stringify(snap)), JSON.parse(JSON.stringify(request)));
      assert.deepEqual(again, first, `deterministic for case ${n}`);
      assert.ok(first.effect === 'Deny' ? first.tier === undefined : first.tier !== undefined);
      if (first.reasons.some((r) => /fail closed|condition failed/.test(r))) assert.equal(first.effect, 'Deny');
    }
  });
});

describe('policy snapshots on a real server', function () {
  // Context: a policy edit must never change a run already started; the snapshot is in its history.
  it('a run keeps the policy version it started with, across a policy change and a new worker', async function () {
    const { testEnv } = await import('./support/shared');
    const { withWorker, waitForState, decision, bob, uid } = await import('./support/harness');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-pv-'));
    fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
    const policy = (quorum: number) =>
      fs.writeFileSync(path.join(dir, 'test.yaml'), `schemaVersion: 1\nkind: workspace\nworkspace: test\nrules:\n  - { id: w, match: { operation: write }, tier: HumanApprove, approval: { quorum: ${quorum} } }\n`);
    const opts = { connection: testEnv().nativeConnection, client: testEnv().client, policyDir: dir, taskQueue: uid('tq') };
    policy(1);
    const v1 = loadPolicyDir(dir).snapshotFor('test').policyHash;
    const run = await withWorker(opts, async (h) => {
      const r = await h.start('write');
      await waitForState(r, 'AwaitingApproval');
      return r;
    });
    policy(2);
    await withWorker(opts, async (h) => {
      const s = await run.status();
      assert.equal(s.policyHash, v1);
      await run.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      assert.equal((await run.result()).state, 'Succeeded', 'one approval, as its policy version required');
      const fresh = await waitForState(await h.start('write'), 'AwaitingApproval');
      assert.equal(fresh.approvalsNeeded, 2, 'a new run follows the new version');
      assert.notEqual(fresh.policyHash, v1);
    });
  });
});
