/**
 * The guarded HTTP client: default deny, host and port allow-list, link-local and metadata addresses
 * refused before and after DNS, redirects only to the same host, response size cap, and whether a
 * failed call may have reached the server.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { blockedAddress } from '../activities/http/egress';
import { entryAdmits } from '../policies/egress';
import { TransportError, createGuardedHttp } from '../activities/http/client';
import { Connections, Egress } from '../policies/connections';
import { PolicyLoadError, loadPolicyDir } from '../activities/policy/load';
import { HttpFake } from './fakes/http-fake';
import { PROJECT_ROOT } from '../workers/config';

const TEST_POLICY_DIR = path.join(PROJECT_ROOT, 'test', 'policies');

const guard = (hosts: string[] | undefined, extra: Partial<Parameters<typeof createGuardedHttp>[0]> = {}) =>
  createGuardedHttp({ workspaceId: 'ws1', runtime: 'langflow', rule: hosts ? { hosts, allowLinkLocal: false } : undefined, ...extra });

async function failureType(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApplicationFailure) return err.type ?? '';
    if (err instanceof TransportError) return `Transport:${err.code}:${err.sent}`;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('egress guard', function () {
  let fake: HttpFake;
  let other: HttpFake;
  beforeEach(async function () {
    other = await new HttpFake(() => ({ status: 200, body: { other: true } })).start();
    fake = await new HttpFake((req) => {
      if (req.path === '/same') return { status: 302, body: '', headers: { location: '/landing' } };
      if (req.path === '/landing') return { status: 200, body: { landed: req.method } };
      if (req.path === '/elsewhere') return { status: 307, body: '', headers: { location: `http://localhost:${other.port}/x` } };
      if (req.path === '/loop') return { status: 302, body: '', headers: { location: '/loop' } };
      if (req.path === '/big') return { status: 200, body: 'x'.repeat(5000) };
      if (req.path === '/slow') return { status: 200, body: {}, delayMs: 2000 };
      return { status: 200, body: { ok: true, headers: req.headers } };
    }).start();
  });
  afterEach(async function () {
    await fake.close();
    await other.close();
  });

  it('refuses every call of a runtime with no allow-list entry (default deny), before connecting', async function () {
    assert.equal(await failureType(guard(undefined).request({ method: 'GET', url: `${fake.url}/x`, timeoutMs: 1000 })), 'EgressDenied');
    assert.equal(fake.requests.length, 0);
  });

  it('admits listed hosts on listed ports only', async function () {
    const res = await guard([`127.0.0.1:${fake.port}`]).request({ method: 'GET', url: `${fake.url}/x`, timeoutMs: 1000 });
    assert.equal(res.status, 200);
    assert.deepEqual((res.body as { ok: boolean }).ok, true);
    assert.equal(await failureType(guard(['127.0.0.1:1']).request({ method: 'GET', url: `${fake.url}/x`, timeoutMs: 1000 })), 'EgressDenied');
    assert.equal(await failureType(guard(['127.0.0.1']).request({ method: 'GET', url: `${fake.url}/x`, timeoutMs: 1000 })), 'EgressDenied', 'no port means 80/443 only');
    assert.equal(fake.requests.length, 1);
  });

  it('matches wildcards on sub-domains only, and compares host names exactly', function () {
    assert.ok(entryAdmits('*.example.com', 'api.example.com', 443));
    assert.ok(!entryAdmits('*.example.com', 'example.com', 443));
    assert.ok(!entryAdmits('*.example.com', 'evil-example.com', 443));
    assert.ok(!entryAdmits('example.com', 'example.com.evil.io', 443));
    assert.ok(entryAdmits('example.com:8443', 'example.com', 8443));
    assert.ok(!entryAdmits('example.com:8443', 'example.com', 443));
    assert.ok(entryAdmits('[::1]:*', '[::1]', 9000));
  });

  it('refuses link-local and metadata addresses unless the rule allows them', async function () {
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/', 'http://0.0.0.0:80/', 'http://metadata.google.internal/computeMetadata/v1/', 'http://[::ffff:169.254.169.254]/']) {
      const host = new URL(url).host;
      assert.equal(await failureType(guard([host, `${new URL(url).hostname}:*`]).request({ method: 'GET', url, timeoutMs: 500 })), 'EgressDenied', url);
    }
    assert.equal(blockedAddress('169.254.10.1', true), undefined);
    assert.equal(blockedAddress('100.100.100.200', false), 'a cloud metadata address');
    assert.equal(blockedAddress('10.0.0.5', false), undefined, 'private networks are where runtimes live');
  });

  it('checks the addresses a name resolves to, so DNS cannot route around the guard', async function () {
    const rebinding = guard(['runtime.internal:*'], { resolve: async () => [{ address: '169.254.169.254', family: 4 }] });
    assert.equal(await failureType(rebinding.request({ method: 'GET', url: 'http://runtime.internal:8080/x', timeoutMs: 1000 })), 'EgressDenied');
    const honest = guard(['runtime.internal:*'], { resolve: async () => [{ address: '127.0.0.1', family: 4 }] });
    const res = await honest.request({ method: 'GET', url: `http://runtime.internal:${fake.port}/x`, timeoutMs: 1000 });
    assert.equal(res.status, 200);
  });

  it('follows redirects on the same host, turning a POST into a GET after 302', async function () {
    const res = await guard(['127.0.0.1:*']).request({ method: 'POST', url: `${fake.url}/same`, json: { a: 1 }, timeoutMs: 1000 });
    assert.deepEqual(res.body, { landed: 'GET' });
    assert.equal(await failureType(guard(['127.0.0.1:*']).request({ method: 'GET', url: `${fake.url}/loop`, timeoutMs: 1000 })), 'RuntimeRejected');
  });

  it('refuses a redirect to another host even when that host is allowed too', async function () {
    const g = guard(['127.0.0.1:*', 'localhost:*']);
    assert.equal(await failureType(g.request({ method: 'POST', url: `${fake.url}/elsewhere`, json: {}, timeoutMs: 1000 })), 'EgressDenied');
    assert.equal(other.requests.length, 0);
  });

  it('returns a 3xx as the answer when asked not to follow', async function () {
    const res = await guard(['127.0.0.1:*']).request({ method: 'GET', url: `${fake.url}/same`, timeoutMs: 1000, followRedirects: false });
    assert.equal(res.status, 302);
    assert.equal(res.headers.location, '/landing');
  });

  it('caps the response size', async function () {
    const g = guard(['127.0.0.1:*'], { maxResponseBytes: 1000 });
    assert.equal(await failureType(g.request({ method: 'GET', url: `${fake.url}/big`, timeoutMs: 1000 })), 'RuntimeRejected');
  });

  it('tells a refused connection (not sent) from a timeout (maybe applied)', async function () {
    const closed = await new HttpFake(() => ({ status: 200 })).start();
    const port = closed.port;
    await closed.close();
    assert.equal(await failureType(guard(['127.0.0.1:*']).request({ method: 'GET', url: `http://127.0.0.1:${port}/`, timeoutMs: 1000 })), 'Transport:ECONNREFUSED:false');
    assert.equal(await failureType(guard(['127.0.0.1:*']).request({ method: 'POST', url: `${fake.url}/slow`, json: {}, timeoutMs: 200 })), 'Transport:TIMEOUT:true');
  });

  it('sends the correlation headers it is given, and no credentials in URLs', async function () {
    const g = guard(['127.0.0.1:*'], { headers: { 'x-portarium-workspace': 'ws1', traceparent: '00-' + 'a'.repeat(32) + '-' + 'b'.repeat(16) + '-01' } });
    await g.request({ method: 'GET', url: `${fake.url}/x`, timeoutMs: 1000 });
    assert.equal(fake.requests[0].headers['x-portarium-workspace'], 'ws1');
    assert.match(String(fake.requests[0].headers.traceparent), /^00-a{32}-b{16}-01$/);
    assert.equal(await failureType(g.request({ method: 'GET', url: `http://u:p@127.0.0.1:${fake.port}/`, timeoutMs: 1000 })), 'EgressDenied');
  });

  it('policy files: allow-list entries and connection URLs are checked when policies load', function () {
    assert.ok(!Egress.safeParse({ langflow: { hosts: ['Bad Host'] } }).success);
    assert.ok(!Egress.safeParse({ langflow: { hosts: [] } }).success);
    assert.ok(Egress.safeParse({ langflow: { hosts: ['*.corp.example:8443', '10.0.0.5:7860', '[::1]:*'] } }).success);
    assert.ok(!Connections.safeParse({ langflow: { baseUrl: 'ftp://x' } }).success);
    assert.ok(!Connections.safeParse({ langflow: { baseUrl: 'http://user:pw@x' } }).success, 'credentials never live in policy files');
    assert.ok(!Connections.safeParse({ nifi: { baseUrl: 'http://x' } }).success);
    const parsed = Connections.parse({ kestra: { baseUrl: 'http://k:8080/', runTimeout: '2h' } });
    assert.equal(parsed.kestra?.baseUrl, 'http://k:8080');
    assert.equal(parsed.kestra?.runTimeout, 7_200_000);
    assert.equal(parsed.kestra?.tenant, 'main');
  });

  it('policy files: a connection its own egress rule would refuse is reported when policies load', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-egress-policy-'));
    try {
      fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
      const ws = { schemaVersion: 1, kind: 'workspace', workspace: 'w1', rules: [], connections: { langflow: { baseUrl: 'http://langflow.svc:7860' } }, egress: { langflow: { hosts: ['langflow.svc:7861'] } } };
      fs.writeFileSync(path.join(dir, 'w1.json'), JSON.stringify(ws));
      assert.throws(() => loadPolicyDir(dir), (e: unknown) => e instanceof PolicyLoadError && e.problems.some((p) => p.path === 'connections.langflow.baseUrl'));
      ws.egress.langflow.hosts = ['langflow.svc:7860'];
      fs.writeFileSync(path.join(dir, 'w1.json'), JSON.stringify(ws));
      assert.equal(loadPolicyDir(dir).connectionsFor('w1').connections.langflow?.baseUrl, 'http://langflow.svc:7860');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
