/**
 * Signed approvals: the signed bytes, verification and every forgery it must refuse (with its
 * reason), `portarium decision keygen` and `decision sign` in-process, and verification inside the
 * workflow sandbox, where there is no node:crypto and no Buffer.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from '@temporalio/worker';
import { main } from '../workers/cli';
import { PROJECT_ROOT } from '../workers/config';
import { hashAction } from '../workflows/hashing';
import {
  type SignatureVerdict,
  type SignedFields,
  publicKeyFromPrivate,
  signDecision,
  signedMessage,
  verifyDecisionSignature,
} from '../workflows/run/signatures';
import { uid } from './support/harness';
import { DEV_KEYS, testDataConverter, testEnv } from './support/shared';
import { bundleTestWorkflows } from './support/test-bundle';

const BOB_KEY = '1f'.repeat(32);
const CAROL_KEY = '2e'.repeat(32);
const KEYS: Readonly<Record<string, string>> = { bob: publicKeyFromPrivate(BOB_KEY), carol: publicKeyFromPrivate(CAROL_KEY) };

const FIELDS: SignedFields = {
  workflowId: 'test:run-1',
  actionHash: hashAction({ runtime: 'echo', target: 'test/thing', operation: 'write', input: { n: 1 } }),
  kind: 'approve',
  decisionId: 'd-1',
  approverId: 'bob',
  signedAt: '2025-01-02T03:04:05.000Z',
};
const SIG = signDecision(FIELDS, BOB_KEY);


const refused = (reason: string): SignatureVerdict => ({ ok: false, reason } as SignatureVerdict);

describe('signatures', function () {
  it('signs the canonical JSON of the decision fields, and verifies it with the approver\'s key', function () {
    const text = new TextDecoder().decode(signedMessage(FIELDS));
    assert.equal(text, `{"actionHash":"${FIELDS.actionHash}","approverId":"bob","decisionId":"d-1","kind":"approve",` +
      '"schema":"portarium.decision.v1","signedAt":"2025-01-02T03:04:05.000Z","workflowId":"test:run-1"}');
    const extra = { ...FIELDS, rationale: 'not signed', signature: SIG } as SignedFields;
    assert.deepEqual(signedMessage(extra), signedMessage(FIELDS), 'properties outside SignedFields do not change the bytes');
    assert.match(SIG, /^[0-9a-f]{128}$/);
    assert.equal(signDecision(FIELDS, BOB_KEY), SIG, 'Ed25519 signing is deterministic');
    assert.deepEqual(verifyDecisionSignature(FIELDS, SIG, KEYS), { ok: true });
    assert.deepEqual(verifyDecisionSignature(FIELDS, SIG.toUpperCase(), { bob: KEYS.bob.toUpperCase() }), { ok: true });
  });

  it('derives public keys as RFC 8032 does (test vector 1)', function () {
    const secret = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
    assert.equal(publicKeyFromPrivate(secret), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    assert.throws(() => signDecision(FIELDS, 'abc'), TypeError);
    assert.throws(() => publicKeyFromPrivate(`${secret}00`), TypeError);
  });

  describe('refuses forgeries, each with its reason', function () {
    const cases: { name: string; fields?: Partial<SignedFields>; signature?: string | undefined; keys?: Record<string, string>; reason: string }[] = [
      { name: 'no signature', signature: undefined, reason: 'missing' },
      { name: 'an empty signature', signature: '', reason: 'missing' },
      { name: 'a signature that is not hex', signature: `${SIG.slice(0, 126)}zz`, reason: 'malformed' },
      { name: 'a truncated signature', signature: SIG.slice(0, 126), reason: 'malformed' },
      { name: 'a registered key that is not 64 hex digits', keys: { bob: KEYS.bob.slice(2) }, reason: 'malformed' },
      { name: 'an approver with no registered key', fields: { approverId: 'mallory' }, signature: signDecision({ ...FIELDS, approverId: 'mallory' }, CAROL_KEY), reason: 'unknown_key' },
      { name: 'an inherited property as approver id', fields: { approverId: 'constructor' }, reason: 'unknown_key' },
      { name: 'another approver signing as bob', signature: signDecision(FIELDS, CAROL_KEY), reason: 'bad_signature' },
      { name: 'a signature copied from another run', fields: { workflowId: 'test:run-2' }, reason: 'bad_signature' },
      { name: 'a signature for another action hash', fields: { actionHash: hashAction({ n: 2 }) }, reason: 'bad_signature' },
      { name: 'an approve signature replayed as reject', fields: { kind: 'reject' }, reason: 'bad_signature' },
      { name: 'an altered signedAt', fields: { signedAt: '2025-01-02T03:04:06.000Z' }, reason: 'bad_signature' },
      { name: 'an altered decisionId', fields: { decisionId: 'd-2' }, reason: 'bad_signature' },
      { name: 'a signature for another approver id', fields: { approverId: 'carol' }, reason: 'bad_signature' },
      { name: 'a flipped bit', signature: (SIG[0] === '0' ? '1' : '0') + SIG.slice(1), reason: 'bad_signature' },
    ];
    for (const c of cases) {
      it(c.name, function () {
        const signature = 'signature' in c ? c.signature : SIG;
        const verdict = verifyDecisionSignature({ ...FIELDS, ...c.fields }, signature, c.keys ?? KEYS);
        assert.deepEqual(verdict, refused(c.reason));
      });
    }
  });

  it('never throws on garbage', function () {
    const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
    const text = (n: number) => Array.from({ length: n }, () => String.fromCharCode(Math.floor(Math.random() * 0xffff))).join('');
    const signatures: unknown[] = ['', ' ', 'zz', '0x' + SIG.slice(2), `${SIG}00`, '0'.repeat(128), 'f'.repeat(128), null, 42, {}, [], text(128)];
    for (let i = 0; i < 200; i++) signatures.push(hex(i % 2 ? 128 : Math.floor(Math.random() * 300)), text(Math.floor(Math.random() * 200)));
    const keySets: unknown[] = [KEYS, {}, { bob: '' }, { bob: '0'.repeat(64) }, { bob: 'f'.repeat(64) }, { bob: hex(64) }, { bob: 7 }, null, Object.create(null)];
    const fieldSets: unknown[] = [FIELDS, { ...FIELDS, kind: 'veto' }, { ...FIELDS, signedAt: 5 }, {}, null, 'x'];
    for (const s of signatures) {
      for (const k of keySets) {
        for (const f of fieldSets) {
          const verdict = verifyDecisionSignature(f as SignedFields, s as string, k as Record<string, string>);
          assert.equal(verdict.ok, false, `accepted ${JSON.stringify([s, k, f])}`);
        }
      }
    }
    // A small-order (identity) public key verifies anything under cofactored ZIP-215 rules; strict mode refuses it.
    const identity = '01' + '00'.repeat(31);
    const lowOrderSig = identity + '00'.repeat(32);
    assert.deepEqual(verifyDecisionSignature(FIELDS, lowOrderSig, { bob: identity }), refused('bad_signature'));
  });
});

describe('portarium decision keygen / sign', function () {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-keys-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: { ...DEV_KEYS } });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  const signArgs = (key: string, ...more: string[]) => ['decision', 'sign', '--key', key, '--workflow-id', FIELDS.workflowId,
    '--action-hash', FIELDS.actionHash, '--kind', 'approve', '--approver', 'bob', ...more];

  it('makes a key, signs with it, and the printed signature verifies with the printed public key', async function () {
    const keyFile = path.join(dir, 'bob.key');
    const made = await cli('decision', 'keygen', '--out', keyFile);
    assert.equal(made.code, 0, made.err);
    const publicKey = made.out.trim();
    assert.match(publicKey, /^[0-9a-f]{64}$/);
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(publicKeyFromPrivate(fs.readFileSync(keyFile, 'utf8').trim()), publicKey);

    const signed = await cli(...signArgs(keyFile));
    assert.equal(signed.code, 0, signed.err);
    const { decisionId, signedAt, signature } = JSON.parse(signed.out) as { decisionId: string; signedAt: string; signature: string };
    assert.ok(decisionId && !Number.isNaN(Date.parse(signedAt)), signed.out);
    const fields: SignedFields = { ...FIELDS, decisionId, signedAt };
    assert.deepEqual(verifyDecisionSignature(fields, signature, { bob: publicKey }), { ok: true });
    assert.deepEqual(verifyDecisionSignature({ ...fields, kind: 'reject' }, signature, { bob: publicKey }), refused('bad_signature'));

    const pinned = await cli(...signArgs(keyFile, '--decision-id', 'd-9', '--signed-at', FIELDS.signedAt));
    assert.equal(pinned.code, 0, pinned.err);
    const again = JSON.parse(pinned.out) as { decisionId: string; signedAt: string; signature: string };
    assert.deepEqual({ decisionId: again.decisionId, signedAt: again.signedAt }, { decisionId: 'd-9', signedAt: FIELDS.signedAt });
    assert.deepEqual(verifyDecisionSignature({ ...FIELDS, decisionId: 'd-9' }, again.signature, { bob: publicKey }), { ok: true });
  });

  it('never overwrites a key file (exit 2)', async function () {
    const keyFile = path.join(dir, 'kept.key');
    assert.equal((await cli('decision', 'keygen', '--out', keyFile)).code, 0);
    const before = fs.readFileSync(keyFile, 'utf8');
    const second = await cli('decision', 'keygen', '--out', keyFile);
    assert.equal(second.code, 2);
    assert.match(second.err, /^--out .*kept\.key: .*EEXIST/);
    assert.equal(fs.readFileSync(keyFile, 'utf8'), before);
  });

  it('refuses a bad key file without echoing it, and bad fields, with exit 2', async function () {
    const badKey = path.join(dir, 'bad.key');
    fs.writeFileSync(badKey, 'secret-but-not-hex\n');
    const bad = await cli(...signArgs(badKey));
    assert.equal(bad.code, 2);
    assert.match(bad.err, /^--key .*bad\.key: not an Ed25519 private key/);
    assert.doesNotMatch(bad.err, /secret-but-not-hex/);
    const missing = await cli(...signArgs(path.join(dir, 'nope.key')));
    assert.equal(missing.code, 2);
    assert.match(missing.err, /ENOENT/);

    const good = path.join(dir, 'padded.key');
    fs.writeFileSync(good, `  \n${BOB_KEY.toUpperCase()}\r\n\n`);
    const padded = await cli(...signArgs(good, '--decision-id', 'd-1', '--signed-at', FIELDS.signedAt));
    assert.equal(padded.code, 0, padded.err);
    assert.equal((JSON.parse(padded.out) as { signature: string }).signature, SIG, 'whitespace around the key is trimmed');

    for (const [flagName, value] of [['--kind', 'veto'], ['--signed-at', 'yesterday'], ['--signed-at', '2025-01-02T03:04:05'], ['--signed-at', '2025-02-30T03:04:05Z'], ['--action-hash', 'abc']]) {
      const r = await cli(...signArgs(good), flagName, value);
      assert.equal(r.code, 2, `${flagName} ${value}`);
      assert.match(r.err, new RegExp(`^${flagName} must`));
    }
    const noApprover = await cli('decision', 'sign', '--key', good);
    assert.equal(noApprover.code, 2);
    assert.match(noApprover.err, /missing --workflow-id, --action-hash, --kind, --approver/);
  });

  it('lists both commands in the usage', async function () {
    const help = await cli('help');
    assert.match(help.out, /^  decision sign /m);
    assert.match(help.out, /^  decision keygen /m);
    assert.match((await cli('decision', 'sign', '--help')).out, /--kind approve\|reject\|requestChanges/);
  });
});

describe('signature verification in the workflow sandbox', function () {
  let dir: string;
  let code: string;
  before(async function () {
    this.timeout(120_000);
    // Context: the sandbox has no node:crypto, no Buffer and no real randomness; this proves the
    // verifier needs none of them, with the compiled module exactly as workflow code imports it.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-sig-wf-'));
    const modulePath = path.join(PROJECT_ROOT, 'dist', 'workflows', 'run', 'signatures.js');
    const workflowsPath = path.join(dir, 'workflows.js');
    fs.writeFileSync(workflowsPath, [
      `const { verifyDecisionSignature } = require(${JSON.stringify(modulePath)});`,
      'exports.verifyInSandbox = async function verifyInSandbox(cases) {',
      '  return cases.map((c) => verifyDecisionSignature(c.fields, c.signature, c.publicKeys));',
      '};',
    ].join('\n'));
    code = await bundleTestWorkflows(workflowsPath);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('verifies and refuses exactly as in Node', async function () {
    const taskQueue = uid('tq-sig');
    const cases = [
      { fields: FIELDS, signature: SIG, publicKeys: KEYS },
      { fields: { ...FIELDS, workflowId: 'test:run-2' }, signature: SIG, publicKeys: KEYS },
      { fields: FIELDS, signature: signDecision(FIELDS, CAROL_KEY), publicKeys: KEYS },
      { fields: FIELDS, signature: 'zz', publicKeys: KEYS },
      { fields: FIELDS, signature: 'f'.repeat(128), publicKeys: KEYS },
      { fields: { ...FIELDS, approverId: 'mallory' }, signature: SIG, publicKeys: KEYS },
    ];
    const worker = await Worker.create({ connection: testEnv().nativeConnection, taskQueue, workflowBundle: { code }, dataConverter: testDataConverter() });
    const verdicts = await worker.runUntil(
      testEnv().client.workflow.execute('verifyInSandbox', { taskQueue, workflowId: uid('sig'), args: [cases] }),
    );
    assert.deepEqual(verdicts, [{ ok: true }, refused('bad_signature'), refused('bad_signature'), refused('malformed'),
      refused('bad_signature'), refused('unknown_key')]);
    assert.deepEqual(verdicts, cases.map((c) => verifyDecisionSignature(c.fields, c.signature, c.publicKeys)));
  });
});
