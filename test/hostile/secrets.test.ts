/**
 * Hostile secrets: a runtime that echoes credentials back in forms the scrubber used to miss (a value
 * under 6 characters, its base64url and hex, a secret inside a larger base64 blob, the start of a
 * secret cut off by a clip) and StackStorm's minted session token. None of it may reach status,
 * evidence, the decoded history or the logs.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createEchoRuntime } from '../../activities/runtimes/echo';
import type { RuntimeAdapter } from '../../activities/runtimes/port';
import { SecretScrubber } from '../../activities/secrets/scrubber';
import type { SecretStore } from '../../activities/secrets/port';
import { createStackStormRuntime } from '../../activities/runtimes/stackstorm';
import { clipUtf8 } from '../../activities/utf8';
import { runtimeRejected } from '../../workflows/failures';
import { StackStormFake } from '../fakes/stackstorm-server';
import { TEST_POLICY_DIR, alice, uid, withWorker } from '../support/harness';
import { scanRunForSecrets, textOf } from '../support/leak-scan';
import { testCall } from '../support/runtime-call';
import { testEnv } from '../support/shared';

/** Five characters: under the old 6-character floor. Unusual enough not to occur by chance in a history. */
const SHORT = 'Zq7Kx';
const LONG = 'lk-4f9c2e7a1b3d5f60';
const forms = (v: string) => [v, Buffer.from(v).toString('base64url'), Buffer.from(v).toString('hex'), Buffer.from(v).toString('hex').toUpperCase()];

const memorySecrets = (byRuntime: Record<string, Record<string, string>>): SecretStore => ({
  kind: 'memory',
  read: async (_ws, runtime) => byRuntime[runtime] ?? {},
  close: async () => undefined,
});

/** Reads its secret and quotes it back, raw and encoded, in its output or its error. */
const echoing: RuntimeAdapter = {
  name: 'ghost',
  async execute(call) {
    const { pin, key } = await call.secrets();
    const said = `pin ${pin} b64u=${Buffer.from(pin).toString('base64url')} hex:${Buffer.from(pin).toString('hex')} HEX:${Buffer.from(pin).toString('hex').toUpperCase()} blob=${Buffer.from(`{"k":"${key}"}`).toString('base64')}`;
    if (call.request.input.fail) throw runtimeRejected(`upstream refused: ${said}`, { echoed: said });
    return { output: { said, pin } };
  },
};

describe('hostile: secrets', function () {
  it('masks a short secret as a whole word, its base64url and hex in both cases, and a secret inside base64', function () {
    const s = new SecretScrubber();
    s.remember({ pin: 'k9z', key: LONG });
    const text = s.text(`pin=k9z; ${Buffer.from('k9z').toString('base64url')} ${Buffer.from('k9z').toString('hex')} ${Buffer.from(LONG).toString('hex').toUpperCase()} ${Buffer.from(`xy${LONG}`).toString('base64url')} k9zebra`);
    assert.equal(text.match(/\[secret\]/g)?.length, 5, text);
    assert.ok(text.endsWith(' k9zebra'), 'a word that only starts with the value stays');
    assert.deepEqual(s.json({ k9z: 'k9z', list: ['a k9z b'] }), { '[secret]': '[secret]', list: ['a [secret] b'] });
    const punctuated = new SecretScrubber();
    punctuated.remember({ pin: '-x-' });
    assert.equal(punctuated.text('a-x-b'), 'a[secret]b', 'word bounds apply only where the value ends in a letter or digit');
  });

  it('masks the start of a secret that a byte clip cut off', function () {
    const s = new SecretScrubber();
    s.remember({ key: LONG });
    const clipped = clipUtf8(`${'x'.repeat(60)} ${LONG} ${'y'.repeat(200)}`, 101);
    assert.ok(clipped.includes(LONG.slice(0, 8)), 'the clip cut inside the secret');
    assert.ok(!s.text(clipped).includes(LONG.slice(0, 4)), s.text(clipped));
  });

  it('a runtime echoing a short secret, its base64url and hex leaves none of them in status, evidence, history or logs', async function () {
    const secrets = memorySecrets({ ghost: { pin: SHORT, key: LONG } });
    const env = testEnv();
    await withWorker({ connection: env.nativeConnection, client: env.client, runtimes: [createEchoRuntime(), echoing], secrets }, async (h) => {
      const ok = await h.start('any', { action: { runtime: 'ghost', target: 'x', operation: 'any', input: {} } });
      const out = (await ok.result()).output as { said: string };
      assert.match(out.said, /^pin \[secret\] b64u=\[secret\] hex:\[secret\] HEX:\[secret\] blob=/);
      const failed = await h.start('any', { action: { runtime: 'ghost', target: 'x', operation: 'any', input: { fail: true } } });
      await assert.rejects(failed.result());
      for (const run of [ok, failed]) {
        const report = await scanRunForSecrets(h.client, run.workflowId, [...forms(SHORT), ...forms(LONG)], { status: await run.status(), evidence: await run.evidence() });
        assert.deepEqual(report.found, [], run.workflowId);
        assert.ok(report.historyEvents > 5);
      }
      assert.ok(textOf(await failed.status()).includes('upstream refused'), 'the failure is still readable');
    });
  });

  it("StackStorm's minted token is registered at once (fresh and cached) and never reaches status, evidence, history or logs", async function () {
    const fake = await new StackStormFake({ username: 'st2ops', password: 'pw-st2-77a1c9' }).start();
    const policyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-hostile-secrets-'));
    try {
      fake.action('core.env', { echoAuth: true }).action('core.envfail', { echoAuth: true, final: 'failed' });
      // Adapter level: the token is handed to the scrubber as soon as it is minted, and again when a cached one is used.
      const adapter = createStackStormRuntime();
      const direct = (target: string) => testCall({ runtime: 'stackstorm', target, connections: { stackstorm: { baseUrl: fake.url, auth: 'token', authUrl: `${fake.url}/auth`, pollInterval: '50ms' } }, secret: { username: 'st2ops', password: 'pw-st2-77a1c9' } });
      const first = direct('core.env');
      await adapter.execute(first);
      const second = direct('core.env');
      await adapter.execute(second);
      assert.equal(fake.tokens.length, 1);
      const token = fake.tokens[0].token;
      assert.equal(first.registered[0], token, 'registered when minted');
      assert.ok(second.registered.length > 0 && second.registered.every((t) => t === token), 'registered again when taken from the cache');

      // End to end: a workspace using token auth; the actions print the token in their result.
      for (const f of fs.readdirSync(TEST_POLICY_DIR)) fs.copyFileSync(path.join(TEST_POLICY_DIR, f), path.join(policyDir, f));
      const ws = JSON.parse(fs.readFileSync(path.join(TEST_POLICY_DIR, 'test.json'), 'utf8'));
      ws.rules.push({ id: 'st2-auto', match: { runtime: 'stackstorm' }, tier: 'Auto' });
      ws.connections = { stackstorm: { baseUrl: fake.url, auth: 'token', authUrl: `${fake.url}/auth`, pollInterval: '50ms' } };
      ws.egress = { stackstorm: { hosts: [`127.0.0.1:${fake.port}`] } };
      fs.writeFileSync(path.join(policyDir, 'test.json'), JSON.stringify(ws));
      const env = testEnv();
      const secrets = memorySecrets({ stackstorm: { username: 'st2ops', password: 'pw-st2-77a1c9' } });
      await withWorker({ connection: env.nativeConnection, client: env.client, policyDir, runtimes: [createEchoRuntime(), createStackStormRuntime()], secrets }, async (h) => {
        const start = async (target: string) => (await h.portarium.startRun({ workspaceId: 'test', correlationId: uid('c'), requestedBy: alice, action: { runtime: 'stackstorm', target, operation: 'run', input: {} }, idempotencyKey: uid('k'), reason: 'token leak' })).run;
        const ok = await start('core.env');
        assert.deepEqual(((await ok.result()).output as { result: unknown }).result, { stdout: 'ST2_AUTH_TOKEN=[secret]' });
        const failed = await start('core.envfail');
        await assert.rejects(failed.result());
        const tokens = fake.tokens.slice(1).map((t) => t.token);
        assert.equal(tokens.length, 1, 'the worker minted its own token');
        for (const run of [ok, failed]) {
          const report = await scanRunForSecrets(h.client, run.workflowId, [...tokens.flatMap(forms), 'pw-st2-77a1c9'], { status: await run.status(), evidence: await run.evidence() });
          assert.deepEqual(report.found, [], run.workflowId);
        }
      });
    } finally {
      await fake.close();
      fs.rmSync(policyDir, { recursive: true, force: true });
    }
  });
});
