/**
 * Hostile and sloppy input against policy conditions, on a real Temporal dev server with the shipped
 * `ops` rules: a payment whose amount is a string, missing or wrapped in an array must still need the
 * `payments` approval (or be denied), never fall through to `small-payments` (Assisted), and nothing
 * may be dispatched. The reasons in `status` and in the evidence name the unknown condition.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { RuntimeAdapter, RuntimeCall, RuntimeOutcome } from '../../activities/runtimes/port';
import { PROJECT_ROOT } from '../../workers/config';
import type { RunHandle } from '../../workers/client';
import type { JsonValue, RunStatus } from '../../workflows/types';
import { alice, uid, waitForStatus, withWorker } from '../support/harness';
import { testEnv } from '../support/shared';

/** An `activepieces` runtime that only records what reaches it. */
class RecordingRuntime implements RuntimeAdapter {
  readonly name = 'activepieces';
  readonly calls: RuntimeCall['request'][] = [];
  async execute(call: RuntimeCall): Promise<RuntimeOutcome> {
    this.calls.push(call.request);
    return { output: { paid: true } };
  }
}

/**
 * The shipped defaults and the shipped ops rules, without the parts that would reach the network
 * (event subscribers, connections) or wait for a quota: only the decision is under test here.
 */
function opsRulesDir(): string {
  const sets = path.join(PROJECT_ROOT, 'policies', 'sets');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-hostile-policy-'));
  fs.copyFileSync(path.join(sets, 'defaults.json'), path.join(dir, 'defaults.json'));
  const ops = parseYaml(fs.readFileSync(path.join(sets, 'ops.yaml'), 'utf8')) as Record<string, unknown>;
  for (const key of ['subscribers', 'connections', 'egress', 'quotas', 'triggers']) delete ops[key];
  fs.writeFileSync(path.join(dir, 'ops.json'), JSON.stringify(ops));
  return dir;
}

describe('hostile input: policy conditions', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = opsRulesDir()));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function pay(input: { [k: string]: JsonValue }, check: (s: RunStatus, run: RunHandle, calls: number) => Promise<void>): Promise<void> {
    const recorder = new RecordingRuntime();
    await withWorker({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir: dir, runtimes: [recorder] }, async (h) => {
      const { run } = await h.portarium.startRun({
        workspaceId: 'ops',
        correlationId: uid('corr'),
        requestedBy: alice,
        action: { runtime: 'activepieces', target: 'vendors/acme', operation: 'pay', input },
        idempotencyKey: uid('key'),
        reason: 'hostile payment',
      });
      const s = await waitForStatus(run, (st) => st.state !== 'Evaluating');
      await check(s, run, recorder.calls.length);
      // Terminated, not cancelled: under the signed payments rule an unsigned cancelRun is refused.
      if (s.state === 'AwaitingApproval') await run.handle.terminate('test done');
      await run.result().catch(() => undefined);
      assert.equal(recorder.calls.length, 0, 'nothing was dispatched');
    });
  }

  async function needsPaymentsApproval(s: RunStatus, run: RunHandle, calls: number, why: RegExp): Promise<void> {
    // Not Denied: small-payments matches for certain, so the strictest reading is that payments applies too.
    assert.equal(s.state, 'AwaitingApproval');
    assert.deepEqual([s.tier, s.approvalsNeeded, s.signedDecisions, s.missingRoles], ['HumanApprove', 2, true, ['finance']]);
    const reason = s.reasons.find((r) => r.startsWith('rule payments (HumanApprove) counts as matching'));
    assert.ok(reason, `status.reasons: ${JSON.stringify(s.reasons)}`);
    assert.match(reason, /its condition \(action\.input\.amount > 1000\) is unknown/);
    assert.match(reason, why);
    const policy = (await run.evidence()).entries.find((e) => e.event === 'PolicyAllowed');
    assert.ok(policy, 'the decision is in the evidence');
    assert.match(JSON.stringify(policy), why, 'the evidence names the unknown condition too');
    assert.equal(calls, 0);
  }

  it('a string amount ("250000") needs the signed finance approval', async function () {
    await pay({ amount: '250000' }, (s, run, calls) => needsPaymentsApproval(s, run, calls, /action\.input\.amount is a string/));
  });

  it('a missing amount needs the signed finance approval', async function () {
    await pay({ payee: 'acme' }, (s, run, calls) => needsPaymentsApproval(s, run, calls, /action\.input\.amount is missing/));
  });

  it('an amount wrapped in an array ([250000]) needs the signed finance approval', async function () {
    await pay({ amount: [250000] }, (s, run, calls) => needsPaymentsApproval(s, run, calls, /action\.input\.amount is an array/));
  });

  // Context: the control. Without it, a harness that never reached Assisted would pass the cases above.
  it('control: a well-typed small amount is Assisted (VetoWindow), so the cases above did change the outcome', async function () {
    await pay({ amount: 250 }, async (s, run) => {
      assert.deepEqual([s.state, s.tier], ['VetoWindow', 'Assisted']);
      assert.ok(!s.reasons.some((r) => /unknown/.test(r)), JSON.stringify(s.reasons));
      await run.cancel({ requestedBy: alice, reason: 'test done' });
    });
  });
});
