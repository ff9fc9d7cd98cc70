/**
 * Hostile payload-key metadata against a governed run, on a real dev server: the key fingerprint
 * (`encryption-key-fp`) and the readers of a system-keyed payload (`encryption-readers`) are fields an
 * attacker who may signal can write. Each case asserts what a user sees: the run still answers
 * `status`, is still decidable, dispatched nothing policy did not allow, and recorded the refusal.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { type Payload, defaultPayloadConverter } from '@temporalio/common';
import { KeyringKeyProvider, createKeyring } from '../../workers/codec/keyring';
import { SYSTEM_SCOPE } from '../../workers/codec/keys-port';
import { KEY_FP_METADATA, READERS_METADATA, WorkspacePayloadCodec } from '../../workers/codec/codec';
import { PROJECT_ROOT } from '../../workers/config';
import type { RunHandle } from '../../workers/client';
import { type Harness, bob, decision, waitForState, waitForStatus, withWorker } from '../support/harness';
import { testEnv, testKeyringFile } from '../support/shared';

const HOSTILE_POLICIES = path.join(PROJECT_ROOT, 'test', 'hostile', 'policies');
const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir: HOSTILE_POLICIES });
const start = (h: Harness) => h.start('write', { workspaceId: 'hostile', action: { runtime: 'echo', target: 'hostile/thing', operation: 'write', input: { n: 1 } } });
const codec = () => new WorkspacePayloadCodec(new KeyringKeyProvider(testKeyringFile()));

/** Signal `approve` with exactly this (already encoded) payload. */
async function rawApprove(client: Client, workflowId: string, payload: Payload): Promise<void> {
  await client.workflowService.signalWorkflowExecution({ namespace: 'default', workflowExecution: { workflowId }, signalName: 'approve', input: { payloads: [payload] }, identity: 'hostile-test' });
}

/** Bob's approval of the run's current action, encrypted as a codec would. */
async function bobsApproval(run: RunHandle, encode: (p: Payload) => Promise<Payload[]>): Promise<Payload> {
  const st = await run.status();
  return (await encode(defaultPayloadConverter.toPayload(decision(bob, st.actionHash))))[0];
}

async function refusedThenDecidable(h: Harness, run: RunHandle): Promise<void> {
  const st = await waitForStatus(run, (s) => s.refusals.length > 0);
  assert.equal(st.refusals[0].type, 'InvalidMessage');
  assert.equal(st.state, 'AwaitingApproval');
  assert.equal((await h.ledger.counts()).applied, 0, 'nothing dispatched');
  const ev = await run.evidence();
  assert.ok(ev.entries.some((e) => e.event === 'RequestRefused' && e.data?.type === 'InvalidMessage'), 'recorded in evidence');
}

describe('hostile payload-key metadata (real server)', function () {
  this.timeout(90_000);
  before(() => createKeyring(testKeyringFile(), SYSTEM_SCOPE));

  it('garbage ciphertext naming a foreign key fingerprint is refused as InvalidMessage, not retried forever; the run is decidable', async function () {
    await withWorker(opts(), async (h) => {
      const run = await start(h);
      await waitForState(run, 'AwaitingApproval');
      const meta = (v: string) => Buffer.from(v);
      await rawApprove(h.client, run.workflowId, { metadata: { encoding: meta('binary/encrypted'), 'encryption-key-id': meta('hostile/k1'), [KEY_FP_METADATA]: meta('0123456789abcdef') }, data: Buffer.alloc(64, 5) });
      await refusedThenDecidable(h, run);
      const st = await run.status();
      await run.decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      assert.equal((await run.result()).state, 'Succeeded');
    });
  });

  it('a genuine approval whose key fingerprint was edited still counts: an edited fingerprint never refuses a good payload', async function () {
    await withWorker(opts(), async (h) => {
      const run = await start(h);
      await waitForState(run, 'AwaitingApproval');
      const genuine = await bobsApproval(run, (p) => codec().encode([p], { type: 'workflow', namespace: 'default', workflowId: run.workflowId }));
      await rawApprove(h.client, run.workflowId, { ...genuine, metadata: { ...genuine.metadata, [KEY_FP_METADATA]: Buffer.from('fedcba9876543210') } });
      assert.equal((await run.result()).state, 'Succeeded');
      assert.equal((await h.ledger.counts()).applied, 1);
    });
  });

  it('a system-keyed approval whose readers were narrowed is refused as InvalidMessage; the same approval unaltered counts', async function () {
    await withWorker(opts(), async (h) => {
      const run = await start(h);
      await waitForState(run, 'AwaitingApproval');
      // What the codec server's /encode makes for a token of the workspaces hostile and other.
      const signal = await bobsApproval(run, (p) => codec().encodeUnder([p], SYSTEM_SCOPE, ['hostile', 'other']));
      await rawApprove(h.client, run.workflowId, { ...signal, metadata: { ...signal.metadata, [READERS_METADATA]: Buffer.from('hostile') } });
      await refusedThenDecidable(h, run);
      await rawApprove(h.client, run.workflowId, signal);
      assert.equal((await run.result()).state, 'Succeeded');
      assert.equal((await h.ledger.counts()).applied, 1, 'dispatched once, after the approval');
    });
  });
});
