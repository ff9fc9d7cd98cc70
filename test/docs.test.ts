/**
 * The docs cannot rot: every `bash` block of docs/operators.md runs, in order, in one shell against the
 * real dev server and a worker process with the shipped policies on task queue `portarium`, and
 * every command line the README shows is one that runs here. The shell is an operator's: the Temporal
 * CLI profile `./temporal-dev.sh profile` writes, put in effect by the one line it prints.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { KeyringKeyProvider } from '../workers/codec/keyring';
import { type RunningCodecServer, startCodecServer } from '../workers/codec/server';
import { PROJECT_ROOT } from '../workers/config';
import { hashAction } from '../workflows/hashing';
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

function runScript(script: string, env: NodeJS.ProcessEnv, cwd = PROJECT_ROOT): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

/**
 * What `./temporal-dev.sh profile` does for a session with a codec server on `codecUrl` whose token is
 * `token`: run on a copy of the script in a folder of its own (its .data/ is the copy's), so the
 * repository's own .data/ and the user's Temporal config stay untouched. Returns the printed line.
 */
async function devScriptProfile(dir: string, codecUrl: string, token: string): Promise<{ line: string; configFile: string; out: string }> {
  fs.copyFileSync(path.join(PROJECT_ROOT, 'temporal-dev.sh'), path.join(dir, 'temporal-dev.sh'));
  fs.mkdirSync(path.join(dir, '.data'), { recursive: true });
  fs.writeFileSync(path.join(dir, '.data', 'codec-token'), `${token}\n`, { mode: 0o600 });
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, TEMPORAL_CLI: temporalCli(), TEMPORAL_ADDRESS: shared.address, CODEC_PORT: new URL(codecUrl).port };
  const { code, out } = await runScript('./temporal-dev.sh profile', env, dir);
  assert.equal(code, 0, out);
  const line = /^ {2}(export TEMPORAL_CONFIG_FILE=\S+ TEMPORAL_PROFILE=portarium-dev TEMPORAL_ADDRESS=\S+)$/m.exec(out)?.[1];
  assert.ok(line, `no export line in:\n${out}`);
  return { line, configFile: path.join(dir, '.data', 'temporal-cli.toml'), out };
}

describe('docs', function () {
  let worker: WorkerProcess | undefined;
  let dataDir: string;
  // The guide's "Read payloads" step: a codec server, and the Temporal CLI profile pointing at it.
  let codec: RunningCodecServer | undefined;
  const codecToken = randomBytes(24).toString('hex');
  let profile: { line: string; configFile: string; out: string };

  before(async function () {
    this.timeout(30_000);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-docs-'));
    worker = await startWorkerProcess({ PORTARIUM_DATA_DIR: dataDir, PORTARIUM_LOG_LEVEL: 'WARN' });
    codec = await startCodecServer({ address: '127.0.0.1:0', tokens: [{ token: codecToken }], corsOrigins: [], namespace: 'default', keys: new KeyringKeyProvider(testKeyringFile()) });
    profile = await devScriptProfile(fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-dev-')), codec.url, codecToken);
  });
  after(async () => {
    worker?.child.kill('SIGTERM');
    await codec?.close();
  });

  /** An operator's shell: PATH and HOME, the line the script printed, nothing else of the test's environment. */
  const operatorShell = (script: string, extra: NodeJS.ProcessEnv = {}) =>
    runScript(`${profile.line}\n${script}`, { PATH: `${path.dirname(temporalCli())}${path.delimiter}${process.env.PATH}`, HOME: process.env.HOME, ...extra });

  it('temporal-dev.sh writes a Temporal CLI profile with address, namespace and codec, mode 0600, keeping other profiles', async function () {
    assert.equal(fs.statSync(profile.configFile).mode & 0o777, 0o600, 'the profile holds the codec token');
    const cfg = (prop: string) => `temporal config get --config-file "$TEMPORAL_CONFIG_FILE" --prop ${prop} -o json`;
    const other = 'temporal config set --config-file "$TEMPORAL_CONFIG_FILE" --profile mine --prop address --value 10.0.0.1:7233';
    const dev = 'cd "$(dirname "$TEMPORAL_CONFIG_FILE")/.." && TEMPORAL_CLI="$(command -v temporal)"';
    const { code, out } = await operatorShell([other, `(${dev} CODEC_PORT=${new URL(codec!.url).port} ./temporal-dev.sh profile >/dev/null)`,
      // Another terminal without the session's CODEC_PORT: refused, and the profile keeps its codec.
      `(${dev} CODEC_PORT=1 ./temporal-dev.sh profile) && exit 9 || true`,
      cfg('address'), cfg('namespace'), cfg('codec.endpoint'), 'temporal config list --config-file "$TEMPORAL_CONFIG_FILE"'].join('\n'));
    assert.equal(code, 0, out);
    assert.match(out, /no codec server of this session answers on 127\.0\.0\.1:1 /);
    assert.match(out, new RegExp(`"value": "${shared.address}"`));
    assert.match(out, /"value": "default"/);
    assert.match(out, new RegExp(`"value": "${codec!.url}"`));
    assert.match(out, /^ *mine *$/m, 'rewriting the profile keeps the other profiles of the file');
    assert.match(profile.out, /profile portarium-dev \(address, namespace, codec server\)/);
    assert.doesNotMatch(profile.out, new RegExp(codecToken), 'the token is in the profile, not on the screen');
  });

  it('with the profile, the real temporal CLI shows decoded payloads, typed refusals with their message, and why a run failed', async function () {
    this.timeout(60_000);
    const id = `demo:profile-${randomBytes(4).toString('hex')}`;
    const input = { workspaceId: 'demo', correlationId: id.slice(5), requestedBy: { id: 'alice', roles: ['dev'] },
      action: { runtime: 'echo', target: 'demo/greeting', operation: 'write', input: { message: 'through the profile' } }, idempotencyKey: id.slice(5), reason: 'profile check' };
    const decide = { kind: 'approve', decisionId: 'alice-self', approver: { id: 'alice', roles: ['approver'] }, actionHash: hashAction(input.action) };
    const q = (v: unknown) => `'${JSON.stringify(v)}'`;
    const script = [
      `temporal workflow start --task-queue portarium --type governedRun --workflow-id '${id}' --input ${q(input)}`,
      `for i in $(seq 50); do temporal workflow query --workflow-id '${id}' --type status | grep -q AwaitingApproval && break; sleep 0.2; done`,
      `temporal workflow query --workflow-id '${id}' --type status`,
      `temporal workflow show --workflow-id '${id}' --detailed`,
      `temporal workflow update execute --workflow-id '${id}' --name decide --input ${q(decide)} && exit 9 || true`,
      `temporal workflow start --task-queue portarium --type governedRun --workflow-id '${id}-bad' --input '{"workspaceId":"demo","reason":"no action"}'`,
      `temporal workflow result --workflow-id '${id}-bad' && exit 9 || true`,
      `temporal workflow result --workflow-id '${id}-bad' -o json && exit 9 || true`,
      `temporal workflow describe --workflow-id '${id}-bad' -o json`,
    ].join('\n');
    // No TEMPORAL_CODEC_* and no address but the line's: the profile does it all.
    const { code, out } = await operatorShell(script);
    assert.equal(code, 0, out);
    assert.match(out, /"state":"AwaitingApproval"/, 'query answers decoded');
    assert.match(out, /input\[0\]\.action\.input\.message: through the profile/, 'show --detailed decodes the input');
    assert.match(out, /requested this run and may not decide on it .*\(type: SelfApprovalRefused/, 'a refused update names its type and says why');
    assert.match(out, /Message: Encoded failure \(InvalidRunInput\): the message is encrypted; through the codec, `-o json`/, 'text output says what failed and where to read why');
    assert.match(out, /"message": "invalid governedRun input: .*action/, 'result and describe -o json show the decoded message');
    assert.doesNotMatch(out, /Encoded failure \(type:/);

    // The same query without the profile's codec prints no decoded status: the profile is what decodes.
    const bare = await operatorShell(`temporal workflow query --disable-config-file --address ${shared.address} --workflow-id '${id}' --type status`);
    assert.equal(bare.code, 0, bare.out);
    assert.doesNotMatch(bare.out, /AwaitingApproval/);
  });

  it('the temporal lines the dev script\'s demo prints for the profile work as printed', async function () {
    this.timeout(60_000);
    // The demo as ./temporal-dev.sh runs it once it wrote the profile; one run per way of approving.
    const demo = async () => {
      const env = { PATH: process.env.PATH, TEMPORAL_ADDRESS: shared.address, PORTARIUM_KEYRING_FILE: testKeyringFile(), PORTARIUM_DATA_DIR: dataDir,
        TEMPORAL_CONFIG_FILE: profile.configFile, TEMPORAL_PROFILE: 'portarium-dev' };
      const { code, out } = await runScript(`node ${path.join(PROJECT_ROOT, 'dist', 'workers', 'examples', 'demo.js')}`, env);
      assert.equal(code, 0, out);
      const lines = out.split('\n').filter((l) => /^ {2}temporal /.test(l)).map((l) => l.trim());
      assert.equal(lines.length, 4, out);
      assert.ok(lines.every((l) => !l.includes('--address')), 'the profile gives the address');
      return { id: /^Workflow id: +(\S+)$/m.exec(out)![1], line: (verb: string) => lines.find((l) => l.startsWith(`temporal workflow ${verb}`))! };
    };
    const bySignal = await demo();
    const byUpdate = await demo();
    const { code, out } = await operatorShell([
      bySignal.line('query'), bySignal.line('list'), bySignal.line('signal'), `temporal workflow result --workflow-id '${bySignal.id}'`,
      byUpdate.line('update execute'),
    ].join('\n'));
    assert.equal(code, 0, out);
    assert.match(out, /"state":"AwaitingApproval"/, 'the status query reads as JSON');
    assert.match(out, /Signal workflow succeeded/);
    assert.match(out, /"state":"Succeeded"/, 'approved by the printed signal line');
    assert.match(out, /Result +map\[.*counted:true/, `approved by the printed update line:\n${out}`);
  });

  it('every command of the operator\'s guide runs as written and leaves the runs it describes', async function () {
    // About 100 s alone on 2 cores; the guide grows with each capability and CI machines are shared.
    this.timeout(480_000);
    // Files the guide writes and removes; left over from an interrupted run, they would stop `keygen`.
    for (const f of ['bob.key', 'kept-head.json', 'proof.json', 'cons.json', 'demo-log.json']) fs.rmSync(path.join(PROJECT_ROOT, f), { force: true });
    const script = codeBlocks(GUIDE, 'bash').join('\n');
    // The operator's shell after `./temporal-dev.sh`: its export line (profile, and the address for
    // the portarium CLI); the worker's data folder and keyring stand in for the repository's .data.
    const { code, out } = await operatorShell(script, { PORTARIUM_DATA_DIR: dataDir, PORTARIUM_KEYRING_FILE: testKeyringFile() });
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
    assert.match(out, /^workspace demo since \S+: [1-9]\d* run\(s\), [1-9]\d* re-evaluated/m, 'policy what-if re-decided the runs the guide recorded');
    assert.match(out, /active key of demo: demo\/k\d+/, 'the demo key was rotated midway, and the later steps still read the runs');
    assert.match(out, /"state":\s*"AwaitingApproval"/, 'temporal workflow query prints the decoded status (through the codec server)');
    assert.match(out, /approved demo:change-47/);
    assert.match(out, /alice requested this run and may not decide on it .*\(type: SelfApprovalRefused/, 'the refused update reads as JSON decoded through the profile');
    assert.match(out, /"message": "invalid governedRun input: .*action/, 'temporal workflow result -o json of the failed run says why');
    assert.match(out, /^failed: InvalidRunInput: invalid governedRun input: .*action/m, 'so does npx portarium run status');
    // `-o json` prints the stored plaintext marker beside the decoded message; nothing shows the marker alone.
    assert.doesNotMatch(out, /(error: |Message: )Encoded failure|Encoded failure \(type:/, 'no failure the guide shows is left encoded');
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
