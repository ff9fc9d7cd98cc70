/**
 * The quota rules without a server: the FIFO queue, both limits, the sliding window, dedup by lease
 * id, reclaiming, the run's wording of a wait, and the `quotas` section of policy files.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PolicyLoadError, loadPolicyDir } from '../activities/policy/load';
import { PROJECT_ROOT } from '../workers/config';
import { MAX_LEASES, MAX_WAITING, QUOTA_WINDOW_MS, QuotaBook, quotaFor } from '../workflows/quota/book';
import { QuotaLease } from '../workflows/quota/lease';
import { quotaProof } from '../workflows/quota/proof';
import { describeQuotaWait } from '../workflows/quota/lease';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const SECRET = 'A'.repeat(43);
const OTHER = 'B'.repeat(43);
const at = (ms: number) => new Date(T0 + ms);
const ask = (book: QuotaBook, id: string, limits = book.state.limits) =>
  book.request({ leaseId: `${id}/h`, runId: id, requestedAt: at(0).toISOString() }, limits);
const ids = (entries: { runId: string }[]) => entries.map((e) => e.runId);

describe('quota book', function () {
  it('grants in request order up to the concurrency limit; a release lets the next one in', function () {
    const book = QuotaBook.empty({ concurrentDispatches: 2 }, at(0));
    for (const id of ['a', 'b', 'c', 'd']) assert.equal(ask(book, id), 'queued');
    assert.deepEqual(ids(book.grant(at(1))), ['a', 'b']);
    assert.deepEqual(book.blocker(at(1)), { limit: 'concurrentDispatches', inUse: 2, max: 2 });
    assert.deepEqual(ids(book.grant(at(2))), []);
    book.release('b/h', undefined, at(3));
    assert.deepEqual(ids(book.grant(at(3))), ['c']);
    assert.deepEqual(ids(book.state.waiting), ['d']);
  });

  it('counts a lease id once: a repeated request while waiting, holding or after release changes nothing', function () {
    const book = QuotaBook.empty({ concurrentDispatches: 1 }, at(0));
    assert.equal(ask(book, 'a'), 'queued');
    assert.equal(ask(book, 'a'), 'waiting');
    book.grant(at(1));
    assert.equal(ask(book, 'a'), 'held');
    book.release('a/h', undefined, at(2));
    assert.equal(ask(book, 'a'), 'released');
    assert.equal(book.state.leases.length + book.state.waiting.length, 0);
    book.release('a/h', undefined, at(3));
    assert.deepEqual(book.state.released, ['a/h']);
  });

  it('the per-minute window: grants stop at the limit and resume when the oldest grant leaves the window', function () {
    const book = QuotaBook.empty({ dispatchesPerMinute: 2 }, at(0));
    ask(book, 'a');
    assert.deepEqual(ids(book.grant(at(0))), ['a']);
    book.release('a/h', undefined, at(10));
    ask(book, 'b');
    assert.deepEqual(ids(book.grant(at(1_000))), ['b']);
    book.release('b/h', undefined, at(1_010));
    ask(book, 'c');
    ask(book, 'd');
    assert.deepEqual(ids(book.grant(at(2_000))), [], 'two grants in the last minute, though none is held');
    const b = book.blocker(at(2_000))!;
    assert.deepEqual(b, { limit: 'dispatchesPerMinute', inUse: 2, max: 2, freesAt: at(QUOTA_WINDOW_MS).toISOString() });
    assert.equal(book.nextWindowChange(at(2_000)), T0 + QUOTA_WINDOW_MS);
    assert.deepEqual(ids(book.grant(at(QUOTA_WINDOW_MS - 1))), [], 'still inside the window');
    assert.deepEqual(ids(book.grant(at(QUOTA_WINDOW_MS))), ['c']);
    assert.deepEqual(ids(book.grant(at(QUOTA_WINDOW_MS + 999))), []);
    assert.deepEqual(ids(book.grant(at(QUOTA_WINDOW_MS + 1_000))), ['d']);
  });

  it('both limits at once: the tighter one at each moment holds the queue', function () {
    const book = QuotaBook.empty({ concurrentDispatches: 1, dispatchesPerMinute: 2 }, at(0));
    for (const id of ['a', 'b', 'c']) ask(book, id);
    assert.deepEqual(ids(book.grant(at(0))), ['a']);
    assert.equal(book.blocker(at(0))!.limit, 'concurrentDispatches');
    book.release('a/h', undefined, at(5));
    assert.deepEqual(ids(book.grant(at(5))), ['b']);
    book.release('b/h', undefined, at(6));
    assert.equal(book.blocker(at(6))!.limit, 'dispatchesPerMinute');
    assert.deepEqual(ids(book.grant(at(QUOTA_WINDOW_MS))), ['c']);
  });

  it('tells each waiter once where it stands; for the window it estimates when its slot frees', function () {
    const book = QuotaBook.empty({ dispatchesPerMinute: 2 }, at(0));
    for (const id of ['a', 'b', 'c', 'd', 'e']) ask(book, id);
    book.grant(at(0));
    const first = book.takeUnnotified(at(100));
    assert.deepEqual(first.map((n) => [n.entry.runId, n.position, n.blocker.freesAt]), [
      ['c', 1, at(QUOTA_WINDOW_MS).toISOString()],
      ['d', 2, at(QUOTA_WINDOW_MS).toISOString()],
      ['e', 3, undefined],
    ]);
    assert.deepEqual(book.takeUnnotified(at(200)), [], 'told once');
  });

  it('a reclaimed lease frees capacity; an undelivered grant is taken out of the window too', function () {
    const book = QuotaBook.empty({ concurrentDispatches: 1, dispatchesPerMinute: 1 }, at(0));
    for (const id of ['a', 'b', 'c']) ask(book, id);
    book.grant(at(0));
    book.reclaim('a/h', at(1), true);
    assert.deepEqual(ids(book.grant(at(1))), ['b'], 'nothing ran under a: its grant does not count');
    book.reclaim('b/h', at(2), false);
    assert.deepEqual(ids(book.grant(at(2))), [], 'b was granted and ran: its grant still counts');
    assert.equal(book.blocker(at(2))!.limit, 'dispatchesPerMinute');
  });

  it('limits come from setLimits (the policy load), never from a request; lowering them holds new grants until enough leases are back', function () {
    const book = QuotaBook.empty({ concurrentDispatches: 3 }, at(0));
    for (const id of ['a', 'b', 'c']) ask(book, id);
    book.grant(at(0));
    book.setLimits({ concurrentDispatches: 1 }, at(0));
    book.request({ leaseId: 'd/h', runId: 'd', requestedAt: at(0).toISOString(), secret: SECRET });
    assert.deepEqual(book.state.limits, { concurrentDispatches: 1 }, 'a request without limits leaves them');
    book.release('a/h', undefined, at(1));
    book.release('b/h', undefined, at(1));
    assert.deepEqual(ids(book.grant(at(1))), []);
    book.release('c/h', undefined, at(2));
    assert.deepEqual(ids(book.grant(at(2))), ['d']);
    assert.equal(book.state.limitsLoadedAt, at(0).toISOString());
  });

  it('binds a lease id to the secret it was first asked with: another secret neither asks again nor releases it', function () {
    const book = QuotaBook.empty({ concurrentDispatches: 1 }, at(0));
    const entry = (secret?: string) => ({ leaseId: 'r/1/h/t', runId: 'r', requestedAt: at(0).toISOString(), ...(secret && { secret }) });
    assert.equal(book.request(entry(SECRET)), 'queued');
    assert.equal(book.request(entry(OTHER)), 'secretMismatch');
    assert.equal(book.request(entry()), 'secretMismatch', 'a version 1 request cannot take over a lease with a secret');
    assert.equal(book.request(entry(SECRET)), 'waiting');
    book.grant(at(1));
    assert.equal(book.release('r/1/h/t', undefined, at(2)), 'wrongSecret');
    assert.equal(book.release('r/1/h/t', OTHER, at(2)), 'wrongSecret');
    assert.deepEqual(ids(book.state.leases), ['r'], 'still held');
    assert.equal(book.release('r/1/h/t', SECRET, at(3)), 'released');
    assert.equal(book.state.leases.length, 0);
    assert.equal(book.release('unknown/x', undefined, at(4)), 'unknown');
  });

  it('bounded: a full queue refuses new requests, refusals are counters, and no more than MAX_LEASES are ever held', function () {
    const book = QuotaBook.empty({ dispatchesPerMinute: 1 }, at(0));
    for (let i = 0; i < MAX_WAITING; i++) assert.equal(ask(book, `w${i}`), 'queued');
    assert.equal(ask(book, 'one-more'), 'full');
    for (let i = 0; i < 5; i++) book.noteRefusal('quotaRequest:queueFull', 'x'.repeat(10_000), at(i));
    assert.deepEqual(Object.keys(book.state.refusals!), ['quotaRequest:queueFull']);
    assert.equal(book.state.refusals!['quotaRequest:queueFull'].count, 5);
    assert.ok(book.state.refusals!['quotaRequest:queueFull'].lastReason.length <= 300);
    const unlimited = QuotaBook.empty({}, at(0));
    for (let i = 0; i < MAX_LEASES + 5; i++) ask(unlimited, `u${i}`);
    assert.equal(unlimited.grant(at(1)).length, MAX_LEASES);
    assert.equal(unlimited.blocker(at(1))!.max, MAX_LEASES);
  });

  it('knows when it is idle, and survives a JSON round trip (continue-as-new)', function () {
    const book = QuotaBook.empty({ concurrentDispatches: 1 }, at(0));
    assert.ok(book.empty);
    ask(book, 'a');
    assert.equal(book.state.idleSince, undefined);
    book.grant(at(1));
    const copy = new QuotaBook(JSON.parse(JSON.stringify(book.state)));
    ask(copy, 'b');
    assert.deepEqual(ids(copy.grant(at(2))), []);
    copy.release('a/h', undefined, at(3));
    assert.deepEqual(ids(copy.grant(at(3))), ['b']);
    copy.release('b/h', undefined, at(4));
    assert.equal(copy.state.idleSince, at(4).toISOString());
  });

  it('quotaFor: the runtime\'s own entry, else *, else none', function () {
    const quotas = { echo: { concurrentDispatches: 1 }, '*': { dispatchesPerMinute: 5 } };
    assert.deepEqual(quotaFor(quotas, 'echo'), { concurrentDispatches: 1 });
    assert.deepEqual(quotaFor(quotas, 'kestra'), { dispatchesPerMinute: 5 });
    assert.equal(quotaFor({ echo: { concurrentDispatches: 1 } }, 'kestra'), undefined);
    assert.equal(quotaFor(undefined, 'echo'), undefined);
    assert.equal(quotaFor(quotas, 'constructor'), quotas['*'], 'no prototype keys');
  });

  it('a run takes a message only with the proof keyed by its secret, for its own lease', function () {
    const lease = new QuotaLease('ops/quota/echo', 'ops:r/1/h/t', { concurrentDispatches: 1 }, SECRET);
    const grant = { leaseId: 'ops:r/1/h/t', grantedAt: at(0).toISOString() };
    assert.equal(lease.refuses('quotaGranted', grant, quotaProof(SECRET, 'quotaGranted', grant)), undefined);
    assert.match(lease.refuses('quotaGranted', grant, undefined)!, /no proof/);
    assert.match(lease.refuses('quotaGranted', grant, quotaProof(OTHER, 'quotaGranted', grant))!, /wrong proof/);
    assert.match(lease.refuses('quotaGranted', { ...grant, grantedAt: at(1).toISOString() }, quotaProof(SECRET, 'quotaGranted', grant))!, /wrong proof/, 'bound to the body');
    assert.match(lease.refuses('quotaProbe', { leaseId: grant.leaseId }, quotaProof(SECRET, 'quotaGranted', { leaseId: grant.leaseId }))!, /wrong proof/, 'bound to the kind');
    const other = { ...grant, leaseId: 'ops:r/1/h/u' };
    assert.match(lease.refuses('quotaGranted', other, quotaProof(SECRET, 'quotaGranted', other))!, /another lease/);
    assert.equal(new QuotaLease('ops/quota/echo', 'ops:r/1/h', {}).refuses('quotaGranted', grant, undefined), undefined, 'a lease asked before the protocol takes any');
  });

  it('says why a run waits, and until when when it is known', function () {
    assert.equal(
      describeQuotaWait({ leaseId: 'x', position: 3, limit: 'concurrentDispatches', inUse: 2, max: 2 }, 'ops', 'kestra'),
      'waiting for quota: 2 of 2 concurrent kestra dispatches in workspace ops; position 3',
    );
    assert.equal(
      describeQuotaWait({ leaseId: 'x', position: 1, limit: 'dispatchesPerMinute', inUse: 5, max: 5, freesAt: '2026-01-01T00:01:00.000Z' }, 'ops', 'echo'),
      'waiting for quota: 5 of 5 echo dispatches in the last minute in workspace ops; position 1; a slot frees at 2026-01-01T00:01:00.000Z',
    );
  });
});

describe('quotas in policy files', function () {
  const dirWith = (quotas: unknown) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-quota-policy-'));
    fs.copyFileSync(path.join(PROJECT_ROOT, 'policies', 'sets', 'defaults.json'), path.join(dir, 'defaults.json'));
    const ws = { schemaVersion: 1, kind: 'workspace', workspace: 'ops', rules: [{ id: 'x', match: {}, tier: 'Auto' }], ...(quotas !== undefined && { quotas }) };
    fs.writeFileSync(path.join(dir, 'ops.json'), JSON.stringify(ws));
    return dir;
  };

  it('are in the snapshot, in ms, outside the policy hash', function () {
    const without = loadPolicyDir(dirWith(undefined)).snapshotFor('ops');
    const withQuotas = loadPolicyDir(dirWith({ kestra: { concurrentDispatches: 2, leaseCheckInterval: '30s' }, '*': { dispatchesPerMinute: 10 } })).snapshotFor('ops');
    assert.equal(without.quotas, undefined);
    assert.deepEqual(withQuotas.quotas, { kestra: { concurrentDispatches: 2, leaseCheckIntervalMs: 30_000 }, '*': { dispatchesPerMinute: 10 } });
    assert.equal(withQuotas.policyHash, without.policyHash, 'a limit changes when an action runs, not whether');
  });

  it('bad quotas are refused with the path inside the file', function () {
    try {
      loadPolicyDir(dirWith({ kestra: { concurrentDispatches: 0 }, echo: {}, langflow: { dispatchesPerMinute: 1.5 }, stackstorm: { concurrentDispatches: 1, burst: 3 }, 'bad key!': { concurrentDispatches: 1 }, activepieces: { dispatchesPerMinute: 1, leaseCheckInterval: '10ms' } }));
      assert.fail('expected a PolicyLoadError');
    } catch (err) {
      assert.ok(err instanceof PolicyLoadError, String(err));
      const where = err.problems.map((p) => `${p.path}: ${p.message}`).sort();
      assert.deepEqual(where.map((w) => w.split(':')[0]), [
        'quotas.activepieces.leaseCheckInterval',
        'quotas.bad key!',
        'quotas.echo',
        'quotas.kestra.concurrentDispatches',
        'quotas.langflow.dispatchesPerMinute',
        'quotas.stackstorm',
      ]);
      assert.ok(where.some((w) => /needs concurrentDispatches, dispatchesPerMinute or both/.test(w)), where.join('\n'));
    }
  });
});
