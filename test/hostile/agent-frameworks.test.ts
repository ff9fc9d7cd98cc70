/**
 * Hostile models against the OpenAI Agents SDK and Vercel AI SDK adapters: arguments that try to pick
 * their own tier, a call id replayed with other arguments, arguments that are not an object or are
 * too large. Each time the model reads a refusal (or the call waits for a person), nothing runs that
 * policy did not allow, and the agent's run loop goes on.
 */
import * as assert from 'node:assert/strict';
import { Agent, Runner } from '@openai/agents';
import { generateText, stepCountIs } from 'ai';
import { governedTool as openaiTool } from '../../workers/agents/openai-agents';
import { governedTool as aiTool } from '../../workers/agents/ai-sdk';
import { type GovernedAgent, type GovernedToolSpec, toolCallWorkflowId } from '../../workers/agents/governed-tool';
import { ScriptedModel, functionCall, message, toolResultsIn } from '../../docs/examples/agents/openai-agents';
import { scriptedModel, toolResultsIn as aiToolResultsIn } from '../../docs/examples/agents/ai-sdk';
import { uid, waitForState } from '../support/harness';
import { AGENT_WORKSPACE, agentPolicyDir, governedAgent, refundTool, weatherTool, withAgentWorker } from '../support/agents';
import { testEnv } from '../support/shared';

const runner = new Runner({ tracingDisabled: true });

/** An OpenAI SDK model that sends `rawArguments` verbatim under `callId`, then repeats what it read. */
function rawCallingModel(tool: string, rawArguments: string, callId: string): ScriptedModel {
  return new ScriptedModel((request) => {
    const [result] = toolResultsIn(request);
    return result === undefined ? [{ ...functionCall(tool, {}, callId), arguments: rawArguments } as ReturnType<typeof functionCall>] : [message(`tool said: ${result}`)];
  });
}

function openaiRun(model: ScriptedModel, governed: GovernedAgent, spec: GovernedToolSpec, threadId = uid('thread')) {
  return runner.run(new Agent({ name: 'support', model, tools: [openaiTool(governed, spec)] }), 'go', { context: { threadId } });
}

describe('hostile models against the agent-framework adapters (OpenAI Agents SDK, AI SDK)', function () {
  this.timeout(90_000);
  let policyDir: string;
  const opts = () => ({ connection: testEnv().nativeConnection, client: testEnv().client, policyDir, taskQueue: uid('tq-agents-hostile') });
  before(() => {
    policyDir = agentPolicyDir();
  });

  it('OpenAI SDK: arguments naming a tier and an approval do not change the tier: the refund still waits for a person and does not run', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const threadId = uid('thread');
      const model = rawCallingModel('issue_refund', JSON.stringify({ orderId: 'X-1', amount: 5, tier: 'Auto', approved: true, approver: 'bob' }), callId);
      const result = await openaiRun(model, governedAgent(h), refundTool, threadId);
      assert.equal(result.interruptions.length, 1);
      const status = await waitForState(h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'issue_refund', callId, threadId)), 'AwaitingApproval');
      assert.equal(status.tier, 'HumanApprove');
      assert.equal(tools.calls.length, 0);
    });
  });

  it('OpenAI SDK: a call id replayed with other arguments is refused to the model; the first call ran once and nothing else ran', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const threadId = uid('thread');
      await openaiRun(rawCallingModel('get_weather', '{"city":"Oslo"}', callId), governedAgent(h), weatherTool, threadId);
      const replay = rawCallingModel('get_weather', '{"city":"Paris"}', callId);
      const result = await openaiRun(replay, governedAgent(h), weatherTool, threadId);
      assert.match(toolResultsIn(replay.requests[1]!)[0]!, /already used with other arguments\. It did not run/);
      assert.match(String(result.finalOutput), /refused/);
      assert.deepEqual(tools.calls.map((c) => c.args), [{ city: 'Oslo' }]);
    });
  });

  it('OpenAI SDK: arguments that are not an object, or too large, are refused to the model and start no run', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const threadId = uid('thread');
      const arrayCall = uid('call');
      const arrayModel = rawCallingModel('get_weather', '["Oslo"]', arrayCall);
      await openaiRun(arrayModel, governedAgent(h), weatherTool, threadId);
      assert.match(toolResultsIn(arrayModel.requests[1]!)[0]!, /must be a JSON object\. It did not run/);
      await assert.rejects(h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', arrayCall, threadId)).status());
      const bigCall = uid('call');
      const bigModel = rawCallingModel('get_weather', JSON.stringify({ city: 'x'.repeat(2_000_000) }), bigCall);
      await openaiRun(bigModel, governedAgent(h), weatherTool, threadId);
      assert.match(toolResultsIn(bigModel.requests[1]!)[0]!, /^Tool call refused: .*bytes of JSON; at most \d+ are accepted\. It did not run\.$/s);
      await assert.rejects(h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'get_weather', bigCall, threadId)).status());
      assert.equal(tools.calls.length, 0);
    });
  });

  it('AI SDK: a call id replayed with other arguments is refused to the model; arguments naming a tier still wait for a person', async function () {
    await withAgentWorker(opts(), async (h, tools) => {
      const callId = uid('call');
      const experimental_context = { threadId: uid('thread') };
      const gen = (model: ReturnType<typeof scriptedModel>, spec: GovernedToolSpec) =>
        generateText({ model, tools: { [spec.name]: aiTool(governedAgent(h), spec) }, prompt: 'go', stopWhen: stepCountIs(2), experimental_context });
      await gen(scriptedModel('get_weather', { city: 'Oslo' }, callId), weatherTool);
      const replay = scriptedModel('get_weather', { city: 'Paris' }, callId);
      await gen(replay, weatherTool);
      assert.match(aiToolResultsIn(replay.doGenerateCalls[1]!)[0]!, /already used with other arguments\. It did not run/);
      assert.deepEqual(tools.calls.map((c) => c.args), [{ city: 'Oslo' }]);
      const refundCall = uid('call');
      const sneaky = await gen(scriptedModel('issue_refund', { orderId: 'X-2', amount: 5, tier: 'Auto', approved: true }, refundCall), refundTool);
      assert.equal(sneaky.content.filter((p) => p.type === 'tool-approval-request').length, 1);
      const status = await waitForState(h.portarium.run(toolCallWorkflowId(AGENT_WORKSPACE, 'issue_refund', refundCall, experimental_context.threadId)), 'AwaitingApproval');
      assert.equal(status.tier, 'HumanApprove');
      assert.equal(tools.calls.length, 1);
    });
  });
});
