/**
 * Attacks on standing approvals (grants), each as a user would see it: a grant never counts more
 * often than its grantor allowed (no forged give-back of a use, no replayed signature bringing a
 * revoked grant back), an amended action is judged and counted as a new approval, and a registry
 * that continues as new keeps every use and revocation.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { executeUpdateAgain } from '../../activities/update-again';
import { KeyringKeyProvider } from '../../workers/codec/keyring';
import type { PayloadKeyProvider } from '../../workers/codec/keys-port';
import { GrantClient } from '../../workers/grants';
import { signGrant } from '../../workflows/grants/signing';
import { grantsPingSignal, grantsQuery, revokeGrantUpdate, useGrantsUpdate } from '../../workflows/grants/messages';
import type { GrantRequest } from '../../workflows/grants/types';
import { grantRegistryId } from '../../workflows/ids';
import { hashAction } from '../../workflows/hashing';
import { temporal } from '@temporalio/proto';
import { alice, bob, decision, failureType, uid, waitForState, waitForStatus, withWorker, type Harness } from '../support/harness';
import { GRANT_KEYS, dora, erin, grantOf, grantPolicyDir } from '../support/grants';
import { testEnv, testKeyringFile } from '../support/shared';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A grant request signed by dora for the signed workspace `ws`. */
function signedByDora(ws: string, extra: Partial<GrantRequest> = {}, signedAt = new Date().toISOString()): GrantRequest {
  const req = { ...grantOf(dora, { ruleId: 'signed-granted', maxUses: 1 }), ...extra };
  const fields = { workspaceId: ws, requestId: req.requestId!, ruleId: req.ruleId, grantorId: 'dora', scope: req.scope, maxUses: req.maxUses, expiresAt: req.expiresAt, reason: req.reason, signedAt };
  return { ...req, signedAt, signature: signGrant(fields, GRANT_KEYS.dora) };
}

describe('attacks on standing approvals (real server)', function () {
  this.timeout(120_000);
  let policyDir: string;
  const taskQueue = uid('tq-gat');
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue });
  const grants = (h: Harness) => new GrantClient(h.client, h.portarium.routing);

  before(() => {
    policyDir = grantPolicyDir('gat');
    // More workspaces like gat1.
    const base = JSON.parse(fs.readFileSync(path.join(policyDir, 'gat1.json'), 'utf8'));
    for (const ws of ['gat10', 'gat11', 'gat12']) fs.writeFileSync(path.join(policyDir, `${ws}.json`), JSON.stringify({ ...base, workspace: ws }));
  });

  it('a forged give-back of a run\'s use (its use key read from history) never lets a one-use grant approve a second run', async function () {
    await withWorker(opts(), async (h) => {
      const g = await grants(h).grant('gat1', grantOf(dora, { maxUses: 1 }));
      const first = await h.start('deploy', { workspaceId: 'gat1' });
      assert.equal((await first.result()).state, 'Succeeded');
      const { runId } = await h.client.workflow.getHandle(first.workflowId).describe();
      const hash = (await first.status()).actionHash;
      const reg = h.client.workflow.getHandle(grantRegistryId('gat1'));
      // The key a run uses is in its history: anyone who can send updates can name it.
      for (const useKey of [`${first.workflowId} ${runId}`, `${first.workflowId} ${runId}#${hash.slice(0, 16)}`]) {
        await reg.executeUpdate(useGrantsUpdate, { args: [{ useKey, release: [g.id] }] });
      }
      assert.equal((await reg.query(grantsQuery)).ended.find((x) => x.id === g.id)?.uses, 1, 'the use stays taken');
      const second = await h.start('deploy', { workspaceId: 'gat1' });
      await waitForState(second, 'AwaitingApproval');
      await sleep(1000);
      assert.equal((await second.status()).approvals.length, 0, 'the grant approved one run only');
      assert.equal((await h.ledger.counts()).applied, 1);
    });
  });

  it('a signed grant replayed after it was revoked and pruned is refused; it never approves a run again', async function () {
    await withWorker(opts(), async (h) => {
      const ws = 'gats';
      const signed = signedByDora(ws);
      const g = await grants(h).grant(ws, signed);
      await grants(h).revoke(ws, { grantId: g.id, revokedBy: bob, reason: 'dora left' });
      // Enough ended grants that the registry prunes the oldest, the revoked signed one.
      for (let batch = 0; batch < 10; batch++) {
        await Promise.all(
          Array.from({ length: 10 }, async () => {
            const x = await grants(h).grant(ws, grantOf(erin));
            await grants(h).revoke(ws, { grantId: x.id, revokedBy: bob, reason: 'filler' });
          }),
        );
      }
      await grants(h).grant(ws, grantOf(erin));
      const view = await grants(h).list(ws);
      assert.ok(![...view.active, ...view.ended].some((x) => x.id === g.id), 'the revoked grant was pruned');
      // The same signed request again: refused, not a fresh grant with every use.
      await assert.rejects(grants(h).grant(ws, signed), (e: unknown) => failureType(e) === 'GrantRefused');
      assert.deepEqual((await grants(h).list(ws)).active.filter((x) => x.ruleId === 'signed-granted'), []);
      const run = await h.start('signed', { workspaceId: ws });
      await waitForState(run, 'AwaitingApproval');
      await sleep(1000);
      assert.equal((await run.status()).approvals.length, 0);
    });
  });

  it('a signed grant sent long after it was signed is refused (SignatureInvalid): an old signature cannot be replayed later', async function () {
    await withWorker(opts(), async (h) => {
      const stale = signedByDora('gats', {}, new Date(Date.now() - 20 * 60_000).toISOString());
      await assert.rejects(grants(h).grant('gats', stale), (e: unknown) => failureType(e) === 'SignatureInvalid');
      const fresh = signedByDora('gats');
      const g = await grants(h).grant('gats', fresh);
      // A retry of the very request it answered returns the same grant.
      assert.equal((await grants(h).grant('gats', fresh)).id, g.id);
      await grants(h).revoke('gats', { grantId: g.id, revokedBy: bob, reason: 'done' });
    });
  });

  it('an amended action is a new approval: a grant that covers it counts again, with a use of its own, and no refusal is recorded', async function () {
    await withWorker(opts(), async (h) => {
      const ws = 'gat2';
      const g = await grants(h).grant(ws, grantOf(dora, { ruleId: 'pay-granted', scope: { runtime: 'echo', target: 'test/*' } }));
      const run = await h.start('pay', { workspaceId: ws });
      const st = await waitForStatus(run, (s) => s.state === 'AwaitingApproval' && s.approvals.length === 1);
      assert.equal(st.approvals[0].grantId, g.id);
      await run.decide({ kind: 'requestChanges', ...decision(erin, st.actionHash, { rationale: 'smaller, please' }) });
      await waitForState(run, 'ChangesRequested');
      const newAction = { runtime: 'echo', target: 'test/other', operation: 'pay', input: { n: 2 } };
      const amended = await run.amend({ amendmentId: uid('am'), amendedBy: alice, action: newAction, reason: 'as asked' });
      assert.equal(amended.actionHash, hashAction(newAction));
      const again = await waitForStatus(run, (s) => s.state === 'AwaitingApproval' && s.actionHash === amended.actionHash && s.approvals.length === 1);
      assert.equal(again.approvals[0].approverId, 'dora');
      assert.equal(again.approvals[0].grantId, g.id);
      assert.deepEqual((await run.status()).refusals.filter((r) => r.via === 'grant'), [], 'the grant is no conflicting decision');
      assert.equal((await grants(h).list(ws)).active.find((x) => x.id === g.id)?.uses, 2, 'each approval it gave took a use');
      await run.decide({ kind: 'approve', ...decision(erin, amended.actionHash) });
      assert.equal((await run.result()).state, 'Succeeded');
    });
  });

  it('a grantor acting for another workspace cannot grant here (WorkspaceMismatch, as for a decision); no run counts it', async function () {
    await withWorker(opts(), async (h) => {
      const foreign = { ...dora, workspaceId: 'gat5' };
      await assert.rejects(grants(h).grant('gat4', grantOf(foreign)), (e: unknown) => failureType(e) === 'WorkspaceMismatch');
      assert.deepEqual((await grants(h).list('gat4')).active, []);
      const run = await h.start('deploy', { workspaceId: 'gat4' });
      const st = await waitForState(run, 'AwaitingApproval');
      await sleep(800);
      assert.equal((await run.status()).approvals.length, 0);
      // The same person deciding by hand as a principal of the other workspace is refused the same way.
      await assert.rejects(run.decide({ kind: 'approve', ...decision(foreign, st.actionHash) }), (e: unknown) => failureType(e) === 'WorkspaceMismatch');
    });
  });

  it('a registry that continues as new often keeps every use and revocation: a used-up or revoked grant never counts again', async function () {
    await withWorker(opts(), async (h) => {
      const ws = 'gat3';
      // Started by hand with a small history budget (its own continue-as-new carries the state).
      await h.client.workflow.start('grantRegistry', { workflowId: grantRegistryId(ws), taskQueue, args: [{ schemaVersion: 1, workspaceId: ws, maxHistoryEvents: 30 }] });
      const once = await grants(h).grant(ws, grantOf(dora, { maxUses: 1 }));
      const first = await h.start('deploy', { workspaceId: ws });
      assert.equal((await first.result()).state, 'Succeeded');
      const revokedOne = await grants(h).grant(ws, grantOf(erin));
      await grants(h).revoke(ws, { grantId: revokedOne.id, revokedBy: bob, reason: 'stop' });
      for (let i = 0; i < 8; i++) await grants(h).list(ws).then(() => grants(h).grant(ws, grantOf(dora, { scope: { target: 'elsewhere/*' } })));
      const described = await h.client.workflow.getHandle(grantRegistryId(ws)).describe();
      assert.notEqual(described.runId, described.raw.workflowExecutionInfo?.firstRunId, 'the registry continued as new');
      const view = await grants(h).list(ws);
      assert.equal(view.ended.find((x) => x.id === once.id)?.uses, 1);
      assert.ok(view.ended.find((x) => x.id === revokedOne.id)?.revokedAt);
      const second = await h.start('deploy', { workspaceId: ws });
      await waitForState(second, 'AwaitingApproval');
      await sleep(1000);
      assert.equal((await second.status()).approvals.length, 0);
      assert.equal((await h.ledger.counts()).applied, 1);
    });
  });

  it('a registry filled with grants of the largest size stays bounded: it refuses more, and keeps running and holding them across continue-as-new', async function () {
    await withWorker(opts(), async (h) => {
      const ws = 'gat6';
      await h.client.workflow.start('grantRegistry', { workflowId: grantRegistryId(ws), taskQueue, args: [{ schemaVersion: 1, workspaceId: ws, maxHistoryEvents: 400 }] });
      // Every field at its longest: 64 roles of 64 characters, a 2000-character condition, 1000-character reason.
      const big = () =>
        grantOf({ id: `p${uid('')}`.padEnd(128, 'p'), roles: ['approver', ...Array.from({ length: 63 }, (_, i) => `r${i}`.padEnd(64, 'x'))] }, {
          requestId: uid('req').padEnd(200, 'q'),
          reason: 'r'.repeat(1000),
          scope: { runtime: 'echo', target: `test/${'t'.repeat(506)}*`, operation: `${'o'.repeat(510)}*`, when: `action.target != "${'a'.repeat(1980)}"` },
        });
      let added = 0;
      let refused = 0;
      for (let batch = 0; batch < 22; batch++) {
        const results = await Promise.allSettled(Array.from({ length: 10 }, () => grants(h).grant(ws, big())));
        for (const r of results) {
          if (r.status === 'fulfilled') added++;
          else {
            assert.equal(failureType(r.reason), 'GrantRefused', String(r.reason));
            refused++;
          }
        }
      }
      assert.ok(refused > 0, 'a full registry refuses more grants');
      // Then every use taken under the longest keys, and every grant revoked with the longest reason.
      const reg = h.client.workflow.getHandle(grantRegistryId(ws));
      const ids = (await grants(h).list(ws)).active.map((g) => g.id);
      for (let k = 0; k < 3; k++) {
        for (let i = 0; i < ids.length; i += 20) await reg.executeUpdate(useGrantsUpdate, { args: [{ useKey: `${k}`.padEnd(300, 'k'), take: ids.slice(i, i + 20) }] });
      }
      const revoker = { id: 'b'.repeat(128), roles: [] };
      for (let i = 0; i < ids.length; i += 10) await Promise.all(ids.slice(i, i + 10).map((grantId) => grants(h).revoke(ws, { grantId, revokedBy: revoker, reason: 'z'.repeat(1000) })));
      // Enough updates for a few more continue-as-new.
      for (let i = 0; i < 40; i++) await grants(h).revoke(ws, { grantId: 'grant-999999', revokedBy: bob, reason: 'probe' }).catch(() => undefined);
      const described = await reg.describe();
      assert.equal(described.status.name, 'RUNNING');
      assert.notEqual(described.runId, described.raw.workflowExecutionInfo?.firstRunId, 'the registry continued as new');
      const view = await grants(h).list(ws);
      assert.equal(view.active.length + view.ended.length, added, 'every grant it accepted is still held');
      assert.ok(view.ended.every((g) => g.revokedAt && g.uses === 3));
    });
  });

  it('a registry started by hand with a tiny or malformed history budget does not continue as new in a loop, and keeps its grants', async function () {
    await withWorker(opts(), async (h) => {
      for (const [ws, budget] of [['gat8', 1], ['gat9', -5]] as const) {
        await h.client.workflow.start('grantRegistry', { workflowId: grantRegistryId(ws), taskQueue, args: [{ schemaVersion: 1, workspaceId: ws, maxHistoryEvents: budget }] });
        const g = await grants(h).grant(ws, grantOf(dora));
        const reg = h.client.workflow.getHandle(grantRegistryId(ws));
        const before = (await reg.describe()).runId;
        await sleep(1500);
        assert.equal((await reg.describe()).runId, before, 'an idle registry stays on one run');
        assert.equal((await grants(h).list(ws)).active[0]?.id, g.id);
      }
    });
  });

  it('fifty grants of the rule for other targets (or by the requester) never hide the one grant that covers the run', async function () {
    await withWorker(opts(), async (h) => {
      const ws = 'gat10';
      for (let i = 0; i < 5; i++) await Promise.all(Array.from({ length: 10 }, () => grants(h).grant(ws, grantOf(erin, { scope: { target: 'elsewhere/*' } }))));
      for (let i = 0; i < 5; i++) await grants(h).grant(ws, grantOf({ ...alice, roles: ['approver'] }));
      const g = await grants(h).grant(ws, grantOf(dora));
      const run = await h.start('deploy', { workspaceId: ws });
      const st = await waitForStatus(run, (s) => s.state === 'Succeeded', 15_000);
      assert.equal(st.approvals[0]?.grantId, g.id);
    });
  });

  it('a registry nobody serves (started on a queue without workers) leaves the run waiting for approvals by hand: an approval meanwhile counts, nothing hangs', async function () {
    await withWorker(opts(), async (h) => {
      const ws = 'gat11';
      await h.client.workflow.start('grantRegistry', { workflowId: grantRegistryId(ws), taskQueue: uid('tq-nobody'), args: [{ schemaVersion: 1, workspaceId: ws }] });
      const run = await h.start('deploy', { workspaceId: ws });
      const st = await waitForState(run, 'AwaitingApproval');
      await run.decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      const done = await waitForStatus(run, (s) => s.state === 'Succeeded', 80_000);
      assert.deepEqual(done.approvals.map((a) => [a.approverId, a.grantId]), [['bob', undefined]]);
      assert.ok((await run.evidence()).entries.some((e) => e.event === 'StandingGrantsUnavailable'), 'the evidence says the registry did not answer');
    });
  });

  it('a revocation the server drops unapplied (the registry continued as new while a signal arrived) is sent again and applied once', async function () {
    // Payload keys that answer slowly while `slow` is set: the registry's workflow task that
    // continues it as new takes long enough for a signal to arrive during it.
    let slow = false;
    const ring = new KeyringKeyProvider(testKeyringFile());
    const keys: PayloadKeyProvider = {
      kind: ring.kind,
      encryptionKey: async (scope) => {
        if (slow) await sleep(400);
        return ring.encryptionKey(scope);
      },
      decryptionKey: (scope, keyId) => ring.decryptionKey(scope, keyId),
      close: () => ring.close(),
    };
    await withWorker({ ...opts(), keys }, async (h) => {
      const ws = 'gat12';
      const budget = 20;
      await h.client.workflow.start('grantRegistry', { workflowId: grantRegistryId(ws), taskQueue, args: [{ schemaVersion: 1, workspaceId: ws, maxHistoryEvents: budget }] });
      const reg = h.client.workflow.getHandle(grantRegistryId(ws));
      const dropped = async () => {
        let n = 0;
        for await (const w of h.client.workflow.list({ query: `WorkflowId = '${grantRegistryId(ws)}'` })) {
          const events = (await h.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory()).events ?? [];
          n += events.filter((e) => e.workflowTaskFailedEventAttributes?.cause === temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND).length;
        }
        return n;
      };
      const revoked: string[] = [];
      for (let round = 0; round < 6 && (await dropped()) === 0; round++) {
        slow = false;
        const target = await grants(h).grant(ws, grantOf(dora));
        // Refused updates (typed, never sent again) until the run is past its budget and idle.
        for (;;) {
          const before = (await reg.describe()).runId;
          await assert.rejects(executeUpdateAgain(reg, revokeGrantUpdate, { args: [{ grantId: 'grant-999999', revokedBy: bob, reason: 'fill' }] }), WorkflowUpdateFailedError);
          const d = await reg.describe();
          if (d.runId === before && d.historyLength > budget) break;
        }
        // The next update is handled in the task that continues as new; a signal lands during it.
        slow = true;
        const revoke = executeUpdateAgain(reg, revokeGrantUpdate, { args: [{ grantId: target.id, revokedBy: bob, reason: `round ${round}` }] });
        await sleep(150);
        await reg.signal(grantsPingSignal);
        assert.equal((await revoke).revokedAt !== undefined, true);
        revoked.push(target.id);
      }
      slow = false;
      assert.ok((await dropped()) > 0, 'the server refused a task that continued the registry as new');
      const view = await grants(h).list(ws);
      for (const [i, id] of revoked.entries()) {
        const g = view.ended.find((x) => x.id === id);
        assert.equal(g?.revokedBy, 'bob', `${id} is revoked`);
        assert.equal(g?.revokeReason, `round ${i}`);
      }
      assert.equal(view.active.length, 0);
    });
  });

  it('a request id taken first by someone else\'s grant is refused for the real grantor (GrantRefused), not answered with that other grant', async function () {
    await withWorker(opts(), async (h) => {
      const ws = 'gat7';
      const squat = await grants(h).grant(ws, grantOf(erin, { requestId: 'news-grant-1', scope: { runtime: 'echo' }, maxUses: 5 }));
      await assert.rejects(grants(h).grant(ws, grantOf(dora, { requestId: 'news-grant-1', scope: { target: 'test/thing' }, maxUses: 1 })), (e: unknown) => failureType(e) === 'GrantRefused');
      // The same request again (a retry) still returns its grant.
      assert.equal((await grants(h).grant(ws, grantOf(erin, { requestId: 'news-grant-1', scope: { runtime: 'echo' }, maxUses: 5 }))).id, squat.id);
    });
  });
});
