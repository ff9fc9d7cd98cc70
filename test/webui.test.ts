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
import { KeyringKeyProvider } from '../activities/keyring';
import { type RunningCodecServer, startCodecServer } from '../workers/codec-server';
import { PROJECT_ROOT } from '../workers/config';
import { approveLines } from '../workflows/run-details';
import { RunState } from '../workflows/types';
import { Chromium, chromiumPath } from './support/chromium';
import { type DevServer, freePort, startDevServer } from './support/dev-server';
import { withWorker, waitForState } from './support/harness';
import { testDataConverter, testKeyringFile } from './support/shared';

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
      assert.ok(timeline.includes('policy snapshot'), 'the timeline does not name the policy snapshot activity');

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
