/**
 * The Web UI tells the story of a run: a dev server WITH its UI and the codec server (wired as
 * temporal-dev.sh wires them: `--ui-codec-endpoint` with the token in the path), a real worker, a
 * run that awaits approval, and the run's page opened in headless Chromium. The page must show the
 * run's summary and current details, decrypted in the browser by the codec server: its state, the
 * approvals it still needs and the line that approves it; the timeline names the timer it waits on.
 * Skipped when Chromium is not installed (.ci/run installs Debian's package).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { KeyringKeyProvider } from '../workers/codec/keyring';
import { type RunningCodecServer, startCodecServer } from '../workers/codec/server';
import { PROJECT_ROOT } from '../workers/config';
import { approveLines } from '../workflows/run/details';
import { RunState } from '../workflows/types';
import { Chromium, chromiumPath } from './support/chromium';
import { type DevServer, freePort, startDevServer } from './support/dev-server';
import { bob, decision, withWorker, waitForState } from './support/harness';
import { testDataConverter, testEnv, testKeyringFile } from './support/shared';
import { awaitingMyApproval, denied, failedSince } from '../workers/saved-views';
import { WorkspaceKey } from '../workflows/search-attributes';

const TOKEN = 'webui-test-codec-token-000000001';
/** The screenshot docs/operators.md shows; refreshed by running this suite with WEBUI_SCREENSHOT=1. */
const SCREENSHOT = path.join(PROJECT_ROOT, 'docs', 'images', 'run-awaiting-approval.png');

describe('Web UI', function () {
  this.timeout(180_000);
  let server: DevServer | undefined;
  let codec: RunningCodecServer | undefined;
  let browser: Chromium | undefined;
  let uiPort: number;
  let connection: NativeConnection;
  let client: Client;

  before(async function () {
    if (!chromiumPath()) this.skip();
    uiPort = await freePort();
    const origins = [`http://127.0.0.1:${uiPort}`, `http://localhost:${uiPort}`];
    codec = await startCodecServer({ address: '127.0.0.1:0', tokens: [{ token: TOKEN }], corsOrigins: origins, namespace: 'default', keys: new KeyringKeyProvider(testKeyringFile()) });
    server = await startDevServer({ ui: { port: uiPort, codecEndpoint: `${codec.url}/t/${TOKEN}` } });
    connection = await NativeConnection.connect({ address: server.address });
    client = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter: testDataConverter() });
    browser = Chromium.launch();
  });

  after(async function () {
    await browser?.close();
    await client?.connection.close();
    await connection?.close();
    await server?.stop();
    await codec?.close();
  });

  it('shows the summary and current details of a run awaiting approval: state, approvals needed, the approve line', async function () {
    await withWorker({ connection, client }, async (h) => {
      const run = await h.start('write');
      const status = await waitForState(run, RunState.AwaitingApproval);
      const { runId } = await run.handle.describe();
      const page = `http://127.0.0.1:${uiPort}/namespaces/default/workflows/${encodeURIComponent(run.workflowId)}/${runId}`;
      const line = approveLines(run.workflowId, status.actionHash, 'approver', false).portarium;

      // The timeline names the timer the run waits on (its summary, decrypted).
      const session = await browser!.open(page);
      const timeline = await browser!.textWhen(session, (t) => t.includes('expiry at'));
      assert.ok(timeline.includes(`expiry at ${status.deadlines.expiresAt}`), 'the timeline does not name the expiry timer');
      assert.ok(timeline.includes('loadPolicySnapshot'), 'the timeline does not name the policy snapshot (a local activity: its marker shows the type)');

      // The user-metadata tab: static summary and details, and the current details the worker answers with.
      const meta = await browser!.open(`${page}/user-metadata`);
      const texts = await browser!.frameTextsWhen(meta, (ts) => ts.some((t) => t.includes(line)));
      const current = texts.find((t) => t.includes('AwaitingApproval'));
      assert.ok(current, `no current details on the page: ${JSON.stringify(texts)}`);
      assert.match(current, /1 approval\(s\) still needed/);
      assert.match(current, /may approve\s+approver/);
      assert.ok(current.includes(line), `the page does not show the approve line ${line}`);
      assert.ok(texts.some((t) => t.includes('test: echo write test/thing')), 'the page does not show the static summary');
      if (process.env.WEBUI_SCREENSHOT === '1') {
        fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
        await browser!.screenshot(meta, SCREENSHOT);
      }
    });
  });
});

describe('saved views', function () {
  this.timeout(120_000);

  /**
   * Workflow ids a List Filter query finds, once visibility has caught up with `expected`. A check
   * that expects nothing runs after one that saw the same runs, so a short wait is enough.
   */
  async function listed(query: string, expected: (ids: string[]) => boolean, waitMs = 20_000): Promise<string[]> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const ids: string[] = [];
      for await (const w of testEnv().client.workflow.list({ query })) ids.push(w.workflowId);
      if (expected(ids) || Date.now() > deadline) return ids;
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  it('"awaiting my approval" finds a run by the roles that may approve it, and drops it once decided', async function () {
    await withWorker({ connection: testEnv().nativeConnection, client: testEnv().client }, async (h) => {
      const write = await h.start('write');
      const transfer = await h.start('transfer');
      const s = await waitForState(write, RunState.AwaitingApproval);
      await waitForState(transfer, RunState.AwaitingApproval);
      const ws = `${WorkspaceKey.name} = "test" AND ${TaskQueueQuery(h.taskQueue)}`;
      const mine = (roles: string[]) => `${awaitingMyApproval(roles, 'test')} AND ${TaskQueueQuery(h.taskQueue)}`;
      assert.deepEqual((await listed(mine(['finance']), (ids) => ids.length === 1)).sort(), [transfer.workflowId]);
      assert.deepEqual((await listed(mine(['approver']), (ids) => ids.length === 2)).sort(), [transfer.workflowId, write.workflowId].sort());
      assert.deepEqual(await listed(mine(['lead']), () => false, 1000), []);
      await write.decide({ kind: 'approve', ...decision(bob, s.actionHash) });
      await write.result();
      assert.deepEqual(await listed(mine(['approver']), (ids) => ids.length === 1), [transfer.workflowId]);
      assert.ok((await listed(ws, (ids) => ids.length === 2)).includes(write.workflowId));
    });
  });

  it('"denied" and "failed today" find the runs that ended so, and no others', async function () {
    await withWorker({ connection: testEnv().nativeConnection, client: testEnv().client }, async (h) => {
      const deniedRun = await h.start('delete');
      const failedRun = await h.start('read', { action: { runtime: 'ghost', target: 'test/thing', operation: 'read', input: {} } });
      const ok = await h.start('read');
      await deniedRun.result();
      await assert.rejects(failedRun.result());
      await ok.result();
      const tq = TaskQueueQuery(h.taskQueue);
      assert.deepEqual(await listed(`${denied('test')} AND ${tq}`, (ids) => ids.length > 0), [deniedRun.workflowId]);
      assert.deepEqual(await listed(`${failedSince(new Date(), 'test')} AND ${tq}`, (ids) => ids.length > 0), [failedRun.workflowId]);
      // Tomorrow's view holds nothing yet.
      assert.deepEqual(await listed(`${failedSince(new Date(Date.now() + 86_400_000), 'test')} AND ${tq}`, () => false, 1000), []);
    });
  });
});

const TaskQueueQuery = (taskQueue: string) => `TaskQueue = "${taskQueue}"`;
