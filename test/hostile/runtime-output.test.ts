/**
 * Hostile runtime answers: a 50 MB body, a 50 MB output handed over directly, a 50 MB error message
 * with megabytes of details, and output whose UTF-16 length is small but whose UTF-8 size is not. None
 * may produce an activity result or failure beyond Temporal's payload limits: the run ends with a
 * typed failure (or a payload reference), and `status` stays readable.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';
import { createEchoRuntime } from '../../activities/runtimes/echo';
import type { RuntimeAdapter } from '../../activities/runtimes/port';
import { loadConfig } from '../../workers/config';
import type { RunHandle } from '../../workers/client';
import { runtimeRejected } from '../../workflows/failures';
import { HttpFake } from '../fakes/http-fake';
import { TEST_POLICY_DIR, failureType, withWorker, type Harness } from '../support/harness';
import { testEnv } from '../support/shared';

const MB = 1024 * 1024;

/** One runtime, several behaviours picked by the action's target. */
function hostileRuntime(bigBodyUrl: () => string): RuntimeAdapter {
  return {
    name: 'ghost',
    async execute(call) {
      switch (call.request.target) {
        case 'body':
          return { output: (await call.http.request({ method: 'GET', url: bigBodyUrl(), timeoutMs: 20_000 })).text };
        case 'output':
          return { output: 'x'.repeat(50 * MB) };
        case 'euros':
          // 100,000 UTF-16 units (under the 256 KiB history limit as a length), 300,000 bytes.
          return { output: '€'.repeat(100_000) };
        case 'error':
          throw runtimeRejected(`upstream said: ${'é'.repeat(25 * MB)}`, { body: 'x'.repeat(10 * MB), items: Array.from({ length: 100_000 }, (_, i) => ({ i, text: 'y'.repeat(100) })) });
        default:
          return { output: 'ok' };
      }
    },
  };
}

async function outcome(run: RunHandle): Promise<string | undefined> {
  try {
    await run.result();
    return 'succeeded';
  } catch (err) {
    return failureType(err);
  }
}

/** Size of the largest event of the run's history, as the server stores it. */
async function largestEvent(run: RunHandle): Promise<number> {
  const history = await run.handle.fetchHistory();
  return Math.max(...(history.events ?? []).map((e) => temporal.api.history.v1.HistoryEvent.encode(e).finish().length));
}

describe('hostile: runtime output sizes', function () {
  this.timeout(120_000);
  let fake: HttpFake;
  let policyDir: string;

  before(async function () {
    fake = await new HttpFake(() => ({ status: 200, body: 'z'.repeat(50 * MB) })).start();
    policyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-hostile-output-'));
    for (const f of fs.readdirSync(TEST_POLICY_DIR)) fs.copyFileSync(path.join(TEST_POLICY_DIR, f), path.join(policyDir, f));
    const ws = JSON.parse(fs.readFileSync(path.join(TEST_POLICY_DIR, 'test.json'), 'utf8'));
    ws.egress = { ghost: { hosts: [`127.0.0.1:${fake.port}`] } };
    fs.writeFileSync(path.join(policyDir, 'test.json'), JSON.stringify(ws));
  });
  after(async function () {
    await fake.close();
    fs.rmSync(policyDir, { recursive: true, force: true });
  });

  const worker = <T>(fn: (h: Harness) => Promise<T>) => {
    const env = testEnv();
    return withWorker({ connection: env.nativeConnection, client: env.client, policyDir, runtimes: [createEchoRuntime(), hostileRuntime(() => `${fake.url}/big`)] }, fn);
  };
  const start = (h: Harness, target: string) => h.start('any', { action: { runtime: 'ghost', target, operation: 'any', input: {} } });

  it('a runtime answering a 50 MB body fails RuntimeRejected; the run stays readable', async function () {
    await worker(async (h) => {
      const run = await start(h, 'body');
      assert.equal(await outcome(run), 'RuntimeRejected');
      const status = await run.status();
      assert.equal(status.state, 'Failed');
      assert.equal(status.lastError?.type, 'RuntimeRejected');
      assert.ok((await largestEvent(run)) < 64 * 1024);
    });
  });

  it('a 50 MB output handed over directly is refused as RuntimeRejected, saying the action ran', async function () {
    await worker(async (h) => {
      const run = await start(h, 'output');
      assert.equal(await outcome(run), 'RuntimeRejected');
      const status = await run.status();
      assert.equal(status.lastError?.type, 'RuntimeRejected');
      assert.match(status.lastError!.message, /ran the action/);
      assert.ok((await largestEvent(run)) < 64 * 1024);
    });
  });

  it('output size is counted in UTF-8 bytes: 100,000 three-byte characters go to the payload store, not history', async function () {
    await worker(async (h) => {
      const run = await start(h, 'euros');
      const result = await run.result();
      const ref = (result.output as { payloadRef?: { uri: string; sha256: string; bytes: number } }).payloadRef;
      assert.ok(ref, 'stored by reference');
      assert.equal(ref.bytes, 300_002);
      assert.ok((await largestEvent(run)) < 64 * 1024);
      fs.rmSync(path.join(loadConfig({}).dataDir, 'payloads', 'test', ref.sha256), { force: true });
    });
  });

  it('a 50 MB error message with megabytes of details fails the run with a failure bounded in bytes', async function () {
    await worker(async (h) => {
      const run = await start(h, 'error');
      assert.equal(await outcome(run), 'RuntimeRejected');
      const status = await run.status();
      assert.equal(status.lastError?.type, 'RuntimeRejected');
      assert.ok(Buffer.byteLength(status.lastError!.message) <= 2048, `${Buffer.byteLength(status.lastError!.message)} bytes`);
      assert.match(status.lastError!.message, /^upstream said: é/);
      assert.ok((await largestEvent(run)) < 64 * 1024);
    });
  });
});
