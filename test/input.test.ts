/**
 * Bad input fails a run at once with a non-retryable failure naming every bad field, and nothing is
 * dispatched. The client helper refuses it before it is sent, and starts are idempotent.
 */
import * as assert from 'node:assert/strict';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { IdempotencyConflictError, InvalidMessageError } from '../workers/client';
import { alice, uid, withWorker } from './support/harness';
import { testEnv } from './support/shared';
import { checkSecretIds, checkWorkspaceId } from '../activities/secrets/port';
import { Egress } from '../policies/connections';
import { Quotas } from '../policies/quotas';
import { WorkspaceFile } from '../policies/schema';
import { SCOPE_PATTERN, SYSTEM_SCOPE } from '../workers/codec/keys-port';
import { runWorkflowId, workspaceOfWorkflowId } from '../workflows/ids';
import { quotaPolicyAskSchema } from '../workflows/quota/schemas';
import { actionSchema, workspaceIdSchema } from '../workflows/schemas';

describe('run input', function () {
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });
  const good = () => ({
    workspaceId: 'test',
    correlationId: uid('corr'),
    requestedBy: alice,
    action: { runtime: 'echo', target: 'test/thing', operation: 'read', input: {} },
    idempotencyKey: uid('key'),
    reason: 'input test',
  });

  it('a run started with bad input (raw CLI or client) fails at once, naming every bad field', async function () {
    await withWorker(opts(), async (h) => {
      const bad = { ...good(), workspaceId: 'Not Valid', requestedBy: { id: '', roles: [] }, action: { runtime: 'echo' }, extra: 1 };
      const handle = await h.client.workflow.start('governedRun', { taskQueue: h.taskQueue, workflowId: uid('bad'), args: [bad] });
      const err = await handle.result().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError);
      const cause = err.cause as ApplicationFailure;
      assert.ok(cause instanceof ApplicationFailure);
      assert.equal(cause.type, 'InvalidRunInput');
      assert.equal(cause.nonRetryable, true);
      const paths = (cause.details?.[0] as { path: string }[]).map((i) => i.path);
      for (const p of ['workspaceId', 'requestedBy.id', 'action.target', 'action.operation', 'action.input', '(root)']) {
        assert.ok(paths.includes(p), `names ${p} (got ${paths.join(', ')})`);
      }
      const history = await handle.fetchHistory();
      assert.ok(!history.events?.some((e) => e.activityTaskScheduledEventAttributes), 'no activity was scheduled');
      assert.equal((await h.ledger.counts()).calls, 0);
    });
  });

  it('the client helper refuses bad input before sending it', async function () {
    await withWorker(opts(), async (h) => {
      await assert.rejects(
        h.portarium.startRun({ ...good(), reason: '   ', action: { ...good().action, input: { x: Number.NaN } } }),
        (e) => e instanceof InvalidMessageError && /reason/.test(e.message) && e.issues.some((i) => i.path.startsWith('action.input')),
      );
    });
  });

  it('starting the same request twice returns the existing run; another action under the same key is refused', async function () {
    await withWorker(opts(), async (h) => {
      const input = { ...good(), action: { ...good().action, operation: 'write' } };
      const first = await h.portarium.startRun(input);
      const second = await h.portarium.startRun(input);
      assert.equal(first.existing, false);
      assert.equal(second.existing, true);
      assert.equal(second.workflowId, first.workflowId);
      assert.equal(first.workflowId, `test:${input.idempotencyKey}`);
      await assert.rejects(
        h.portarium.startRun({ ...input, action: { ...input.action, input: { other: true } } }),
        IdempotencyConflictError,
      );
      await first.run.cancel({ requestedBy: alice, reason: 'done' });
      assert.equal((await first.run.result()).state, 'Cancelled');
      assert.equal((await h.portarium.startRun(input)).existing, true, 'a closed run is not started again');
    });
  });
});

// Context: the workspace-id and runtime-name rules were spelled in several places that disagreed (a
// runtime valid as input could be refused by the secret store or have no egress entry). Every place
// that takes one of these ids now agrees with run input, name for name.
describe('one rule per id', function () {
  const RUNTIMES = ['langflow', 'Langflow', '7zip', 'team.flow', 'ops:eu@prod+1', 'team/flow', 'a/../../b', `r${'x'.repeat(63)}`, `r${'x'.repeat(64)}`, '', '.x', '/x', '-x', 'a b', 'a%2fb', 'a\\b', 'ä', 'a\n'];
  const WORKSPACES = ['ws-a', 'ops_1', '0', 'a'.repeat(63), 'a'.repeat(64), '', 'WS', '-a', '_system', 'a.b', 'a:b', 'a/b', '..', 'a b'];

  it('a runtime name run input accepts is accepted by the quota, egress and secrets-file keys and the secret stores, and no other', function () {
    for (const rt of RUNTIMES) {
      const input = actionSchema().safeParse({ runtime: rt, target: 't', operation: 'o', input: {} }).success;
      const others = {
        quotaKey: Quotas.safeParse({ [rt]: { concurrentDispatches: 1 } }).success,
        egressKey: Egress.safeParse({ [rt]: { hosts: ['example.com'] } }).success,
        quotaMessage: quotaPolicyAskSchema().safeParse({ workspaceId: 'ws', runtime: rt }).success,
        secretStore: (() => {
          try {
            checkSecretIds('ws-a', rt);
            return true;
          } catch (err) {
            assert.equal((err as ApplicationFailure).type, 'CredentialsDenied');
            return false;
          }
        })(),
      };
      for (const [where, ok] of Object.entries(others)) assert.equal(ok, input, `${JSON.stringify(rt)}: input ${input}, ${where} ${ok}`);
    }
  });

  it('a workspace id run input accepts is accepted by policy files, workflow ids, payload keys and the stores, and no other', function () {
    for (const ws of WORKSPACES) {
      const input = workspaceIdSchema().safeParse(ws).success;
      const others = {
        policyFile: WorkspaceFile.safeParse({ schemaVersion: 1, kind: 'workspace', workspace: ws, rules: [] }).success,
        workflowId: workspaceOfWorkflowId(runWorkflowId(ws, 'k')) === ws,
        payloadKeys: ws !== SYSTEM_SCOPE && SCOPE_PATTERN.test(ws),
        stores: (() => {
          try {
            checkWorkspaceId(ws, 'EvidenceConflict');
            return true;
          } catch (err) {
            assert.equal((err as ApplicationFailure).type, 'EvidenceConflict');
            return false;
          }
        })(),
      };
      for (const [where, ok] of Object.entries(others)) assert.equal(ok, input, `${JSON.stringify(ws)}: input ${input}, ${where} ${ok}`);
    }
  });
});
