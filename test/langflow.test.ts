/**
 * The Langflow adapter against a fake Langflow server that answers as Langflow 1.13.0 does (no Temporal
 * except the last suite): request mapping, the answer, every error mapping, the tweak allow-list and the
 * agent-tool check before anything is sent, egress denial and bad input; then the masking of a real
 * LLM flow's output on its way into a governed run's history.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLangflowRuntime } from '../activities/runtimes/langflow';
import { componentName, toolRefusal } from '../activities/runtimes/langflow-tools';
import { isCredentialField, redactCredentialFields } from '../activities/secrets/scrubber';
import { isToolField, toolsOfField } from '../policies/langflow-tweaks';
import type { RuntimeAdapter } from '../activities/runtimes/port';
import { type LoadedPolicies, PolicyLoadError, loadPolicyDir } from '../activities/policy/load';
import type { ToolClass } from '../policies/schema';
import type { JsonValue } from '../workflows/types';
import { LangflowFake } from './fakes/langflow-server';
import { TEST_POLICY_DIR } from './support/harness';
import { type TestCallOptions, testCall } from './support/runtime-call';
import { failureOf, typeOf } from './support/failures';

const KEY = 'sk-test-abcdefghijklmnop';
/** What flow f1's tweaks may change in these tests. */
const F1_TWEAKS = { OpenAIModel: ['temperature'], search_docs: ['tool_mode', 'top_k'], ChatInput: ['input_value'], Agent: ['system_prompt', 'add_calculator_tool', 'add_shell_tool', 'tools'] };

/** Just enough of LoadedPolicies for the adapter: the current defaults' tool settings. */
function policies(flowTools: Record<string, string[]> = {}, toolClasses: Record<string, ToolClass> = {}): LoadedPolicies {
  return { snapshotFor: () => ({ defaults: { flowTools, toolClasses } }) } as unknown as LoadedPolicies;
}

const failureType = async (p: Promise<unknown>) => (await typeOf(p)) ?? '';


describe('langflow adapter', function () {
  let fake: LangflowFake;
  let adapter: RuntimeAdapter;

  const call = (o: Partial<TestCallOptions> & { input?: { [k: string]: JsonValue } } = {}) =>
    testCall({
      runtime: 'langflow',
      target: 'f1',
      input: { input_value: 'hi' },
      connections: { langflow: { baseUrl: fake.url, flows: { f1: { tweaks: F1_TWEAKS } } } },
      secret: { apiKey: KEY },
      ...o,
    });

  beforeEach(async function () {
    fake = await new LangflowFake(KEY).start();
    fake.flow('f1', { answer: 'Hello!' });
    adapter = createLangflowRuntime({ policies: policies() });
  });
  afterEach(async function () {
    await fake.close();
  });

  describe('success', function () {
    it('runs the flow and returns the answer, outputs and session', async function () {
      const tweaks = { 'OpenAIModel-a1': { temperature: 0.2 } };
      const c = call({ input: { input_value: 'hi', tweaks, output_component: 'ChatOutput-fake' } });
      const out = await adapter.execute(c);
      const output = out.output as { sessionId: string; answer: string | null; outputs: unknown[] };
      assert.equal(output.answer, 'Hello!');
      assert.equal(output.sessionId, 'corr-1', 'session id defaults to the correlation id');
      assert.equal(output.outputs.length, 1);
      assert.equal(out.externalRef, 'langflow:session:corr-1');
      const [req] = fake.runs();
      assert.equal(fake.runs().length, 1);
      assert.equal(req.path, '/api/v1/run/f1');
      assert.equal(req.query.get('stream'), 'false');
      assert.equal(req.headers['x-api-key'], KEY);
      assert.deepEqual(req.json, { input_value: 'hi', input_type: 'chat', output_type: 'chat', output_component: 'ChatOutput-fake', tweaks, session_id: 'corr-1' });
      assert.deepEqual(c.heartbeats[0], { stage: 'calling', flow: 'f1', sessionId: 'corr-1' });
    });

    it('sends an explicit session id and input and output types', async function () {
      const out = await adapter.execute(call({ input: { input_value: 'x', session_id: 's-9', input_type: 'text', output_type: 'any' } }));
      assert.equal(out.externalRef, 'langflow:session:s-9');
      assert.equal((out.output as { answer: string }).answer, 'Hello!');
      const body = fake.runs()[0].json as Record<string, unknown>;
      assert.equal(body.session_id, 's-9');
      assert.equal(body.input_type, 'text');
      assert.equal(body.output_type, 'any');
    });

    it('returns a null answer when the flow has no chat message', async function () {
      fake.flow('f2', { status: 200, body: { session_id: 'corr-1', outputs: [{ inputs: {}, outputs: [{ results: {} }] }] } });
      const out = await adapter.execute(call({ target: 'f2' }));
      assert.equal((out.output as { answer: unknown }).answer, null);
    });

    it('refuses a 200 whose body is not a run response', async function () {
      fake.flow('f2', { status: 200, body: { hello: 'world' } });
      assert.equal(await failureType(adapter.execute(call({ target: 'f2' }))), 'RuntimeRejected');
    });

    it('heartbeats while a slow flow runs', async function () {
      this.timeout(10_000);
      fake.flow('slow', { answer: 'late', delayMs: 2_300 });
      const c = call({ target: 'slow' });
      await adapter.execute(c);
      assert.ok(c.heartbeats.length >= 2, `heartbeats: ${c.heartbeats.length}`);
    });
  });

  describe('errors', function () {
    it('maps a wrong key (403) to RuntimeRejected with reason auth', async function () {
      const f = await failureOf(adapter.execute(call({ secret: { apiKey: 'sk-wrong-key-123' } })));
      assert.equal(f.type, 'RuntimeRejected');
      assert.deepEqual(f.details?.[0], { httpStatus: 403, reason: 'auth' });
      assert.ok(!f.message.includes('sk-wrong-key-123'), 'the key never appears in messages');
    });

    it('maps the v1.5 auto-login 403 to RuntimeRejected with reason auth', async function () {
      fake.flow('f2', { status: 403, body: { detail: 'Since v1.5, LANGFLOW_AUTO_LOGIN requires a valid API key.' } });
      const f = await failureOf(adapter.execute(call({ target: 'f2' })));
      assert.equal(f.type, 'RuntimeRejected');
      assert.deepEqual(f.details?.[0], { httpStatus: 403, reason: 'auth' });
    });

    it('refuses a secret without apiKey before sending', async function () {
      assert.equal(await failureType(adapter.execute(call({ secret: {} }))), 'CredentialsDenied');
      assert.equal(fake.requests.length, 0);
    });

    const cases: [string, Parameters<LangflowFake['flow']>[1], string][] = [
      ['404 unknown flow', undefined, 'RuntimeRejected'],
      ['422 refused tweak', { status: 422 }, 'RuntimeRejected'],
      ['500 flow failure', { fail: 'boom' }, 'RuntimeRejected'],
      ['502 bad gateway', { status: 502 }, 'RuntimeOutcomeUnknown'],
      ['504 gateway timeout', { status: 504 }, 'RuntimeOutcomeUnknown'],
      ['503 unavailable', { status: 503 }, 'RuntimeUnavailable'],
      ['429 too many requests', { status: 429 }, 'RuntimeUnavailable'],
      ['hang-up after send', { hangUp: true }, 'RuntimeOutcomeUnknown'],
    ];
    for (const [name, behaviour, type] of cases) {
      it(`maps ${name} to ${type}`, async function () {
        if (behaviour) fake.flow('f2', behaviour);
        const c = call({ target: 'f2' });
        assert.equal(await failureType(adapter.execute(c)), type);
        assert.equal(fake.runs().length, 1);
        if (type === 'RuntimeUnavailable') assert.deepEqual(c.heartbeats.at(-1), { stage: 'notSent', flow: 'f2' });
      });
    }

    it('reports the message of a 500', async function () {
      fake.flow('f2', { fail: 'boom' });
      const f500 = await failureOf(adapter.execute(call({ target: 'f2' })));
      assert.deepEqual(f500.details?.[0], { httpStatus: 500, reason: 'flowFailed' });
      assert.match(f500.message, /the flow failed: boom$/);
    });

    // Context: Langflow 1.13 answers 422 only when it refuses a protected tweak; the adapter used to dump its body as JSON.
    it('maps the 422 of a refused tweak to RuntimeRejected naming the field and its component, no raw JSON', async function () {
      const connections = { langflow: { baseUrl: fake.url, flows: { f1: { tweaks: { ChatInput: ['code', 'input_value'] } } } } };
      const f = await failureOf(adapter.execute(call({ connections, input: { input_value: 'hi', tweaks: { 'ChatInput-abc': { code: 'import os' } } } })));
      assert.equal(f.type, 'RuntimeRejected');
      assert.deepEqual(f.details?.[0], { httpStatus: 422, reason: 'tweakRefused', fields: ['code (on ChatInput-abc)'] });
      assert.match(f.message, /Langflow refused to tweak code \(on ChatInput-abc\): The field is protected/);
      assert.ok(!/[{}]/.test(f.message), f.message);
      assert.equal(fake.runs().length, 1);
    });

    it('maps a ChatInput tweak that conflicts with input_value (400) to RuntimeRejected', async function () {
      const f = await failureOf(adapter.execute(call({ input: { input_value: 'hi', tweaks: { 'ChatInput-abc': { input_value: 'other' } } } })));
      assert.equal(f.type, 'RuntimeRejected');
      assert.deepEqual(f.details?.[0], { httpStatus: 400, reason: 'badRequest' });
      assert.equal(fake.runs().length, 1);
    });

    it('maps a timeout after sending to RuntimeOutcomeUnknown', async function () {
      fake.flow('slow', { delayMs: 2_000 });
      const c = call({ target: 'slow', connections: { langflow: { baseUrl: fake.url, requestTimeout: '300ms' } } });
      assert.equal(await failureType(adapter.execute(c)), 'RuntimeOutcomeUnknown');
    });

    it('maps a closed port to RuntimeUnavailable', async function () {
      const closed = await new LangflowFake(KEY).start();
      const url = closed.url;
      await closed.close();
      const c = call({ connections: { langflow: { baseUrl: url } } });
      assert.equal(await failureType(adapter.execute(c)), 'RuntimeUnavailable');
    });

    it('aborts the HTTP call when the dispatch is cancelled', async function () {
      fake.flow('slow', { delayMs: 5_000 });
      const c = call({ target: 'slow' });
      const started = Date.now();
      setTimeout(() => c.controller.abort(), 200);
      // The flow may still run on the server: /run cannot stop it, so the outcome is unknown.
      assert.equal(await failureType(adapter.execute(c)), 'RuntimeOutcomeUnknown');
      assert.ok(Date.now() - started < 2_000);
    });

    it('fake answers like Langflow without a key and on /health', async function () {
      const res = await fetch(`${fake.url}/api/v1/run/f1?stream=false`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input_value":"hi"}' });
      assert.equal(res.status, 403);
      assert.deepEqual(await res.json(), { detail: 'An API key must be passed as query or header' });
      // As 1.13: a bad body is run with empty input, not refused.
      const bad = await fetch(`${fake.url}/api/v1/run/f1`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: '{"input_value":5,"input_type":"nope"}' });
      assert.equal(bad.status, 200);
      assert.equal((await bad.json() as { outputs: [{ inputs: { input_value: string } }] }).outputs[0].inputs.input_value, '');
      assert.equal((await fetch(`${fake.url}/health`)).status, 200);
    });

    it('does not resend after an attempt that died mid-call', async function () {
      const c = call({ attempt: 2, previous: { stage: 'calling', flow: 'f1', sessionId: 'corr-1' } });
      assert.equal(await failureType(adapter.execute(c)), 'RuntimeOutcomeUnknown');
      assert.equal(fake.requests.length, 0);
      await adapter.execute(call({ attempt: 2, previous: { stage: 'notSent', flow: 'f1' } }));
      assert.equal(fake.runs().length, 1);
    });
  });

  describe('refusals before any request', function () {
    const refused = async (a: RuntimeAdapter, o: Partial<TestCallOptions>, type: string) => {
      assert.equal(await failureType(a.execute(call(o))), type);
      assert.equal(fake.requests.length, 0, 'nothing reached Langflow');
    };

    it('refuses a tweak that puts an undeclared component in tool mode (older Langflow honours tool_mode)', async function () {
      await refused(adapter, { input: { input_value: 'hi', tweaks: { 'SearchAPI-x1y2': { tool_mode: true } } } }, 'ToolNotAllowed');
    });

    it('refuses a declared tool that is not on the flow allow-list', async function () {
      const a = createLangflowRuntime({ policies: policies({ f1: ['search_docs'] }) });
      await refused(a, { tools: ['search_docs', 'send_email'], tier: 'HumanApprove' }, 'ToolNotAllowed');
    });

    it('refuses a tool whose class needs a stricter tier than the run has', async function () {
      await refused(adapter, { tools: ['run_shell'], tier: 'HumanApprove' }, 'ToolNotAllowed');
      await refused(adapter, { tools: ['send_email'], tier: 'Assisted' }, 'ToolNotAllowed');
    });

    it('treats a missing tier as Auto', async function () {
      const c = call({ tools: ['send_email'] });
      delete c.request.tier;
      assert.equal(await failureType(adapter.execute(c)), 'ToolNotAllowed');
      assert.equal(fake.requests.length, 0);
    });

    // Context: Langflow 1.13 runs a body with a bad field on empty input (200), so nothing it would misread may be sent.
    it('refuses bad input shapes and targets', async function () {
      await refused(adapter, { input: {} }, 'RuntimeRejected');
      await refused(adapter, { input: { input_value: 'hi', extra: 1 } }, 'RuntimeRejected');
      await refused(adapter, { input: { input_value: 'hi', input_type: 'voice' } }, 'RuntimeRejected');
      await refused(adapter, { input: { input_value: 'hi', output_type: 'json' } }, 'RuntimeRejected');
      await refused(adapter, { input: { input_value: 5 } }, 'RuntimeRejected');
      await refused(adapter, { input: { input_value: 'é'.repeat(70_000) } }, 'RuntimeRejected');
      await refused(adapter, { input: { input_value: 'hi', session_id: 'a\nb' } }, 'RuntimeRejected');
      await refused(adapter, { input: { input_value: 'hi', session_id: '' } }, 'RuntimeRejected');
      await refused(adapter, { input: { input_value: 'hi', tweaks: { c: 'not a record' } } }, 'RuntimeRejected');
      await refused(adapter, { input: { input_value: 'hi', tweaks: { 'Agent-1': { 'not a field': 1 } } } }, 'RuntimeRejected');
      await refused(adapter, { input: { input_value: 'hi', tweaks: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`OpenAIModel-${i}`, { temperature: 0 }])) } }, 'RuntimeRejected');
      await refused(adapter, { target: '../admin' }, 'RuntimeRejected');
    });

    it('refuses a __proto__ tweak key instead of dropping it unchecked', async function () {
      const tweaks = JSON.parse('{"__proto__": {"code": "x"}}') as { [k: string]: JsonValue };
      await refused(adapter, { input: { input_value: 'hi', tweaks } }, 'RuntimeRejected');
      const nested = JSON.parse('{"OpenAIModel-a1": {"__proto__": {"code": "x"}}}') as { [k: string]: JsonValue };
      await refused(adapter, { input: { input_value: 'hi', tweaks: nested } }, 'RuntimeRejected');
    });

    // Context: 1.13 accepts user_id and runs the flow as that Langflow user; the adapter keeps refusing it.
    it('refuses user_id, which would run the flow as another Langflow user', async function () {
      const f = await failureOf(adapter.execute(call({ input: { input_value: 'hi', user_id: 'b7e1c7a0-0000-4000-8000-000000000001' } })));
      assert.equal(f.type, 'RuntimeRejected');
      assert.deepEqual(f.details?.[0], { reason: 'userIdNotAccepted' });
      assert.equal(fake.requests.length, 0);
    });

    it('refuses when the workspace has no langflow connection', async function () {
      await refused(adapter, { connections: {} }, 'RuntimeNotConfigured');
    });

    it('propagates egress denial', async function () {
      await refused(adapter, { hosts: ['example.com'] }, 'EgressDenied');
    });
  });

  describe('allowed tools', function () {
    it('runs a declared, allow-listed tool at a sufficient tier, also when a tweak configures it', async function () {
      const a = createLangflowRuntime({ policies: policies({ f1: ['search_docs', 'send_email'] }) });
      const tweaks = { 'search_docs-k2': { tool_mode: true, top_k: 3 } };
      await a.execute(call({ tools: ['search_docs', 'send_email'], tier: 'HumanApprove', input: { input_value: 'hi', tweaks } }));
      assert.equal(fake.runs().length, 1);
    });

    it('honours toolClasses overrides and a read-only tool at Auto', async function () {
      const a = createLangflowRuntime({ policies: policies({}, { notify_team: 'ReadOnly' }) });
      await a.execute(call({ tools: ['notify_team', 'search_docs'], tier: 'Auto' }));
      assert.equal(fake.runs().length, 1);
    });
  });
});

describe('langflow tweaks: allow-list and tool fields', function () {
  let fake: LangflowFake;
  const adapter = (flowTools: Record<string, string[]> = {}) => createLangflowRuntime({ policies: policies(flowTools) });
  const call = (o: Partial<TestCallOptions> & { input?: { [k: string]: JsonValue } } = {}) =>
    testCall({ runtime: 'langflow', target: 'f1', input: { input_value: 'hi' }, connections: { langflow: { baseUrl: fake.url, flows: { f1: { tweaks: F1_TWEAKS } } } }, secret: { apiKey: KEY }, ...o });
  const withTweaks = (tweaks: { [k: string]: { [f: string]: JsonValue } }, o: Partial<TestCallOptions> = {}) => call({ input: { input_value: 'hi', tweaks }, ...o });

  beforeEach(async function () {
    fake = await new LangflowFake(KEY).start();
    fake.flow('f1', { answer: 'ok' }).flow('f2', { answer: 'ok' });
  });
  afterEach(async function () {
    await fake.close();
  });

  it('refuses, before sending, a tweak to a field the flow allow-list leaves out (PolicyDenied, naming it)', async function () {
    const f = await failureOf(adapter().execute(withTweaks({ 'OpenAIModel-a1': { temperature: 0.2, base_url: 'http://evil.example' } })));
    assert.equal(f.type, 'PolicyDenied');
    assert.deepEqual(f.details?.[0], { reason: 'tweakNotAllowed', refused: ['OpenAIModel-a1.base_url'] });
    assert.equal(fake.requests.length, 0);
  });

  it('takes no tweaks for a flow without an entry, or under an older policy without flows, but still runs untweaked', async function () {
    assert.equal(await failureType(adapter().execute(withTweaks({ 'OpenAIModel-a1': { temperature: 0 } }, { target: 'f2' }))), 'PolicyDenied');
    const older = { langflow: { baseUrl: fake.url } };
    assert.equal(await failureType(adapter().execute(withTweaks({ 'OpenAIModel-a1': { temperature: 0 } }, { connections: older }))), 'PolicyDenied');
    assert.equal(fake.requests.length, 0);
    await adapter().execute(call({ connections: older }));
    assert.equal(fake.runs().length, 1);
  });

  it('admits a field by component name, by node id, or by display name, and a node id entry admits only that node', async function () {
    const connections = { langflow: { baseUrl: fake.url, flows: { f1: { tweaks: { OpenAIModel: ['temperature'], 'Prompt-x9': ['template'], 'Chat Output': ['sender_name'] } } } } };
    const tweaks = { 'OpenAIModel-a1': { temperature: 0 }, 'Prompt-x9': { template: 't' }, 'Chat Output': { sender_name: 'Bot' } };
    await adapter().execute(withTweaks(tweaks, { connections }));
    assert.deepEqual((fake.runs()[0].json as { tweaks: unknown }).tweaks, tweaks);
    assert.equal(await failureType(adapter().execute(withTweaks({ 'Prompt-y7': { template: 't' } }, { connections }))), 'PolicyDenied');
    assert.equal(fake.runs().length, 1);
  });

  // Context: Langflow 1.13 ignores tool_mode; an Agent's add_calculator_tool really switches a tool on and used to pass unchecked.
  it('treats an Agent tool field as the tool it switches on: undeclared is refused, declared read-only runs at Auto', async function () {
    const tweaks = { 'Agent-k1': { add_calculator_tool: true } };
    assert.equal(await failureType(adapter().execute(withTweaks(tweaks, { tier: 'Auto' }))), 'ToolNotAllowed');
    assert.equal(fake.requests.length, 0);
    await adapter().execute(withTweaks(tweaks, { tier: 'Auto', tools: ['calculator'] }));
    assert.equal(fake.runs().length, 1);
    assert.equal(await failureType(adapter({ f1: ['search_docs'] }).execute(withTweaks(tweaks, { tier: 'Auto', tools: ['calculator'] }))), 'ToolNotAllowed');
  });

  it('classes a shell tool switched on by a field as Dangerous: refused below ManualOnly', async function () {
    const tweaks = { 'Agent-k1': { add_shell_tool: true } };
    assert.equal(await failureType(adapter().execute(withTweaks(tweaks, { tools: ['shell'], tier: 'HumanApprove' }))), 'ToolNotAllowed');
    assert.equal(fake.requests.length, 0);
  });

  it('reads the tools of a tool list; a list it cannot read is refused; a tool field set off switches nothing on', async function () {
    assert.equal(await failureType(adapter().execute(withTweaks({ 'Agent-k1': { tools: ['calculator', 'send_email'] } }, { tools: ['calculator'], tier: 'Auto' }))), 'ToolNotAllowed');
    assert.equal(await failureType(adapter().execute(withTweaks({ 'Agent-k1': { tools: [{ id: 7 }] } }, { tools: ['calculator'], tier: 'Auto' }))), 'ToolNotAllowed');
    assert.equal(fake.requests.length, 0);
    await adapter().execute(withTweaks({ 'Agent-k1': { add_calculator_tool: false, system_prompt: 'be brief' } }, { tier: 'Auto' }));
    assert.equal(fake.runs().length, 1);
  });

  // Context: Langflow copies the keys of an object tweak onto the field, so {value: x} sets the same value as x.
  it('reads a tool field given as {value: ...} like its bare value: an MCP tool named that way must be declared', async function () {
    const connections = { langflow: { baseUrl: fake.url, flows: { f1: { tweaks: { 'MCP Tools': ['tool'] } } } } };
    const declared = { tools: ['MCP Tools'], tier: 'ManualOnly' as const, connections };
    assert.equal(await failureType(adapter().execute(withTweaks({ 'MCP Tools': { tool: 'delete_repo' } }, declared))), 'ToolNotAllowed');
    assert.equal(await failureType(adapter().execute(withTweaks({ 'MCP Tools': { tool: { value: 'delete_repo' } } }, declared))), 'ToolNotAllowed');
    assert.equal(await failureType(adapter().execute(withTweaks({ 'Agent-k1': { tools: { value: ['calculator', 'send_email'] } } }, { tools: ['calculator', 'Agent'], tier: 'ManualOnly' }))), 'ToolNotAllowed');
    assert.equal(fake.requests.length, 0);
  });

  it('names the tools of tool fields', function () {
    assert.ok(isToolField('add_calculator_tool') && isToolField('tools') && isToolField('tools_metadata') && isToolField('tool_mode'));
    assert.ok(!isToolField('temperature') && !isToolField('toolbox_url') && !isToolField('max_tokens'));
    assert.deepEqual(toolsOfField('add_calculator_tool', 'Agent', true), ['calculator']);
    assert.deepEqual(toolsOfField('tool_mode', 'SearchAPI', true), ['SearchAPI']);
    assert.deepEqual(toolsOfField('tools_metadata', 'MCP', [{ name: 'run_shell' }, 'fetch_url']), ['run_shell', 'fetch_url']);
    assert.deepEqual(toolsOfField('tool', 'MCP', 'delete_repo'), ['MCP', 'delete_repo']);
    assert.equal(toolsOfField('tools', 'Agent', [3]), undefined);
    assert.deepEqual(toolsOfField('add_calculator_tool', 'Agent', 'false'), []);
  });
});

describe('langflow tweak allow-lists in policy files', function () {
  let dir: string;
  const write = (langflow: object, defaults: object = {}) => {
    fs.writeFileSync(path.join(dir, 'w.json'), JSON.stringify({ schemaVersion: 1, kind: 'workspace', workspace: 'w', defaults, rules: [], connections: { langflow: { baseUrl: 'http://lf.example:7860', ...langflow } } }));
    return () => loadPolicyDir(dir);
  };
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-lf-pol-'));
    fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('loads an allow-list, and an older connection without one (no tweaks allowed)', function () {
    const loaded = write({ flows: { 'support-agent': { tweaks: { OpenAIModel: ['temperature'], 'Chat Output': ['sender_name'] } } } })();
    assert.deepEqual(loaded.connectionsFor('w').connections.langflow?.flows, { 'support-agent': { tweaks: { OpenAIModel: ['temperature'], 'Chat Output': ['sender_name'] } } });
    assert.deepEqual(loaded.warnings, []);
    assert.equal(write({})().connectionsFor('w').connections.langflow?.flows, undefined);
  });

  it('refuses malformed allow-lists, naming the path', function () {
    for (const [flows, at] of [
      [{ 'bad flow': { tweaks: {} } }, /connections\.langflow\.flows\.bad flow/],
      [{ f: { tweaks: { Agent: 'temperature' } } }, /connections\.langflow\.flows\.f\.tweaks\.Agent/],
      [{ f: { tweaks: { Agent: ['not a field'] } } }, /connections\.langflow\.flows\.f\.tweaks\.Agent\.0/],
      [{ f: { tweak: {} } }, /connections\.langflow\.flows\.f/],
    ] as const) {
      assert.throws(write({ flows }), (err: unknown) => err instanceof PolicyLoadError && err.problems.some((p) => at.test(p.path)), JSON.stringify(flows));
    }
  });

  it('warns about protected fields, tool_mode, and tool fields whose tool the flow may not enable', function () {
    const tweaks = { ChatInput: ['code'], SearchAPI: ['tool_mode'], Agent: ['add_calculator_tool', 'add_shell_tool'] };
    const { warnings } = write({ flows: { f: { tweaks } } }, { flowTools: { f: ['calculator'] } })();
    assert.deepEqual(warnings.map((w) => w.path), ['connections.langflow.flows.f.tweaks.ChatInput.0', 'connections.langflow.flows.f.tweaks.SearchAPI.0', 'connections.langflow.flows.f.tweaks.Agent.1']);
  });
});

describe('langflow output_component', function () {
  let fake: LangflowFake;
  const run = (output_component: string) =>
    createLangflowRuntime({ policies: policies() }).execute(testCall({ runtime: 'langflow', target: 'f1', input: { input_value: 'hi', output_component }, connections: { langflow: { baseUrl: fake.url } }, secret: { apiKey: KEY } }));

  beforeEach(async function () {
    fake = await new LangflowFake(KEY).start();
    fake.flow('f1', { answer: 'Hello!', outputComponent: 'ChatOutput-q8' });
  });
  afterEach(async function () {
    await fake.close();
  });

  // Context: a mistyped output_component made Langflow 1.13 answer 200 with no outputs, and the run ended Succeeded with answer null.
  it('refuses a run whose output_component names no output, naming the component; the flow ran once and is not resent', async function () {
    const f = await failureOf(run('ChatOutput-typo'));
    assert.equal(f.type, 'RuntimeRejected');
    assert.deepEqual(f.details?.[0], { reason: 'noSuchOutput', component: 'ChatOutput-typo' });
    assert.match(f.message, /ChatOutput-typo/);
    assert.equal(fake.runs().length, 1);
  });

  it('returns the named output when the flow has it', async function () {
    const out = await run('ChatOutput-q8');
    assert.equal((out.output as { answer: string }).answer, 'Hello!');
  });
});

describe('runtime output masking', function () {
  it('masks credentials under other common names (jwt, pwd, ssh_key, auth, auth_tokens) and keeps look-alikes', function () {
    const masked = ['jwt', 'id_jwt', 'pwd', 'db_pwd', 'ssh_key', 'subscription_key', 'client_key', 'signing_key', 'auth_tokens', 'refresh_tokens'];
    const kept = ['auth_type', 'auth_method', 'max_tokens', 'prompt_tokens', 'session_id', 'keywords', 'key', 'primary_key', 'author'];
    for (const k of masked) assert.ok(isCredentialField(k), `${k} is a credential`);
    for (const k of kept) assert.ok(!isCredentialField(k), `${k} is not a credential`);
    // Text under `auth` is a credential; an object under it is walked.
    const out = redactCredentialFields({ auth: 'Bearer abc', basic_auth: 'u:p', proxy: { auth: { user: 'svc', password: 'p' } }, auth_type: 'basic' });
    assert.deepEqual(out, { auth: '[redacted]', basic_auth: '[redacted]', proxy: { auth: { user: 'svc', password: '[redacted]' } }, auth_type: 'basic' });
  });

  it('masks credential-named fields but keeps token counts', function () {
    for (const k of ['access_token', 'accessToken', 'token', 'refresh_token', 'id_token', 'api_key', 'apiKey', 'x-api-key', 'password', 'client_secret', 'Authorization', 'set-cookie', 'private_key', 'token_value']) assert.ok(isCredentialField(k), k);
    for (const k of ['token_usage', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'max_tokens', 'tokens', 'token_count', 'tokenizer', 'input_tokens']) assert.ok(!isCredentialField(k), k);
    const out = redactCredentialFields({ properties: { token_usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 } }, auth: { access_token: 'at-1', apiKey: 'k' } });
    assert.deepEqual(out, { properties: { token_usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 } }, auth: { access_token: '[redacted]', apiKey: '[redacted]' } });
  });
});

describe('langflow tool check', function () {
  it('takes the component name before the last dash', function () {
    assert.equal(componentName('SearchAPI-x1y2'), 'SearchAPI');
    assert.equal(componentName('my-tool-abc'), 'my-tool');
    assert.equal(componentName('Plain'), 'Plain');
  });

  it('does not read allow-lists from Object.prototype', function () {
    assert.equal(toolRefusal({ target: 'constructor', declared: ['search_docs'], tweaks: {}, tier: 'Auto', flowTools: {} }), undefined);
  });

  it('another name for a listed flow does not escape its allow-list: a flow id in other letter case finds its list; an unlisted name enables no tools', function () {
    const id = '0f5e3c1a-9b7d-4e2f-8a6c-1d2e3f4a5b6c';
    const flowTools = { [id]: ['calculator'] };
    const check = (target: string, declared: string[]) => toolRefusal({ target, declared, tweaks: {}, tier: 'HumanApprove', flowTools });
    assert.match(check(id.toUpperCase(), ['shell_exec']) ?? '', /not on the allow-list/);
    assert.equal(check(id.toUpperCase(), ['calculator']), undefined);
    assert.match(check('support-agent', ['calculator']) ?? '', /no entry in defaults.flowTools/);
    assert.equal(check('support-agent', []), undefined, 'a run that enables no tools still runs');
    assert.equal(toolRefusal({ target: 'support-agent', declared: ['calculator'], tweaks: {}, tier: 'Auto', flowTools: {} }), undefined, 'no per-flow lists at all: the tool classes decide');
  });

  it('ignores tool_mode false', function () {
    assert.equal(toolRefusal({ target: 'f', declared: [], tweaks: { 'Agent-1': { tool_mode: false } } }), undefined);
  });
});
