/**
 * Regenerates test/fixtures/whatif/: the recorded sample log `portarium policy what-if` runs on in CI
 * (.ci/run) and in test/policy-what-if.test.ts. Real runs of the shipped policies (policies/sets,
 * workspace demo) on a real worker; its evidence folder and payload store are copied out. Not part of
 * the suite (the name does not end in .test): run it on purpose, then update the expected ids there.
 *   npm run build && /work/notes/mt dist/test/whatif-fixture.gen.js   (or npx mocha --no-config --require dist/test/hooks.js …)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileEvidenceSink } from '../activities/evidence/file-sink';
import { createEchoRuntime, MemoryEchoLedger } from '../activities/runtimes/echo';
import { PortariumClient } from '../workers/client';
import { PROJECT_ROOT, loadConfig } from '../workers/config';
import { createPortariumWorker } from '../workers/worker';
import type { JsonValue, Principal, Tier } from '../workflows/types';
import { TEST_SIGNER, alice, bob, carol, decision, uid, waitForState } from './support/harness';
import { DEV_KEYS, testEnv, testKeyringFile } from './support/shared';

const OUT = path.join(PROJECT_ROOT, 'test', 'fixtures', 'whatif');

describe('what-if fixture (generator)', function () {
  it('records runs of the demo policies', async function () {
    this.timeout(120_000);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-whatif-'));
    const taskQueue = uid('tq');
    const config = loadConfig({ ...DEV_KEYS, PORTARIUM_DATA_DIR: tmp, PORTARIUM_KEYRING_FILE: testKeyringFile() },
      { taskQueue, policyDir: path.join(PROJECT_ROOT, 'policies', 'sets'), echoLedger: 'memory', heartbeatThrottle: '200ms', shutdownGrace: '2s' });
    const evidence = new FileEvidenceSink({ dir: path.join(tmp, 'evidence'), signer: TEST_SIGNER });
    const worker = await createPortariumWorker(config, { connection: testEnv().nativeConnection, runtimes: [createEchoRuntime(new MemoryEchoLedger())], evidence });
    const portarium = new PortariumClient(testEnv().client, taskQueue);
    const start = (key: string, operation: string, input: { [k: string]: JsonValue }, by: Principal = alice, tierOverride?: Tier) =>
      portarium.startRun({ workspaceId: 'demo', correlationId: uid('corr'), requestedBy: by, action: { runtime: 'echo', target: 'demo/greeting', operation, input },
        idempotencyKey: key, reason: `what-if sample ${key}`, ...(tierOverride && { tierOverride }) }).then((s) => s.run);
    await worker.runUntil(async () => {
      const read1 = await start('whatif-read-1', 'read', { message: 'hi', size: 10 });
      const read2 = await start('whatif-read-2', 'read', { message: 'big', size: 5000 });
      const read3 = await start('whatif-read-3', 'read', { message: 'careful', size: 20 }, alice, 'HumanApprove');
      const write1 = await start('whatif-write-1', 'write', { message: 'hey' });
      const write2 = await start('whatif-write-2', 'write', { message: 'no' });
      const del1 = await start('whatif-delete-1', 'delete', {});
      const del2 = await start('whatif-delete-2', 'delete', { path: '/tmp' });
      const w1 = await waitForState(write1, 'AwaitingApproval');
      await write1.decide({ kind: 'approve', ...decision(bob, w1.actionHash) });
      const w2 = await waitForState(write2, 'AwaitingApproval');
      await write2.decide({ kind: 'reject', ...decision(carol, w2.actionHash, { rationale: 'not now' }) });
      const r3 = await waitForState(read3, 'AwaitingApproval');
      await read3.decide({ kind: 'approve', ...decision(carol, r3.actionHash) });
      for (const run of [read1, read2, read3, write1, write2, del1, del2]) await run.result();
    });
    fs.rmSync(OUT, { recursive: true, force: true });
    fs.mkdirSync(path.join(OUT, 'evidence'), { recursive: true });
    fs.mkdirSync(path.join(OUT, 'payloads'), { recursive: true });
    // The log and the payload store (recorded inputs and outputs); not the sink's lock file.
    fs.mkdirSync(path.join(OUT, 'evidence', 'demo'));
    for (const f of ['entries.jsonl', 'leaves.jsonl', 'tree-heads.jsonl']) fs.copyFileSync(path.join(tmp, 'evidence', 'demo', f), path.join(OUT, 'evidence', 'demo', f));
    fs.cpSync(path.join(tmp, 'payloads', 'demo'), path.join(OUT, 'payloads', 'demo'), { recursive: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});
