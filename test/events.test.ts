/**
 * Domain events out, end to end on a real Temporal server: each lifecycle transition reaches the
 * workspace's subscribers (fake Activepieces webhook triggers on 127.0.0.1) as a CloudEvent with a
 * stable id, in order, in structured or binary mode; a subscriber that is down or refuses never holds
 * up or fails the run, and what it did not get shows in `status.events`.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cloudEventRequest, encodeHeaderValue, eventTraceparent } from '../activities/events/delivery';
import { PolicyLoadError, loadPolicyDir } from '../activities/policy/load';
import { eventsForState } from '../workflows/events/run-events';
import type { RunEventsStatus } from '../workflows/types';
import { RunState } from '../workflows/types';
import { SubscriberFake } from './fakes/subscriber-server';
import { keepHistory } from './support/histories';
import { TEST_POLICY_DIR, bob, decision, waitForState, waitForStatus, withWorker } from './support/harness';
import { testEnv } from './support/shared';

const PLANTED = 'sk-event-leak-check-4b1d9e';

interface SubscriberSpec {
  id: string;
  url: string;
  events?: string[];
  mode?: 'structured' | 'binary';
}

/** Test policies with the `test` workspace's subscribers set to `subs`. */
function policyDirWith(subs: SubscriberSpec[], hosts: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-events-'));
  fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
  const ws = JSON.parse(fs.readFileSync(path.join(TEST_POLICY_DIR, 'test.json'), 'utf8'));
  ws.subscribers = subs;
  ws.egress = { events: { hosts } };
  fs.writeFileSync(path.join(dir, 'test.json'), JSON.stringify(ws));
  return dir;
}

const names = (events: Record<string, unknown>[]) => events.map((e) => String(e.type).replace(/^com\.portarium\.run\.|\.v1$/g, ''));

describe('domain events', function () {
  const opts = (policyDir: string) => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir });
  let sub: SubscriberFake;
  let other: SubscriberFake;

  beforeEach(async () => {
    sub = await new SubscriberFake('flow-a').start();
    other = await new SubscriberFake('flow-b').start();
  });
  afterEach(async () => {
    await sub.close();
    await other.close();
  });

  it('an approved run tells its subscriber every step in order, as structured CloudEvents with stable ids and the run in the extensions', async function () {
    const dir = policyDirWith([{ id: 'ap', url: sub.webhookUrl }], [`127.0.0.1:${sub.port}`]);
    await withWorker(opts(dir), async (h) => {
      const run = await h.start('write', { input: { apiKey: PLANTED, n: 1 } });
      const waiting = await waitForState(run, RunState.AwaitingApproval);
      await run.decide({ kind: 'approve', ...decision(bob, waiting.actionHash) });
      const result = await run.result();
      assert.equal(result.state, RunState.Succeeded);
      const status = await waitForStatus(run, (s) => (s.events?.pending ?? 1) === 0);
      const events = sub.events();
      assert.deepEqual(names(events), ['requested', 'approval_needed', 'approved', 'dispatched', 'succeeded']);
      for (const r of sub.accepted) assert.match(String(r.headers['content-type']), /^application\/cloudevents\+json/);
      const ev = await run.evidence();
      for (const e of events) {
        assert.equal(e.specversion, '1.0');
        assert.equal(e.source, '/portarium/workspaces/test');
        assert.equal(e.subject, `runs/${run.workflowId}`);
        assert.equal(e.workspaceid, 'test');
        assert.equal(e.runid, run.workflowId);
        assert.equal(e.correlationid, status.correlationId);
        assert.match(String(e.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
        const data = e.data as { evidence: { seq: number; hash: string }; actionHash: string };
        assert.equal(data.actionHash, result.actionHash);
        // Each event names the evidence entry it reports, and that entry is in the run's chain.
        assert.equal(ev.entries.find((x) => x.seq === data.evidence.seq)?.hash, data.evidence.hash);
      }
      assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'event ids are unique');
      assert.equal(new Set(events.map((e) => String(e.traceparent).split('-')[1])).size, 1, 'one trace id for the run');
      assert.ok(!sub.accepted.some((r) => r.text.includes(PLANTED)), 'action input never leaves in an event');
      assert.deepEqual({ ...status.events, undelivered: status.events?.undelivered.length }, { publishing: true, published: 5, delivered: 5, pending: 0, undelivered: 0 });
      await keepHistory('lean-events-delivered-approved', run);
    });
  });

  it('a binary-mode subscriber gets ce-* headers and the data as the body, and only the events it asked for', async function () {
    const dir = policyDirWith(
      [
        { id: 'all', url: sub.webhookUrl },
        { id: 'ends', url: other.webhookUrl, events: ['succeeded', 'failed'], mode: 'binary' },
      ],
      [`127.0.0.1:${sub.port}`, `127.0.0.1:${other.port}`],
    );
    await withWorker(opts(dir), async (h) => {
      const run = await h.start('read');
      assert.equal((await run.result()).state, RunState.Succeeded);
      await waitForStatus(run, (s) => s.events?.pending === 0);
      assert.deepEqual(names(sub.events()), ['requested', 'dispatched', 'succeeded']);
      assert.equal(other.accepted.length, 1);
      const [r] = other.accepted;
      assert.equal(r.headers['ce-specversion'], '1.0');
      assert.equal(r.headers['ce-type'], 'com.portarium.run.succeeded.v1');
      assert.equal(r.headers['ce-runid'], encodeHeaderValue(run.workflowId));
      assert.match(String(r.headers['content-type']), /^application\/json/);
      assert.equal((JSON.parse(r.text) as { state: string }).state, RunState.Succeeded);
      // The same event, by id, in both modes.
      assert.equal(decodeURIComponent(String(r.headers['ce-id'])), sub.events()[2].id);
    });
  });

  it('a denied run publishes requested and denied', async function () {
    const dir = policyDirWith([{ id: 'ap', url: sub.webhookUrl }], [`127.0.0.1:${sub.port}`]);
    await withWorker(opts(dir), async (h) => {
      const run = await h.start('delete');
      assert.equal((await run.result()).state, RunState.Denied);
      await waitForStatus(run, (s) => s.events?.pending === 0);
      assert.deepEqual(names(sub.events()), ['requested', 'denied']);
    });
  });

  it('a subscriber answering 503 twice gets each event again with the same id until it takes it', async function () {
    const dir = policyDirWith([{ id: 'ap', url: sub.webhookUrl }], [`127.0.0.1:${sub.port}`]);
    await withWorker(opts(dir), async (h) => {
      sub.failNext = 2;
      const run = await h.start('read');
      assert.equal((await run.result()).state, RunState.Succeeded);
      const status = await waitForStatus(run, (s) => s.events?.pending === 0);
      assert.equal(sub.requests.length, sub.accepted.length + 2, 'two refused deliveries, then the rest');
      assert.deepEqual(names(sub.events()).filter((n, i, a) => a.indexOf(n) === i), ['requested', 'dispatched', 'succeeded']);
      assert.equal(status.events?.undelivered.length, 0);
      // At least once: every event arrived; a repeat (if any) carries the id the subscriber already has.
      const ids = sub.events().map((e) => e.id);
      assert.equal(new Set(ids).size, 3);
    });
  });

  it('a subscriber that is down neither delays dispatch nor fails the run; the rest is handed to runEventDelivery, which delivers once it is back', async function () {
    this.timeout(90_000);
    const dir = policyDirWith([{ id: 'ap', url: sub.webhookUrl }], [`127.0.0.1:${sub.port}`]);
    await withWorker(opts(dir), async (h) => {
      sub.mode = 'down';
      const run = await h.start('read');
      const result = await run.result();
      assert.equal(result.state, RunState.Succeeded, 'the run completed while its subscriber was down');
      assert.deepEqual(await h.ledger.counts(), { applied: 1, calls: 1 });
      assert.equal(sub.accepted.length, 0);
      const status = await run.status();
      assert.equal(status.events?.handedOffTo, `${run.workflowId}/events`);
      assert.equal(status.events?.pending, 0);
      sub.mode = 'up';
      const delivery = testEnv().client.workflow.getHandle(`${run.workflowId}/events`);
      const report = (await delivery.result()) as RunEventsStatus;
      assert.deepEqual(names(sub.events()), ['requested', 'dispatched', 'succeeded']);
      assert.equal(report.delivered, 3);
      assert.deepEqual(report.undelivered, []);
    });
  });

  it('a subscriber that refuses the event (410 gone) is not retried; the refusal shows in status', async function () {
    const dir = policyDirWith([{ id: 'ap', url: sub.webhookUrl }, { id: 'ok', url: other.webhookUrl }], [`127.0.0.1:${sub.port}`, `127.0.0.1:${other.port}`]);
    await withWorker(opts(dir), async (h) => {
      sub.mode = 'gone';
      const run = await h.start('read');
      assert.equal((await run.result()).state, RunState.Succeeded);
      const status = await waitForStatus(run, (s) => s.events?.pending === 0);
      assert.equal(sub.requests.length, 3, 'one try per event');
      assert.deepEqual(names(other.events()), ['requested', 'dispatched', 'succeeded'], 'the other subscriber is not affected');
      const undelivered = status.events!.undelivered;
      assert.deepEqual(undelivered.map((u) => [u.subscriber, u.status, u.type]), [
        ['ap', 410, 'com.portarium.run.requested.v1'],
        ['ap', 410, 'com.portarium.run.dispatched.v1'],
        ['ap', 410, 'com.portarium.run.succeeded.v1'],
      ]);
      assert.equal(status.events?.delivered, 3);
    });
  });

  it('a workspace without subscribers schedules no delivery and shows no events in status', async function () {
    await withWorker({ connection: testEnv().nativeConnection, client: testEnv().client }, async (h) => {
      const run = await h.start('read');
      assert.equal((await run.result()).state, RunState.Succeeded);
      assert.equal((await run.status()).events, undefined);
      const history = await run.handle.fetchHistory();
      const scheduled = history.events!.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
      assert.ok(!scheduled.includes('deliverRunEvents'), `scheduled: ${scheduled.join(', ')}`);
    });
  });

  it('policy loading refuses a subscriber its own egress rule would refuse, and a duplicate subscriber id', function () {
    const dir = policyDirWith([{ id: 'ap', url: 'http://hooks.example.com/x' }, { id: 'ap', url: sub.webhookUrl }], [`127.0.0.1:${sub.port}`]);
    assert.throws(() => loadPolicyDir(dir), (err: unknown) => {
      assert.ok(err instanceof PolicyLoadError);
      const where = err.problems.map((p) => `${p.path}: ${p.message}`);
      assert.ok(where.some((w) => /^subscribers\.1\.id: duplicate subscriber id ap/.test(w)), where.join('\n'));
      return true;
    });
    const bad = policyDirWith([{ id: 'ap', url: 'http://hooks.example.com/x' }], [`127.0.0.1:${sub.port}`]);
    assert.throws(() => loadPolicyDir(bad), /subscribers\.0\.url: hooks\.example\.com is not on egress\.events\.hosts/);
    assert.equal(loadPolicyDir(policyDirWith([{ id: 'ap', url: sub.webhookUrl }], [`127.0.0.1:${sub.port}`])).snapshotFor('test').publishesEvents, true);
    // Who hears about a run does not decide it: the policy hash is the same with or without subscribers.
    assert.equal(loadPolicyDir(policyDirWith([{ id: 'ap', url: sub.webhookUrl }], [`127.0.0.1:${sub.port}`])).snapshotFor('test').policyHash, loadPolicyDir(TEST_POLICY_DIR).snapshotFor('test').policyHash);
  });

  it('maps transitions to events and encodes binary headers as the HTTP binding asks', function () {
    assert.deepEqual(eventsForState(RunState.Dispatching, 'HumanApprove'), ['approved', 'dispatched']);
    assert.deepEqual(eventsForState(RunState.Dispatching, 'Auto'), ['dispatched']);
    assert.deepEqual(eventsForState(RunState.VetoWindow, 'Assisted'), []);
    assert.equal(encodeHeaderValue('a b"%ü'), 'a%20b%22%25%C3%BC');
    const event = {
      specversion: '1.0', id: 'r/3/succeeded', source: '/portarium/workspaces/w', type: 'com.portarium.run.succeeded.v1', subject: 'runs/r',
      time: '2026-01-01T00:00:00.000Z', datacontenttype: 'application/json', workspaceid: 'w', correlationid: 'c 1', runid: 'r',
      data: { state: 'Succeeded' },
    } as unknown as Parameters<typeof cloudEventRequest>[0];
    const tp = eventTraceparent('r', 'r/3/succeeded');
    assert.equal(tp, eventTraceparent('r', 'r/3/succeeded'), 'stable across retries');
    const bin = cloudEventRequest(event, tp, 'binary');
    assert.equal(bin.headers['ce-correlationid'], 'c%201');
    assert.equal(bin.headers['ce-traceparent'], tp);
    assert.equal(bin.headers['content-type'], 'application/json');
    assert.equal(bin.headers['ce-datacontenttype'], undefined, 'binary mode carries it as Content-Type only');
    assert.deepEqual(JSON.parse(bin.body), { state: 'Succeeded' });
    const structured = cloudEventRequest(event, tp, 'structured');
    assert.equal(JSON.parse(structured.body).traceparent, tp);
  });
});
