/**
 * The Langflow adapter against a real Langflow 1.13.0 (pinned, .tools/langflow): login required, an API
 * key and an echo flow (ChatInput -> ChatOutput, no model) created through Langflow's own API. Every
 * check is a real governed run on the suite's Temporal server, the key coming from the workspace's
 * secrets file. Run with `npm run test:real` (not part of `npm test`).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { createLangflowRuntime } from '../../activities/runtimes/langflow';
import { FileSecretStore } from '../../activities/secrets/local-file';
import { loadPolicyDir } from '../../activities/policy/load';
import type { RunHandle } from '../../workers/client';
import { RunState } from '../../workflows/types';
import { TEST_POLICY_DIR, alice, failureType, uid, withWorker, type Harness } from '../support/harness';
import { RealLangflow } from '../support/langflow-real';
import { scanRunForSecrets } from '../support/leak-scan';
import { dispatchAttempts, tempDir } from '../support/real-servers';
import { testEnv } from '../support/shared';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LangflowOutput {
  sessionId: string;
  answer: string | null;
}

/** How long after answering a kept-alive request the server closes the idle connection. */
async function idleCloseMs(port: number): Promise<number> {
  const socket = net.connect(port, '127.0.0.1');
  let answered = 0;
  socket.on('data', () => (answered ||= Date.now()));
  socket.write('GET /health_check HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
  socket.setTimeout(10_000, () => socket.destroy());
  await new Promise((r) => socket.once('close', r));
  return answered ? Date.now() - answered : -1;
}

async function failedWith(run: RunHandle): Promise<string | undefined> {
  try {
    await run.result();
  } catch (err) {
    return failureType(err);
  }
  return 'no failure';
}

describe('real Langflow 1.13.0: governed runs', function () {
  this.timeout(120_000);
  let langflow: RealLangflow;
  let apiKey: string;
  let flowId: string;
  let policyDir: string;
  let secretsDir: string;

  /** `good` holds the real API key, `badkey` a well-formed key Langflow never issued. */
  function writeWorkspaces(): void {
    fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(policyDir, 'defaults.json'));
    for (const [workspace, key] of [['good', apiKey], ['badkey', `sk-${'0'.repeat(43)}`]]) {
      const ws = {
        schemaVersion: 1,
        kind: 'workspace',
        workspace,
        rules: [{ id: 'agents', match: { runtime: 'langflow' }, tier: 'Auto' }],
        connections: { langflow: { baseUrl: langflow.url, requestTimeout: '60s' } },
        egress: { langflow: { hosts: [`127.0.0.1:${langflow.port}`] } },
      };
      fs.writeFileSync(path.join(policyDir, `${workspace}.json`), JSON.stringify(ws));
      fs.writeFileSync(path.join(secretsDir, `${workspace}.json`), JSON.stringify({ langflow: { apiKey: key } }), { mode: 0o600 });
    }
  }

  const worker = <T>(fn: (h: Harness) => Promise<T>) => {
    const env = testEnv();
    return withWorker({ connection: env.nativeConnection, client: env.client, policyDir, runtimes: [createLangflowRuntime({ policies: loadPolicyDir(policyDir) })], secrets: new FileSecretStore(secretsDir) }, fn);
  };
  const start = async (h: Harness, workspaceId: string, target: string, text: string): Promise<RunHandle> =>
    (await h.portarium.startRun({ workspaceId, correlationId: uid('corr'), requestedBy: alice, action: { runtime: 'langflow', target, operation: 'run', input: { input_value: text } }, idempotencyKey: uid('key'), reason: 'real langflow' })).run;

  before(async function () {
    this.timeout(300_000);
    langflow = await RealLangflow.start();
    apiKey = await langflow.createApiKey('portarium-real-suite');
    flowId = await langflow.createEchoFlow('portarium echo', 'portarium-echo');
    policyDir = tempDir('portarium-real-langflow-policies-');
    secretsDir = tempDir('portarium-real-langflow-secrets-');
    writeWorkspaces();
  });

  after(async function () {
    this.timeout(30_000);
    await langflow?.stop();
    for (const d of [policyDir, secretsDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it("a run answers with Langflow's own answer: the echo of its input, by flow id and by endpoint name", async function () {
    await worker(async (h) => {
      for (const target of [flowId, 'portarium-echo']) {
        const text = `hello from ${uid('portarium')}`;
        const run = await start(h, 'good', target, text);
        const result = await run.result();
        assert.equal(result.state, RunState.Succeeded);
        const output = result.output as unknown as LangflowOutput;
        assert.equal(output.answer, text);
        assert.ok(output.sessionId.length > 0);
        const scan = await scanRunForSecrets(h.client, run.workflowId, [apiKey], { status: await run.status(), evidence: await run.evidence() });
        assert.deepEqual(scan.found, [], 'the API key stays out of history, status, evidence and logs');
      }
    });
  });

  it('a key Langflow never issued fails the run as RuntimeRejected (auth), not retried', async function () {
    await worker(async (h) => {
      const run = await start(h, 'badkey', flowId, 'hi');
      assert.equal(await failedWith(run), 'RuntimeRejected');
      assert.equal((await run.status()).lastError?.type, 'RuntimeRejected');
      assert.equal(await dispatchAttempts(h.client, run.workflowId), 1);
    });
  });

  it('an unknown flow fails the run as RuntimeRejected', async function () {
    await worker(async (h) => {
      assert.equal(await failedWith(await start(h, 'good', '00000000-0000-4000-8000-000000000000', 'hi')), 'RuntimeRejected');
      assert.equal(await failedWith(await start(h, 'good', 'no-such-endpoint', 'hi')), 'RuntimeRejected');
    });
  });

  it('runs 2-3 s apart, past the idle keep-alive close of the server (gunicorn, 2 s), all succeed', async function () {
    // Precondition: the server really closes an idle kept-alive connection within the gaps below.
    const closedAfterMs = await idleCloseMs(langflow.port);
    assert.ok(closedAfterMs >= 1_500 && closedAfterMs <= 2_500, `Langflow closed an idle connection after ${closedAfterMs} ms`);
    // One worker, so each call may reuse the previous call's pooled connection just as the server closes it.
    await worker(async (h) => {
      for (const gapMs of [0, 1_800, 1_900, 2_000, 2_500, 3_000]) {
        await sleep(gapMs);
        const text = `after ${gapMs} ms idle`;
        const result = await (await start(h, 'good', flowId, text)).result();
        assert.equal((result.output as unknown as LangflowOutput).answer, text, `the call after ${gapMs} ms`);
      }
    });
  });

  // Last: it stops the server.
  it('a stopped server: the dispatch is retried as RuntimeUnavailable, then the run fails RuntimeUnavailable', async function () {
    await langflow.stop();
    await worker(async (h) => {
      const run = await start(h, 'good', flowId, 'hi');
      assert.equal(await failedWith(run), 'RuntimeUnavailable');
      assert.equal((await run.status()).state, RunState.Failed);
      assert.equal(await dispatchAttempts(h.client, run.workflowId), 5, 'every attempt the retry policy allows');
    });
  });
});
