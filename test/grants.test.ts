/**
 * Standing approvals on a real Temporal server: a grant counts as one approval of its grantor, within
 * its scope, condition, uses and expiry; every separation-of-duties rule still holds; uses are taken
 * exactly once when runs race for the last one; revoking stops new uses at once; the registry refuses
 * grants the policy would never count; and the CLI grants, lists and revokes.
 */
import * as assert from 'node:assert/strict';
import { GrantClient } from '../workers/grants';
import { signGrant } from '../workflows/grants/signing';
import type { RunHandle } from '../workers/client';
import { alice, bob, decision, failureType, uid, waitForState, waitForStatus, withWorker, type Harness } from './support/harness';
import { GRANT_KEYS, dora, erin, grantOf, grantPolicyDir, mallory } from './support/grants';
import { keepHistory } from './support/histories';
import { cli } from './support/revocation-fixtures';
import { shared, testEnv } from './support/shared';

describe('standing approvals (real server)', function () {
  this.timeout(60_000);
  let policyDir: string;
  // One queue for the suite: a workspace's registry keeps running between tests. Each test has its own workspace.
  const taskQueue = uid('tq-grants');
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue });
  const grants = (h: Harness) => new GrantClient(h.client, h.portarium.routing);
  /** Workspaces are per test, so each starts with an empty registry. */
  const start = (h: Harness, operation: string, ws: string, extra: object = {}) => h.start(operation, { workspaceId: ws, ...extra });

  before(() => {
    policyDir = grantPolicyDir();
  });

  it('a matching grant counts as one approval of its grantor: the run dispatches, status and evidence name the grant, one use is taken', async function () {
    await withWorker(opts(), async (h) => {
      const g = await grants(h).grant('gr1', grantOf(dora));
      assert.match(g.id, /^grant-\d+$/);
      const run = await start(h, 'deploy', 'gr1');
      assert.equal((await run.result()).state, 'Succeeded');
      const st = await run.status();
      assert.equal(st.approvals.length, 1);
      assert.equal(st.approvals[0].approverId, 'dora');
      assert.equal(st.approvals[0].grantId, g.id);
      const approved = (await run.evidence()).entries.find((e) => e.event === 'ApprovalRecorded');
      assert.equal(approved?.actor.id, 'dora');
      assert.equal((approved?.data as { grantId?: string }).grantId, g.id);
      const view = await grants(h).list('gr1');
      assert.equal(view.active.find((x) => x.id === g.id)?.uses, 1);
      assert.equal((await h.ledger.counts()).applied, 1);
      await keepHistory('lean-standing-grant-approved', run);
    });
  });

  it('by default a rule accepts no grants: the registry refuses one for it, and such runs wait for approvals by hand', async function () {
    await withWorker(opts(), async (h) => {
      await assert.rejects(grants(h).grant('gr2', grantOf(dora, { ruleId: 'write-plain' })), (e: unknown) => failureType(e) === 'GrantRefused');
      await assert.rejects(grants(h).grant('gr2', grantOf(dora, { ruleId: 'no-such-rule' })), (e: unknown) => failureType(e) === 'GrantRefused');
      await grants(h).grant('gr2', grantOf(dora));
      const run = await start(h, 'write', 'gr2');
      const st = await waitForState(run, 'AwaitingApproval');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await run.status()).approvals.length, 0, 'a grant for another rule never counts');
      await run.decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      assert.equal((await run.result()).state, 'Succeeded');
    });
  });

  it('the registry refuses a grantor the policy does not name, more uses or a longer validity than the rule allows, and a malformed grant', async function () {
    await withWorker(opts(), async (h) => {
      const refused = (req: object) => assert.rejects(grants(h).grant('gr3', req as never), (e: unknown) => ['GrantRefused', 'InvalidMessage'].includes(failureType(e) ?? ''));
      await refused(grantOf(mallory));
      await refused(grantOf(dora, { maxUses: 6 }));
      await refused(grantOf(dora, { expiresAt: new Date(Date.now() + 8 * 86_400_000).toISOString() }));
      await refused(grantOf(dora, { expiresAt: new Date(Date.now() - 1000).toISOString() }));
      await refused({ ...grantOf(dora), scope: { target: 'a*b*' } });
      await refused({ ...grantOf(dora), extra: 1 });
      assert.deepEqual((await grants(h).list('gr3')).active.filter((g) => g.grantor.id === 'mallory'), []);
    });
  });

  it('separation of duties: never the grantor\'s own run, one approval per person, never a required role the grantor lacks', async function () {
    await withWorker(opts(), async (h) => {
      const ws = 'gr4';
      await grants(h).grant(ws, grantOf(dora, { scope: { runtime: 'echo' }, ruleId: 'pay-granted' }));
      // dora requests: her own grant does not approve her run.
      const own = await start(h, 'pay', ws, { requestedBy: dora });
      await waitForState(own, 'AwaitingApproval');
      await waitForStatus(own, (s) => s.approvals.length === 0);
      // alice requests: dora's grant counts once; dora approving by hand too does not make two.
      const run = await start(h, 'pay', ws);
      const st = await waitForStatus(run, (s) => s.state === 'AwaitingApproval' && s.approvals.length === 1);
      assert.equal(st.approvals[0].grantId !== undefined, true);
      assert.deepEqual(st.missingRoles, ['finance'], 'the grantor is no finance approver');
      const again = await run.decide({ kind: 'approve', ...decision(dora, st.actionHash) });
      assert.equal(again.counted, false, 'the grantor approving by hand is not a second approval');
      assert.equal((await run.status()).approvals.length, 1);
      // A second grant by the same person is still one approval; erin (finance) completes the quorum.
      await grants(h).grant(ws, grantOf(erin, { scope: { runtime: 'echo' }, ruleId: 'pay-granted' }));
      const next = await start(h, 'pay', ws);
      assert.equal((await next.result()).state, 'Succeeded');
      const people = (await next.status()).approvals.map((a) => a.approverId).sort();
      assert.deepEqual(people, ['dora', 'erin']);
      assert.equal((await own.status()).state, 'AwaitingApproval');
    });
  });

  it('runs racing for the last use: exactly one counts it, the others wait for approvals by hand', async function () {
    await withWorker(opts(), async (h) => {
      const g = await grants(h).grant('gr5', grantOf(dora, { maxUses: 1 }));
      const runs = await Promise.all([0, 1, 2, 3].map(() => start(h, 'deploy', 'gr5')));
      const settled = await Promise.all(runs.map((r) => waitForStatus(r, (s) => s.state === 'Succeeded' || (s.state === 'AwaitingApproval' && (s.evidenceCount ?? 0) > 0), 30_000)));
      // Give every run the time to ask the registry.
      await new Promise((r) => setTimeout(r, 1500));
      const states = await Promise.all(runs.map(async (r) => (await r.status()).state));
      assert.equal(states.filter((s) => s === 'Succeeded').length, 1, `states: ${states.join(', ')} (first seen ${settled.map((s) => s.state).join(', ')})`);
      assert.equal((await h.ledger.counts()).applied, 1);
      const ended = (await grants(h).list('gr5')).ended.find((x) => x.id === g.id);
      assert.equal(ended?.uses, 1, 'one use taken, never more');
      const waiting = runs[states.indexOf('AwaitingApproval')];
      const events = (await waiting.evidence()).entries.map((e) => e.event);
      assert.ok(!events.includes('ApprovalRecorded'));
    });
  });

  it('revoking a grant stops new uses at once; runs it already approved stay approved', async function () {
    await withWorker(opts(), async (h) => {
      const g = await grants(h).grant('gr6', grantOf(dora));
      const first = await start(h, 'deploy', 'gr6');
      assert.equal((await first.result()).state, 'Succeeded');
      const revoked = await grants(h).revoke('gr6', { grantId: g.id, revokedBy: bob, reason: 'dora left the team' });
      assert.equal(revoked.revokedBy, 'bob');
      const second = await start(h, 'deploy', 'gr6');
      await waitForState(second, 'AwaitingApproval');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await second.status()).approvals.length, 0);
      assert.equal((await grants(h).list('gr6')).ended.find((x) => x.id === g.id)?.uses, 1);
      assert.equal((await first.status()).approvals[0].grantId, g.id);
    });
  });

  it('scope and condition: a grant counts only for its target prefix and when its condition holds for certain', async function () {
    await withWorker(opts(), async (h) => {
      await grants(h).grant('gr7', grantOf(dora, { scope: { target: 'test/*', when: 'action.input.amount < 100' } }));
      const small = await start(h, 'deploy', 'gr7', { input: { amount: 10 } });
      const big = await start(h, 'deploy', 'gr7', { input: { amount: 500 } });
      const unknown = await start(h, 'deploy', 'gr7', { input: { other: 1 } });
      const elsewhere = await start(h, 'deploy', 'gr7', { input: { amount: 1 }, action: { runtime: 'echo', target: 'prod/thing', operation: 'deploy', input: { amount: 1 } } });
      assert.equal((await small.result()).state, 'Succeeded');
      for (const r of [big, unknown, elsewhere]) {
        const st = await waitForState(r, 'AwaitingApproval');
        await waitForStatus(r, (s) => s.evidenceCount > 0);
        assert.equal(st.approvals.length, 0);
        const skipped = (await r.evidence()).entries.find((e) => e.event === 'StandingGrantsSkipped');
        assert.ok(skipped, 'the evidence says why the grant did not apply');
      }
    });
  });

  it('under a signed rule: an unsigned grant is refused, a signed one counts, with the roles policy registers', async function () {
    await withWorker(opts(), async (h) => {
      const req = grantOf(dora, { ruleId: 'signed-granted' });
      await assert.rejects(grants(h).grant('grs', req), (e: unknown) => failureType(e) === 'SignatureInvalid');
      const signedAt = new Date().toISOString();
      const fields = { workspaceId: 'grs', requestId: req.requestId!, ruleId: req.ruleId, grantorId: 'dora', scope: req.scope, maxUses: req.maxUses, expiresAt: req.expiresAt, reason: req.reason, signedAt };
      // Signed for 3 uses, sent as 5: does not verify.
      const forged = { ...req, requestId: uid('req'), maxUses: 5, signedAt, signature: signGrant(fields, GRANT_KEYS.dora) };
      await assert.rejects(grants(h).grant('grs', forged), (e: unknown) => failureType(e) === 'SignatureInvalid');
      const g = await grants(h).grant('grs', { ...req, signedAt, signature: signGrant(fields, GRANT_KEYS.dora) });
      const run = await start(h, 'signed', 'grs');
      assert.equal((await run.result()).state, 'Succeeded');
      const st = await run.status();
      assert.equal(st.approvals[0].grantId, g.id);
      assert.deepEqual(st.approvals[0].approverRoles, ['approver']);
    });
  });

  it('CLI: grant add, list and revoke print what they did; run status names the grant that counted', async function () {
    await withWorker(opts(), async (h) => {
      const env = { TEMPORAL_ADDRESS: shared.address!, PORTARIUM_TASK_QUEUE: h.taskQueue, PORTARIUM_POLICY_DIR: policyDir };
      const added = await cli(env, 'grant', 'add', '--workspace', 'gr8', '--rule', 'deploy-granted', '--by', 'dora', '--roles', 'approver', '--uses', '2', '--expires', '1d', '--target', 'test/*', '--reason', 'release train', '--json');
      assert.equal(added.code, 0, added.err);
      const g = JSON.parse(added.out) as { id: string; maxUses: number };
      assert.equal(g.maxUses, 2);
      const bad = await cli(env, 'grant', 'add', '--workspace', 'gr8', '--rule', 'write-plain', '--by', 'dora', '--roles', 'approver', '--uses', '2', '--expires', '1d', '--reason', 'x');
      assert.equal(bad.code, 3, bad.err);
      assert.match(bad.err, /GrantRefused/);
      const run = await start(h, 'deploy', 'gr8');
      assert.equal((await run.result()).state, 'Succeeded');
      const status = await cli(env, 'run', 'status', run.workflowId);
      assert.match(status.out, new RegExp(`standing approval ${g.id}`));
      const listed = await cli(env, 'grant', 'list', '--workspace', 'gr8');
      assert.match(listed.out, new RegExp(`${g.id} .*used 1 of 2`));
      const rev = await cli(env, 'grant', 'revoke', g.id, '--workspace', 'gr8', '--by', 'bob', '--reason', 'train cancelled');
      assert.equal(rev.code, 0, rev.err);
      assert.equal((await cli(env, 'grant', 'list', '--workspace', 'gr8')).out, 'no usable grants');
      const all = await cli(env, 'grant', 'list', '--workspace', 'gr8', '--all');
      assert.match(all.out, /revoked by bob/);
    });
  });
});

export type { RunHandle };
void alice;
