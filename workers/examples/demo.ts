/**
 * Demo run: `node dist/workers/examples/demo.js` (what `./temporal-dev.sh demo` runs). Starts one governed
 * echo write in workspace `demo`, which policies/sets/demo.json sends to one approver, waits until it
 * awaits approval, and prints copy-paste lines to inspect and approve it.
 * Needs a running worker. TEMPORAL_UI_PORT (default 8233) only shapes the printed Web UI link.
 * With TEMPORAL_PROFILE set (`./temporal-dev.sh` passes the Temporal CLI profile it wrote), the
 * printed lines name no address: the profile gives the `temporal` CLI its address and codec server.
 */
import { type GovernedRunInput, type RunStatus, RunState, TERMINAL_STATES } from '../../workflows/types';
import { PortariumClient, type RunHandle } from '../client';
import { loadConfig } from '../config';

const WAIT_MS = 30_000;
const POLL_MS = 250;

/** Single-quote for POSIX shells. */
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The message with its causes, e.g. `Failed to query Workflow: <why>`. */
function describeError(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 4; e = e instanceof Error ? e.cause : undefined) {
    parts.push(e instanceof Error ? e.message : String(e));
  }
  return parts.join(': ');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `status` until the run reaches `want`; fail fast on a terminal state, give up after `WAIT_MS`. */
async function waitForState(client: PortariumClient, run: RunHandle, want: RunState): Promise<RunStatus> {
  const deadline = Date.now() + WAIT_MS;
  let last: string = 'no status yet';
  for (;;) {
    try {
      // A query waits for a worker; bound each one so the overall limit holds.
      const status = await client.client.withDeadline(Math.min(deadline, Date.now() + 5_000), () => run.status());
      if (status.state === want) return status;
      if (TERMINAL_STATES.has(status.state)) {
        throw new Error(`run ${run.workflowId} ended in ${status.state} instead of ${want}: ${status.reasons.join('; ')}`);
      }
      last = `state ${status.state}`;
    } catch (err) {
      if (err instanceof Error && err.message.startsWith(`run ${run.workflowId} ended`)) throw err;
      last = describeError(err);
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `run ${run.workflowId} not in ${want} after ${WAIT_MS / 1000} s (last: ${last}). ` +
          'Is a worker running (./temporal-dev.sh workers)? Workflow task failures show in its log, .data/worker-<i>.log.',
      );
    }
    await sleep(POLL_MS);
  }
}

async function main(): Promise<void> {
  const config = loadConfig();
  const uiPort = process.env.TEMPORAL_UI_PORT?.trim() || '8233';
  const { address, namespace } = config.temporal;
  const stamp = Date.now();
  const input: GovernedRunInput = {
    workspaceId: 'demo',
    correlationId: `demo-${stamp}`,
    requestedBy: { id: 'alice', roles: ['dev'] },
    action: { runtime: 'echo', target: 'demo/greeting', operation: 'write', input: { message: 'hello from the demo' } },
    idempotencyKey: `demo-${stamp}`,
    reason: 'demo run: a write that needs one approver',
  };

  const client = await PortariumClient.connect(config);
  try {
    const { workflowId, run } = await client.startRun(input);
    console.log(`started governed run ${workflowId} (requester alice, echo write to demo/greeting)`);
    const status = await waitForState(client, run, RunState.AwaitingApproval);
    // The hash approvers must quote: the workflow's own, of the action as it received it.
    const actionHash = status.actionHash;

    const id = sq(workflowId);
    const profile = process.env.TEMPORAL_PROFILE?.trim();
    const ns = namespace === 'default' ? '' : ` --namespace ${sq(namespace)}`;
    // The profile line also exports a non-default TEMPORAL_ADDRESS, which the portarium CLI reads.
    const conn = profile ? '' : ` --address ${address}${ns}`;
    const portariumConn = profile ? ns : conn;
    const approver = { id: 'bob', roles: ['approver'] };
    const signalInput = JSON.stringify({ decisionId: 'd-1', approver, actionHash });
    const decideInput = JSON.stringify({ kind: 'approve', decisionId: 'd-2', approver, actionHash });
    const uiLink = `http://localhost:${uiPort}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
    const list = `PortariumWorkspace="demo" AND PortariumState="${RunState.AwaitingApproval}"`;

    console.log(
      [
        '',
        `Workflow id:  ${workflowId}`,
        `State:        ${status.state} (${status.approvalsNeeded} approval(s) needed, roles: ${status.eligibleRoles.join(', ')})`,
        `Web UI:       ${uiLink}`,
        `actionHash:   ${actionHash}`,
        '',
        profile
          ? `Approve it as bob, in any one of these ways (in a shell with the Temporal CLI profile ${profile}: the export line below):`
          : 'Approve it as bob, in any one of these ways:',
        '',
        '  # approve by signal',
        `  temporal workflow signal${conn} -w ${id} --name approve --input ${sq(signalInput)}`,
        '',
        '  # or decide by update (waits for the outcome)',
        `  temporal workflow update execute${conn} -w ${id} --name decide --input ${sq(decideInput)}`,
        '',
        '  # or the same via the portarium CLI',
        `  npx portarium decide ${id} approve --approver bob --roles approver --action-hash ${actionHash}${portariumConn}`,
        '',
        profile
          ? 'Then inspect it (the profile sends payloads and failures through the codec server, so they read as JSON):'
          : 'Then inspect it (payloads are encrypted: the temporal lines print ciphertext without the codec server\'s\n' +
            'Temporal CLI profile, see docs/encryption.md; `npx portarium run status` always reads them):',
        '',
        '  # query status',
        `  temporal workflow query${conn} -w ${id} --type status`,
        '',
        '  # list runs awaiting approval',
        `  temporal workflow list${conn} --query ${sq(list)}`,
        '',
      ].join('\n'),
    );
  } finally {
    await client.close();
  }
}

main().catch((err) => {
  console.error(`demo failed: ${describeError(err)}`);
  process.exitCode = 1;
});
