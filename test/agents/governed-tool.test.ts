/**
 * The framework-neutral governed tool call on a real Temporal server, with the in-process
 * `agent-tools` runtime: Auto runs at once; HumanApprove waits for a second person; rejection,
 * denial and self-approval read as typed outcomes; a retried call id starts no second run; the
 * evidence holds the exact arguments and the output reference; a short wait answers `pending`.
 */
import * as assert from 'node:assert/strict';
import { callGovernedTool, outcomeText, resumeGovernedTool, toolCallKey, toolCallWorkflowId } from '../../workers/agents/governed-tool';
import { bob, decision, failureType, uid, waitForState } from '../support/harness';
import { AGENT_WORKSPACE, agentPolicyDir, agentPrincipal, dropTool, governedAgent, refundTool, weatherTool, withAgentWorker } from '../support/agents';
import { testEnv } from '../support/shared';

describe('governed tool calls (real server, in-process agent-tools runtime)', function () {
  this.timeout(60_000);
  let policyDir: string;
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue: uid('tq-agents') });
  before(() => {
    policyDir = agentPolicyDir();
  });

  it('Auto: the tool runs at once and its result comes back; the evidence holds the exact arguments and the output', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const ctx = { toolCallId: uid('call'), correlationId: uid('thread') };
      const out = await callGovernedTool(governedAgent(h), weatherTool, { city: 'Oslo' }, ctx);
      assert.deepEqual(out, { status: 'succeeded', workflowId: toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', ctx.toolCallId, ctx.correlationId), output: { city: 'Oslo', tempC: 21 } });
      assert.equal(outcomeText(out), '{"city":"Oslo","tempC":21}');
      const ev = (await h.portarium.run(out.workflowId).evidence()).entries;
      const requested = ev.find((e) => e.event === 'RunRequested');
      assert.equal(requested?.actor.id, agentPrincipal.id);
      // The request binds the exact arguments (the action hash covers the input); the end references both.
      assert.equal((requested?.data as { actionHash?: string }).actionHash, (await h.portarium.run(out.workflowId).status()).actionHash);
      const refs = ev.find((e) => e.event === 'StateSucceeded')?.payloadRefs ?? [];
      assert.deepEqual(refs.map((r) => r.kind).sort(), ['ActionInput', 'RuntimeOutput']);
      assert.deepEqual(tools.calls.map((c) => c.args), [{ city: 'Oslo' }]);
    });
  });

  it('a retried call (same call id) finds the same run and applies nothing twice; other arguments under the same id are refused', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const ctx = { toolCallId: uid('call'), correlationId: uid('thread') };
      const first = await callGovernedTool(governedAgent(h), weatherTool, { city: 'Rome' }, ctx);
      const again = await callGovernedTool(governedAgent(h), weatherTool, { city: 'Rome' }, ctx);
      assert.deepEqual(again, first);
      assert.equal(tools.calls.length, 1);
      await assert.rejects(callGovernedTool(governedAgent(h), weatherTool, { city: 'Paris' }, ctx), /already used/);
    });
  });

  it('the same tool call id in two threads starts two runs; neither reads the other\'s result', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const toolCallId = uid('call');
      const a = await callGovernedTool(governedAgent(h), weatherTool, { city: 'Oslo' }, { toolCallId, correlationId: uid('thread') });
      const b = await callGovernedTool(governedAgent(h), weatherTool, { city: 'Rome' }, { toolCallId, correlationId: uid('thread') });
      assert.deepEqual([a.status, b.status], ['succeeded', 'succeeded']);
      assert.notEqual(a.workflowId, b.workflowId);
      assert.deepEqual(a.status === 'succeeded' && a.output, { city: 'Oslo', tempC: 21 });
      assert.deepEqual(b.status === 'succeeded' && b.output, { city: 'Rome', tempC: 21 });
      assert.deepEqual(tools.calls.map((c) => c.args), [{ city: 'Oslo' }, { city: 'Rome' }]);
    });
  });

  it('HumanApprove: waits, a second person approves, the result comes back; the agent\'s own approval is refused', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const ctx = { toolCallId: uid('call'), correlationId: uid('thread') };
      const pendingCall = callGovernedTool(governedAgent(h), refundTool, { orderId: 'A-1', amount: 30 }, ctx);
      const run = h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'issue_refund', ctx.toolCallId, ctx.correlationId));
      for (let i = 0; i < 100; i++) {
        try {
          await waitForState(run, 'AwaitingApproval', 200);
          break;
        } catch {
          /* not started yet */
        }
      }
      const st = await waitForState(run, 'AwaitingApproval');
      await assert.rejects(run.decide({ kind: 'approve', ...decision(agentPrincipal, st.actionHash) }), (e: unknown) => failureType(e) === 'SelfApprovalRefused');
      assert.equal(tools.calls.length, 0);
      await run.decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      const out = await pendingCall;
      assert.deepEqual(out, { status: 'succeeded', workflowId: run.workflowId, output: { refunded: 30, orderId: 'A-1' } });
    });
  });

  it('rejection reaches the model with the reviewer and the rationale; denial with the policy reason; nothing runs', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const ctx = { toolCallId: uid('call'), correlationId: uid('thread') };
      const call = callGovernedTool(governedAgent(h), refundTool, { orderId: 'B-2', amount: 9000 }, ctx);
      const run = h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'issue_refund', ctx.toolCallId, ctx.correlationId));
      let st;
      for (let i = 0; i < 100 && !st; i++) st = await waitForState(run, 'AwaitingApproval', 200).catch(() => undefined);
      await run.decide({ kind: 'reject', ...decision(bob, st!.actionHash), rationale: 'refunds over 500 need a ticket' });
      const out = await call;
      assert.deepEqual(out, { status: 'rejected', workflowId: run.workflowId, by: 'bob', rationale: 'refunds over 500 need a ticket' });
      assert.match(outcomeText(out), /rejected by bob: refunds over 500 need a ticket/);
      const denied = await callGovernedTool(governedAgent(h), dropTool, { table: 'users' }, { toolCallId: uid('call'), correlationId: ctx.correlationId });
      assert.equal(denied.status, 'denied');
      assert.match(outcomeText(denied), /denied by policy/);
      assert.equal(tools.calls.length, 0);
    });
  });

  it('an agent that cannot block gets `pending` with the workflow id, and resumes from it later', async function () {
    await withAgentWorker(opts(), async (h) => {
      const ctx = { toolCallId: uid('call'), correlationId: uid('thread') };
      const first = await callGovernedTool(governedAgent(h, 300), refundTool, { orderId: 'C-3', amount: 5 }, ctx);
      assert.equal(first.status, 'pending');
      assert.equal(first.workflowId, `${AGENT_WORKSPACE}:${toolCallKey('issue_refund', ctx.toolCallId, ctx.correlationId)}`);
      const st = await waitForState(h.portarium.run(first.workflowId), 'AwaitingApproval');
      await h.portarium.run(first.workflowId).decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      const later = await resumeGovernedTool(h.portarium, first.workflowId);
      assert.equal(later.status, 'succeeded');
    });
  });
});
