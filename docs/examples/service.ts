/**
 * A service starting a governed run with the client helper and reading its result: the example in
 * docs/operators.md "Services", run by CI (test/docs.test.ts). It imports the package by name, as
 * your service does (tsconfig `paths` here, package.json `exports` at run time).
 */
import { PortariumClient, loadConfig } from 'portarium-worker';

async function main(): Promise<void> {
  const portarium = await PortariumClient.connect(loadConfig());
  const { run, existing } = await portarium.startRun({
    workspaceId: 'demo',
    correlationId: 'req-8',
    requestedBy: { id: 'svc-billing', roles: ['service'] },
    action: { runtime: 'echo', target: 'demo/invoice', operation: 'read', input: { id: 8 } },
    idempotencyKey: 'invoice-8',
    reason: 'nightly reconciliation',
  });
  const status = await run.status(); // state, tier, approvals needed, deadlines
  const result = await run.result(); // { state: 'Succeeded', output, evidenceHead, ... }
  console.log(JSON.stringify({ workflowId: run.workflowId, existing, tier: status.tier, state: result.state }));
  await portarium.close();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
