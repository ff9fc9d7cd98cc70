/**
 * CloudEvents in: parsing and validation of both HTTP modes, routing by policy `triggers`, real
 * governed runs started from events (one run per source and id), and `portarium trigger` end to end.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PolicyLoadError, loadPolicyDir } from '../activities/policy/load';
import { routeEvent } from '../policies/triggers';
import { main } from '../workers/cli';
import { type HttpMessage, InvalidCloudEventError, MAX_EVENT_BYTES, parseCloudEvent } from '../workers/cloudevents';
import { PROJECT_ROOT } from '../workers/config';
import { TriggerRoutingError, idempotencyKeyFor, routeCloudEvent, startFromCloudEvent } from '../workers/triggers';
import type { GovernedRunInput } from '../workflows/types';
import { TEST_POLICY_DIR, uid, withWorker } from './support/harness';
import { DEV_KEYS, shared, testEnv } from './support/shared';
import { decodedHistory } from './support/leak-scan';

const STRUCTURED = 'application/cloudevents+json';
const base = { specversion: '1.0', id: 'e-1', source: '/test/pipeline', type: 'com.example.test.ping.v1' };
const structured = (ev: Record<string, unknown>, contentType = STRUCTURED): HttpMessage => ({ headers: { 'Content-Type': contentType }, body: JSON.stringify(ev) });

function refusedAttribute(message: HttpMessage): string {
  try {
    parseCloudEvent(message);
  } catch (err) {
    assert.ok(err instanceof InvalidCloudEventError, String(err));
    return err.attribute;
  }
  assert.fail('expected InvalidCloudEventError');
}

describe('cloudevents: parsing', function () {
  it('structured mode, with a charset in the content type, keeps attributes, extensions and JSON data', function () {
    const ev = parseCloudEvent(structured({ ...base, time: '2026-01-01T00:00:00Z', subject: 's', tenantid: 't-42', data: { a: 1 } }, 'application/cloudevents+json; charset=utf-8'));
    assert.deepEqual([ev.id, ev.source, ev.type, ev.time, ev.subject], ['e-1', '/test/pipeline', 'com.example.test.ping.v1', '2026-01-01T00:00:00Z', 's']);
    assert.deepEqual(ev.extensions, { tenantid: 't-42' });
    assert.deepEqual(ev.data, { a: 1 });
  });

  it('structured data_base64 is decoded by its content type', function () {
    const ev = parseCloudEvent(structured({ ...base, datacontenttype: 'application/json', data_base64: Buffer.from('{"b":2}').toString('base64') }));
    assert.deepEqual(ev.data, { b: 2 });
    const raw = parseCloudEvent(structured({ ...base, datacontenttype: 'application/octet-stream', data_base64: 'AAEC' }));
    assert.deepEqual([...(raw.data as Uint8Array)], [0, 1, 2]);
  });

  it('binary mode: ce-* headers percent-decoded, Content-Type becomes datacontenttype, a JSON body is parsed', function () {
    const ev = parseCloudEvent({
      headers: { 'ce-specversion': '1.0', 'CE-ID': 'e-2', 'ce-source': '%2Ftest%2Fa%3Fb%3D1', 'ce-type': 'com.x', 'ce-subject': 'caf%C3%A9', 'content-type': 'application/json; charset=utf-8' },
      body: '{"state":"SUCCESS"}',
    });
    assert.deepEqual([ev.id, ev.source, ev.subject, ev.datacontenttype], ['e-2', '/test/a?b=1', 'café', 'application/json; charset=utf-8']);
    assert.deepEqual(ev.data, { state: 'SUCCESS' });
    const text = parseCloudEvent({ headers: { 'ce-specversion': '1.0', 'ce-id': 'e', 'ce-source': '/s', 'ce-type': 't', 'content-type': 'text/plain' }, body: 'hi' });
    assert.equal(text.data, 'hi');
  });

  const cases: [string, HttpMessage, string][] = [
    ['missing id', structured({ ...base, id: undefined }), 'id'],
    ['empty id', structured({ ...base, id: '' }), 'id'],
    ['wrong specversion', structured({ ...base, specversion: '0.3' }), 'specversion'],
    ['missing source', structured({ ...base, source: undefined }), 'source'],
    ['source with spaces', structured({ ...base, source: 'not a uri' }), 'source'],
    ['empty type', structured({ ...base, type: '' }), 'type'],
    ['bad time', structured({ ...base, time: 'yesterday' }), 'time'],
    ['time without a zone', structured({ ...base, time: '2026-01-01T00:00:00' }), 'time'],
    ['relative dataschema', structured({ ...base, dataschema: 'schema.json' }), 'dataschema'],
    ['extension with an underscore', structured({ ...base, tenant_id: 'x' }), 'tenant_id'],
    ['extension in capitals', structured({ ...base, tenantId: 'x' }), 'tenantId'],
    ['extension longer than 20', structured({ ...base, abcdefghijklmnopqrstu: 'x' }), 'abcdefghijklmnopqrstu'],
    ['data and data_base64', structured({ ...base, data: {}, data_base64: 'AA==' }), 'data_base64'],
    ['binary with a bad percent-encoding', { headers: { 'ce-specversion': '1.0', 'ce-id': '%E0%A4%A', 'ce-source': '/s', 'ce-type': 't' } }, 'id'],
    ['binary bad header extension name', { headers: { 'ce-specversion': '1.0', 'ce-id': 'i', 'ce-source': '/s', 'ce-type': 't', 'ce-tenant_id': 'x' } }, 'tenant_id'],
    ['binary JSON body that is not JSON', { headers: { 'ce-specversion': '1.0', 'ce-id': 'i', 'ce-source': '/s', 'ce-type': 't', 'content-type': 'application/json' }, body: '{' }, 'data'],
    ['too large', structured({ ...base, data: 'x'.repeat(MAX_EVENT_BYTES) }), '(message)'],
    ['batch content type', structured({ ...base }, 'application/cloudevents-batch+json'), '(message)'],
    ['batch array in structured mode', { headers: { 'content-type': STRUCTURED }, body: JSON.stringify([base]) }, '(message)'],
    ['no ce headers, not structured', { headers: { 'content-type': 'application/json' }, body: '{}' }, 'specversion'],
  ];
  for (const [name, message, attribute] of cases) {
    it(`refuses ${name}, naming ${attribute}`, function () {
      assert.equal(refusedAttribute(message), attribute);
    });
  }

  it('an event just under the size limit is accepted', function () {
    const overhead = JSON.stringify({ ...base, data: '' }).length;
    assert.equal(parseCloudEvent(structured({ ...base, data: 'x'.repeat(MAX_EVENT_BYTES - overhead) })).data?.toString().length, MAX_EVENT_BYTES - overhead);
  });
});

const tmpPolicies = (files: Record<string, unknown>): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-trig-'));
  fs.copyFileSync(path.join(PROJECT_ROOT, 'policies', 'sets', 'defaults.json'), path.join(dir, 'defaults.json'));
  for (const [name, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), JSON.stringify(body));
  return dir;
};
const route = (id: string, type: string, source?: string, extra: Record<string, unknown> = {}) => ({
  id, match: { type, ...(source && { source }) }, action: { runtime: 'echo', target: 't/x', operation: 'read' }, requestedBy: { id: 'svc', roles: [] }, ...extra,
});
const ws = (workspace: string, triggers: unknown[]) => ({ schemaVersion: 1, kind: 'workspace', workspace, rules: [], triggers });

describe('triggers: routing', function () {
  const test = loadPolicyDir(TEST_POLICY_DIR);

  it('prefix patterns match type and source; first match wins within a workspace', function () {
    const r = routeCloudEvent(test, structured(base));
    assert.deepEqual(r.route, { workspaceId: 'test', triggerId: 'ping-read' });
    assert.equal(routeCloudEvent(test, structured({ ...base, source: 'urn:test:pinger' })).route.triggerId, 'ping-read');
    // Outside '/test/*' the first route does not match, so the next one does.
    assert.equal(routeCloudEvent(test, structured({ ...base, source: '/elsewhere' })).route.triggerId, 'ping-shadowed');
  });

  it('unrouted events are refused with TriggerNotRouted naming type and source', function () {
    assert.throws(() => routeCloudEvent(test, structured({ ...base, type: 'com.example.unknown' })),
      (e: unknown) => e instanceof TriggerRoutingError && e.type === 'TriggerNotRouted' && /com\.example\.unknown/.test(e.message) && /\/test\/pipeline/.test(e.message));
  });

  it('matches in two workspaces are TriggerAmbiguous; a workspaceid extension picks one and must agree', function () {
    const dir = tmpPolicies({ 'a.json': ws('a', [route('ra', 'com.x.*')]), 'b.json': ws('b', [route('rb', 'com.x.y', '/src')]) });
    const p = loadPolicyDir(dir);
    const ev = { ...base, type: 'com.x.y', source: '/src' };
    assert.throws(() => routeCloudEvent(p, structured(ev)), (e: unknown) => e instanceof TriggerRoutingError && e.type === 'TriggerAmbiguous');
    assert.equal(routeCloudEvent(p, structured({ ...ev, workspaceid: 'b' })).route.workspaceId, 'b');
    assert.equal(routeCloudEvent(p, structured({ ...ev, workspaceid: 'a' })).route.workspaceId, 'a');
    assert.equal(routeEvent(p.triggers(), { type: 'com.x.y', source: '/src', workspaceId: 'c' }).ok, false);
    assert.throws(() => routeCloudEvent(p, structured({ ...base, type: 'com.q', workspaceid: 'a' })), (e: unknown) => e instanceof TriggerRoutingError && e.type === 'TriggerNotRouted' && /workspace a/.test(e.message));
  });

  it('maps an event to run input: route defaults under event data, correlation id, reason, key from source and id', function () {
    const r = routeCloudEvent(test, structured({ ...base, correlationid: 'corr-9', data: { n: 5, extra: true } }));
    const expected: GovernedRunInput = {
      workspaceId: 'test', correlationId: 'corr-9', requestedBy: { id: 'svc-test', roles: ['service'] },
      action: { runtime: 'echo', target: 'test/thing', operation: 'read', input: { n: 5, from: 'route', extra: true } },
      idempotencyKey: idempotencyKeyFor('/test/pipeline', 'e-1'), reason: 'ping from a test pipeline',
    };
    assert.deepEqual(r.input, expected);
    assert.match(r.input.idempotencyKey, /^ce-[0-9a-f]{32}$/);
    const other = routeCloudEvent(test, structured({ ...base, id: 'has spaces & symbols', type: 'com.example.test.change.v1', data: [1, 2] })).input;
    assert.equal(other.correlationId, other.idempotencyKey, 'an id unusable as correlation id falls back to the key');
    assert.deepEqual(other.action.input, { data: [1, 2] });
    assert.equal(other.reason, 'com.example.test.change.v1 from /test/pipeline');
    assert.equal(other.tierOverride, 'ManualOnly');
    assert.notEqual(idempotencyKeyFor('/a', 'b\nc'), idempotencyKeyFor('/a\nb', 'c'));
  });
});

describe('triggers: policy files', function () {
  it('bad trigger definitions are reported with the file and path; policy hashes ignore triggers', function () {
    const dir = tmpPolicies({ 'a.json': ws('a', [route('r', 'com.x'), route('r', 'com.y'), { ...route('bad', 'com.z'), action: { runtime: 'echo', target: 't', operation: 'no spaces allowed' } }, { ...route('nt', 'x'), match: {} }]) });
    try {
      loadPolicyDir(dir);
      assert.fail('expected a PolicyLoadError');
    } catch (err) {
      assert.ok(err instanceof PolicyLoadError);
      assert.deepEqual(err.problems.map((p) => `${path.basename(p.file)}:${p.path}`).sort(), ['a.json:triggers.3.match.type']);
    }
    const dir2 = tmpPolicies({ 'a.json': ws('a', [route('r', 'com.x'), route('r', 'com.y'), { ...route('bad', 'com.z'), action: { runtime: 'echo', target: 't', operation: 'no spaces allowed' } }]) });
    const problems = (() => { try { loadPolicyDir(dir2); return []; } catch (e) { return (e as PolicyLoadError).problems; } })();
    assert.deepEqual(problems.map((p) => p.path).sort(), ['triggers.1.id', 'triggers.2.action.operation']);
    const withT = loadPolicyDir(tmpPolicies({ 'a.json': ws('a', [route('r', 'com.x')]) })).snapshotFor('a').policyHash;
    const without = loadPolicyDir(tmpPolicies({ 'a.json': { ...ws('a', []), triggers: undefined } })).snapshotFor('a').policyHash;
    assert.equal(withT, without);
  });

  it('the shipped demo route and sample event agree', function () {
    const p = loadPolicyDir(path.join(PROJECT_ROOT, 'policies', 'sets'));
    const body = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'examples', 'greeting-requested.json'), 'utf8');
    const r = routeCloudEvent(p, { headers: { 'content-type': STRUCTURED }, body });
    assert.deepEqual(r.route, { workspaceId: 'demo', triggerId: 'demo-greeting-requested' });
    assert.deepEqual([r.input.action.operation, r.input.action.target, r.input.correlationId], ['write', 'demo/greeting', 'pipeline-run-17']);
  });
});

interface Captured { code: number; out: string; err: string }
async function cli(...argv: string[]): Promise<Captured> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: { ...DEV_KEYS } });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('triggers: governed runs from events (real server)', function () {
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });
  const policies = loadPolicyDir(TEST_POLICY_DIR);

  it('an event starts a governedRun with the mapped input and the event in its memo; a redelivery starts nothing new', async function () {
    await withWorker(opts(), async (h) => {
      const id = uid('evt');
      const message = structured({ ...base, id, subject: 'thing', time: '2026-01-01T00:00:00Z', data: { n: 7 } });
      const first = await startFromCloudEvent(h.portarium, policies, message);
      assert.equal(first.existing, false);
      assert.equal(first.workflowId, `test:${idempotencyKeyFor(base.source, id)}`);
      const handle = h.client.workflow.getHandle(first.workflowId);
      const history = await handle.fetchHistory();
      const decoded = (await decodedHistory(h.client, first.workflowId, history)) as typeof history;
      const payload = decoded.events![0].workflowExecutionStartedEventAttributes!.input!.payloads![0];
      const input = h.client.options.loadedDataConverter.payloadConverter.fromPayload(payload) as GovernedRunInput;
      assert.deepEqual([input.workspaceId, input.correlationId, input.requestedBy.id], ['test', id, 'svc-test']);
      assert.deepEqual(input.action.input, { n: 7, from: 'route' });
      const { memo } = await handle.describe();
      assert.deepEqual(memo?.cloudEvent, { source: base.source, id, type: base.type, subject: 'thing', time: '2026-01-01T00:00:00Z', trigger: 'ping-read' });
      const result = await handle.result();
      assert.equal(result.state, 'Succeeded');

      const again = await startFromCloudEvent(h.portarium, policies, message);
      assert.deepEqual([again.existing, again.workflowId], [true, first.workflowId]);
      const runs = [];
      for await (const r of h.client.workflow.list({ query: `WorkflowId="${first.workflowId}"` })) runs.push(r);
      assert.equal(runs.length, 1);
      assert.equal((await h.ledger.counts()).applied, 1, 'the action ran once');
    });
  });

  it('portarium trigger: structured file and binary headers start one run; invalid and unrouted events exit non-zero', async function () {
    await withWorker(opts(), async (h) => {
      const conn = ['--address', shared.address!, '--task-queue', h.taskQueue, '--policies', TEST_POLICY_DIR];
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-cli-trig-'));
      const file = path.join(dir, 'event.json');
      const id = uid('cli');
      fs.writeFileSync(file, JSON.stringify({ ...base, id, data: { n: 1 } }));
      const first = await cli('trigger', '--file', file, ...conn);
      assert.equal(first.code, 0, first.err);
      const workflowId = `test:${idempotencyKeyFor(base.source, id)}`;
      assert.match(first.out, new RegExp(`^workflowId: ${workflowId}$`, 'm'));
      assert.match(first.out, /^existing: no$/m);
      assert.match(first.out, /^route: test\/ping-read$/m);

      // The same event in binary mode is the same event: found, not started again.
      const dataFile = path.join(dir, 'data.json');
      fs.writeFileSync(dataFile, '{"n":1}');
      const binary = await cli('trigger', '--header', 'ce-specversion: 1.0', '--header', `ce-id: ${id}`, '--header', 'ce-source: %2Ftest%2Fpipeline',
        '--header', `ce-type: ${base.type}`, '--content-type', 'application/json', '--data', dataFile, ...conn);
      assert.equal(binary.code, 0, binary.err);
      assert.match(binary.out, new RegExp(`^workflowId: ${workflowId}$`, 'm'));
      assert.match(binary.out, /^existing: yes/m);

      fs.writeFileSync(file, JSON.stringify({ ...base, id, time: 'noon' }));
      const invalid = await cli('trigger', '--file', file, ...conn);
      assert.equal(invalid.code, 2);
      assert.match(invalid.err, /invalid CloudEvent: time: /);

      fs.writeFileSync(file, JSON.stringify({ ...base, id, type: 'com.example.nobody' }));
      const unrouted = await cli('trigger', '--file', file, ...conn);
      assert.equal(unrouted.code, 3);
      assert.match(unrouted.err, /TriggerNotRouted: .*com\.example\.nobody.*\/test\/pipeline/);

      const usage = await cli('trigger', ...conn);
      assert.equal(usage.code, 2);
      assert.match((await cli('help')).out, /^ {2}trigger +Start the governed run/m);
    });
  });
});
