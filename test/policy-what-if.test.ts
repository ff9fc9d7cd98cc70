/**
 * `portarium policy what-if`: the pure core on hand-made runs (outcomes, conditions on the input,
 * runs that cannot be re-decided exactly), and the CLI on the recorded sample log of the shipped
 * demo policies (test/fixtures/whatif, made by test/whatif-fixture.gen.ts) under a changed copy of
 * them: counts and example ids, as a table and as JSON, reading only. No Temporal server is used.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadPolicyDir } from '../activities/policy/load';
import { type RecordedInput, type RecordedRun, type WhatIfReport, recordedRuns, whatIf } from '../activities/policy/what-if';
import type { StoredEntry } from '../activities/evidence/log';
import { main } from '../workers/cli';
import { PROJECT_ROOT } from '../workers/config';
import { hashAction } from '../workflows/hashing';
import { DEV_KEYS } from './support/shared';

const SHIPPED = path.join(PROJECT_ROOT, 'policies', 'sets');
const FIXTURE = path.join(PROJECT_ROOT, 'test', 'fixtures', 'whatif');

interface Rule { id: string; match: Record<string, unknown>; tier: string; when?: string }

/** Temporary folders of this suite, removed after it. */
const temps: string[] = [];
const tempDir = (prefix: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
};

/** A copy of the shipped policies whose `demo` workspace has `rules`. */
function policySet(rules: Rule[]): string {
  const dir = tempDir('portarium-whatif-policies-');
  fs.cpSync(SHIPPED, dir, { recursive: true });
  const demo = JSON.parse(fs.readFileSync(path.join(dir, 'demo.json'), 'utf8')) as { rules: Rule[] };
  fs.writeFileSync(path.join(dir, 'demo.json'), JSON.stringify({ ...demo, rules }, null, 2));
  return dir;
}

const snapshotOf = (rules: Rule[]) => loadPolicyDir(policySet(rules)).snapshotFor('demo');
const echo = (operation: string, tier: string, extra: Partial<Rule> = {}): Rule => ({ id: `echo-${operation}`, match: { runtime: 'echo', operation }, tier, ...extra });

/** A run as its evidence would record it; `input` is what the decided action held. */
function run(id: string, operation: string, decided: { tier?: string; rules?: string[] }, opts: { input?: Record<string, unknown>; dispatched?: boolean; at?: string; roles?: string[] } = {}): RecordedRun {
  const input = opts.input ?? {};
  const actionHash = hashAction({ runtime: 'echo', target: 'demo/greeting', operation, input });
  return {
    runId: id, requestedAt: opts.at ?? '2026-01-10T00:00:00.000Z',
    action: { runtime: 'echo', target: 'demo/greeting', operation, tools: [] },
    requestedBy: { id: 'alice', roles: opts.roles ?? ['dev'] }, requestedActionHash: actionHash,
    decision: { effect: decided.tier ? 'Allow' : 'Deny', ...(decided.tier && { tier: decided.tier }), matchedRules: decided.rules ?? [], policyHash: 'old', actionHash },
    ...(opts.dispatched && { inputSha256: createHash('sha256').update(JSON.stringify(input)).digest('hex') }),
  };
}

/** The recorded inputs of the dispatched runs among `runs`, as the payload store would return them. */
function inputsOf(runs: { run: RecordedRun; input: unknown }[]): Map<string, RecordedInput> {
  return new Map(runs.filter((r) => r.run.inputSha256).map((r) => [r.run.inputSha256!, { ok: true, input: r.input } as RecordedInput]));
}

const rule = (r: WhatIfReport, name: string) => {
  const found = r.rules.find((x) => x.rule === name);
  assert.ok(found, `no rule ${name} in ${JSON.stringify(r.rules.map((x) => x.rule))}`);
  return found;
};

interface Captured { code: number; out: string; err: string }

const cli = (...argv: string[]) => cliWith({}, ...argv);

async function cliWith(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<Captured> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: { ...DEV_KEYS, ...env } });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** A stricter and a looser demo policy: big reads need approval, writes are denied, deletes open up. */
const CHANGED: Rule[] = [
  { id: 'demo-echo-read', match: { runtime: 'echo', operation: 'read' }, tier: 'Auto' },
  { id: 'demo-echo-read-big', match: { runtime: 'echo', operation: 'read' }, when: 'action.input.size > 1000', tier: 'HumanApprove' },
  { id: 'demo-echo-write', match: { runtime: 'echo', operation: 'write' }, tier: 'Deny' },
  { id: 'demo-echo-delete', match: { runtime: 'echo', operation: 'delete' }, when: "requester.id == 'alice'", tier: 'Assisted' },
  { id: 'demo-echo-delete-tmp', match: { runtime: 'echo', operation: 'delete' }, when: "action.input.path == '/tmp'", tier: 'ManualOnly' },
];

const fixtureArgs = (policies: string, evidence = path.join(FIXTURE, 'evidence'), payloads = path.join(FIXTURE, 'payloads')) =>
  ['policy', 'what-if', '--policies', policies, '--workspace', 'demo', '--evidence-dir', evidence, '--payload-dir', payloads];

/** Every file under `dir` with its SHA-256, so a write, a new file or a new folder shows. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = path.relative(dir, path.join(e.parentPath, e.name));
    out[p] = e.isFile() ? createHash('sha256').update(fs.readFileSync(path.join(dir, p))).digest('hex') : 'dir';
  }
  return out;
}

describe('policy what-if', function () {
  after(() => {
    for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('core', function () {
    it('reports per recorded rule the runs now denied, now allowed, moved up or down a tier, and unchanged, with at most 3 example ids', function () {
      const snapshot = snapshotOf([echo('read', 'HumanApprove'), echo('write', 'Deny'), echo('delete', 'Auto'), echo('list', 'Auto')]);
      const runs = [
        ...['r1', 'r2', 'r3', 'r4'].map((id) => run(id, 'read', { tier: 'Auto', rules: ['old-read'] })),
        run('w1', 'write', { tier: 'HumanApprove', rules: ['old-write'] }),
        run('d1', 'delete', {}),
        run('l1', 'list', { tier: 'Assisted', rules: ['old-list'] }),
        run('x1', 'purge', {}),
      ];
      const r = whatIf(snapshot, runs, new Map());
      assert.deepEqual(r.runs, { total: 8, reEvaluated: 8, notReEvaluable: 0 });
      assert.deepEqual(rule(r, 'old-read').tierUp, { count: 4, examples: ['r1', 'r2', 'r3'], moves: { 'Auto→HumanApprove': 4 } });
      assert.deepEqual(rule(r, 'old-write').nowDenied, { count: 1, examples: ['w1'] });
      assert.deepEqual(rule(r, 'old-list').tierDown, { count: 1, examples: ['l1'], moves: { 'Assisted→Auto': 1 } });
      const none = rule(r, '(no rule)');
      assert.deepEqual([none.nowAllowed, none.unchanged], [{ count: 1, examples: ['d1'] }, { count: 1, examples: ['x1'] }]);
      assert.deepEqual(r.recordedPolicyHashes, { old: 8 });
      assert.equal(r.policyHash, snapshot.policyHash);
    });

    it('decides conditions on the recorded input exactly as a run does', function () {
      const snapshot = snapshotOf([echo('write', 'Auto'), { ...echo('write', 'ManualOnly'), id: 'big', when: 'action.input.amount > 1000' }]);
      const big = run('big', 'write', { tier: 'Auto', rules: ['w'] }, { input: { amount: 5000 }, dispatched: true });
      const small = run('small', 'write', { tier: 'Auto', rules: ['w'] }, { input: { amount: 10 }, dispatched: true });
      // A string amount is unknown to `>`: the stricter rule counts as matching (fail closed), as at run time.
      const text = run('text', 'write', { tier: 'Auto', rules: ['w'] }, { input: { amount: 'lots' }, dispatched: true });
      const r = whatIf(snapshot, [big, small, text],
        inputsOf([{ run: big, input: { amount: 5000 } }, { run: small, input: { amount: 10 } }, { run: text, input: { amount: 'lots' } }]));
      assert.deepEqual(rule(r, 'w').tierUp, { count: 2, examples: ['big', 'text'], moves: { 'Auto→ManualOnly': 2 } });
      assert.deepEqual(rule(r, 'w').unchanged, { count: 1, examples: ['small'] });
    });

    it('counts a run whose input it cannot read as not re-evaluable when the new policy reads the input, and re-decides it when it does not', function () {
      const lost = run('lost', 'write', { tier: 'Auto', rules: ['w'] }, { input: { amount: 5 }, dispatched: true });
      const never = run('never', 'write', {}, { input: { amount: 5 } });
      const inputs = new Map<string, RecordedInput>([[lost.inputSha256!, { ok: false, reason: 'not in the payload store' }]]);
      const reads = whatIf(snapshotOf([{ ...echo('write', 'Auto'), when: 'action.input.amount < 1000' }]), [lost, never], inputs);
      assert.deepEqual(reads.runs, { total: 2, reEvaluated: 0, notReEvaluable: 2 });
      assert.deepEqual(reads.notReEvaluable, {
        InputUnreadable: { count: 1, examples: ['lost'], details: { 'not in the payload store': 1 } },
        InputNotRecorded: { count: 1, examples: ['never'] },
      });
      assert.deepEqual(reads.rules, []);
      // Conditions that never look at the input decide the same whatever it held: re-decided.
      const ignores = whatIf(snapshotOf([{ ...echo('write', 'HumanApprove'), when: "requester.id == 'alice'" }]), [lost, never], inputs);
      assert.deepEqual(ignores.runs, { total: 2, reEvaluated: 2, notReEvaluable: 0 });
      assert.deepEqual(rule(ignores, 'w').tierUp.examples, ['lost']);
      assert.deepEqual(rule(ignores, '(no rule)').nowAllowed.examples, ['never']);
    });

    it('never re-decides on an input that does not hash to the decided action (redacted), an amended action, or a run without a decision', function () {
      const snapshot = snapshotOf([{ ...echo('write', 'Auto'), when: 'action.input.amount < 1000' }]);
      const redacted = run('redacted', 'write', { tier: 'Auto', rules: ['w'] }, { input: { token: 'abc' }, dispatched: true });
      const amended = { ...run('amended', 'write', { tier: 'Auto', rules: ['w'] }, { input: { amount: 1 } }), requestedActionHash: 'f'.repeat(64) };
      const undecided: RecordedRun = { ...run('undecided', 'write', {}), decision: undefined };
      const inputs = new Map<string, RecordedInput>([[redacted.inputSha256!, { ok: true, input: { token: '[redacted]' } }]]);
      const r = whatIf(snapshot, [redacted, amended, undecided], inputs);
      assert.deepEqual(r.runs, { total: 3, reEvaluated: 0, notReEvaluable: 3 });
      assert.deepEqual(Object.fromEntries(Object.entries(r.notReEvaluable).map(([k, v]) => [k, v.examples])), {
        InputMismatch: ['redacted'],
        ActionAmended: ['amended'],
        NoDecision: ['undecided'],
      });
    });

    it('with --since, keeps only the runs requested at or after that time', function () {
      const snapshot = snapshotOf([echo('read', 'Auto')]);
      const runs = [run('old', 'read', { tier: 'Auto', rules: ['r'] }, { at: '2026-01-01T00:00:00.000Z' }), run('new', 'read', { tier: 'Auto', rules: ['r'] }, { at: '2026-01-08T00:00:00.000Z' })];
      const r = whatIf(snapshot, runs, new Map(), { since: new Date('2026-01-07T00:00:00.000Z') });
      assert.equal(r.runs.total, 1);
      assert.deepEqual(rule(r, 'r').unchanged.examples, ['new']);
      assert.equal(r.since, '2026-01-07T00:00:00.000Z');
    });

    it('reads request, requester, last decision and input reference from a real log', function () {
      const entries = fs.readFileSync(path.join(FIXTURE, 'evidence', 'demo', 'entries.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as StoredEntry);
      const runs = recordedRuns(entries);
      assert.deepEqual(runs.map((r) => r.runId).sort(), ['read-1', 'read-2', 'read-3', 'write-1', 'write-2', 'delete-1', 'delete-2'].map((k) => `demo:whatif-${k}`).sort());
      const byId = new Map(runs.map((r) => [r.runId, r]));
      const read3 = byId.get('demo:whatif-read-3')!;
      assert.equal(read3.tierOverride, 'HumanApprove');
      assert.deepEqual(read3.decision && { ...read3.decision, policyHash: '' }, { effect: 'Allow', tier: 'HumanApprove', matchedRules: ['demo-echo-read'], policyHash: '', actionHash: read3.requestedActionHash });
      assert.deepEqual(read3.requestedBy, { id: 'alice', roles: ['dev'] });
      assert.ok(byId.get('demo:whatif-write-1')!.inputSha256, 'a dispatched run names its input');
      assert.equal(byId.get('demo:whatif-write-2')!.inputSha256, undefined, 'a rejected run was never dispatched');
      assert.equal(byId.get('demo:whatif-delete-1')!.decision!.effect, 'Deny');
    });
  });

  describe('cli on the recorded sample log', function () {
    it('the shipped policies change nothing on the runs they decided', async function () {
      const r = await cli(...fixtureArgs(SHIPPED));
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^workspace demo: 7 run\(s\), 7 re-evaluated, 0 not re-evaluable$/m);
      assert.match(r.out, /^changes: none$/m);
    });

    it('prints per recorded rule what a changed policy would change, with example run ids, as an aligned table', async function () {
      const r = await cli(...fixtureArgs(policySet(CHANGED)));
      assert.equal(r.code, 0, r.err);
      const lines = r.out.split('\n');
      assert.equal(lines[0], 'workspace demo: 7 run(s), 6 re-evaluated, 1 not re-evaluable');
      const table = lines.slice(lines.findIndex((l) => l.startsWith('rule (recorded)')), lines.indexOf('changes:'));
      assert.deepEqual(table.filter(Boolean).map((l) => l.split(/ {2,}/)), [
        ['rule (recorded)', 'runs', 'now denied', 'now allowed', 'tier up', 'tier down', 'unchanged'],
        ['(no rule)', '1', '0', '1', '0', '0', '0'],
        ['demo-echo-read', '3', '0', '0', '1', '0', '2'],
        ['demo-echo-write', '2', '2', '0', '0', '0', '0'],
      ]);
      // Aligned: every row of the table is as wide as its header.
      assert.equal(new Set(table.filter(Boolean).map((l) => l.length)).size, 1);
      assert.match(r.out, /^ {2}\(no rule\): now allowed 1: demo:whatif-delete-1$/m);
      assert.match(r.out, /^ {2}demo-echo-read: tier up Auto→HumanApprove 1: demo:whatif-read-2$/m);
      assert.match(r.out, /^ {2}demo-echo-write: now denied 2: demo:whatif-write-1, demo:whatif-write-2$/m);
      assert.match(r.out, /^ {2}InputNotRecorded: input not recorded \(never dispatched\), and the new policy reads it: 1: demo:whatif-delete-2$/m);
    });

    it('--json prints the report as JSON', async function () {
      const policies = policySet(CHANGED);
      const r = await cli(...fixtureArgs(policies), '--json');
      assert.equal(r.code, 0, r.err);
      const report = JSON.parse(r.out) as WhatIfReport;
      assert.equal(report.schema, 'portarium.policy-what-if.v1');
      assert.equal(report.policyHash, loadPolicyDir(policies).snapshotFor('demo').policyHash);
      assert.deepEqual(report.runs, { total: 7, reEvaluated: 6, notReEvaluable: 1 });
      // The shipped demo policy's hash when the sample log was recorded (it changed since: break-glass).
      assert.deepEqual(report.recordedPolicyHashes, { '0c4d9a0afee799dd99cc634f6372c7244ce09fba6bec97a838d3332819cf0182': 7 });
      assert.deepEqual(rule(report, 'demo-echo-read'), {
        rule: 'demo-echo-read', runs: 3, nowDenied: { count: 0, examples: [] }, nowAllowed: { count: 0, examples: [] },
        tierUp: { count: 1, examples: ['demo:whatif-read-2'], moves: { 'Auto→HumanApprove': 1 } }, tierDown: { count: 0, examples: [], moves: {} },
        unchanged: { count: 2, examples: ['demo:whatif-read-1', 'demo:whatif-read-3'] },
      });
      assert.deepEqual(rule(report, 'demo-echo-write').nowDenied, { count: 2, examples: ['demo:whatif-write-1', 'demo:whatif-write-2'] });
      assert.deepEqual(rule(report, '(no rule)').nowAllowed, { count: 1, examples: ['demo:whatif-delete-1'] });
      assert.deepEqual(report.notReEvaluable, { InputNotRecorded: { count: 1, examples: ['demo:whatif-delete-2'] } });
    });

    it('reads only: the evidence folder and the payload store are byte-identical afterwards, with no lock file', async function () {
      const copy = tempDir('portarium-whatif-ro-');
      fs.cpSync(FIXTURE, copy, { recursive: true });
      const before = tree(copy);
      const r = await cli(...fixtureArgs(policySet(CHANGED), path.join(copy, 'evidence'), path.join(copy, 'payloads')));
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(tree(copy), before);
      // A workspace with no folder yet is not created either.
      const other = await cli('policy', 'what-if', '--policies', SHIPPED, '--workspace', 'ops', '--evidence-dir', path.join(copy, 'evidence'), '--payload-dir', path.join(copy, 'payloads'));
      assert.equal(other.code, 0, other.err);
      assert.match(other.out, /^workspace ops: 0 run\(s\)/m);
      assert.deepEqual(tree(copy), before);
    });

    it('usage errors exit 2; an evidence sink it cannot read is a clear error, exit 1', async function () {
      for (const argv of [
        ['policy', 'what-if', '--workspace', 'demo'],
        [...fixtureArgs(SHIPPED), '--since', '7 days'],
        ['policy', 'what-if', '--policies', SHIPPED, '--workspace', 'Not A Workspace'],
      ]) {
        const r = await cli(...argv);
        assert.equal(r.code, 2, `${argv.join(' ')}: ${r.out}${r.err}`);
      }
      const missing = await cli(...fixtureArgs(SHIPPED, path.join(os.tmpdir(), 'portarium-no-such-evidence')));
      assert.equal(missing.code, 1);
      assert.match(missing.err, /^error: cannot read the evidence sink: no folder /);
      const torn = tempDir('portarium-whatif-bad-');
      fs.mkdirSync(path.join(torn, 'demo'));
      fs.writeFileSync(path.join(torn, 'demo', 'entries.jsonl'), 'not json\n');
      const bad = await cli(...fixtureArgs(SHIPPED, torn));
      assert.equal(bad.code, 1);
      assert.match(bad.err, /^error: cannot read the evidence sink \(file\): /);
      // The configured PostgreSQL sink, unreachable: the same error, and the URL's password is not in it.
      const pg = await cliWith({ PORTARIUM_EVIDENCE_DATABASE_URL: 'postgres://reader:s3cret-pw@127.0.0.1:1/evidence' }, 'policy', 'what-if', '--policies', SHIPPED, '--workspace', 'demo');
      assert.equal(pg.code, 1);
      assert.match(pg.err, /^error: cannot read the evidence sink \(postgres\): /);
      assert.doesNotMatch(pg.err, /s3cret-pw/);
    });
  });
});
