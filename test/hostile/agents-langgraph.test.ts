/**
 * Hostile model output and misuse against the LangGraph.js adapter, on a real dev server. The attacks are
 * calls to unknown tools, arguments off the schema, too many calls in one step, missing or reused call ids,
 * a bare tool invocation, a graph without a checkpointer, and thread ids that break the id rules. Each
 * asserts what a user sees: the model reads an error, nothing is dispatched that policy did not allow, and
 * a run that was started stays readable and decidable.
 */
import * as assert from 'node:assert/strict';
import { Command } from '@langchain/langgraph';
import { WorkflowNotFoundError } from '@temporalio/client';
import { type GovernedToolOutcome, governedInterrupts, governedTool, governedToolsNode, toolCallWorkflowId } from '../../workers/agents/langgraph';
import { hashAction } from '../../workflows/hashing';
import { bob, decision, uid } from '../support/harness';
import { AGENT_WORKSPACE, agentPolicyDir, governedAgent, refundTool, weatherTool, withAgentWorker } from '../support/agents';
import { ask, awaitingApproval, nodeGraph, toolMessages, toolNodeGraph } from '../support/langgraph';
import { testEnv } from '../support/shared';

describe('hostile LangGraph tool calls (real server)', function () {
  this.timeout(60_000);
  let policyDir: string;
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue: uid('tq-lgh') });
  before(() => {
    policyDir = agentPolicyDir();
  });

  it('calls to an unknown tool, with arguments off the schema or without an id reach the model as errors and start no run', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const ids = { unknown: uid('call'), offSchema: uid('call'), fine: uid('call') };
      const calls = [
        { id: ids.unknown, name: 'drop_everything', args: {} },
        { id: ids.offSchema, name: 'issue_refund', args: { orderId: 5, amount: 'all', note: 'x' } },
        { id: '', name: 'get_weather', args: { city: 'Oslo' } },
        { id: ids.fine, name: 'get_weather', args: { city: 'Bergen' } },
      ];
      const thread = uid('thread');
      const out = await nodeGraph(governedToolsNode(governedAgent(h), [weatherTool, refundTool]), calls).invoke(ask, { configurable: { thread_id: thread } });
      assert.deepEqual(toolMessages(out.messages).map((m) => m.status), ['error', 'error', 'error', 'success']);
      assert.deepEqual(tools.calls.map((c) => c.args), [{ city: 'Bergen' }]);
      for (const [name, id] of [['drop_everything', ids.unknown], ['issue_refund', ids.offSchema]]) {
        await assert.rejects(h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, name, id, thread)).status(), (e: unknown) => e instanceof WorkflowNotFoundError, `no run for ${name}`);
      }
    });
  });

  it('tool calls beyond the per-step limit answer the model with an error and start nothing', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const calls = ['Oslo', 'Rome', 'Lima'].map((city) => ({ id: uid('call'), name: 'get_weather', args: { city } }));
      const thread = uid('thread');
      const out = await nodeGraph(governedToolsNode(governedAgent(h), [weatherTool], { maxCallsPerStep: 2 }), calls).invoke(ask, { configurable: { thread_id: thread } });
      assert.deepEqual(toolMessages(out.messages).map((m) => m.status), ['success', 'success', 'error']);
      assert.deepEqual(tools.calls.map((c) => c.args).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), [{ city: 'Oslo' }, { city: 'Rome' }]);
      await assert.rejects(h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', calls[2].id, thread)).status(), (e: unknown) => e instanceof WorkflowNotFoundError);
    });
  });

  it('a reused call id with other arguments is refused: no second run, nothing dispatched, the first run still decidable', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const id = uid('call');
      const config = { configurable: { thread_id: uid('thread') } };
      const node = () => governedToolsNode(governedAgent(h), [refundTool], { waitMs: 300 });
      const honest = nodeGraph(node(), [{ id, name: 'issue_refund', args: { orderId: 'R-1', amount: 30 } }]);
      const [pause] = governedInterrupts(await honest.invoke(ask, config));
      const forged = nodeGraph(node(), [{ id, name: 'issue_refund', args: { orderId: 'R-1', amount: 9000 } }]);
      // The model reads a refusal (a throw would fail every resume of the thread).
      const [refused] = toolMessages((await forged.invoke(ask, config)).messages);
      assert.equal(refused.status, 'error');
      assert.match(String(refused.content), /already used with other arguments\. It did not run\./);
      const run = h.portarium.run(pause.pending[0].workflowId);
      const st = await awaitingApproval(h.portarium, run.workflowId);
      assert.equal(st.actionHash, hashAction({ runtime: 'agent-tools', target: 'issue_refund', operation: 'call', input: { orderId: 'R-1', amount: 30 } }));
      await run.decide({ kind: 'approve', ...decision(bob, st.actionHash) });
      const done = await honest.invoke(new Command({ resume: 'decided' }), config);
      assert.equal((toolMessages(done.messages)[0].artifact as GovernedToolOutcome).status, 'succeeded');
      assert.deepEqual(tools.calls.map((c) => c.args), [{ orderId: 'R-1', amount: 30 }]);
    });
  });

  it('a governed tool invoked with bare arguments (no tool call, so no key) is refused before any run starts', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      await assert.rejects(governedTool(governedAgent(h), weatherTool).invoke({ city: 'Oslo' }));
      assert.equal(tools.calls.length, 0);
    });
  });

  it('without a checkpointer a waiting call fails the graph rather than run; the run waits, readable and decidable', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const id = uid('call');
      const graph = nodeGraph(governedToolsNode(governedAgent(h), [refundTool], { waitMs: 300 }), [{ id, name: 'issue_refund', args: { orderId: 'N-1', amount: 5 } }], { checkpointed: false });
      await assert.rejects(graph.invoke(ask), (e: unknown) => (e as { lc_error_code?: string }).lc_error_code === 'MISSING_CHECKPOINTER');
      // No thread: the call id is the run's correlation id.
      const run = h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'issue_refund', id, id));
      const st = await awaitingApproval(h.portarium, run.workflowId);
      await run.decide({ kind: 'reject', ...decision(bob, st.actionHash), rationale: 'orphaned' });
      assert.equal((await run.status()).state, 'Rejected');
      assert.equal(tools.calls.length, 0);
    });
  });

  it('thread ids that break the id rules become valid correlation ids, and distinct threads stay apart', async function () {
    await withAgentWorker(opts(), async (h) => {
      const long = `${'t'.repeat(200)} \n\u0000`;
      const correlations: string[] = [];
      for (const thread of [`${long}a`, `${long}b`]) {
        const call = { id: uid('call'), name: 'get_weather', args: { city: 'Oslo' } };
        const out = await toolNodeGraph([governedTool(governedAgent(h), weatherTool)], [call]).invoke(ask, { configurable: { thread_id: thread } });
        const outcome = toolMessages(out.messages)[0].artifact as GovernedToolOutcome;
        assert.equal(outcome.status, 'succeeded');
        const ev = (await h.portarium.run(outcome.workflowId).evidence()).entries;
        correlations.push(ev[0].correlationId);
      }
      assert.notEqual(correlations[0], correlations[1]);
      for (const c of correlations) assert.match(c, /^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}$/);
    });
  });
});
