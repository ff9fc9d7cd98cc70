/**
 * The OpenAI Agents SDK adapter through the SDK's own run loop (`Runner.run`, a scripted `Model`),
 * on a real Temporal server with the in-process `agent-tools` runtime: what the model reads after
 * each governed tool call, who may approve, retried call ids, the evidence, and the long-wait
 * pattern (interruption, serialised RunState, resume) of docs/examples/agents/openai-agents.ts.
 */
import * as assert from 'node:assert/strict';
import { Agent, RunState as AgentRunState, Runner } from '@openai/agents';
import { MissingCorrelationError, governedInterruptions, governedInterruptionsDecided, governedTool } from '../../workers/agents/openai-agents';
import { type GovernedAgent, type GovernedToolSpec, toolCallWorkflowId } from '../../workers/agents/governed-tool';
import { ScriptedModel, functionCall, message, resumeSupportAgent, startSupportAgent, toolResultsIn } from '../../docs/examples/agents/openai-agents';
import { hashAction } from '../../workflows/hashing';
import { bob, decision, failureType, uid, waitForState } from '../support/harness';
import { AGENT_WORKSPACE, agentPolicyDir, agentPrincipal, dropTool, governedAgent, refundTool, weatherTool, withAgentWorker } from '../support/agents';
import type { Harness } from '../support/harness';
import { testEnv } from '../support/shared';

const runner = new Runner({ tracingDisabled: true });

/** A model that calls `tool` with `args` under `callId`, then says what the tool answered. */
function callingModel(tool: string, args: object, callId: string): ScriptedModel {
  return new ScriptedModel((request) => {
    const [result] = toolResultsIn(request);
    return result === undefined ? [functionCall(tool, args, callId)] : [message(`tool said: ${result}`)];
  });
}

function agentWith(model: ScriptedModel, governed: GovernedAgent, spec: GovernedToolSpec, opts?: Parameters<typeof governedTool>[2]) {
  return new Agent({ name: 'support', instructions: 'Use the tools.', model, tools: [governedTool(governed, spec, opts)] });
}

/** Decide the tool call's run as `who` once it waits for approval. */
async function decideWhenWaiting(h: Harness, toolName: string, callId: string, threadId: string, kind: 'approve' | 'reject', rationale?: string) {
  const run = h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, toolName, callId, threadId));
  const st = await waitForState(run, 'AwaitingApproval', 30_000);
  await run.decide({ kind, ...decision(bob, st.actionHash), ...(rationale && { rationale }) });
}

describe('OpenAI Agents SDK adapter (real server, SDK run loop, scripted model)', function () {
  this.timeout(90_000);
  let policyDir: string;
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue: uid('tq-oai') });
  before(() => {
    policyDir = agentPolicyDir();
  });

  it('Auto: the tool runs and the model reads its result; the evidence holds the exact arguments and the output reference', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const threadId = uid('thread');
      const model = callingModel('get_weather', { city: 'Oslo' }, callId);
      const result = await runner.run(agentWith(model, governedAgent(h), weatherTool), 'Weather in Oslo?', { context: { threadId } });
      assert.equal(result.interruptions.length, 0);
      assert.deepEqual(toolResultsIn(model.requests[1]!), ['{"city":"Oslo","tempC":21}']);
      assert.equal(result.finalOutput, 'tool said: {"city":"Oslo","tempC":21}');
      assert.deepEqual(tools.calls.map((c) => c.args), [{ city: 'Oslo' }]);
      const run = h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', callId, threadId));
      const ev = (await run.evidence()).entries;
      const requested = ev.find((e) => e.event === 'RunRequested');
      assert.equal(requested?.actor.id, agentPrincipal.id);
      assert.equal((requested?.data as { actionHash?: string }).actionHash, (await run.status()).actionHash);
      // The decision-bound action hash covers the model's exact arguments.
      assert.equal((await run.status()).actionHash, hashAction({ runtime: 'agent-tools', target: 'get_weather', operation: 'call', input: { city: 'Oslo' } }));
      const refs = ev.find((e) => e.event === 'StateSucceeded')?.payloadRefs ?? [];
      assert.deepEqual(refs.map((r) => r.kind).sort(), ['ActionInput', 'RuntimeOutput']);
    });
  });

  it('HumanApprove, blocking tool: the SDK run waits, bob approves, the model reads the result; the agent\'s own approval is refused', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const threadId = uid('thread');
      const model = callingModel('issue_refund', { orderId: 'A-1', amount: 30 }, callId);
      const running = runner.run(agentWith(model, governedAgent(h), refundTool, { needsApproval: false }), 'Refund A-1', { context: { threadId } });
      const run = h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'issue_refund', callId, threadId));
      const st = await waitForState(run, 'AwaitingApproval', 30_000);
      await assert.rejects(run.decide({ kind: 'approve', ...decision(agentPrincipal, st.actionHash) }), (e: unknown) => failureType(e) === 'SelfApprovalRefused');
      assert.equal(tools.calls.length, 0);
      await run.decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      const result = await running;
      assert.deepEqual(toolResultsIn(model.requests[1]!), ['{"refunded":30,"orderId":"A-1"}']);
      assert.equal(result.finalOutput, 'tool said: {"refunded":30,"orderId":"A-1"}');
      assert.equal(tools.calls.length, 1);
    });
  });

  it('rejection: the model reads who rejected and the rationale, and nothing runs', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const threadId = uid('thread');
      const model = callingModel('issue_refund', { orderId: 'B-2', amount: 9000 }, callId);
      const running = runner.run(agentWith(model, governedAgent(h), refundTool, { needsApproval: false }), 'Refund B-2', { context: { threadId } });
      await decideWhenWaiting(h, 'issue_refund', callId, threadId, 'reject', 'refunds over 500 need a ticket');
      await running;
      const [read] = toolResultsIn(model.requests[1]!);
      assert.match(read!, /rejected by bob: refunds over 500 need a ticket/);
      assert.equal(tools.calls.length, 0);
    });
  });

  it('long wait: the SDK run stops with an interruption, its state is saved, and resuming after bob approves returns the result (the example agent)', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const governed = governedAgent(h);
      const first = await startSupportAgent(governed, uid('thread'), 'Please refund order A-1 (30 EUR).');
      assert.equal(first.done, false);
      if (first.done) return;
      assert.equal(first.waitingOn.length, 1);
      const run = h.portarium.run(first.waitingOn[0]!);
      const st = await waitForState(run, 'AwaitingApproval');
      // The agent's principal cannot approve its own call, and an undecided run keeps the SDK run paused.
      await assert.rejects(run.decide({ kind: 'approve', ...decision(agentPrincipal, st.actionHash) }), (e: unknown) => failureType(e) === 'SelfApprovalRefused');
      const saved = await AgentRunState.fromString(new Agent({ name: 'support', tools: [governedTool(governed, refundTool)] }), first.savedState);
      assert.equal(await governedInterruptionsDecided(governed, saved, ['issue_refund']), false);
      const stillWaiting = await resumeSupportAgent(governed, first.savedState);
      assert.equal(stillWaiting.done, false);
      assert.equal(tools.calls.length, 0);
      await run.decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      await waitForState(run, 'Succeeded');
      assert.equal(await governedInterruptionsDecided(governed, saved, ['issue_refund']), true);
      const later = await resumeSupportAgent(governed, stillWaiting.done ? first.savedState : stillWaiting.savedState);
      assert.deepEqual(later, { done: true, answer: 'Refund: {"refunded":30,"orderId":"A-1"}' });
      assert.equal(tools.calls.length, 1);
    });
  });

  it('approving the SDK interruption itself does not run the tool: the call still waits for the governed decision', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const governed = governedAgent(h, 500);
      const model = callingModel('issue_refund', { orderId: 'D-4', amount: 12 }, callId);
      const agent = agentWith(model, governed, refundTool);
      const first = await runner.run(agent, 'Refund D-4', { context: { threadId: uid('thread') } });
      assert.equal(first.interruptions.length, 1);
      const [waiting] = await governedInterruptions(governed, first.state, ['issue_refund']);
      assert.equal(waiting?.outcome.status, 'pending');
      const state = await AgentRunState.fromString(agent, first.state.toString());
      state.approve(state.getInterruptions()[0]!);
      const after = await runner.run(agent, state);
      assert.match(toolResultsIn(model.requests.at(-1)!)[0]!, /waiting for approval/);
      assert.match(String(after.finalOutput), /has not run yet/);
      assert.equal(tools.calls.length, 0);
      assert.equal((await h.portarium.run(waiting!.workflowId).status()).state, 'AwaitingApproval');
    });
  });

  it('a retried tool call (same call id) finds the same run: one run, the tool applied once, the model reads the same result', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const threadId = uid('thread');
      const first = callingModel('get_weather', { city: 'Rome' }, callId);
      const retry = callingModel('get_weather', { city: 'Rome' }, callId);
      const wf = h.client.workflow.getHandle(toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', callId, threadId));
      await runner.run(agentWith(first, governedAgent(h), weatherTool), 'Weather in Rome?', { context: { threadId } });
      const firstRunId = (await wf.describe()).runId;
      await runner.run(agentWith(retry, governedAgent(h), weatherTool), 'Weather in Rome?', { context: { threadId } });
      assert.equal((await wf.describe()).runId, firstRunId);
      assert.deepEqual(toolResultsIn(retry.requests[1]!), ['{"city":"Rome","tempC":21}']);
      assert.deepEqual(toolResultsIn(first.requests[1]!), ['{"city":"Rome","tempC":21}']);
      assert.equal(tools.calls.length, 1);
    });
  });

  it('policy Deny reaches the model as a refusal; a call without a correlation id starts no run', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const model = callingModel('drop_table', { table: 'users' }, uid('call'));
      await runner.run(agentWith(model, governedAgent(h), dropTool), 'Drop users', { context: { threadId: uid('thread') } });
      assert.match(toolResultsIn(model.requests[1]!)[0]!, /denied by policy/);
      const callId = uid('call');
      const orphan = callingModel('get_weather', { city: 'Oslo' }, callId);
      await assert.rejects(runner.run(agentWith(orphan, governedAgent(h), weatherTool), 'Weather?'), (e: unknown) => e instanceof MissingCorrelationError || (e as { cause?: unknown })?.cause instanceof MissingCorrelationError || /no correlation id/.test(String(e)));
      assert.equal(tools.calls.length, 0);
    });
  });
});
