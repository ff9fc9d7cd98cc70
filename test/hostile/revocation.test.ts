/**
 * Hostile `revoked` signals: the signal names a revocation id only, and a run acts only on what the
 * registry confirms. Forged, malformed and flooding notices are recorded refusals; the run stays
 * readable and decidable, and nothing is dispatched that policy did not allow.
 */
import * as assert from 'node:assert/strict';
import { bob, decision, oscar, waitForState, waitForStatus, withWorker } from '../support/harness';
import { CallRecorder, revocationOpts, revocationsOf } from '../support/revocation-fixtures';

describe('hostile: revoked signals', function () {
  this.timeout(90_000);

  it('a forged notice (an id the registry does not hold) is refused and recorded; the run is still approved and succeeds', async function () {
    const rec = new CallRecorder();
    const { opts } = revocationOpts(rec);
    await withWorker(opts, async (h) => {
      const run = await h.start('write');
      await waitForState(run, 'AwaitingApproval');
      await run.handle.signal('revoked', { revocationId: 'rev-4242' });
      const st = await waitForStatus(run, (s) => s.refusals.some((r) => r.via === 'revoked'));
      assert.deepEqual([st.state, st.refusals[0].type, st.refusals[0].decisionId], ['AwaitingApproval', 'RevocationRefused', 'rev-4242']);
      assert.equal(st.revocation, undefined);
      await run.handle.signal('approve', decision(bob, st.actionHash));
      assert.equal((await run.result()).state, 'Succeeded');
      assert.equal(rec.calls.length, 1);
    });
  });

  it('malformed notices (wrong types, extra fields, no payload, huge id) never wedge or end the run', async function () {
    const { opts } = revocationOpts(new CallRecorder());
    await withWorker(opts, async (h) => {
      const run = await h.start('write');
      await waitForState(run, 'AwaitingApproval');
      for (const bad of [{ revocationId: 7 }, { revocationId: 'rev-1', scope: { kind: 'runtime' } }, null, 'rev-1', { revocationId: `rev-${'9'.repeat(5000)}` }]) {
        await run.handle.signal('revoked', bad as never);
      }
      await run.handle.signal('revoked' as never);
      const st = await waitForStatus(run, (s) => s.refusals.filter((r) => r.via === 'revoked').reduce((n, r) => n + (r.count ?? 1), 0) >= 6);
      assert.ok(st.refusals.filter((r) => r.via === 'revoked').every((r) => r.type === 'InvalidMessage'));
      assert.equal(st.state, 'AwaitingApproval');
      await run.handle.signal('approve', decision(bob, st.actionHash));
      assert.equal((await run.result()).state, 'Succeeded');
    });
  });

  it('a genuine revocation of another target, sent to this run, changes nothing; a flood of forged ids is bounded and a real revocation still stops the dispatch', async function () {
    const rec = new CallRecorder();
    const { registryId, opts } = revocationOpts(rec);
    await withWorker(opts, async (h) => {
      const rc = revocationsOf(h, registryId);
      const run = await h.start('write');
      await waitForState(run, 'AwaitingApproval');
      const other = await rc.revoke({ scope: { workspaceId: 'test', kind: 'target', value: 'elsewhere/*' }, reason: 'not this one', revokedBy: oscar });
      await run.handle.signal('revoked', { revocationId: other.id });
      for (let i = 0; i < 30; i++) await run.handle.signal('revoked', { revocationId: `rev-${9000 + i}` });
      const st = await waitForStatus(run, (s) => (s.refusalsTotal ?? 0) >= 30, 30_000);
      assert.equal(st.state, 'AwaitingApproval');
      assert.equal(st.revocation, undefined, 'the other target\'s revocation did not apply');
      // 20 ids are asked about (the genuine one and 19 forged), the other 11 are refused unasked.
      const refused = (await run.evidence()).entries.filter((e) => e.event === 'RequestRefused').map((e) => e.summary);
      assert.equal(refused.filter((t) => /holds no revocation/.test(t)).length, 19);
      assert.equal(refused.filter((t) => /not checked/.test(t)).length, 11);
      // Past the bound the run asks no more; the dispatch-time check still refuses the covered action.
      const rev = await rc.revoke({ scope: { workspaceId: 'test', kind: 'target', value: 'test/thing' }, reason: 'now this one', revokedBy: oscar });
      await new Promise((r) => setTimeout(r, 1_000));
      const s2 = await run.status();
      if (s2.state === 'AwaitingApproval') await run.handle.signal('approve', decision(bob, s2.actionHash));
      assert.equal((await run.result()).state, 'Revoked');
      assert.equal((await run.status()).revocation?.revocationId, rev.id);
      assert.equal(rec.calls.length, 0);
    });
  });
});
