/**
 * The embedded secret store (one file per workspace), the scrubber that keeps fetched secret values
 * out of results and errors, and the content-addressed payload store for large outputs.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { FileSecretStore } from '../activities/secrets/local-file';
import { FilePayloadStore } from '../activities/payload-store';
import { SecretScrubber } from '../activities/secrets/scrubber';
import { failureOf, typeOf } from './support/failures';
import { actionSchema } from '../workflows/schemas';

/** Runtime names that run input accepts but the secret stores used to refuse (upper case, '.', ':', '/', 64 chars). */
const WIDE_RUNTIME_NAMES = ['Langflow', '7zip', 'team.flow', 'ops:eu@prod+1', 'team/flow', 'a/../../ws-b/langflow', `r${'x'.repeat(63)}`];
const acceptedAsInput = (runtime: string) => actionSchema().safeParse({ runtime, target: 't', operation: 'o', input: {} }).success;

const failureType = async (p: Promise<unknown>) => (await typeOf(p)) ?? '';

describe('secrets: embedded file store', function () {
  let dir: string;
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-secrets-'));
    fs.writeFileSync(path.join(dir, 'ws-a.json'), JSON.stringify({ langflow: { apiKey: 'sk-aaaaaaaaaaaa' } }), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'ws-b.json'), JSON.stringify({ langflow: { apiKey: 'sk-bbbbbbbbbbbb' } }), { mode: 0o600 });
  });
  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves a workspace its own secret for a runtime', async function () {
    const store = new FileSecretStore(dir);
    assert.deepEqual(await store.read('ws-a', 'langflow'), { apiKey: 'sk-aaaaaaaaaaaa' });
    assert.deepEqual(await store.read('ws-b', 'langflow'), { apiKey: 'sk-bbbbbbbbbbbb' });
  });

  it('refuses ids that could reach another workspace, a missing runtime and a missing file', async function () {
    const store = new FileSecretStore(dir);
    for (const ws of ['../ws-b', 'ws-a/../ws-b', 'WS-A', '', '%2e%2e', 'ws-a\u0000']) {
      assert.equal(await failureType(store.read(ws, 'langflow')), 'CredentialsDenied', ws);
    }
    assert.equal(await failureType(store.read('ws-a', '../langflow')), 'CredentialsDenied');
    assert.equal(await failureType(store.read('ws-a', 'kestra')), 'CredentialsDenied');
    assert.equal(await failureType(store.read('ws-c', 'langflow')), 'CredentialsDenied');
  });

  // Context: the store accepted only `[a-z][a-z0-9-]{0,31}`, so a runtime that passed input
  // validation was refused at dispatch as CredentialsDenied for its name alone.
  it('serves every runtime name that run input accepts, each under its own key', async function () {
    const file: Record<string, Record<string, string>> = {};
    for (const [i, rt] of WIDE_RUNTIME_NAMES.entries()) {
      assert.ok(acceptedAsInput(rt), `${rt} is valid input`);
      file[rt] = { apiKey: `sk-wide-${i}` };
    }
    fs.writeFileSync(path.join(dir, 'ws-a.json'), JSON.stringify(file), { mode: 0o600 });
    const store = new FileSecretStore(dir);
    for (const [i, rt] of WIDE_RUNTIME_NAMES.entries()) assert.deepEqual(await store.read('ws-a', rt), { apiKey: `sk-wide-${i}` }, rt);
    // One longer than input allows is still refused, before the file is read.
    assert.equal(acceptedAsInput(`r${'x'.repeat(64)}`), false);
    assert.equal(await failureType(store.read('ws-a', `r${'x'.repeat(64)}`)), 'CredentialsDenied');
  });

  it('refuses a secrets file other users can read, and a malformed one without quoting it', async function () {
    const store = new FileSecretStore(dir);
    fs.chmodSync(path.join(dir, 'ws-a.json'), 0o644);
    assert.equal(await failureType(store.read('ws-a', 'langflow')), 'CredentialsDenied');
    fs.writeFileSync(path.join(dir, 'ws-b.json'), '{"langflow": {"apiKey": 42, "x": "sk-leakleakleak"}}', { mode: 0o600 });
    try {
      await store.read('ws-b', 'langflow');
      assert.fail('expected a refusal');
    } catch (err) {
      assert.equal((err as ApplicationFailure).type, 'CredentialsDenied');
      assert.doesNotMatch(JSON.stringify({ m: (err as Error).message, d: (err as ApplicationFailure).details }), /leak/);
    }
  });
});

describe('secrets: scrubber', function () {
  it('masks fetched values and their encodings in text and JSON, keys included', function () {
    const s = new SecretScrubber();
    s.remember({ username: 'ops@example.com', password: 'hunter2-long', token: 'tok_1234567890' });
    const basic = Buffer.from('ops@example.com:hunter2-long').toString('base64');
    const text = s.text(`auth failed for Basic ${basic}, token tok_1234567890, url ?p=${encodeURIComponent('hunter2-long')}`);
    assert.doesNotMatch(text, /hunter2|tok_1234567890/);
    assert.ok(!text.includes(basic));
    const json = s.json({ echo: ['hunter2-long'], nested: { 'tok_1234567890': 'x' } });
    assert.doesNotMatch(JSON.stringify(json), /hunter2|tok_1234567890/);
  });

  it('masks short values as whole words only, so longer words that contain them stay readable', function () {
    const s = new SecretScrubber();
    s.remember({ region: 'eu' });
    assert.equal(s.text('the eu region, in europe'), 'the [secret] region, in europe');
  });
});

describe('payload store', function () {
  it('stores content once under its SHA-256 and gives it back verified', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-payloads-'));
    try {
      const store = new FilePayloadStore(dir);
      const a = await store.put('ws-a', '{"big":true}', 'application/json');
      const b = await store.put('ws-a', '{"big":true}', 'application/json');
      assert.deepEqual(a, b);
      assert.match(a.uri, /^portarium-payload:\/\/ws-a\/[0-9a-f]{64}$/);
      assert.equal(fs.readdirSync(path.join(dir, 'ws-a')).length, 1, 'a retried write does not duplicate');
      assert.equal((await store.get(a)).toString(), '{"big":true}');
      fs.writeFileSync(path.join(dir, 'ws-a', a.sha256), 'tampered');
      await assert.rejects(store.get(a), /does not match its hash/);
      await assert.rejects(store.put('../x', 'y', 'text/plain'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // Context: a bad workspace id here used to fail as CredentialsDenied (a secret-store type) although no
  // secret is involved; the payload store's callers (dispatch) see WorkspaceMismatch, as from the guard.
  it('refuses a name that is no workspace id as WorkspaceMismatch, writing nothing', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-payloads-'));
    try {
      const store = new FilePayloadStore(dir);
      for (const ws of ['../x', 'ws-a/../ws-b', 'WS-A', '', '..', 'ws-a\u0000']) {
        const err = await failureOf(store.put(ws, 'y', 'text/plain'));
        assert.equal(err.type, 'WorkspaceMismatch', ws);
        assert.equal(err.nonRetryable, true);
      }
      assert.deepEqual(fs.readdirSync(dir), []);
      assert.match((await store.put('ws-a', 'y', 'text/plain')).uri, /^portarium-payload:\/\/ws-a\//);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
