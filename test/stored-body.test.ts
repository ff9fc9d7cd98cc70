/**
 * Verification hashes an entry's body as it was stored (the file sink's line, PostgreSQL's column)
 * instead of rebuilding it: the kept body is exactly the rebuilt one for any entry, and a stored text
 * that is not the canonical one changes no verdict.
 */
import * as assert from 'node:assert/strict';
import { storedBodyOf, storedEntryFromLine, storedEntryFromText, verifyWorkspaceLog } from '../activities/evidence/log';
import { nodeEvidenceCrypto } from '../activities/evidence/verify';
import { EvidenceChain, type EvidenceEntry, entryBodyJson, verifyChain } from '../workflows/evidence-chain';
import { canonicalJson } from '../workflows/hashing';

function awkwardChain(): EvidenceEntry[] {
  const chain = new EvidenceChain({ workspaceId: 'ws', correlationId: 'c"1', runId: 'ws:run,"hash":"x"' });
  chain.append({ category: 'Plan', event: 'RunRequested', actor: { kind: 'User', id: 'alice' }, summary: 'plain' }, new Date(0));
  const first = chain.entries[0].hash;
  // A data key named hash holding a real entry hash, a summary that spells a hash member, unicode.
  chain.append({ category: 'Approval', event: 'E,"hash"', actor: { kind: 'User', id: 'bob' }, summary: `,"hash":"${first}", é 🚀 \u2028`, data: { hash: first, z: [1, { hash: first }], a: null } }, new Date(1));
  chain.append({ category: 'Action', event: 'StateSucceeded', actor: { kind: 'System', id: 'portarium' }, summary: 'done', payloadRefs: [{ kind: 'RuntimeOutput', uri: 'u', sha256: 'ab'.repeat(32), contentType: 'application/json' }] }, new Date(2));
  return [...chain.entries];
}

describe('evidence verification on stored bodies', function () {
  it('the body kept from a stored line is exactly the canonical body, whatever the entry holds', function () {
    const entries = awkwardChain();
    for (const [i, execution] of [undefined, 'exec"1,"wsSeq":9'].entries()) {
      const read = entries.map((entry, n) => storedEntryFromLine(canonicalJson({ wsSeq: n + i * 10, entry, ...(execution === undefined ? {} : { execution }) })).entry);
      read.forEach((e, n) => assert.equal(storedBodyOf(e), entryBodyJson(entries[n]), `entry ${n}`));
      assert.ok(verifyChain(read, { workspaceId: 'ws', runId: entries[0].runId }, nodeEvidenceCrypto, storedBodyOf).ok);
    }
  });

  it('text that is not the canonical layout is not kept; a kept entry cannot be edited to say something else', function () {
    const entries = awkwardChain();
    const text = canonicalJson(entries[1]);
    // The hash member moved to the front: the same entry when parsed, not the stored layout.
    const moved = `{"hash":"${entries[1].hash}",${text.slice(1).replace(`,"hash":"${entries[1].hash}"`, '')}`;
    const e = storedEntryFromText(moved) as EvidenceEntry;
    assert.equal(storedBodyOf(e), undefined);
    assert.equal(entryBodyJson(e), entryBodyJson(entries[1]));
    // Kept from its own text, the entry is frozen: an edit in memory cannot pass on the kept body.
    const kept = storedEntryFromText(text) as EvidenceEntry;
    assert.equal(storedBodyOf(kept), entryBodyJson(entries[1]));
    assert.throws(() => { kept.summary = 'edited'; }, TypeError);
    assert.throws(() => { (kept.data as { z: unknown[] }).z.push(2); }, TypeError);
    // A copy (how auditors edit a log) has no kept body: its edits are judged on the rebuilt body.
    const copy = { ...structuredClone(kept), summary: 'edited' };
    const scope = { workspaceId: 'ws', runId: entries[0].runId };
    assert.deepEqual(verifyChain([entries[0], copy, entries[2]], scope, nodeEvidenceCrypto, storedBodyOf), { ok: false, seq: 1, reason: 'hash_mismatch' });
  });

  it('a workspace log read from lines verifies, and an edited line is named as before', function () {
    const entries = awkwardChain();
    const lines = entries.map((entry, wsSeq) => canonicalJson({ wsSeq, entry }));
    const log = (ls: string[]) => ({ workspaceId: 'ws', entries: ls.map(storedEntryFromLine), leaves: [], treeHeads: [] });
    // No leaves: the chains verify, and the verdict is that nothing is committed.
    assert.equal(verifyWorkspaceLog(log(lines), { publicKey: '00'.repeat(32), crypto: nodeEvidenceCrypto }).ok, false);
    const good = verifyWorkspaceLog(log(lines), { publicKey: '00'.repeat(32), crypto: nodeEvidenceCrypto });
    assert.ok(!good.ok && good.problem.reason === 'uncommitted', JSON.stringify(good));
    const bad = verifyWorkspaceLog(log(lines.map((l, i) => (i === 1 ? l.replace('"summary":",', '"summary":"X,') : l))), { publicKey: '00'.repeat(32), crypto: nodeEvidenceCrypto });
    assert.ok(!bad.ok && bad.problem.reason === 'hash_mismatch' && bad.problem.seq === 1, JSON.stringify(bad));
  });
});
