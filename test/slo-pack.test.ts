/**
 * The SLO pack (docs/observability/): promtool checks the alert rules and runs their unit tests; the
 * Grafana dashboard is well-formed; and every metric the rules and the dashboard name is one that a
 * real worker process (`node dist/workers/main.js`) exports on its Prometheus endpoint, after runs that
 * record each of them (counters and histograms appear only once recorded).
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PortariumClient, type RunHandle } from '../workers/client';
import { PROJECT_ROOT } from '../workers/config';
import { RevocationClient } from '../workers/revocations';
import { SubscriberFake } from './fakes/subscriber-server';
import { release, review } from './support/break-glass';
import { freePort } from './support/dev-server';
import { loadSigningKey } from '../activities/evidence/tree-head-signer';
import { TEST_POLICY_DIR, bob, decision, oscar, uid, waitForState, waitForStatus } from './support/harness';
import { testEnv } from './support/shared';
import type { JsonValue } from '../workflows/types';
import { type WorkerProcess, startWorkerProcess } from './support/worker-process';

const PACK = path.join(PROJECT_ROOT, 'docs', 'observability');
const RULES = path.join(PACK, 'prometheus-rules.yml');
const RULE_TESTS = path.join(PACK, 'prometheus-rules.test.yml');
const DASHBOARD = path.join(PACK, 'grafana-dashboard.json');

/** PromQL words that look like metric names: keywords and set operators. */
const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression selects (strings, matchers, ranges and label lists removed; calls skipped). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    if (!m[2] && !PROMQL_WORDS.has(m[1].toLowerCase())) names.add(m[1]);
  }
  return [...names];
}

interface Rule { alert: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }

function rules(): Rule[] {
  const doc = parseYaml(fs.readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

interface Panel { type: string; title: string; datasource?: { uid?: string }; targets?: { expr: string; datasource?: { uid?: string } }[]; panels?: Panel[] }

function dashboard(): { schemaVersion: number; templating: { list: { name: string; type: string; query: string }[] }; panels: Panel[] } {
  return JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
}

const dashboardExprs = () => dashboard().panels.flatMap((p) => [p, ...(p.panels ?? [])]).flatMap((p) => (p.targets ?? []).map((t) => t.expr));

/** Every metric name the rules and the dashboard use, with where. */
function namesInPack(): Map<string, string> {
  const used = new Map<string, string>();
  for (const r of rules()) for (const n of metricNames(r.expr)) used.set(n, `alert ${r.alert}`);
  for (const e of dashboardExprs()) for (const n of metricNames(e)) if (!used.has(n)) used.set(n, `dashboard: ${e}`);
  return used;
}

/** Sample names on a Prometheus text page (`x_bucket`, `x_sum`, `x_count` as they are). */
function exported(page: string): Set<string> {
  return new Set(page.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/[{\s]/)[0]));
}

/** Label names an expression groups by or matches on (`by (...)`, `{name=...}`); Prometheus' own (`le`, `instance`, `job`) left out. */
export function labelNames(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const names = new Set<string>();
  for (const m of noStrings.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) for (const n of m[1].split(',')) names.add(n.trim());
  for (const m of noStrings.matchAll(/\{([^}]*)\}/g)) for (const n of m[1].matchAll(/([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)/g)) names.add(n[1]);
  for (const own of ['', 'le', 'instance', 'job']) names.delete(own);
  return [...names];
}

/** Label names on the page's samples of `metric`. */
function labelsOn(page: string, metric: string): Set<string> {
  const names = new Set<string>();
  for (const line of page.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    for (const m of line.slice(metric.length).matchAll(/([A-Za-z_]\w*)="/g)) names.add(m[1]);
  }
  return names;
}

/** Names used but not exported, each with where it is used. */
const notExported = (used: Map<string, string>, have: Set<string>) => [...used].filter(([n]) => !have.has(n)).map(([n, where]) => `${n} (${where})`);

const RULES_OF_SLO = [
  { id: 'read-auto', match: { runtime: 'echo', operation: 'read' }, tier: 'Auto' },
  { id: 'write-approve', match: { runtime: 'echo', operation: 'write' }, tier: 'HumanApprove' },
  { id: 'lapse-approve', match: { runtime: 'echo', operation: 'lapse' }, tier: 'HumanApprove', approval: { expiresAfter: '2s' } },
  { id: 'delete-deny', match: { runtime: 'echo', operation: 'delete' }, tier: 'Deny' },
];

/** A policy dir with the test defaults and one workspace per entry (the rules above plus its extra fields). */
function policyDir(workspaces: Record<string, object>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-slo-'));
  fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
  for (const [workspace, extra] of Object.entries(workspaces)) {
    fs.writeFileSync(path.join(dir, `${workspace}.json`), JSON.stringify({ schemaVersion: 1, kind: 'workspace', workspace, rules: RULES_OF_SLO, ...extra }));
  }
  return dir;
}

/** Start an echo run of `operation` for alice on the worker's queue. */
function runStarter(taskQueue: string, workspaceId: string) {
  const client = new PortariumClient(testEnv().client, taskQueue);
  return async (operation: string, opts: { workspace?: string; target?: string; input?: Record<string, JsonValue> } = {}): Promise<RunHandle> =>
    (await client.startRun({
      workspaceId: opts.workspace ?? workspaceId, correlationId: uid('corr'), requestedBy: { id: 'alice', roles: ['dev'] },
      action: { runtime: 'echo', target: opts.target ?? 'slo/thing', operation, input: opts.input ?? {} }, idempotencyKey: uid('key'), reason: 'slo pack',
    })).run;
}

/** The run's end state (a failed run's result throws; its status says). */
const endState = (r: RunHandle) => r.result().then((x) => x.state, async () => (await r.status()).state);

/** Scrape until `until` matches the page (workflow metrics leave with each workflow task's completion). */
async function scrapeUntil(port: number, until: (page: string) => boolean, timeoutMs = 30_000): Promise<string> {
  let page = '';
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    page = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).catch(() => '');
    if (until(page) || Date.now() > deadline) return page;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The value of the sample `name{...}` whose labels include all of `labels`. */
function sample(page: string, name: string, labels: Record<string, string>): number | undefined {
  const line = page.split('\n').find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function promtoolPath(): string | undefined {
  for (const p of ['/usr/bin/promtool', ...(process.env.PATH ?? '').split(':').map((d) => path.join(d, 'promtool'))]) {
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

describe('SLO pack: alert rules and dashboard', function () {
  it('promtool finds the rules valid, and every alert fires and stays quiet in its unit tests', function () {
    const promtool = promtoolPath();
    // CI installs Debian's prometheus package (.ci/run); a developer machine may not have it.
    if (!promtool) {
      assert.ok(!process.env.CI, 'promtool is missing in CI: .ci/run installs Debian\'s prometheus package');
      console.log('      skipped: promtool is not installed (apt-get install prometheus)');
      this.skip();
    }
    const check = spawnSync(promtool!, ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool check rules:\n${check.stdout}${check.stderr}`);
    const test = spawnSync(promtool!, ['test', 'rules', RULE_TESTS], { encoding: 'utf8', cwd: PACK });
    assert.equal(test.status, 0, `promtool test rules:\n${test.stdout}${test.stderr}`);
    // Each alert has a case where it fires and one where it does not.
    const cases = (parseYaml(fs.readFileSync(RULE_TESTS, 'utf8')) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] }).tests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of rules()) {
      assert.ok(cases.some((c) => c.alertname === alert && c.exp_alerts.length > 0), `${alert}: no test where it fires`);
      assert.ok(cases.some((c) => c.alertname === alert && c.exp_alerts.length === 0), `${alert}: no test where it stays quiet`);
    }
  });

  it('every alert has a severity, a summary, a description and a runbook section in docs/observability.md', function () {
    const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'observability.md'), 'utf8');
    const anchors = new Set([...doc.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1].trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));
    for (const r of rules()) {
      assert.match(r.labels?.severity ?? '', /^(critical|warning|info)$/, `${r.alert} severity`);
      assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert} summary and description`);
      const [file, anchor] = (r.annotations?.runbook_url ?? '').split('#');
      assert.equal(file, 'docs/observability.md', `${r.alert} runbook_url`);
      assert.ok(anchors.has(anchor), `${r.alert}: docs/observability.md has no section #${anchor}`);
    }
  });

  it('the dashboard is a current Grafana dashboard on a Prometheus datasource variable', function () {
    const d = dashboard();
    assert.ok(d.schemaVersion >= 36, `schemaVersion ${d.schemaVersion}`);
    assert.ok(d.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource' && v.query === 'prometheus'));
    const panels = d.panels.filter((p) => p.type !== 'row');
    assert.ok(panels.length > 0);
    for (const p of panels) {
      assert.equal(p.datasource?.uid, '${datasource}', `${p.title} datasource`);
      assert.ok(p.targets?.length, `${p.title} has queries`);
    }
  });

  it('reads metric names out of PromQL, so a name the worker does not export is caught', function () {
    assert.deepEqual(
      metricNames('sum by (tier, le) (rate(portarium_approval_wait_bucket{outcome!="Expired", le=~"1.*"}[1h])) / 1000 > 4 * 3600 or absent(up{job="w"}) unless on (x) foo:bar offset 5m'),
      ['portarium_approval_wait_bucket', 'up', 'foo:bar'],
    );
    assert.deepEqual(metricNames('histogram_quantile(0.95, sum(rate(x_bucket[$__rate_interval])) by (le)) > bool 1e3'), ['x_bucket']);
    assert.deepEqual(labelNames('sum by (tier, le) (rate(x_bucket{outcome!="a,b}", instance="i"}[5m])) or y{poller_type="workflow_task"}'), ['tier', 'outcome', 'poller_type']);
    assert.deepEqual(notExported(new Map([['portarium_runs', 'a'], ['portarium_no_such', 'b']]), exported('# HELP portarium_runs x\nportarium_runs{state="Denied"} 1\n')), ['portarium_no_such (b)']);
  });

  describe('against a worker process', function () {
    this.timeout(120_000);
    let worker: WorkerProcess | undefined;
    let sub: SubscriberFake | undefined;
    afterEach(async () => {
      worker?.child.kill('SIGTERM');
      await sub?.close();
    });

    it('exports every metric the rules and the dashboard name, once runs record them', async function () {
      const used = namesInPack();
      sub = await new SubscriberFake().start();
      const port = await freePort();
      const taskQueue = uid('tq-slo');
      const registryId = uid('revocations-slo');
      const workspaceId = uid('slo');
      const quotaWorkspace = uid('sloq');
      const dir = policyDir({
        [workspaceId]: {
          egress: { events: { hosts: [`127.0.0.1:${sub.port}`] } },
          subscribers: [{ id: 'ap', url: sub.webhookUrl, events: ['succeeded'] }],
          breakGlass: { roles: ['oncall'], reviewers: 1, reviewWithin: '1h', rateLimit: { perPrincipal: { count: 5, per: '1h' }, perWorkspace: { count: 100, per: '1h' } } },
        },
        [quotaWorkspace]: { quotas: { echo: { concurrentDispatches: 1 } } },
      });
      worker = await startWorkerProcess({
        PORTARIUM_TASK_QUEUE: taskQueue, PORTARIUM_POLICY_DIR: dir, PORTARIUM_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-slo-data-')),
        PORTARIUM_METRICS_ADDRESS: `127.0.0.1:${port}`, PORTARIUM_REVOCATION_REGISTRY: registryId,
      });
      const start = runStarter(taskQueue, workspaceId);

      // Auto (decision to dispatch, evidence, an event delivered), Deny, a runtime failure.
      const auto = await start('read');
      const denied = await start('delete');
      const failing = await start('read', { input: { fail: 'rejected' } });
      // Approved (approval wait); one whose approval lapses (deadline reached); one revoked while it waits.
      const approved = await start('write');
      const lapsing = await start('lapse');
      const revoked = await start('write', { target: 'slo/revoke-me' });
      // Quota: the second run waits for the first one's lease.
      const holder = await start('read', { workspace: quotaWorkspace, input: { delayMs: 1500 } });
      await waitForStatus(holder, (s) => s.state === 'Dispatching');
      const queued = await start('read', { workspace: quotaWorkspace });
      // Break-glass, then its review.
      const glass = await start('write', { target: 'slo/glass' });

      await approved.handle.signal('approve', decision(bob, (await waitForState(approved, 'AwaitingApproval')).actionHash));
      await waitForState(revoked, 'AwaitingApproval');
      const revocation = await new RevocationClient(testEnv().client, taskQueue, registryId).revoke({
        scope: { workspaceId, kind: 'target', value: 'slo/revoke-me' }, reason: 'slo pack', revokedBy: oscar,
      });
      await waitForState(revoked, 'Revoked');
      await glass.breakGlass(release({ id: 'ivan', roles: ['oncall'] }, (await waitForState(glass, 'AwaitingApproval')).actionHash));
      await waitForState(glass, 'Succeeded');
      await glass.reviewBreakGlass(review(bob));
      // A workflow task that fails: a workflow type this worker does not have.
      const wedged = await testEnv().client.workflow.start('noSuchWorkflowType', { taskQueue, workflowId: uid('wedged'), args: [] });

      const ended = Object.fromEntries(await Promise.all(Object.entries({ auto, denied, failing, approved, lapsing, revoked, holder, queued, glass }).map(async ([k, r]) => [k, await endState(r)])));
      assert.deepEqual(ended, { auto: 'Succeeded', denied: 'Denied', failing: 'Failed', approved: 'Succeeded', lapsing: 'Expired', revoked: 'Revoked', holder: 'Succeeded', queued: 'Succeeded', glass: 'Succeeded' });
      const { revocation: applied } = await revoked.status();
      assert.equal(applied?.revocationId, revocation.id);
      assert.equal(applied?.effect, 'ended-before-dispatch');
      await waitForStatus(auto, (s) => s.events?.pending === 0);

      const page = await scrapeUntil(port, (p) => notExported(used, exported(p)).length === 0);
      const missing = notExported(used, exported(page));
      await wedged.terminate('slo pack: done').catch(() => undefined);
      assert.deepEqual(missing, [], `named in docs/observability/ but not exported by the worker:\n${missing.join('\n')}`);
      assert.ok(used.size >= 20, `the pack names ${used.size} metrics`);
      // Every label an expression groups by or matches on is one its metrics carry.
      const unlabelled = [...rules().map((r) => r.expr), ...dashboardExprs()].flatMap((expr) => {
        const on = metricNames(expr).map((n) => labelsOn(page, n));
        return labelNames(expr).filter((l) => !on.some((set) => set.has(l))).map((l) => `${l} in ${expr.trim()}`);
      });
      assert.deepEqual(unlabelled, [], 'labels no exported series has');
      // What the alerts read is there with the labels they group by.
      assert.match(page, /portarium_deadline_overrun_count\{[^}]*state="AwaitingApproval"/);
      assert.match(page, /portarium_quota_wait_count\{[^}]*outcome="Dispatching"/);
      assert.match(page, /portarium_evidence_appends\{[^}]*outcome="ok"/);
      assert.match(page, /portarium_event_deliveries\{[^}]*outcome="delivered"/);
      assert.match(page, /portarium_runtime_errors\{[^}]*runtime="echo"/);
      assert.match(page, /portarium_approval_wait_bucket\{[^}]*le="14400000"/, 'approval wait buckets reach hours');
      assert.match(page, /portarium_deadline_overrun_bucket\{[^}]*le="60000"/, 'the bound PortariumRunsPastDeadline reads');
    });

    it('a run stuck while its approval deadline passed records how late it acted (PortariumRunsPastDeadline reads it)', async function () {
      const taskQueue = uid('tq-slo-late');
      const workspaceId = uid('slo');
      const env = { PORTARIUM_TASK_QUEUE: taskQueue, PORTARIUM_POLICY_DIR: policyDir({ [workspaceId]: {} }), PORTARIUM_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-slo-data-')), PORTARIUM_REVOCATION_REGISTRY: uid('revocations-slo') };
      const first = await freePort();
      worker = await startWorkerProcess({ ...env, PORTARIUM_METRICS_ADDRESS: `127.0.0.1:${first}` });
      const start = runStarter(taskQueue, workspaceId);
      const onTime = await start('lapse');
      assert.equal(await endState(onTime), 'Expired');
      // A healthy worker acts on the deadline at once: within the first bucket.
      const healthy = await scrapeUntil(first, (p) => sample(p, 'portarium_deadline_overrun_count', { state: 'AwaitingApproval' }) === 1);
      assert.equal(sample(healthy, 'portarium_deadline_overrun_bucket', { state: 'AwaitingApproval', le: '1000' }), 1, 'on time');
      const late = await start('lapse');
      const { deadlines } = await waitForState(late, 'AwaitingApproval');
      // No worker while the 2 s deadline passes, and for 4 s after it.
      const stopped = worker;
      await new Promise<void>((resolve) => {
        stopped.child.once('exit', () => resolve());
        stopped.child.kill('SIGTERM');
      });
      await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(deadlines.expiresAt!) + 4_000 - Date.now())));
      const port = await freePort();
      worker = await startWorkerProcess({ ...env, PORTARIUM_METRICS_ADDRESS: `127.0.0.1:${port}` });
      assert.equal(await endState(late), 'Expired');
      // The new process saw only the late run act (the first one ended before it started).
      const page = await scrapeUntil(port, (p) => sample(p, 'portarium_deadline_overrun_count', { state: 'AwaitingApproval' }) === 1);
      const labels = { state: 'AwaitingApproval' };
      assert.equal(sample(page, 'portarium_deadline_overrun_count', labels), 1);
      assert.ok(sample(page, 'portarium_deadline_overrun_sum', labels)! >= 4_000, `acted ${sample(page, 'portarium_deadline_overrun_sum', labels)} ms late`);
      assert.equal(sample(page, 'portarium_deadline_overrun_bucket', { ...labels, le: '1000' }), 0, 'not counted as on time');
    });

    it('an evidence sink that refuses appends shows as failed appends of its kind, and nothing is dispatched (PortariumEvidenceSinkUnavailable reads it)', async function () {
      const taskQueue = uid('tq-slo-sink');
      const workspaceId = uid('slo');
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-slo-data-'));
      const keyFile = path.join(dataDir, 'evidence.key');
      loadSigningKey(keyFile, { create: true });
      const port = await freePort();
      // A PostgreSQL address nothing listens on.
      const closed = await freePort();
      worker = await startWorkerProcess({
        PORTARIUM_TASK_QUEUE: taskQueue, PORTARIUM_POLICY_DIR: policyDir({ [workspaceId]: {} }), PORTARIUM_DATA_DIR: dataDir, PORTARIUM_REVOCATION_REGISTRY: uid('revocations-slo'),
        PORTARIUM_METRICS_ADDRESS: `127.0.0.1:${port}`, PORTARIUM_EVIDENCE_SINK: 'postgres', PORTARIUM_EVIDENCE_DATABASE_URL: `postgres://portarium@127.0.0.1:${closed}/portarium`, PORTARIUM_EVIDENCE_KEY_FILE: keyFile,
      });
      const run = await runStarter(taskQueue, workspaceId)('read');
      try {
        const page = await scrapeUntil(port, (p) => (sample(p, 'portarium_evidence_appends', { sink: 'postgres', outcome: 'failed' }) ?? 0) >= 1);
        assert.ok((sample(page, 'portarium_evidence_appends', { sink: 'postgres', outcome: 'failed' }) ?? 0) >= 1, 'failed appends counted');
        assert.equal(sample(page, 'portarium_evidence_appends', { sink: 'postgres', outcome: 'ok' }), undefined, 'none succeeded');
        assert.equal(sample(page, 'portarium_dispatch_attempts', { runtime: 'echo' }), undefined, 'nothing reached the runtime');
        assert.notEqual((await run.status()).state, 'Succeeded');
      } finally {
        await run.handle.terminate('slo pack: done').catch(() => undefined);
      }
    });
  });
});
