/**
 * Hostile input to standing approvals: malformed or forged messages to a grant registry, a registry
 * started by hand with made-up grants, and a grant condition that cannot be evaluated. Each must leave
 * runs waiting for approvals by hand (stricter), never approved by something nobody granted.
 */
import * as assert from 'node:assert/strict';
import { GrantClient } from '../../workers/grants';
import { grantUpdate, grantsQuery, useGrantsUpdate } from '../../workflows/grants/messages';
import { grantRegistryId } from '../../workflows/ids';
import { failureType, uid, waitForState, waitForStatus, withWorker, type Harness } from '../support/harness';
import { dora, grantOf, grantPolicyDir } from '../support/grants';
import { testEnv } from '../support/shared';

describe('hostile standing-approval messages (real server)', function () {
  this.timeout(60_000);
  let policyDir: string;
  const taskQueue = uid('tq-grh');
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue });
  const grants = (h: Harness) => new GrantClient(h.client, h.portarium.routing);

  before(() => {
    policyDir = grantPolicyDir('grh');
  });

  it('malformed updates to a registry are refused as InvalidMessage and change nothing; it keeps answering', async function () {
    await withWorker(opts(), async (h) => {
      const reg = await grants(h).registry('grh1');
      for (const bad of [null, 'x', { useKey: 'k', take: ['not-a-grant'] }, { useKey: 'k', take: Array(21).fill('grant-1') }, { useKey: '' }]) {
        await assert.rejects(reg.executeUpdate(useGrantsUpdate, { args: [bad as never] }), (e: unknown) => failureType(e) === 'InvalidMessage');
      }
      await assert.rejects(reg.executeUpdate(grantUpdate, { args: [{ ...grantOf(dora), grantor: { id: 'dora', roles: ['approver'], workspaceId: '../x' } } as never] }), (e: unknown) => failureType(e) === 'InvalidMessage');
      const g = await grants(h).grant('grh1', grantOf(dora));
      assert.equal((await reg.query(grantsQuery)).active.map((x) => x.id).join(), g.id);
    });
  });

  it('a registry started by hand with made-up grants in its input starts empty: no run counts them', async function () {
    await withWorker(opts(), async (h) => {
      const forged = { id: 'grant-1', workspaceId: 'grh2', ruleId: 'deploy-granted', grantor: { id: 'dora', roles: ['approver'] }, scope: {}, maxUses: 100, uses: 0, expiresAt: new Date(Date.now() + 86_400_000).toISOString(), reason: 'forged', grantedAt: new Date().toISOString() };
      await h.client.workflow.start('grantRegistry', { workflowId: grantRegistryId('grh2'), taskQueue, args: [{ schemaVersion: 1, workspaceId: 'grh2', state: { nextId: 2, grants: [forged], requests: [], uses: [] } }] });
      const run = await h.start('deploy', { workspaceId: 'grh2' });
      await waitForState(run, 'AwaitingApproval');
      await new Promise((r) => setTimeout(r, 800));
      assert.equal((await run.status()).approvals.length, 0);
      assert.deepEqual((await grants(h).list('grh2')).active, []);
    });
  });

  it('a registry under another workspace\'s id fails at once (InvalidRunInput)', async function () {
    await withWorker(opts(), async (h) => {
      const handle = await h.client.workflow.start('grantRegistry', { workflowId: grantRegistryId('grh3'), taskQueue, args: [{ schemaVersion: 1, workspaceId: 'grh4' }] });
      await assert.rejects(handle.result(), (e: unknown) => failureType(e) === 'InvalidRunInput');
    });
  });

  it('a grant whose condition cannot be evaluated never counts; the evidence says why', async function () {
    await withWorker(opts(), async (h) => {
      // Compiles, but compares a number with a string at run time: an error, so the grant does not apply.
      await grants(h).grant('grh5', grantOf(dora, { scope: { when: 'action.input.n < "x"' } }));
      const run = await h.start('deploy', { workspaceId: 'grh5' });
      await waitForState(run, 'AwaitingApproval');
      await waitForStatus(run, (s) => s.evidenceCount > 0);
      for (let i = 0; i < 40 && !(await run.evidence()).entries.some((e) => e.event === 'StandingGrantsSkipped'); i++) await new Promise((r) => setTimeout(r, 100));
      const skipped = (await run.evidence()).entries.find((e) => e.event === 'StandingGrantsSkipped');
      assert.ok(skipped);
      assert.match(JSON.stringify(skipped.data), /condition/);
      assert.equal((await run.status()).approvals.length, 0);
    });
  });
});
