/**
 * Policy tooling built against the packed package (test/package.test.ts): check a policy folder and
 * evaluate a request the way a run would. Prints one JSON line. Usage: node policies.js <dir>
 */
import { checkPolicyDir, evaluatePolicy } from 'portarium-worker/policies';

const checked = checkPolicyDir(process.argv[2] ?? '.');
if (!checked.ok) {
  console.log(JSON.stringify({ ok: false, problems: checked.problems.map((p) => p.path) }));
} else {
  const { policies } = checked;
  const decide = (operation: string) =>
    evaluatePolicy(policies.snapshotFor('test'), { action: { runtime: 'echo', target: 'test/thing', operation }, requestedBy: { id: 'alice', roles: ['dev'] } });
  const write = decide('write');
  console.log(JSON.stringify({ ok: true, workspaces: policies.workspaces, write: write.tier, unknown: decide('launch-missiles').effect }));
}
