/**
 * The `portarium` CLI in-process (`main(argv, io)`) against a real worker and the shared dev server:
 * a HumanApprove run from start to verified evidence, exit codes, and policy checks without a server.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../workers/cli';
import { PROJECT_ROOT } from '../workers/config';
import { hashAction } from '../workflows/hashing';
import type { RunStatus } from '../workflows/types';
import { TEST_POLICY_DIR, uid, withWorker } from './support/harness';
import { DEV_KEYS, shared, testEnv } from './support/shared';

interface Captured {
  code: number;
  out: string;
  err: string;
}

/** Run the CLI with an empty environment, so nothing from the test process leaks in. */
async function cli(...argv: string[]): Promise<Captured> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: { ...DEV_KEYS } });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** `label: value` from the output of `run start`. */
function field(text: string, label: string): string {
  const m = new RegExp(`^${label}: (\\S+)`, 'm').exec(text);
  assert.ok(m, `no ${label} in:\n${text}`);
  return m[1];
}

async function statusUntil(conn: string[], workflowId: string, state: string, timeoutMs = 20_000): Promise<RunStatus> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await cli('run', 'status', workflowId, '--json', ...conn);
    last = r.code === 0 ? r.out : r.err;
    if (r.code === 0 && (JSON.parse(r.out) as RunStatus).state === state) return JSON.parse(r.out) as RunStatus;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${workflowId} did not reach ${state}; last: ${last}`);
}

const startArgs = (operation: string, key: string) => [
  'run', 'start', '--workspace', 'test', '--requester', 'alice', '--roles', 'dev', '--runtime', 'echo', '--target', 'test/thing',
  '--operation', operation, '--input', '{"n":1}', '--reason', `cli ${operation}`, '--idempotency-key', key,
];

describe('cli', function () {
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client });
  const connFor = (taskQueue: string) => ['--address', shared.address!, '--task-queue', taskQueue];

  it('runs a HumanApprove run: start, status, refused self-approval, approval, verified evidence', async function () {
    await withWorker(opts(), async (h) => {
      const conn = connFor(h.taskQueue);
      const started = await cli(...startArgs('write', uid('key')), ...conn);
      assert.equal(started.code, 0, started.err);
      const workflowId = field(started.out, 'workflowId');
      const actionHash = field(started.out, 'actionHash');
      assert.equal(field(started.out, 'existing'), 'no');
      assert.equal(actionHash, hashAction({ runtime: 'echo', target: 'test/thing', operation: 'write', input: { n: 1 } }));

      const waiting = await statusUntil(conn, workflowId, 'AwaitingApproval');
      assert.equal(waiting.actionHash, actionHash);
      assert.equal(waiting.approvalsNeeded, 1);

      const self = await cli('decide', workflowId, 'approve', '--approver', 'alice', '--roles', 'approver', '--action-hash', actionHash, ...conn);
      assert.equal(self.code, 3);
      assert.match(self.err, /^refused: SelfApprovalRefused: /);
      const human = await cli('run', 'status', workflowId, ...conn);
      assert.equal(human.code, 0, human.err);
      assert.match(human.out, /^state +AwaitingApproval$/m);
      assert.match(human.out, /SelfApprovalRefused via decide by alice/);

      const approved = await cli('decide', workflowId, 'approve', '--approver', 'bob', '--roles', 'approver', '--action-hash', actionHash, ...conn);
      assert.equal(approved.code, 0, approved.err);
      assert.match(approved.out, /: counted; /);
      await statusUntil(conn, workflowId, 'Succeeded');

      const evidence = await cli('run', 'evidence', workflowId, '--verify', ...conn);
      assert.equal(evidence.code, 0, evidence.err);
      const events = evidence.out.split('\n').map((line) => (JSON.parse(line) as { event: string }).event);
      assert.equal(events[0], 'RunRequested');
      assert.ok(events.includes('RequestRefused'), 'the refused self-approval is in the evidence');
      assert.match(evidence.err, /^verified: /);
    });
  });

  it('waits for an Auto run, finds it again by idempotency key, and lists it', async function () {
    await withWorker(opts(), async (h) => {
      const conn = connFor(h.taskQueue);
      const key = uid('key');
      const first = await cli(...startArgs('read', key), '--wait', ...conn);
      assert.equal(first.code, 0, first.err);
      const workflowId = field(first.out, 'workflowId');
      assert.equal((JSON.parse(first.out.slice(first.out.indexOf('{'))) as { state: string }).state, 'Succeeded');
      const again = await cli(...startArgs('read', key), ...conn);
      assert.equal(again.code, 0, again.err);
      assert.equal(field(again.out, 'workflowId'), workflowId);
      assert.equal(field(again.out, 'existing'), 'yes');

      // Visibility is eventually consistent: poll until the list shows the run in its final state.
      const deadline = Date.now() + 15_000;
      let listed = await cli('run', 'list', '--workspace', 'test', '--state', 'Succeeded', ...conn);
      while (!listed.out.includes(workflowId) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        listed = await cli('run', 'list', '--workspace', 'test', '--state', 'Succeeded', ...conn);
      }
      assert.equal(listed.code, 0, listed.err);
      assert.match(listed.out, new RegExp(`^${workflowId} +Succeeded +\\d{4}-`, 'm'));
    });
  });

  it('lists a workspace whose runs include one this keyring cannot decode: every run is listed, none hides the others', async function () {
    // A run started by a process with another keyring file (its memo is ciphertext here), on a queue
    // no worker polls, so it stays Running with the state it was started in.
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-other-keyring-'));
    const foreignEnv = { ...DEV_KEYS, PORTARIUM_KEYRING_FILE: path.join(other, 'keyring.json') };
    const out: string[] = [];
    const err: string[] = [];
    const queue = uid('nobody');
    const started = await main([...startArgs('read', uid('key')), '--address', shared.address!, '--task-queue', queue],
      { out: (t) => out.push(t), err: (t) => err.push(t), env: foreignEnv });
    assert.equal(started.valueOf(), 0, err.join('\n'));
    const foreign = field(out.join('\n'), 'workflowId');
    try {
      await assert.rejects(testEnv().client.workflow.getHandle(foreign).describe(), /keyring|payload key/, 'this keyring really cannot read its memo');
      const deadline = Date.now() + 15_000;
      let listed = await cli('run', 'list', '--workspace', 'test', '--state', 'Evaluating', '--address', shared.address!);
      while (!listed.out.includes(foreign) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        listed = await cli('run', 'list', '--workspace', 'test', '--state', 'Evaluating', '--address', shared.address!);
      }
      assert.equal(listed.code, 0, listed.err);
      assert.match(listed.out, new RegExp(`^${foreign} +Evaluating +\\d{4}-`, 'm'));
    } finally {
      await testEnv().client.workflow.getHandle(foreign).terminate('test cleanup');
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('rejects by signal and cancels, reporting both in status', async function () {
    await withWorker(opts(), async (h) => {
      const conn = connFor(h.taskQueue);
      const workflowId = field((await cli(...startArgs('write', uid('key')), ...conn)).out, 'workflowId');
      const { actionHash } = await statusUntil(conn, workflowId, 'AwaitingApproval');
      const noRationale = await cli('decide', workflowId, 'reject', '--approver', 'bob', '--roles', 'approver', '--action-hash', actionHash, ...conn);
      assert.equal(noRationale.code, 2, 'a reject without rationale is refused before it is sent');
      assert.match(noRationale.err, /rationale/);
      const rejected = await cli('decide', workflowId, 'reject', '--signal', '--approver', 'bob', '--roles', 'approver',
        '--action-hash', actionHash, '--rationale', 'not now', ...conn);
      assert.equal(rejected.code, 0, rejected.err);
      await statusUntil(conn, workflowId, 'Rejected');

      const other = field((await cli(...startArgs('write', uid('key')), ...conn)).out, 'workflowId');
      await statusUntil(conn, other, 'AwaitingApproval');
      const cancelled = await cli('run', 'cancel', other, '--by', 'alice', '--reason', 'no longer needed', ...conn);
      assert.equal(cancelled.code, 0, cancelled.err);
      await statusUntil(conn, other, 'Cancelled');
      const missing = await cli('run', 'status', uid('test:nope'), ...conn);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /^not found: /);
    });
  });

  it('requests changes, refuses an amendment by the reviewer, takes the requester\'s, and completes ManualOnly work', async function () {
    await withWorker(opts(), async (h) => {
      const conn = connFor(h.taskQueue);
      const workflowId = field((await cli(...startArgs('write', uid('key')), ...conn)).out, 'workflowId');
      const { actionHash } = await statusUntil(conn, workflowId, 'AwaitingApproval');
      const changes = await cli('decide', workflowId, 'requestChanges', '--approver', 'bob', '--roles', 'approver',
        '--action-hash', actionHash, '--rationale', 'use n=2', ...conn);
      assert.equal(changes.code, 0, changes.err);
      assert.match(changes.out, /^requestChanges .*: counted; /);
      await statusUntil(conn, workflowId, 'ChangesRequested');
      const amendArgs = ['--runtime', 'echo', '--target', 'test/thing', '--operation', 'write', '--input', '{"n":2}', '--reason', 'n=2', ...conn];
      const byReviewer = await cli('amend', workflowId, '--by', 'bob', '--roles', 'approver', ...amendArgs);
      assert.equal(byReviewer.code, 3);
      assert.match(byReviewer.err, /^refused: AmendNotAllowed: /);
      const amended = await cli('amend', workflowId, '--by', 'alice', '--roles', 'dev', ...amendArgs);
      assert.equal(amended.code, 0, amended.err);
      const newHash = hashAction({ runtime: 'echo', target: 'test/thing', operation: 'write', input: { n: 2 } });
      assert.match(amended.out, new RegExp(`^actionHash +${newHash}$`, 'm'));
      assert.equal((await statusUntil(conn, workflowId, 'AwaitingApproval')).actionHash, newHash);

      const manual = field((await cli(...startArgs('wipe', uid('key')), ...conn)).out, 'workflowId');
      const waiting = await statusUntil(conn, manual, 'AwaitingManualCompletion');
      const done = await cli('manual-complete', manual, '--by', 'oscar', '--roles', 'operator', '--action-hash', waiting.actionHash,
        '--evidence-ref', 'CHG-7', '--notes', 'done by hand', ...conn);
      assert.equal(done.code, 0, done.err);
      await statusUntil(conn, manual, 'ManuallyCompleted');
    });
  });

  it('prints the decoded failure of a run that failed before it could answer (status, evidence), while history keeps it encrypted', async function () {
    await withWorker(opts(), async (h) => {
      const conn = connFor(h.taskQueue);
      // Only a raw Temporal client can send what the CLI would refuse: input that fails the workflow's own check.
      const workflowId = `test:${uid('bad-input')}`;
      const handle = await testEnv().client.workflow.start('governedRun', { taskQueue: h.taskQueue, workflowId, args: [{ workspaceId: 'test', reason: 'no action' }] });
      await assert.rejects(handle.result());
      for (const argv of [['run', 'status', workflowId], ['run', 'status', workflowId, '--field', 'state'], ['run', 'evidence', workflowId]]) {
        const r = await cli(...argv, ...conn);
        assert.equal(r.code, 1, `${argv.join(' ')}: ${r.out}`);
        assert.match(r.err, /^failed: InvalidRunInput: invalid governedRun input: .*action/, argv.join(' '));
        assert.doesNotMatch(r.err, /Encoded failure/);
      }
      const history = await handle.fetchHistory();
      const failure = history.events!.at(-1)!.workflowExecutionFailedEventAttributes!.failure!;
      assert.equal(failure.applicationFailureInfo?.type, 'InvalidRunInput');
      assert.match(failure.message!, /^Encoded failure \(InvalidRunInput\): the message is encrypted; through the codec, `-o json`/);
      assert.equal(failure.stackTrace, '');
      assert.doesNotMatch(Buffer.from(failure.encodedAttributes!.data!).toString('latin1'), /governedRun input/, 'the message itself stays encrypted');
    });
  });

  it('refuses a bad workspace id before anything is sent (exit 2)', async function () {
    const r = await cli('run', 'start', '--workspace', 'Not Valid', '--requester', 'alice', '--runtime', 'echo', '--target', 't',
      '--operation', 'read', '--reason', 'x', '--address', '127.0.0.1:1');
    assert.equal(r.code, 2);
    assert.match(r.err, /workspaceId/);
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  });

  it('prints usage, and exits 2 on an unknown command or flag', async function () {
    const help = await cli();
    assert.equal(help.code, 0);
    for (const c of ['run start', 'run status', 'run evidence', 'run list', 'run cancel', 'decide', 'manual-complete', 'amend', 'policy check']) {
      assert.match(help.out, new RegExp(`^  ${c} `, 'm'), c);
    }
    assert.equal((await cli('--help')).code, 0);
    assert.match((await cli('decide', '--help')).out, /<approve\|reject\|requestChanges>/);
    const unknown = await cli('run', 'frobnicate');
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown command/);
    const badFlag = await cli('run', 'status', 'x', '--colour');
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.err, /--colour/);
    assert.match(badFlag.err, /Usage: portarium run status/);
    const badConfig = await main(['run', 'status', 'x'], { out: () => undefined, err: () => undefined, env: { PORTARIUM_TASK_QUEUEE: 'q' } });
    assert.equal(badConfig, 2, 'a ConfigError exits 2');
  });

  describe('policy check', function () {
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-policy-'));
      fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
      const bad = { schemaVersion: 1, kind: 'workspace', workspace: 'bad', rules: [{ id: 'r1', match: { runtime: 'echo' }, tier: 'Maybe' }] };
      fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify(bad));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('passes the shipped policy sets', async function () {
      const r = await cli('policy', 'check', path.join(PROJECT_ROOT, 'policies', 'sets'));
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /^ok: \d+ workspace\(s\): .*demo/);
    });

    it('warns, without failing, where an ordered comparison guards a stricter rule that overlaps a looser one', async function () {
      const r = await cli('policy', 'check', path.join(PROJECT_ROOT, 'policies', 'sets'));
      assert.equal(r.code, 0, r.out);
      const warnings = r.out.split('\n').filter((l) => l.startsWith('warning: '));
      assert.equal(warnings.length, 1, r.out);
      assert.match(warnings[0], /ops\.yaml: rules\.3\.when: 'action\.input\.amount > 1000' guards payments \(HumanApprove\), which overlaps the looser small-payments \(Assisted\): when action\.input\.amount is missing or not of the compared type/);
    });

    it('defaults to the configured policy directory', async function () {
      const r = await main(['policy', 'check'], { out: () => undefined, err: () => undefined, env: { PORTARIUM_POLICY_DIR: TEST_POLICY_DIR } });
      assert.equal(r, 0);
    });

    it('names the file and the path of every problem (exit 1)', async function () {
      const r = await cli('policy', 'check', dir);
      assert.equal(r.code, 1);
      assert.match(r.out, new RegExp(`^${path.join(dir, 'bad.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: rules\\.0\\.tier: `, 'm'));
    });
  });
});
