/**
 * The Vercel AI SDK adapter through the SDK's own loop (`generateText`, `stopWhen: stepCountIs(2)`,
 * the SDK's `MockLanguageModelV3`), on a real Temporal server with the in-process `agent-tools`
 * runtime: what the model reads after each governed tool call, who may approve, retried call ids,
 * the evidence, and the long-wait pattern (approval request, saved messages, resume) of
 * docs/examples/agents/ai-sdk.ts.
 */
import * as assert from 'node:assert/strict';
import { type ModelMessage, generateText, stepCountIs } from 'ai';
import type { MockLanguageModelV3 } from 'ai/test';
import { MissingCorrelationError, governedApprovalRequests, governedApprovalResponses, governedTool } from '../../workers/agents/ai-sdk';
import { type GovernedAgent, type GovernedToolSpec, toolCallWorkflowId } from '../../workers/agents/governed-tool';
import { askSupportAgent, resumeSupportAgent, scriptedModel, toolResultsIn } from '../../docs/examples/agents/ai-sdk';
import { hashAction } from '../../workflows/hashing';
import { bob, decision, failureType, uid, waitForState } from '../support/harness';
import { AGENT_WORKSPACE, agentPolicyDir, agentPrincipal, dropTool, governedAgent, refundTool, weatherTool, withAgentWorker } from '../support/agents';
import { testEnv } from '../support/shared';

function generate(model: MockLanguageModelV3, governed: GovernedAgent, spec: GovernedToolSpec, opts: { threadId?: string; tool?: Parameters<typeof governedTool>[2]; messages?: ModelMessage[] } = {}) {
  return generateText({
    model,
    tools: { [spec.name]: governedTool(governed, spec, opts.tool) },
    messages: opts.messages ?? [{ role: 'user', content: 'go' }],
    stopWhen: stepCountIs(2),
    ...(opts.threadId !== undefined && { experimental_context: { threadId: opts.threadId } }),
  });
}

describe('Vercel AI SDK adapter (real server, generateText, MockLanguageModelV3)', function () {
  this.timeout(90_000);
  let policyDir: string;
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue: uid('tq-aisdk') });
  before(() => {
    policyDir = agentPolicyDir();
  });

  it('Auto: the tool runs and the model reads its result; the evidence holds the exact arguments and the output reference', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const threadId = uid('thread');
      const model = scriptedModel('get_weather', { city: 'Oslo' }, callId);
      const result = await generate(model, governedAgent(h), weatherTool, { threadId });
      assert.deepEqual(toolResultsIn(model.doGenerateCalls[1]!), ['{"city":"Oslo","tempC":21}']);
      assert.equal(result.text, 'tool said: {"city":"Oslo","tempC":21}');
      assert.deepEqual(tools.calls.map((c) => c.args), [{ city: 'Oslo' }]);
      const run = h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', callId, threadId));
      const ev = (await run.evidence()).entries;
      const requested = ev.find((e) => e.event === 'RunRequested');
      assert.equal(requested?.actor.id, agentPrincipal.id);
      const status = await run.status();
      assert.equal((requested?.data as { actionHash?: string }).actionHash, status.actionHash);
      // The decision-bound action hash covers the model's exact arguments.
      assert.equal(status.actionHash, hashAction({ runtime: 'agent-tools', target: 'get_weather', operation: 'call', input: { city: 'Oslo' } }));
      const refs = ev.find((e) => e.event === 'StateSucceeded')?.payloadRefs ?? [];
      assert.deepEqual(refs.map((r) => r.kind).sort(), ['ActionInput', 'RuntimeOutput']);
    });
  });

  it('HumanApprove, blocking tool: generateText waits, bob approves, the model reads the result; the agent\'s own approval is refused', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const threadId = uid('thread');
      const model = scriptedModel('issue_refund', { orderId: 'A-1', amount: 30 }, callId);
      const running = generate(model, governedAgent(h), refundTool, { threadId, tool: { needsApproval: false } });
      const run = h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'issue_refund', callId, threadId));
      const st = await waitForState(run, 'AwaitingApproval', 30_000);
      await assert.rejects(run.decide({ kind: 'approve', ...decision(agentPrincipal, st.actionHash) }), (e: unknown) => failureType(e) === 'SelfApprovalRefused');
      assert.equal(tools.calls.length, 0);
      await run.decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      const result = await running;
      assert.deepEqual(toolResultsIn(model.doGenerateCalls[1]!), ['{"refunded":30,"orderId":"A-1"}']);
      assert.equal(result.text, 'tool said: {"refunded":30,"orderId":"A-1"}');
      assert.equal(tools.calls.length, 1);
    });
  });

  it('rejection: the model reads who rejected and the rationale, and nothing runs', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const threadId = uid('thread');
      const model = scriptedModel('issue_refund', { orderId: 'B-2', amount: 9000 }, callId);
      const running = generate(model, governedAgent(h), refundTool, { threadId, tool: { needsApproval: false } });
      const run = h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'issue_refund', callId, threadId));
      const st = await waitForState(run, 'AwaitingApproval', 30_000);
      await run.decide({ kind: 'reject', ...decision(bob, st.actionHash), rationale: 'refunds over 500 need a ticket' });
      await running;
      assert.match(toolResultsIn(model.doGenerateCalls[1]!)[0]!, /rejected by bob: refunds over 500 need a ticket/);
      assert.equal(tools.calls.length, 0);
    });
  });

  it('long wait: generateText ends with an approval request, the messages are kept, and resuming after bob approves returns the result (the example agent)', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const governed = governedAgent(h);
      const threadId = uid('thread');
      const first = await askSupportAgent(governed, threadId, 'Please refund order A-1 (30 EUR).');
      assert.equal(first.done, false);
      if (first.done) return;
      assert.equal(first.waitingOn.length, 1);
      const run = h.portarium.run(first.waitingOn[0]!);
      const st = await waitForState(run, 'AwaitingApproval');
      await assert.rejects(run.decide({ kind: 'approve', ...decision(agentPrincipal, st.actionHash) }), (e: unknown) => failureType(e) === 'SelfApprovalRefused');
      // Stored as JSON between requests: the resume works from the plain data.
      const saved = JSON.parse(JSON.stringify(first.messages)) as ModelMessage[];
      const stillWaiting = await resumeSupportAgent(governed, threadId, saved);
      assert.deepEqual(stillWaiting, { done: false, messages: saved, waitingOn: first.waitingOn });
      assert.equal(tools.calls.length, 0);
      await run.decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      await waitForState(run, 'Succeeded');
      const later = await resumeSupportAgent(governed, threadId, saved);
      assert.deepEqual(later, { done: true, answer: 'tool said: {"refunded":30,"orderId":"A-1"}' });
      assert.equal(tools.calls.length, 1);
    });
  });

  it('long wait, rejected: the resumed model reads the rejection with the rationale as the SDK\'s denied execution', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const governed = governedAgent(h);
      const callId = uid('call');
      const threadId = uid('thread');
      const model = scriptedModel('issue_refund', { orderId: 'C-3', amount: 700 }, callId);
      const first = await generate(model, governed, refundTool, { threadId });
      const messages: ModelMessage[] = [{ role: 'user', content: 'go' }, ...first.response.messages];
      const [request] = await governedApprovalRequests(governed, messages, ['issue_refund'], threadId);
      assert.equal(request?.outcome.status, 'pending');
      const run = h.portarium.run(request!.workflowId);
      const st = await waitForState(run, 'AwaitingApproval');
      await run.decide({ kind: 'reject', ...decision(bob, st.actionHash), rationale: 'needs a ticket' });
      const { responses, pending } = await governedApprovalResponses(governed, messages, ['issue_refund'], threadId);
      assert.equal(pending.length, 0);
      await generate(model, governed, refundTool, { threadId, messages: [...messages, { role: 'tool', content: responses }] });
      assert.match(toolResultsIn(model.doGenerateCalls.at(-1)!)[0]!, /execution denied: Tool call rejected by bob: needs a ticket/);
      assert.equal(tools.calls.length, 0);
    });
  });

  it('approving the SDK request itself does not run the tool: the call still waits for the governed decision', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const governed = governedAgent(h, 500);
      const threadId = uid('thread');
      const model = scriptedModel('issue_refund', { orderId: 'D-4', amount: 12 }, uid('call'));
      const first = await generate(model, governed, refundTool, { threadId });
      const messages: ModelMessage[] = [{ role: 'user', content: 'go' }, ...first.response.messages];
      const [request] = await governedApprovalRequests(governed, messages, ['issue_refund'], threadId);
      assert.equal(request?.outcome.status, 'pending');
      const after = await generate(model, governed, refundTool, { threadId, messages: [...messages, { role: 'tool', content: [{ type: 'tool-approval-response', approvalId: request!.approvalId, approved: true }] }] });
      assert.match(toolResultsIn(model.doGenerateCalls.at(-1)!)[0]!, /waiting for approval/);
      assert.match(after.text, /has not run yet/);
      assert.equal(tools.calls.length, 0);
      assert.equal((await h.portarium.run(request!.workflowId).status()).state, 'AwaitingApproval');
    });
  });

  it('a retried tool call (same call id) finds the same run: one run, the tool applied once, the model reads the same result', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const threadId = uid('thread');
      const wf = h.client.workflow.getHandle(toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', callId, threadId));
      const first = scriptedModel('get_weather', { city: 'Rome' }, callId);
      const retry = scriptedModel('get_weather', { city: 'Rome' }, callId);
      await generate(first, governedAgent(h), weatherTool, { threadId });
      const firstRunId = (await wf.describe()).runId;
      await generate(retry, governedAgent(h), weatherTool, { threadId });
      assert.equal((await wf.describe()).runId, firstRunId);
      assert.deepEqual(toolResultsIn(first.doGenerateCalls[1]!), ['{"city":"Rome","tempC":21}']);
      assert.deepEqual(toolResultsIn(retry.doGenerateCalls[1]!), ['{"city":"Rome","tempC":21}']);
      assert.equal(tools.calls.length, 1);
    });
  });

  it('policy Deny reaches the model as a refusal; a call without a correlation id starts no run', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const model = scriptedModel('drop_table', { table: 'users' }, uid('call'));
      await generate(model, governedAgent(h), dropTool, { threadId: uid('thread') });
      assert.match(toolResultsIn(model.doGenerateCalls[1]!)[0]!, /denied by policy/);
      const callId = uid('call');
      const orphan = scriptedModel('get_weather', { city: 'Oslo' }, callId);
      await assert.rejects(generate(orphan, governedAgent(h), weatherTool), (e: unknown) => e instanceof MissingCorrelationError || /no correlation id/.test(String(e)));
      assert.equal(tools.calls.length, 0);
    });
  });
});
