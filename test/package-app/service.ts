/**
 * A service built against the packed package (test/package.test.ts compiles this folder in a fresh
 * project with the tarball installed): it starts a run that needs approval, tries to approve it as its
 * requester, approves it as an approver, and prints what it saw as one JSON line. Imports only the
 * package's public entry points. Usage: node service.js <idempotency key>
 */
import { FailureType, PortariumClient, type RunHandle, type RunStatus, failureTypeOf, loadConfig } from 'portarium-worker/client';

const requester = { id: 'alice', roles: ['dev'] };
const approver = { id: 'bob', roles: ['approver'] };

/**
 * Proof that the entry is typed: were its types `any`, the directive would be unused and fail the
 * build. A start without its workspace does not compile.
 */
// @ts-expect-error workspaceId is required
const missingWorkspace: Parameters<PortariumClient['startRun']>[0] = { correlationId: 'c', requestedBy: requester, action: { runtime: 'echo', target: 't', operation: 'read', input: {} }, idempotencyKey: 'k', reason: 'r' };
void missingWorkspace;

async function awaitingApproval(run: RunHandle): Promise<RunStatus> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    // The first workflow task may not have run yet: the query then fails, and we ask again.
    const status = await run.status().catch(() => undefined);
    if (status?.state === 'AwaitingApproval') return status;
  }
  throw new Error(`${run.workflowId} never awaited approval`);
}

async function main(key: string): Promise<void> {
  const portarium = await PortariumClient.connect(loadConfig());
  try {
    const { run } = await portarium.startRun({
      workspaceId: 'test',
      correlationId: `corr-${key}`,
      requestedBy: requester,
      action: { runtime: 'echo', target: 'test/thing', operation: 'write', input: { n: 1 } },
      idempotencyKey: key,
      reason: 'package test',
    });
    const waiting = await awaitingApproval(run);
    const self = await run.decide({ kind: 'approve', decisionId: `self-${key}`, approver: requester, actionHash: waiting.actionHash }).then(
      () => 'accepted',
      (err: unknown) => failureTypeOf(err),
    );
    const outcome = await run.decide({ kind: 'approve', decisionId: `dec-${key}`, approver, actionHash: waiting.actionHash });
    const result = await run.result();
    const after = await run.status();
    console.log(JSON.stringify({
      workflowId: run.workflowId,
      waiting: { state: waiting.state, tier: waiting.tier, approvalsNeeded: waiting.approvalsNeeded },
      selfApproval: self === FailureType.SelfApprovalRefused ? 'refused' : self,
      decided: { counted: outcome.counted, approvalsNeeded: outcome.approvalsNeeded },
      result: result.state,
      status: { state: after.state, approvers: after.approvals.map((a) => a.approverId), refusals: after.refusals.map((r) => r.type) },
    }));
  } finally {
    await portarium.close();
  }
}

main(process.argv[2] ?? `pkg-${Date.now()}`).catch((err) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
