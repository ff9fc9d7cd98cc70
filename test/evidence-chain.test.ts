/**
 * The per-run evidence chain: deterministic hashes, genesis bound to the run, and every kind of
 * tampering detected at the first bad entry. Secrets are redacted before hashing.
 */
import * as assert from 'node:assert/strict';
import { type EvidenceEntry, EvidenceChain, REDACTED, genesisHash, verifyChain } from '../workflows/evidence-chain';
import { canonicalJson, hashAction } from '../workflows/hashing';

const scope = { workspaceId: 'ws', correlationId: 'c-1', runId: 'ws:key-1' };
const actor = { kind: 'User' as const, id: 'alice' };

function chainOf(n: number): EvidenceEntry[] {
  const chain = new EvidenceChain(scope);
  for (let i = 0; i < n; i++) chain.append({ category: 'System', event: `E${i}`, actor, summary: `entry ${i}` }, new Date(Date.UTC(2026, 0, 1, 0, i)));
  return JSON.parse(JSON.stringify(chain.entries));
}

describe('evidence chain', function () {
  it('canonical JSON sorts keys and drops undefined, so equal content hashes equal', function () {
    assert.equal(canonicalJson({ b: 1, a: [true, null, 'x'], c: undefined }), '{"a":[true,null,"x"],"b":1}');
    assert.equal(hashAction({ runtime: 'echo', input: { b: 2, a: 1 } }), hashAction({ input: { a: 1, b: 2 }, runtime: 'echo' }));
    assert.throws(() => canonicalJson({ x: Number.NaN }));
  });

  it('a chain verifies, and starts from a genesis bound to its run', function () {
    const entries = chainOf(4);
    assert.equal(entries[0].previousHash, genesisHash('ws', 'ws:key-1'));
    const verdict = verifyChain(entries, scope);
    assert.deepEqual(verdict, { ok: true, head: entries[3].hash, count: 4 });
    assert.deepEqual(verifyChain(entries, { workspaceId: 'ws', runId: 'ws:other' }), { ok: false, seq: 0, reason: 'scope_mismatch' });
  });

  const tampers: [string, (e: EvidenceEntry[]) => EvidenceEntry[], number, string][] = [
    ['edited summary', (e) => { e[2].summary = 'nothing to see'; return e; }, 2, 'hash_mismatch'],
    ['edited actor', (e) => { e[1].actor.id = 'mallory'; return e; }, 1, 'hash_mismatch'],
    ['deleted entry', (e) => e.filter((_, i) => i !== 1), 1, 'missing_entry'],
    ['swapped entries', (e) => [e[0], e[2], e[1], e[3]], 1, 'reordered'],
    ['duplicated entry', (e) => [e[0], e[1], e[1], e[2], e[3]], 2, 'extra_entry'],
    ['re-hashed edit', (e) => { e[1].summary = 'x'; const { hash: _h, ...body } = e[1]; e[1].hash = hashAction(body); return e; }, 2, 'previous_hash_mismatch'],
    ['relinked fork', (e) => { e[2].previousHash = 'f'.repeat(64); return e; }, 2, 'hash_mismatch'],
    ['re-hashed relink', (e) => { e[2].previousHash = 'f'.repeat(64); const { hash: _h, ...body } = e[2]; e[2].hash = hashAction(body); return e; }, 2, 'previous_hash_mismatch'],
    ['time going back', (e) => { e[3].occurredAt = '2025-01-01T00:00:00.000Z'; return e; }, 3, 'hash_mismatch'],
  ];
  for (const [name, tamper, seq, reason] of tampers) {
    it(`detects ${name} at seq ${seq}`, function () {
      assert.deepEqual(verifyChain(tamper(chainOf(4)), scope), { ok: false, seq, reason });
    });
  }

  it('redacts secret-looking fields before they are hashed into evidence', function () {
    const chain = new EvidenceChain(scope);
    const e = chain.append({ category: 'Action', event: 'X', actor, summary: 's', data: { apiKey: 'sk-123', nested: { password: 'p', ok: 1 } } }, new Date());
    assert.deepEqual(e.data, { apiKey: REDACTED, nested: { password: REDACTED, ok: 1 } });
    assert.ok(!JSON.stringify(chain.entries).includes('sk-123'));
  });
});
