/**
 * Hostile egress: addresses written to slip past a string-matching block list. Every IPv6 form that
 * carries a metadata IPv4 address, odd IPv4 notations, metadata addresses of other clouds, and host
 * names that resolve to any of them are refused with EgressDenied before a byte is sent; operators'
 * allow and deny entries take CIDR ranges.
 */
import * as assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { blockedAddress } from '../../activities/http/egress';
import { TransportError, createGuardedHttp } from '../../activities/http/client';
import { Egress, type EgressRule } from '../../policies/connections';
import { entryAdmits } from '../../policies/egress';
import { HttpFake } from '../fakes/http-fake';

/** IPv6 forms of 169.254.169.254 (AWS, GCP, Azure and OpenStack metadata). */
const METADATA_IN_IPV6 = [
  '64:ff9b::a9fe:a9fe', // NAT64 well-known prefix
  '64:ff9b::169.254.169.254',
  '64:ff9b:1:a9fe:a9:fe00::', // NAT64 local-use prefix, /48 layout
  '64:ff9b:1::a9fe:a9fe', // NAT64 local-use prefix, /96 layout
  '::ffff:0:a9fe:a9fe', // IPv4-translated
  '::ffff:0:169.254.169.254',
  '::ffff:169.254.169.254', // IPv4-mapped
  '::ffff:a9fe:a9fe',
  '2002:a9fe:a9fe::1', // 6to4
  '2001:0:4136:e378:8000:63bf:5601:5601', // Teredo, client 169.254.169.254 obfuscated
  '::a9fe:a9fe', // IPv4-compatible
  '[::ffff:a9fe:a9fe]',
];

/** 169.254.169.254 as inet_aton reads it. */
const ODD_IPV4 = ['2852039166', '0251.0376.0251.0376', '0xa9fea9fe', '0xa9.0xfe.0xa9.0xfe', '169.254.43518', '169.16689662'];

const rule = (hosts: string[], extra: Partial<EgressRule> = {}): EgressRule => ({ hosts, allowLinkLocal: false, ...extra });
const guard = (r: EgressRule, resolve?: Parameters<typeof createGuardedHttp>[0]['resolve']) => createGuardedHttp({ workspaceId: 'ws1', runtime: 'langflow', rule: r, resolve });

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'sent';
  } catch (err) {
    if (err instanceof ApplicationFailure) return err.type ?? '';
    if (err instanceof TransportError) return `Transport:${err.code}`;
    throw err;
  }
}

describe('hostile: egress', function () {
  let fake: HttpFake;
  beforeEach(async function () {
    fake = await new HttpFake(() => ({ status: 200, body: { ok: true } })).start();
  });
  afterEach(async function () {
    await fake.close();
  });

  it('refuses every IPv6 form that carries the metadata address (NAT64, mapped, translated, 6to4, Teredo, compatible)', function () {
    for (const a of METADATA_IN_IPV6) assert.ok(blockedAddress(a, false), a);
    // The same embeddings of an ordinary address pass: the check reads the address, it does not ban prefixes.
    for (const a of ['64:ff9b::808:808', '64:ff9b:1::808:808', '::ffff:10.0.0.5', '2002:808:808::1', '::1', '2606:4700::1111']) assert.equal(blockedAddress(a, false), undefined, a);
    // allowLinkLocal waives link-local and metadata in every form, as it does for 169.254.169.254 itself.
    for (const a of ['64:ff9b::a9fe:a9fe', '::ffff:0:a9fe:a9fe', '2002:a9fe:a9fe::1']) assert.equal(blockedAddress(a, true), undefined, a);
  });

  it('refuses the metadata addresses of every cloud, and unspecified, multicast and broadcast addresses', function () {
    for (const a of ['169.254.169.254', 'fd00:ec2::254', '168.63.129.16', '192.0.0.192', '100.100.100.200', 'fe80::1', 'fe80::1%eth0']) {
      assert.ok(blockedAddress(a, false), a);
      assert.equal(blockedAddress(a, true), undefined, `${a} with allowLinkLocal`);
    }
    for (const a of ['0.0.0.0', '0.1.2.3', '::', '::ffff:0.0.0.0', '224.0.0.1', 'ff02::1', '255.255.255.255', '64:ff9b::e000:1']) {
      assert.ok(blockedAddress(a, true), `${a} is refused even with allowLinkLocal`);
    }
    for (const a of ['127.0.0.1', '10.0.0.5', '192.168.1.10', '100.64.0.1', '192.0.2.1']) assert.equal(blockedAddress(a, false), undefined, a);
  });

  it('reads IPv4 as a resolver would (decimal, octal, hex, short forms): a URL written that way is refused before connecting', async function () {
    for (const a of ODD_IPV4) assert.ok(blockedAddress(a, false), a);
    // The allow-list admits the address; the block list must still refuse it (otherwise this would time out connecting).
    for (const a of ODD_IPV4) {
      const url = `http://${a}:8080/latest/meta-data/`;
      assert.equal(await outcome(guard(rule(['169.254.169.254:*'])).request({ method: 'GET', url, timeoutMs: 300 })), 'EgressDenied', url);
    }
    for (const a of METADATA_IN_IPV6.filter((x) => !x.startsWith('['))) {
      const url = `http://[${a}]:8080/`;
      const host = new URL(url).hostname;
      assert.equal(await outcome(guard(rule([`${host}:*`])).request({ method: 'GET', url, timeoutMs: 300 })), 'EgressDenied', url);
    }
  });

  it('a name resolving to a blocked form is refused with EgressDenied, even behind an honest first answer (DNS rebinding)', async function () {
    const url = `http://runtime.internal:${fake.port}/x`;
    for (const bad of [...METADATA_IN_IPV6.filter((x) => !x.startsWith('[')), '168.63.129.16', '192.0.0.192', '2852039166', 'not-an-address']) {
      const family = bad.includes(':') ? 6 : 4;
      const g = guard(rule(['runtime.internal:*']), async () => [{ address: '127.0.0.1', family: 4 }, { address: bad, family }]);
      assert.equal(await outcome(g.request({ method: 'GET', url, timeoutMs: 1000 })), 'EgressDenied', bad);
    }
    assert.equal(fake.requests.length, 0, 'nothing reached the server');
    // The guarded lookup is what the socket connects to: an honest answer reaches the fake.
    const honest = guard(rule(['runtime.internal:*']), async () => [{ address: '127.0.0.1', family: 4 }]);
    assert.equal(await outcome(honest.request({ method: 'GET', url, timeoutMs: 1000 })), 'sent');
    assert.equal(fake.requests.length, 1);
  });

  it('deny entries take addresses and CIDRs, in any IPv6 form, and win over the allow-list and allowLinkLocal', async function () {
    const url = `http://runtime.internal:${fake.port}/x`;
    const to = (address: string, deny: string[]) => guard(rule(['runtime.internal:*', '127.0.0.1:*'], { deny, allowLinkLocal: true }), async () => [{ address, family: address.includes(':') ? 6 : 4 }]);
    assert.equal(await outcome(to('127.0.0.1', ['127.0.0.0/8']).request({ method: 'GET', url, timeoutMs: 1000 })), 'EgressDenied');
    assert.equal(await outcome(to('::ffff:127.0.0.1', ['127.0.0.0/8']).request({ method: 'GET', url, timeoutMs: 1000 })), 'EgressDenied');
    assert.equal(await outcome(to('127.0.0.1', ['10.0.0.0/8', 'fd00::/8']).request({ method: 'GET', url, timeoutMs: 1000 })), 'sent');
    assert.equal(await outcome(to('127.0.0.1', ['127.0.0.1']).request({ method: 'GET', url: `${fake.url}/x`, timeoutMs: 1000 })), 'EgressDenied', 'an address in the URL too');
    assert.equal(fake.requests.length, 1);
    assert.ok(blockedAddress('64:ff9b::a01:203', true, ['10.0.0.0/8']), 'NAT64 form of a denied range');
  });

  it('allow-list entries take CIDRs, matched as addresses of their own family and never as host names', async function () {
    assert.ok(entryAdmits('10.0.0.0/8:*', '10.1.2.3', 8080));
    assert.ok(entryAdmits('10.0.0.0/8', '10.1.2.3', 443));
    assert.ok(!entryAdmits('10.0.0.0/8', '10.1.2.3', 8080), 'no port means 80/443 only');
    assert.ok(!entryAdmits('10.0.0.0/8:*', '11.0.0.1', 80));
    assert.ok(!entryAdmits('10.0.0.0/8:*', '[::ffff:a00:1]', 80), 'an IPv6 form of an allowed IPv4 address is not admitted');
    assert.ok(!entryAdmits('10.0.0.0/8:*', '10.example.com', 80));
    assert.ok(entryAdmits('[fd00::/8]:*', '[fd12::1]', 9000));
    assert.ok(!entryAdmits('[fd00::/8]:*', '[fe80::1]', 9000));
    assert.ok(entryAdmits('[0:0:0:0:0:0:0:1]:*', '[::1]', 9000), 'addresses compare as addresses');
    assert.equal(await outcome(guard(rule(['127.0.0.0/8:*'])).request({ method: 'GET', url: `${fake.url}/x`, timeoutMs: 1000 })), 'sent');
    assert.equal(await outcome(guard(rule(['10.0.0.0/8:*'])).request({ method: 'GET', url: `${fake.url}/x`, timeoutMs: 1000 })), 'EgressDenied');
    // Policy files: a range with host bits set is a typo, a deny entry must be an address or range.
    assert.ok(Egress.safeParse({ langflow: { hosts: ['10.0.0.0/8:*', '[fd00::/8]:443', '192.168.0.0/16'], deny: ['10.1.0.0/16', 'fd00:ec2::254'] } }).success);
    for (const bad of [{ hosts: ['10.0.0.5/8'] }, { hosts: ['host.example/8'] }, { hosts: ['[fd00::1/8]'] }, { hosts: ['x.example'], deny: ['10.0.0.0/33'] }, { hosts: ['x.example'], deny: ['evil.example'] }]) {
      assert.ok(!Egress.safeParse({ langflow: bad }).success, JSON.stringify(bad));
    }
  });
});
