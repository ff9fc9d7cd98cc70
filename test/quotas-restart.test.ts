/**
 * Quotas survive worker crashes: both the runs and their coordinator are workflows, so a worker
 * process killed while runs hold leases and wait loses no lease and counts none twice. Worker
 * processes run as deployed (`node dist/workers/main.js`) with the file echo ledger.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PortariumClient } from '../workers/client';
import { alice, uid, waitForState } from './support/harness';
import { maxOverlap, quotaPolicyDir, quotaStatus, waitForQuota } from './support/quota-fixtures';
import { testEnv } from './support/shared';
import { type WorkerProcess, startWorkerProcess } from './support/worker-process';

async function kill(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    w.child.once('exit', () => resolve());
    w.child.kill('SIGKILL');
  });
}

describe('workspace quotas across worker crashes', function () {
  this.timeout(120_000);
  const workers: WorkerProcess[] = [];
  afterEach(async () => {
    await Promise.all(workers.splice(0).map(kill));
  });

  it('a worker killed while runs hold leases and wait: the limit holds at every moment and every run finishes once', async function () {
    const { dir, workspaceId } = quotaPolicyDir({ echo: { concurrentDispatches: 2 } });
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-quota-wp-'));
    const taskQueue = uid('tq');
    const env = {
      PORTARIUM_TASK_QUEUE: taskQueue,
      PORTARIUM_POLICY_DIR: dir,
      PORTARIUM_DATA_DIR: dataDir,
      PORTARIUM_ECHO_LEDGER: 'file',
      PORTARIUM_LOG_LEVEL: 'WARN',
    };
    const { client } = testEnv();
    const portarium = new PortariumClient(client, taskQueue);
    workers.push(await startWorkerProcess(env));
    const runs = [];
    for (let i = 0; i < 6; i++) {
      const { run } = await portarium.startRun({
        workspaceId,
        correlationId: uid('corr'),
        requestedBy: alice,
        action: { runtime: 'echo', target: 'test/quota', operation: 'read', input: { delayMs: 2000, i } },
        idempotencyKey: uid('key'),
        reason: 'quota restart test',
      });
      runs.push(run);
    }
    await waitForQuota(client, workspaceId, (s) => s.leases.length === 2 && s.waiting.length === 4);
    await waitForState(runs[0], 'Dispatching');
    await kill(workers[0]);
    workers.push(await startWorkerProcess(env));

    const results = await Promise.all(runs.map((r) => r.result()));
    assert.deepEqual(results.map((r) => r.state), Array(6).fill('Succeeded'));
    const chains = await Promise.all(runs.map(async (r) => (await r.evidence()).entries));
    assert.equal(maxOverlap(chains), 2, 'never more than 2 leases held at once, and the limit was used');
    const applied = fs.readdirSync(path.join(dataDir, 'echo-ledger', 'applied')).length;
    assert.equal(applied, 6, 'every action applied exactly once');
    const s = await quotaStatus(client, workspaceId);
    assert.deepEqual([s?.leases.length, s?.waiting.length], [0, 0], 'no lease leaked');
  });
});
