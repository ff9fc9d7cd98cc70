/**
 * The docs cannot rot: every `bash` block of docs/operators.md runs, in order, in one shell against the
 * real dev server and a worker process with the shipped policies on task queue `portarium`, and
 * every command line the README shows is one that runs here.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { KeyringKeyProvider } from '../activities/keyring';
import { type RunningCodecServer, startCodecServer } from '../workers/codec-server';
import { PROJECT_ROOT } from '../workers/config';
import { shared, testEnv, testKeyringFile } from './support/shared';
import { temporalCli } from './support/temporal-binaries';
import { type WorkerProcess, startWorkerProcess } from './support/worker-process';

const GUIDE = path.join(PROJECT_ROOT, 'docs', 'operators.md');

/** Fenced blocks of `lang` in a markdown file, in order. */
export function codeBlocks(file: string, lang: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const blocks: string[] = [];
  const fence = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm');
  for (let m = fence.exec(text); m; m = fence.exec(text)) blocks.push(m[1]);
  return blocks;
}

/** Command lines of a block, with `\` continuations joined and comments dropped. */
function commandLines(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.replace(/\s+#\s.*$/, '').trim())
    .filter((l) => l && !l.startsWith('#'));
}

function runScript(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

describe('docs', function () {
  let worker: WorkerProcess | undefined;
  let dataDir: string;
  // The guide's "Read payloads" step: a codec server, and the CLI pointed at it (TEMPORAL_CODEC_*).
  let codec: RunningCodecServer | undefined;
  const codecToken = randomBytes(24).toString('hex');

  before(async function () {
    this.timeout(30_000);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-docs-'));
    worker = await startWorkerProcess({ PORTARIUM_DATA_DIR: dataDir, PORTARIUM_LOG_LEVEL: 'WARN' });
    codec = await startCodecServer({ address: '127.0.0.1:0', tokens: [{ token: codecToken }], corsOrigins: [], namespace: 'default', keys: new KeyringKeyProvider(testKeyringFile()) });
  });
  after(async () => {
    worker?.child.kill('SIGTERM');
    await codec?.close();
  });

  it('every command of the operator\'s guide runs as written and leaves the runs it describes', async function () {
    this.timeout(240_000);
    // Files the guide writes and removes; left over from an interrupted run, they would stop `keygen`.
    for (const f of ['bob.key', 'kept-head.json', 'proof.json', 'cons.json', 'demo-log.json']) fs.rmSync(path.join(PROJECT_ROOT, f), { force: true });
    const script = codeBlocks(GUIDE, 'bash').join('\n');
    const env = {
      PATH: `${path.dirname(temporalCli())}${path.delimiter}${process.env.PATH}`,
      HOME: process.env.HOME,
      TEMPORAL_ADDRESS: shared.address,
      PORTARIUM_DATA_DIR: dataDir,
      PORTARIUM_KEYRING_FILE: testKeyringFile(),
      TEMPORAL_CODEC_ENDPOINT: codec!.url,
      TEMPORAL_CODEC_AUTH: `Bearer ${codecToken}`,
    };
    const { code, out } = await runScript(script, env);
    assert.equal(code, 0, `the guide's commands failed:\n${out.slice(-4000)}`);
    const state = async (id: string) => ((await testEnv().client.workflow.getHandle(id).result()) as { state: string }).state;
    assert.equal(await state('demo:change-42'), 'Succeeded', 'approved by signal');
    assert.equal(await state('demo:change-43'), 'Rejected', 'rejected by update');
    assert.equal(await state('demo:change-44'), 'Succeeded', 'approved with the CLI');
    assert.equal(await state('demo:change-45'), 'Cancelled');
    assert.equal(await state('demo:change-46'), 'Cancelled');
    assert.equal(await state('demo:change-47'), 'Succeeded', 'approved by the bot');
    assert.equal(await state('demo:invoice-7'), 'Succeeded');
    assert.equal(await state('demo:invoice-8'), 'Succeeded', 'started by the TypeScript example');
    assert.match(out, /existing: yes/, 'the repeated start found the first run');
    assert.match(out, /verified/);
    assert.match(out, /active key of demo: demo\/k\d+/, 'the demo key was rotated midway, and the later steps still read the runs');
    assert.match(out, /"state":\s*"AwaitingApproval"/, 'temporal workflow query prints the decoded status (through the codec server)');
    assert.match(out, /approved demo:change-47/);
    assert.match(out, /route: demo\/demo-greeting-requested/, 'the sample CloudEvent was routed');
    const query = 'PortariumWorkspace = "demo" AND PortariumCorrelationId = "pipeline-run-17"';
    let runs = 0;
    // Visibility is eventually consistent: wait until the run shows, then check there is only one.
    for (const deadline = Date.now() + 10_000; runs === 0 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      runs = (await testEnv().client.workflow.count(query)).count;
    }
    assert.equal(runs, 1, 'the redelivered event started nothing new');
  });

  it('the TypeScript service example in the guide is the file CI runs', function () {
    const example = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'examples', 'service.ts'), 'utf8');
    const [snippet] = codeBlocks(GUIDE, 'ts');
    for (const line of snippet.split('\n').map((l) => l.trim()).filter(Boolean)) {
      assert.ok(example.includes(line), `docs/examples/service.ts lacks: ${line}`);
    }
  });

  it('every command line in the README and docs/triggers.md is one the guide runs', function () {
    const tested = new Set(codeBlocks(GUIDE, 'bash').flatMap(commandLines));
    const shown = ['README.md', 'docs/triggers.md']
      .flatMap((f) => codeBlocks(path.join(PROJECT_ROOT, f), 'bash'))
      .flatMap(commandLines)
      .filter((l) => /^(temporal|npx portarium|node dist)\b/.test(l));
    assert.ok(shown.length >= 5, 'the README shows commands');
    const untested = shown.filter((l) => !tested.has(l));
    assert.deepEqual(untested, [], 'README commands missing from docs/operators.md (where CI runs them)');
  });
});
