/**
 * The revocation registry on a real Temporal server: what it refuses (malformed scopes, unsigned
 * requests where signatures are required, the revoker lifting), idempotent requests, continue-as-new
 * and a forged start state, and a worker that cannot read it failing closed.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { publicKeyFromPrivate } from '../workflows/run/signatures';
import { TEST_POLICY_DIR, carol, failureType, oscar, uid, waitForState, withWorker } from './support/harness';
import { CallRecorder, cli, revocationOpts, revocationsOf } from './support/revocation-fixtures';
import { shared } from './support/shared';
import type { Revocation } from '../workflows/revocation/types';

describe('emergency revocation: signed where the workspace requires signed decisions', function () {
  this.timeout(60_000);

  it('unsigned or wrongly signed revoke and lift are SignatureInvalid; signed by the operators\' registered keys they are accepted and the signatures kept', async function () {
    const OSCAR_KEY = '3a'.repeat(32);
    const CAROL_KEY = '4b'.repeat(32);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-rev-signed-'));
    fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
    fs.copyFileSync(path.join(TEST_POLICY_DIR, 'test.json'), path.join(dir, 'test.json'));
    fs.writeFileSync(path.join(dir, 'sgn.json'), JSON.stringify({
      schemaVersion: 1, kind: 'workspace', workspace: 'sgn',
      defaults: { approverKeys: { oscar: publicKeyFromPrivate(OSCAR_KEY), carol: publicKeyFromPrivate(CAROL_KEY) } },
      rules: [{ id: 'signed-writes', match: { runtime: 'echo', operation: 'write' }, tier: 'HumanApprove', approval: { signed: true } }],
    }));
    const oscarKey = path.join(dir, 'oscar.key');
    const carolKey = path.join(dir, 'carol.key');
    fs.writeFileSync(oscarKey, OSCAR_KEY, { mode: 0o600 });
    fs.writeFileSync(carolKey, CAROL_KEY, { mode: 0o600 });
    const { registryId, opts } = revocationOpts(new CallRecorder(), { policyDir: dir });
    await withWorker(opts, async (h) => {
      const env = { TEMPORAL_ADDRESS: shared.address!, PORTARIUM_TASK_QUEUE: h.taskQueue, PORTARIUM_REVOCATION_REGISTRY: registryId };
      const add = (...extra: string[]) => cli(env, 'revoke', 'add', '--scope', 'runtime:echo', '--reason', 'signed incident', '--by', 'oscar', '--json', ...extra);
      for (const attempt of [await add('--workspace', 'sgn'), await add('--workspace', '*'), await add('--workspace', 'sgn', '--key', carolKey)]) {
        assert.equal(attempt.code, 3, attempt.out);
        assert.match(attempt.err, /^refused: SignatureInvalid: /);
      }
      // A workspace without signed rules takes an unsigned revocation.
      assert.equal((await add('--workspace', 'test')).code, 0);
      const signed = await add('--workspace', 'sgn', '--key', oscarKey);
      assert.equal(signed.code, 0, signed.err);
      const rev = JSON.parse(signed.out) as Revocation;
      assert.match(rev.signature ?? '', /^[0-9a-f]{128}$/);
      const lift = (...extra: string[]) => cli(env, 'revoke', 'lift', rev.id, '--by', 'carol', '--reason', 'verified clean', '--json', ...extra);
      for (const attempt of [await lift(), await lift('--key', oscarKey)]) assert.match(attempt.err, /^refused: SignatureInvalid: /);
      const lifted = await lift('--key', carolKey);
      assert.equal(lifted.code, 0, lifted.err);
      assert.match((JSON.parse(lifted.out) as Revocation).liftSignature ?? '', /^[0-9a-f]{128}$/);
    });
  });
});

describe('emergency revocation: fail closed', function () {
  this.timeout(120_000);

  it('a worker that cannot read the registry dispatches nothing (RevocationsUnavailable) and the run waits; once the registry answers, it runs', async function () {
    const rec = new CallRecorder();
    const { registryId, opts } = revocationOpts(rec);
    const registryQueue = uid('tq-registry');
    await withWorker(opts, async (h) => {
      // A registry on a queue no worker polls yet, whose memo (what workers read) is not a view: the
      // worker cannot read what is in force. Once a worker runs it, it publishes a readable view.
      await h.client.workflow.start('revocationRegistry', { workflowId: registryId, taskQueue: registryQueue, args: [{ schemaVersion: 1 }], memo: { revocations: 'unreadable' } });
      const run = await h.start('read');
      await waitForState(run, 'Dispatching');
      await new Promise((r) => setTimeout(r, 8_000));
      assert.equal((await run.status()).state, 'Dispatching', 'the run waits');
      assert.equal(rec.calls.length, 0, 'nothing dispatched unchecked');
      const { pendingActivities } = await run.handle.describe().then((d) => d.raw);
      const failure = pendingActivities?.[0]?.lastFailure;
      assert.equal(failure?.applicationFailureInfo?.type, 'RevocationsUnavailable');
      await withWorker({ ...opts, taskQueue: registryQueue }, async () => {
        assert.equal((await run.result()).state, 'Succeeded');
      });
      assert.equal(rec.calls.length, 1);
    });
  });
});

describe('emergency revocation: the registry', function () {
  this.timeout(90_000);

  it('refuses revocations that could not be judged: bad scope and missing reason are typed refusals before history', async function () {
    const { registryId, opts } = revocationOpts(new CallRecorder());
    await withWorker(opts, async (h) => {
      const rc = revocationsOf(h, registryId);
      for (const scope of [{ workspaceId: 'test', kind: 'target', value: 'a*b*' }, { workspaceId: 'NOPE!', kind: 'runtime', value: 'echo' }, { workspaceId: 'test', kind: 'runtimeVersion', value: '1.2' }]) {
        await assert.rejects(rc.revoke({ scope, reason: 'x', revokedBy: oscar } as never), (e) => failureType(e) === 'InvalidMessage', JSON.stringify(scope));
      }
      await assert.rejects(rc.revoke({ scope: { workspaceId: 'test', kind: 'runtime', value: 'echo' }, reason: '  ', revokedBy: oscar }), (e) => failureType(e) === 'InvalidMessage');
      assert.equal((await rc.list()).active.length, 0);
      // The same request id twice is one revocation.
      const req = { scope: { workspaceId: 'test', kind: 'tool' as const, value: 'send_email' }, reason: 'exfiltration', revokedBy: carol, requestId: 'req-1' };
      const [a, b] = [await rc.revoke(req), await rc.revoke(req)];
      assert.equal(a.id, b.id);
      assert.equal((await rc.list()).active.length, 1);
    });
  });


  it('continues as new when its history grows, keeping every revocation and lift; a hand-started registry with a forged state starts empty', async function () {
    const { registryId, opts } = revocationOpts(new CallRecorder());
    await withWorker(opts, async (h) => {
      const first = await h.client.workflow.start('revocationRegistry', { workflowId: registryId, taskQueue: h.taskQueue, args: [{ schemaVersion: 1, maxHistoryEvents: 40 }] });
      const rc = revocationsOf(h, registryId);
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) ids.push((await rc.revoke({ scope: { workspaceId: 'test', kind: 'target', value: `cas/${i}` }, reason: `r${i}`, revokedBy: oscar })).id);
      await rc.lift({ revocationId: ids[0], reason: 'done', liftedBy: carol });
      const view = await rc.list();
      assert.deepEqual(view.active.map((r) => r.id), ids.slice(1));
      assert.deepEqual(view.lifted.map((r) => [r.id, r.liftedBy]), [[ids[0], 'carol']]);
      // It continues once the fan-outs in flight are done (each takes its 3 s second pass).
      const deadline = Date.now() + 20_000;
      let runId = first.firstExecutionRunId;
      while (runId === first.firstExecutionRunId && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        runId = (await h.client.workflow.getHandle(registryId).describe()).runId;
      }
      assert.notEqual(runId, first.firstExecutionRunId, 'the registry continued as new');
      assert.deepEqual((await rc.list()).active.map((r) => r.id), ids.slice(1), 'carried over');
      assert.equal((await rc.revoke({ scope: { workspaceId: 'test', kind: 'target', value: 'cas/next' }, reason: 'after', revokedBy: oscar })).id, `rev-${ids.length + 1}`, 'ids keep counting');

      const forgedId = uid('revocations');
      const forged = { schemaVersion: 1, state: { nextId: 1, version: 1, active: [], lifted: [{ id: 'rev-1', liftedBy: 'mallory' }], requests: [], pendingFanOut: [] } };
      await h.client.workflow.start('revocationRegistry', { workflowId: forgedId, taskQueue: h.taskQueue, args: [forged] });
      assert.deepEqual((await revocationsOf(h, forgedId).list()).lifted, []);
    });
  });
});
