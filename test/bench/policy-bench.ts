/**
 * Policy evaluation cost per decision at 10, 100 and 1,000 rules, with realistic rules (a quarter
 * carry a `when` condition), for a request that matches a couple of them.
 */
import { evaluatePolicy, type PolicyRequest } from '../../policies/evaluate';
import type { PolicySnapshot, Rule } from '../../policies/schema';

const OPERATIONS = ['read', 'write', 'delete', 'deploy', 'transfer', 'notify', 'rotate', 'query'];

function rules(n: number): Rule[] {
  return Array.from({ length: n }, (_, i): Rule => ({
    id: `rule-${i}`,
    match: { runtime: i % 3 ? 'activepieces' : 'echo', operation: OPERATIONS[i % OPERATIONS.length], target: `team-${i % 50}/*` },
    when: i % 4 === 0 ? `action.input.amount > ${i} && 'finance' in requester.roles` : undefined,
    tier: (['Auto', 'Assisted', 'HumanApprove', 'ManualOnly'] as const)[i % 4],
  }));
}

function snapshotOf(n: number): PolicySnapshot {
  return {
    policyHash: 'bench',
    workspaceId: 'bench',
    workspaceKnown: true,
    defaults: {
      approval: { quorum: 1, eligibleRoles: ['approver'], expiresAfter: '24h', escalation: [] },
      vetoWindow: '15m',
      manualExpiresAfter: '7d',
      operatorRoles: ['operator'],
    },
    rules: rules(n),
  };
}

const request: PolicyRequest = {
  action: { runtime: 'echo', target: 'team-0/ledger', operation: 'read', input: { amount: 5000 } },
  requestedBy: { id: 'alice', roles: ['finance'] },
};

/** Median microseconds per evaluation. */
export function policyEvalMicros(n: number, iterations = Math.max(200, Math.floor(200_000 / n))): number {
  const snap = snapshotOf(n);
  const samples: number[] = [];
  for (let round = 0; round < 7; round++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) evaluatePolicy(snap, request);
    samples.push(((performance.now() - t0) * 1000) / iterations);
  }
  return samples.sort((a, b) => a - b)[3];
}
