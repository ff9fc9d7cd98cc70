/** Standing-approval test fixtures: a policy folder whose workspaces accept grants, and grant builders. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { GrantRequest } from '../../workflows/grants/types';
import type { Principal } from '../../workflows/types';
import { publicKeyFromPrivate } from '../../workflows/run/signatures';
import { TEST_POLICY_DIR, uid } from './harness';

/** Private keys of the signed workspace's approvers (tests only). */
export const GRANT_KEYS = { dora: '77'.repeat(32), erin: '88'.repeat(32) };
export const dora: Principal = { id: 'dora', roles: ['approver'] };
export const erin: Principal = { id: 'erin', roles: ['finance'] };
export const mallory: Principal = { id: 'mallory', roles: ['dev'] };

const GRANTS = { grantors: { roles: ['approver', 'finance'] }, maxUses: 5, maxValidity: '7d' };
const RULES = [
  // One approval, grants accepted from approvers and finance.
  { id: 'deploy-granted', match: { runtime: 'echo', operation: 'deploy' }, tier: 'HumanApprove', approval: { quorum: 1, eligibleRoles: ['approver', 'finance'], grants: GRANTS } },
  // Two approvers, one of them finance: a grant is one approval of one person, with that person's roles.
  { id: 'pay-granted', match: { runtime: 'echo', operation: 'pay' }, tier: 'HumanApprove', approval: { quorum: 2, eligibleRoles: ['approver', 'finance'], requiredRoles: ['finance'], grants: GRANTS } },
  // The default: no grants.
  { id: 'write-plain', match: { runtime: 'echo', operation: 'write' }, tier: 'HumanApprove', approval: { quorum: 1, eligibleRoles: ['approver', 'finance'] } },
  { id: 'signed-granted', match: { runtime: 'echo', operation: 'signed' }, tier: 'HumanApprove', approval: { quorum: 1, eligibleRoles: ['approver', 'finance'], signed: true, grants: GRANTS } },
];

/**
 * Test policies plus workspaces `<prefix>1`..`<prefix>9` (grants) and `<prefix>s` (the same, with
 * registered approver keys). One prefix per suite: a registry stays on the queue of the suite that
 * started it.
 */
export function grantPolicyDir(prefix = 'gr'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-grants-'));
  for (const f of fs.readdirSync(TEST_POLICY_DIR)) fs.copyFileSync(path.join(TEST_POLICY_DIR, f), path.join(dir, f));
  const keys = { approverKeys: { dora: publicKeyFromPrivate(GRANT_KEYS.dora), erin: publicKeyFromPrivate(GRANT_KEYS.erin) }, approverRoles: { dora: ['approver'], erin: ['finance'] } };
  const plain = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => [`${prefix}${n}`, {}] as const);
  for (const [workspace, defaults] of [...plain, [`${prefix}s`, keys] as const]) {
    fs.writeFileSync(path.join(dir, `${workspace}.json`), JSON.stringify({ schemaVersion: 1, kind: 'workspace', workspace, rules: RULES, defaults }));
  }
  return dir;
}

export function grantOf(grantor: Principal, extra: Partial<GrantRequest> = {}): GrantRequest {
  return {
    ruleId: 'deploy-granted',
    grantor,
    scope: { runtime: 'echo', target: 'test/*' },
    maxUses: 3,
    expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    reason: 'nightly deploys of the test service',
    requestId: uid('req'),
    ...extra,
  };
}
