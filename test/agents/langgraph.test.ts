/**
 * The LangGraph.js adapter on a real Temporal server, with the in-process `agent-tools` runtime and a
 * scripted model (no LLM). A governed tool in a `ToolNode` returns its result into the graph state. The
 * governed-tools node interrupts while a refund waits for a person, and the example agent
 * (docs/examples/agents/langgraph.ts) resumes once bob approves. A resume before the decision interrupts
 * again. A rejection reaches the model with its rationale. The agent cannot approve its own call. A retried
 * step starts no second run. The evidence binds the exact arguments and the output.
 */
import * as assert from 'node:assert/strict';
import { Command, MemorySaver } from '@langchain/langgraph';
import type { GovernedToolOutcome } from '../../workers/agents/governed-tool';
import { governedInterrupts, governedTool, governedToolsNode, toolCallWorkflowId } from '../../workers/agents/langgraph';
import { canonicalJson, hashAction, sha256Hex } from '../../workflows/hashing';
import { main as exampleMain, supportAgent, tools as exampleTools } from '../../docs/examples/agents/langgraph';
import { bob, decision, failureType, uid } from '../support/harness';
import { AGENT_WORKSPACE, agentPolicyDir, agentPrincipal, governedAgent, refundTool, weatherTool, withAgentWorker } from '../support/agents';
import { testEnv } from '../support/shared';
import { ask, awaitingApproval, nodeGraph, toolMessages, toolNodeGraph } from '../support/langgraph';

describe('LangGraph.js adapter (real server, scripted model)', function () {
  this.timeout(60_000);
  let policyDir: string;
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue: uid('tq-langgraph') });
  before(() => {
    policyDir = agentPolicyDir();
  });

  it('Auto: a governed tool in a ToolNode runs and returns its result into the graph state, correlated with the thread', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const call = { id: uid('call'), name: 'get_weather', args: { city: 'Oslo' } };
      const thread = uid('thread');
      const out = await toolNodeGraph([governedTool(governedAgent(h), weatherTool)], [call]).invoke(ask, { configurable: { thread_id: thread } });
      const [msg] = toolMessages(out.messages);
      assert.equal(msg.content, '{"city":"Oslo","tempC":21}');
      assert.equal(msg.status, 'success');
      const workflowId = toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', call.id, thread);
      assert.deepEqual(msg.artifact, { status: 'succeeded', workflowId, output: { city: 'Oslo', tempC: 21 } });
      assert.equal(out.messages.at(-1)?.content, '{"city":"Oslo","tempC":21}', 'the model read the result');
      const ev = (await h.portarium.run(workflowId).evidence()).entries;
      assert.ok(ev.length > 0 && ev.every((e) => e.correlationId === thread));
      assert.deepEqual(tools.calls.map((c) => c.args), [{ city: 'Oslo' }]);
    });
  });

  it('HumanApprove: the example agent interrupts with the workflow id, bob approves, the resumed graph completes with the result', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const waits: string[][] = [];
      const answer = await exampleMain(governedAgent(h), {
        pollMs: 100,
        onWaiting: async (runs) => {
          waits.push(runs.map((r) => r.workflowId));
          assert.deepEqual(runs.map((r) => r.tool), ['issue_refund']);
          // Interrupted: the weather call ran, the refund did not.
          assert.deepEqual(tools.calls.map((c) => c.tool), ['get_weather']);
          const st = await awaitingApproval(h.portarium, runs[0].workflowId);
          await h.portarium.run(runs[0].workflowId).decide({ kind: 'approve', ...decision(bob, st.actionHash) });
        },
      });
      assert.equal(waits.length, 1);
      assert.match(waits[0][0], new RegExp(`^${AGENT_WORKSPACE}:tool\\.issue_refund\\.call_`));
      assert.equal(answer, 'get_weather: {"city":"Oslo","tempC":21}\nissue_refund: {"refunded":30,"orderId":"A-1"}');
      // The resume re-checked both calls of the step under their call ids: each tool ran once.
      assert.deepEqual(tools.calls.map((c) => c.tool).sort(), ['get_weather', 'issue_refund']);
    });
  });

  it('resuming before the decision interrupts again and never runs the tool: a resume value cannot approve', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const graph = supportAgent(governedAgent(h), new MemorySaver());
      const config = { configurable: { thread_id: uid('thread') } };
      const first = governedInterrupts(await graph.invoke(ask, config));
      assert.equal(first.length, 1);
      const { workflowId } = first[0].pending[0];
      const viaCommand = governedInterrupts(await graph.invoke(new Command({ resume: { approved: true, by: 'bob' } }), config));
      const viaReinvoke = governedInterrupts(await graph.invoke(null, config));
      for (const again of [viaCommand, viaReinvoke]) assert.deepEqual(again.map((i) => i.pending.map((p) => p.workflowId)), [[workflowId]]);
      assert.deepEqual(tools.calls.map((c) => c.tool), ['get_weather']);
      assert.equal((await h.portarium.run(workflowId).status()).state, 'AwaitingApproval');
      // The thread waits in the tools step (LangGraph 1.7 leaves `next` empty after a resume; the task keeps its interrupt).
      assert.deepEqual((await graph.getState(config)).tasks.map((t) => [t.name, t.interrupts.length]), [['tools', 1]]);
    });
  });

  it("the agent's own principal cannot approve its tool call; the graph stays interrupted", async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const call = { id: uid('call'), name: 'issue_refund', args: { orderId: 'S-1', amount: 12 } };
      const graph = nodeGraph(governedToolsNode(governedAgent(h), [refundTool], { waitMs: 300 }), [call]);
      const config = { configurable: { thread_id: uid('thread') } };
      const [pause] = governedInterrupts(await graph.invoke(ask, config));
      const run = h.portarium.run(pause.pending[0].workflowId);
      const st = await awaitingApproval(h.portarium, run.workflowId);
      await assert.rejects(run.decide({ kind: 'approve', ...decision(agentPrincipal, st.actionHash) }), (e: unknown) => failureType(e) === 'SelfApprovalRefused');
      assert.equal(governedInterrupts(await graph.invoke(new Command({ resume: 'approved' }), config)).length, 1);
      assert.equal(tools.calls.length, 0);
    });
  });

  it("rejection reaches the model as readable text with the reviewer's rationale; the tool does not run", async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const call = { id: uid('call'), name: 'issue_refund', args: { orderId: 'B-2', amount: 9000 } };
      const graph = nodeGraph(governedToolsNode(governedAgent(h), [refundTool], { waitMs: 300 }), [call]);
      const config = { configurable: { thread_id: uid('thread') } };
      const [pause] = governedInterrupts(await graph.invoke(ask, config));
      const run = h.portarium.run(pause.pending[0].workflowId);
      const st = await awaitingApproval(h.portarium, run.workflowId);
      await run.decide({ kind: 'reject', ...decision(bob, st.actionHash), rationale: 'refunds over 500 need a ticket' });
      const out = await graph.invoke(new Command({ resume: 'decided' }), config);
      const [msg] = toolMessages(out.messages);
      assert.equal(msg.status, 'error');
      assert.equal((msg.artifact as GovernedToolOutcome).status, 'rejected');
      assert.match(String(out.messages.at(-1)?.content), /rejected by bob: refunds over 500 need a ticket\. It did not run\./);
      assert.equal(tools.calls.length, 0);
    });
  });

  it('a retried step (same tool call id) starts no second run: a ToolNode replayed from its checkpoint, and the node re-run', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const call = { id: uid('call'), name: 'get_weather', args: { city: 'Rome' } };
      const graph = toolNodeGraph([governedTool(governedAgent(h), weatherTool)], [call]);
      const config = { configurable: { thread_id: uid('thread') } };
      await graph.invoke(ask, config);
      // Time travel: re-run the tools step from the checkpoint taken before it.
      let beforeTools;
      for await (const snap of graph.getStateHistory(config)) if (snap.next.includes('tools')) beforeTools = snap;
      assert.ok(beforeTools);
      const replayed = await graph.invoke(null, beforeTools.config);
      assert.deepEqual(toolMessages(replayed.messages).map((m) => (m.artifact as GovernedToolOutcome).workflowId), [toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', call.id, config.configurable.thread_id)]);
      // The same step again in a fresh process (its checkpoints lost), through the governed-tools node.
      const fresh = nodeGraph(governedToolsNode(governedAgent(h), [weatherTool]), [call]);
      const again = await fresh.invoke(ask, config);
      assert.equal(toolMessages(again.messages)[0].content, '{"city":"Rome","tempC":21}');
      assert.equal(tools.calls.length, 1, 'three executions of the step, one run, one call');
      // Visibility is eventually consistent: wait for the run to show, then check it is the thread's only one.
      const query = `PortariumCorrelationId = "${config.configurable.thread_id}"`;
      let runs = 0;
      for (const deadline = Date.now() + 10_000; runs === 0 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
        runs = (await h.portarium.client.workflow.count(query)).count;
      }
      assert.equal(runs, 1, 'one run for the thread');
    });
  });

  it('the evidence binds the exact arguments (action hash, input reference) and the output reference', async function () {
    await withAgentWorker(opts(), async (h) => {
      let workflowId = '';
      await exampleMain(governedAgent(h), {
        pollMs: 100,
        onWaiting: async (runs) => {
          workflowId = runs[0].workflowId;
          const st = await awaitingApproval(h.portarium, workflowId);
          await h.portarium.run(workflowId).decide({ kind: 'approve', ...decision(bob, st.actionHash) });
        },
      });
      const args = { orderId: 'A-1', amount: 30 };
      const spec = exampleTools.find((t) => t.name === 'issue_refund')!;
      const expected = hashAction({ runtime: 'agent-tools', target: spec.name, operation: 'call', input: args });
      const run = h.portarium.run(workflowId);
      assert.equal((await run.status()).actionHash, expected);
      const ev = (await run.evidence()).entries;
      const requested = ev.find((e) => e.event === 'RunRequested');
      assert.equal(requested?.actor.id, agentPrincipal.id);
      assert.equal((requested?.data as { actionHash?: string }).actionHash, expected);
      const refs = Object.fromEntries((ev.find((e) => e.event === 'StateSucceeded')?.payloadRefs ?? []).map((r) => [r.kind, r.sha256]));
      assert.equal(refs.ActionInput, sha256Hex(canonicalJson(args)));
      assert.equal(refs.RuntimeOutput, sha256Hex(JSON.stringify({ refunded: 30, orderId: 'A-1' })));
    });
  });
});
