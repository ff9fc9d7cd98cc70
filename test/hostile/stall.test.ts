/**
 * A worker host that stalls (suspended VM, starved CPU) while a flood of bad messages keeps its
 * workflow thread busy. When the host resumes, an activation has taken more wall time than the SDK's
 * sandbox allows by default (5 s); stopping it there corrupts Node's async hook stack and aborts the
 * whole worker (sdk-typescript#939). The worker must survive the stall and the run stay decidable.
 */
import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PortariumClient } from '../../workers/client';
import { PROJECT_ROOT } from '../../workers/config';
import { alice, bob, carol, decision, uid, waitForState, waitForStatus } from '../support/harness';
import { shared, testEnv, testKeyringFile } from '../support/shared';

const HOSTILE_POLICIES = path.join(PROJECT_ROOT, 'test', 'hostile', 'policies');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('hostile: a stalled worker host', function () {
  this.timeout(240_000);
  let child: ChildProcess | undefined;

  afterEach(async function () {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
  });

  it('stalled past 5 s in the middle of a flood, four times: the worker lives on and the run completes', async function () {
    const taskQueue = uid('tq');
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-stall-'));
    const env = {
      PATH: process.env.PATH ?? '',
      TEMPORAL_ADDRESS: shared.address ?? '',
      PORTARIUM_TASK_QUEUE: taskQueue,
      PORTARIUM_POLICY_DIR: HOSTILE_POLICIES,
      PORTARIUM_DATA_DIR: dataDir,
      PORTARIUM_KEYRING_FILE: testKeyringFile(),
      PORTARIUM_LOG_LEVEL: 'ERROR',
    };
    const worker = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'workers', 'main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = worker;
    let out = '';
    worker.stdout!.on('data', (d) => (out += String(d)));
    worker.stderr!.on('data', (d) => (out += String(d)));
    const portarium = new PortariumClient(testEnv().client, taskQueue);
    const { run } = await portarium.startRun({
      workspaceId: 'hostile',
      correlationId: uid('corr'),
      requestedBy: alice,
      action: { runtime: 'echo', target: 'hostile/thing', operation: 'flood', input: { n: 1 } },
      idempotencyKey: uid('key'),
      reason: 'stall',
    });
    const s0 = await waitForState(run, 'AwaitingApproval', 30_000);

    // Bad approvals, a few hundred a second, while the host is stopped and resumed.
    let flooding = true;
    let accepted = 0;
    const flood = Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (let i = 0; flooding && accepted < 6_000; i++) {
          await run.handle.signal('approve', { ...decision(carol, 'f'.repeat(64)), decisionId: `junk-${w}-${i}` });
          accepted++;
        }
      }),
    );
    for (let stall = 0; stall < 4; stall++) {
      await sleep(1_500);
      worker.kill('SIGSTOP');
      await sleep(6_500);
      worker.kill('SIGCONT');
    }
    flooding = false;
    await flood;

    const alive = () => worker.exitCode === null && worker.signalCode === null;
    const st = await waitForStatus(run, (s) => !alive() || s.refusalsTotal === accepted, 120_000).catch((err) => {
      assert.ok(alive(), `the worker died (${worker.exitCode ?? worker.signalCode}): ${out.slice(-1500)}`);
      throw err;
    });
    assert.ok(alive(), `the worker died (${worker.exitCode ?? worker.signalCode}): ${out.slice(-1500)}`);
    assert.equal(st.state, 'AwaitingApproval');
    for (const approver of [bob, carol]) assert.equal((await run.decide({ kind: 'approve', ...decision(approver, s0.actionHash) })).counted, true);
    assert.equal((await run.result()).state, 'Succeeded');
  });
});
