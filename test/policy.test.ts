/**
 * Policy evaluation (pure) and policy files: deny by default, strictest wins, stricter-only override,
 * fail closed, and load errors that name the file and the path inside it.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type PolicyRequest, evaluatePolicy } from '../policies/evaluate';
import { PolicyLoadError, loadPolicyDir } from '../activities/policy/load';
import { ownHas, ownValue } from '../policies/own';
import { orderedGuardWarnings, patternsOverlap } from '../policies/condition-lint';
import type { PolicySnapshot, PolicyTier, Rule } from '../policies/schema';
import { TIER_ORDER, isStricterTier, stricterTier, tierRank } from '../workflows/types';
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

  // Context: the tier order was written in several places (evaluator, agent-tool floors, input enums);
  // now one table. Every pair of rule tier and override decides the stricter one of the table.
  it('every rule tier and override give the stricter of the two, in the order Auto < Assisted < HumanApprove < ManualOnly < Deny', function () {
    assert.deepEqual([...TIER_ORDER], ['Auto', 'Assisted', 'HumanApprove', 'ManualOnly']);
    for (const ruleTier of [...TIER_ORDER, 'Deny'] as const) {
      for (const override of TIER_ORDER) {
        const d = evaluatePolicy(snapshot([{ id: 'r', match: {}, tier: ruleTier }]), req('x', { tierOverride: override }));
        const want = stricterTier<PolicyTier>(ruleTier, override);
        assert.equal(want === 'Deny' ? d.effect : d.tier, want === 'Deny' ? 'Deny' : want, `${ruleTier} with override ${override}`);
        assert.equal(isStricterTier<PolicyTier>(override, ruleTier), want === override && override !== ruleTier);
      }
    }
    assert.equal(tierRank('toString'), undefined, 'an inherited name is no tier');
  });

  it('fails closed when the snapshot is broken', function () {
    const broken = snapshot([{ id: 'bad', match: {}, tier: 'HumanApprove', approval: { expiresAfter: 'soon' } }]);
    const d = evaluatePolicy(broken, req('write'));
    assert.equal(d.effect, 'Deny');
    assert.match(d.reasons[0], /fail closed/);
    assert.equal(evaluatePolicy(null as unknown as PolicySnapshot, req('read')).effect, 'Deny');
  });
});

describe('unknown conditions never fall through to a looser rule', function () {
  // Context: with `amount: "250000"` the ops set's `payments` rule (`amount > 1000`, HumanApprove)
  // did not match and `small-payments` (Assisted) dispatched the payment without approval (issue 14).
  const ops = () => loadPolicyDir(path.join(PROJECT_ROOT, 'policies', 'sets')).snapshotFor('ops');
  const pay = (input: { [k: string]: unknown }) => req('pay', { action: { runtime: 'activepieces', target: 'vendors/acme', operation: 'pay', input } });
  const cases: [string, { [k: string]: unknown }, RegExp][] = [
    ['a string amount', { amount: '250000' }, /action\.input\.amount is a string/],
    ['a missing amount', {}, /action\.input\.amount is missing/],
    ['an amount in an array', { amount: [250000] }, /action\.input\.amount is an array/],
    ['a null amount', { amount: null }, /action\.input\.amount is null/],
  ];
  for (const [name, input, why] of cases) {
    it(`ops: ${name} needs the payments approval (HumanApprove, 2 signed), not Assisted`, function () {
      const d = evaluatePolicy(ops(), pay(input));
      assert.equal(d.tier, 'HumanApprove');
      assert.deepEqual([d.quorum, d.signed, d.requiredRoles], [2, true, ['finance']]);
      assert.deepEqual(d.matchedRules, ['payments', 'small-payments']);
      const reason = d.reasons.find((r) => r.startsWith('rule payments'));
      assert.match(reason ?? '', /payments \(HumanApprove\) counts as matching: its condition \(action\.input\.amount > 1000\) is unknown/);
      assert.match(reason ?? '', why);
    });
  }

  it('two-valued mode (old histories) decides as before: a string amount is Assisted', function () {
    const d = evaluatePolicy(ops(), pay({ amount: '250000' }), { twoValuedConditions: true });
    assert.deepEqual([d.tier, d.matchedRules], ['Assisted', ['small-payments']]);
    assert.equal(evaluatePolicy(ops(), pay({ amount: '250000' }), { twoValuedConditions: false }).tier, 'HumanApprove');
  });

  it('ops: well-typed amounts decide as before', function () {
    assert.equal(evaluatePolicy(ops(), pay({ amount: 250000 })).tier, 'HumanApprove');
    const small = evaluatePolicy(ops(), pay({ amount: 1000 }));
    assert.deepEqual([small.tier, small.matchedRules], ['Assisted', ['small-payments']]);
  });

  it('with no certain match, an unknown condition denies and says why', function () {
    const d = evaluatePolicy(snapshot([{ id: 'big', match: {}, when: 'action.input.amount > 10', tier: 'Auto' }]), req('write', { action: { runtime: 'echo', target: 't', operation: 'write', input: { amount: '5' } } }));
    assert.equal(d.effect, 'Deny');
    assert.match(d.reasons[0], /^rule big \(Auto\) counts as matching: its condition .* is unknown: '>' at 20: action\.input\.amount is a string/);
    assert.match(d.reasons.at(-1)!, /no rule matched for certain/);
  });

  it('a Deny rule with an unknown condition denies; a looser unknown rule changes nothing', function () {
    const rules: Rule[] = [
      { id: 'all', match: {}, tier: 'HumanApprove' },
      { id: 'block-eu', match: {}, when: "action.input.region == 'eu'", tier: 'Deny' },
      { id: 'tiny', match: {}, when: 'action.input.amount < 5', tier: 'Auto' },
    ];
    const r = (input: { [k: string]: unknown }) => evaluatePolicy(snapshot(rules), req('write', { action: { runtime: 'echo', target: 't', operation: 'write', input } }));
    assert.equal(r({ region: 'us', amount: 1 }).tier, 'HumanApprove');
    assert.equal(r({ region: 7, amount: 1 }).effect, 'Deny');
    assert.equal(r({ amount: 1 }).effect, 'Deny', 'region missing: the Deny rule might apply');
    const d = r({ region: 'us' });
    assert.deepEqual([d.tier, d.matchedRules], ['HumanApprove', ['all', 'tiny']]);
  });

  it('a presence test (== null) stays decidable, so a rule can opt out of a missing field', function () {
    const rules: Rule[] = [
      { id: 'all', match: {}, tier: 'Assisted' },
      { id: 'big', match: {}, when: 'action.input.amount != null and action.input.amount > 1000', tier: 'HumanApprove' },
    ];
    const d = evaluatePolicy(snapshot(rules), req('write', { action: { runtime: 'echo', target: 't', operation: 'write', input: {} } }));
    assert.deepEqual([d.tier, d.matchedRules], ['Assisted', ['all']]);
  });
});

describe('policy check warnings about ordered comparisons', function () {
  const rule = (id: string, tier: Rule['tier'], match: Rule['match'], when?: string): Rule => ({ id, match, tier, ...(when && { when }) });

  it('warns for a stricter rule guarded by < <= > >= that overlaps a looser rule, and only then', function () {
    const at = (rules: Rule[]) => orderedGuardWarnings(rules).map((w) => w.index);
    const strict = rule('big', 'HumanApprove', { operation: 'pay' }, 'action.input.amount > 1000');
    assert.deepEqual(at([strict, rule('small', 'Assisted', { operation: 'pay' })]), [0]);
    assert.deepEqual(at([rule('small', 'Assisted', { operation: ['pay', 'refund'] }), strict]), [1]);
    assert.deepEqual(at([strict, rule('any', 'Auto', {})]), [0], 'a rule without match patterns overlaps everything');
    assert.deepEqual(at([strict, rule('small', 'Assisted', { operation: 'read' })]), [], 'no overlap');
    assert.deepEqual(at([strict, rule('other', 'ManualOnly', { operation: 'pay' })]), [], 'the other rule is stricter');
    assert.deepEqual(at([rule('eq', 'Deny', {}, "action.input.currency == 'XXX'"), rule('all', 'Auto', {})]), [], 'equality is not ordered');
    assert.deepEqual(at([rule('k', 'Deny', {}, '1 < 2'), rule('all', 'Auto', {})]), [], 'no field read');
    assert.deepEqual(at([rule('n', 'Deny', {}, "not (requester.id == 'x' or action.input.n >= 3)"), rule('all', 'Auto', {})]), [0], 'nested');
    const [w] = orderedGuardWarnings([strict, rule('small', 'Assisted', { operation: 'pay' })]);
    assert.match(w.message, /^'action\.input\.amount > 1000' guards big \(HumanApprove\), which overlaps the looser small \(Assisted\): when action\.input\.amount is missing/);
  });

  it('patterns overlap by exact text or prefix', function () {
    const table: [string | string[] | undefined, string | string[] | undefined, boolean][] = [
      ['pay', 'pay', true], ['pay', 'read', false], ['prod/*', 'prod/db', true], ['prod/*', 'dev/db', false],
      ['prod/*', 'prod/eu/*', true], ['prod/eu/*', 'prod/*', true], ['prod/*', 'dev/*', false], [undefined, 'x', true],
      [['a', 'b'], ['c', 'b'], true], [['a', 'b'], ['c'], false], ['*', 'anything', true],
    ];
    for (const [a, b, expected] of table) assert.equal(patternsOverlap(a, b), expected, `${JSON.stringify(a)} ~ ${JSON.stringify(b)}`);
  });

  it('names the file and path of the rule, also for a rule inherited from the defaults', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-lint-'));
    const defaultsFile = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'policies', 'sets', 'defaults.json'), 'utf8'));
    defaultsFile.rules = [{ id: 'huge', match: {}, when: 'action.input.amount >= 1000000', tier: 'ManualOnly' }];
    fs.writeFileSync(path.join(dir, 'defaults.json'), JSON.stringify(defaultsFile));
    fs.writeFileSync(path.join(dir, 'w.yaml'), 'schemaVersion: 1\nkind: workspace\nworkspace: w\nrules:\n  - { id: all, match: {}, tier: Auto }\n  - { id: late, match: {}, when: "action.input.age > 30", tier: Assisted }\n');
    const warnings = loadPolicyDir(dir).warnings.map((w) => [path.basename(w.file), w.path, w.message.slice(0, 40)]);
    assert.deepEqual(warnings, [
      ['defaults.json', 'rules.0.when', "(in workspace w) 'action.input.amount >="],
      ['w.yaml', 'rules.1.when', "'action.input.age > 30' guards late (Ass"],
    ]);
  });
});

describe('own-property lookups in policy maps', function () {
  // Context: `approverRoles[id]` with id `toString` read Object.prototype.toString (issue 14, item 4).
  it('ownValue finds only own keys, also on plain objects that went through JSON', function () {
    const map = JSON.parse('{"bob": ["approver"], "__proto__": ["x"]}') as Record<string, string[]>;
    for (const key of ['toString', 'constructor', 'hasOwnProperty', 'valueOf', 'nobody']) assert.equal(ownValue(map, key), undefined, key);
    assert.deepEqual(ownValue(map, 'bob'), ['approver']);
    assert.deepEqual(ownValue(map, '__proto__'), ['x'], 'an own __proto__ key is data');
    assert.equal(ownValue({}, '__proto__'), undefined);
    assert.equal(ownValue(undefined, 'bob'), undefined);
    assert.equal(ownValue(map, 5 as unknown as string), undefined);
    assert.equal(ownHas(map, 'bob') && !ownHas(map, 'toString') && !ownHas(null, 'bob'), true);
  });

  it('a flow named like an Object.prototype member has no allow-list, and a bogus tier override denies', function () {
    const rules: Rule[] = [{ id: 'chat', match: { operation: 'chat' }, tier: 'Auto' }];
    const snap: PolicySnapshot = { ...snapshot(rules), defaults: { ...defaults, flowTools: { 'flows/bot': ['search_docs'] } } };
    for (const target of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      const d = evaluatePolicy(snap, req('chat', { action: { runtime: 'echo', target, operation: 'chat', tools: ['search_docs'] } }));
      assert.deepEqual([d.effect, d.tier], ['Allow', 'Auto'], target);
    }
    const bogus = evaluatePolicy(snapshot(rules), req('chat', { tierOverride: 'toString' as 'Auto' }));
    assert.equal(bogus.effect, 'Deny');
    assert.match(bogus.reasons[0], /fail closed\): unknown tier/);
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

describe('property: a missing or mistyped field never gives a looser outcome than the well-typed input', function () {
  // Context: issue 14, item 2. For each case a well-typed input is decided, then the same input with
  // some fields removed or sent as another type (the number as a string, wrapped in an array or an
  // object, null, ...); the second decision must be at least as strict (Deny strictest), and when it
  // differs its reasons must say which condition was unknown.
  function mulberry32(seed: number) {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const rnd = mulberry32(0x5eed14);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const RANK = { Auto: 0, Assisted: 1, HumanApprove: 2, ManualOnly: 3, Deny: 4 } as const;
  const rank = (d: ReturnType<typeof evaluatePolicy>) => (d.effect === 'Deny' ? RANK.Deny : RANK[d.tier!]);

  /** Inputs whose fields have the types the conditions compare them as. */
  const wellTyped = (): { [k: string]: unknown } => ({
    amount: pick([0, 5, 999, 1000, 1001, 250000, -3.5]),
    currency: pick(['EUR', 'USD', 'GBP']),
    tags: ['a', 'b', 'prod'].filter(() => rnd() < 0.5),
    urgent: rnd() < 0.5,
  });
  // Not among the mutations: a list sent as one string. `contains` on a string is a substring test,
  // so `tags contains 'a'` on "a,b" is decided as text (documented in README "Policies").
  function mistyped(v: unknown): unknown {
    const common = [undefined, null, [v], { value: v }];
    if (typeof v === 'number') return pick([...common, String(v), v > 0]);
    if (typeof v === 'string') return pick([...common, 5, v === 'EUR']);
    if (typeof v === 'boolean') return pick([...common, String(v), v ? 1 : 0]);
    return pick([...common, 1, true]);
  }
  function mutate(input: { [k: string]: unknown }): { [k: string]: unknown } {
    const out: { [k: string]: unknown } = {};
    let changed = false;
    for (const [k, v] of Object.entries(input)) {
      if (rnd() < 0.4) {
        changed = true;
        const m = mistyped(v);
        if (m !== undefined) out[k] = m;
      } else out[k] = v;
    }
    if (!changed) delete out.amount;
    return out;
  }

  // Atoms compare each field as its well-typed kind. Presence tests (`== null`) are left out: they
  // decide on absence by design (README "Policies").
  const ATOMS = [
    () => `action.input.amount ${pick(['<', '<=', '>', '>=', '==', '!='])} ${pick([0, 1000, 5000])}`,
    () => `action.input.currency ${pick(['==', '!='])} '${pick(['EUR', 'USD'])}'`,
    () => `action.input.currency in ['EUR', 'USD']`,
    () => `'${pick(['a', 'prod'])}' in action.input.tags`,
    () => `action.input.tags contains '${pick(['a', 'b'])}'`,
    () => `action.input.urgent == ${pick(['true', 'false'])}`,
    () => `action.input.currency >= 'F'`,
    () => "'finance' in requester.roles",
  ];
  function when(depth: number): string {
    const r = rnd();
    if (depth <= 0 || r < 0.4) return pick(ATOMS)();
    if (r < 0.8) return `(${when(depth - 1)}) ${pick(['&&', '||'])} (${when(depth - 1)})`;
    return `not (${when(depth - 1)})`;
  }
  const TIERS = ['Auto', 'Assisted', 'HumanApprove', 'ManualOnly', 'Deny'] as const;
  const randomRules = (): Rule[] =>
    Array.from({ length: 1 + Math.floor(rnd() * 5) }, (_, i) => ({
      id: `r${i}`,
      match: rnd() < 0.7 ? { operation: pick(['pay', 'write']) } : {},
      ...(rnd() < 0.7 ? { when: when(2) } : {}),
      tier: pick(TIERS),
    }));

  const shipped = loadPolicyDir(path.join(PROJECT_ROOT, 'policies', 'sets'));
  const testSets = loadPolicyDir(TEST_POLICY_DIR);
  const shippedSnaps = [...shipped.workspaces.map((w) => shipped.snapshotFor(w)), ...testSets.workspaces.map((w) => testSets.snapshotFor(w))];
  const RUNTIMES = ['activepieces', 'echo', 'langflow', 'kestra'];
  const OPERATIONS = ['pay', 'write', 'read', 'notify', 'deploy', 'wipe', 'chat'];
  const TARGETS = ['vendors/acme', 'prod/api', 'demo/x', 'support-agent', 'crm/contacts'];

  function check(snaps: () => PolicySnapshot, cases: number, stats: { equal: number; stricter: number }) {
    for (let n = 0; n < cases; n++) {
      const snap = snaps();
      // Half the cases are payments, which is where the shipped conditions are.
      const action = { runtime: pick(RUNTIMES.slice(0, 2)), target: pick(TARGETS), operation: rnd() < 0.5 ? 'pay' : pick(OPERATIONS) };
      if (rnd() < 0.3) action.runtime = pick(RUNTIMES);
      const requestedBy = { id: 'p', roles: rnd() < 0.3 ? ['finance'] : ['dev'] };
      const input = wellTyped();
      const bad = mutate(input);
      const good = evaluatePolicy(snap, { action: { ...action, input }, requestedBy });
      const worse = evaluatePolicy(snap, { action: { ...action, input: bad }, requestedBy });
      const where = `case ${n}: ${JSON.stringify({ rules: snap.rules.map((r) => [r.id, r.tier, r.when]), action, input, bad })}`;
      assert.ok(good.reasons.every((r) => !/is unknown|condition failed/.test(r)), `well-typed input decided: ${where}`);
      assert.ok(rank(worse) >= rank(good), `${good.tier ?? 'Deny'} -> ${worse.tier ?? 'Deny'}: ${where}`);
      if (rank(worse) === rank(good)) stats.equal++;
      else {
        stats.stricter++;
        assert.ok(worse.reasons.some((r) => /is unknown|condition failed/.test(r)), `stricter without a reason: ${where}`);
      }
    }
  }

  it('3000 cases over the shipped and test policy sets', function () {
    const stats = { equal: 0, stricter: 0 };
    check(() => pick(shippedSnaps), 3000, stats);
    assert.ok(stats.stricter >= 100 && stats.equal >= 100, JSON.stringify(stats));
  });

  it('3000 cases over random rule sets', function () {
    const stats = { equal: 0, stricter: 0 };
    check(() => snapshot(randomRules()), 3000, stats);
    assert.ok(stats.stricter >= 200 && stats.equal >= 200, JSON.stringify(stats));
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
