/** Break-glass test fixtures: policy folders with break-glass workspaces, principals and message builders. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RunHandle } from '../../workers/client';
import type { BreakGlassRequest, BreakGlassReviewRequest } from '../../workflows/break-glass/types';
import type { Principal } from '../../workflows/types';
import { TEST_POLICY_DIR, uid } from './harness';

/** Holders of the break-glass role `oncall`. */
export const ivan: Principal = { id: 'ivan', roles: ['oncall'] };
export const judy: Principal = { id: 'judy', roles: ['oncall'] };
/** A fresh break-glass holder, so per-principal counts start at zero. */
export const freshHolder = (): Principal => ({ id: uid('oncall'), roles: ['oncall'] });

const RULES = [
  // Two approvers and an hour of cooling-off: what break-glass bypasses.
  { id: 'write-quorum', match: { runtime: 'echo', operation: 'write' }, tier: 'HumanApprove', approval: { quorum: 2, eligibleRoles: ['approver', 'finance'], coolingOff: '1h' } },
  { id: 'signed-write', match: { runtime: 'echo', operation: 'signed' }, tier: 'HumanApprove', approval: { signed: true } },
  { id: 'notify-assisted', match: { runtime: 'echo', operation: 'notify' }, tier: 'Assisted', vetoWindow: '1h' },
  { id: 'wipe-manual', match: { runtime: 'echo', operation: 'wipe' }, tier: 'ManualOnly' },
  { id: 'delete-deny', match: { runtime: 'echo', operation: 'delete' }, tier: 'Deny' },
];

export interface BreakGlassSpec {
  reviewers?: number;
  reviewWithin?: string;
  perPrincipal?: { count: number; per: string };
  perWorkspace?: { count: number; per: string };
}

/** Test policies plus one workspace per entry of `workspaces`, each with the rules above and its break-glass. */
export function breakGlassPolicyDir(workspaces: Record<string, BreakGlassSpec | null>, extra: Record<string, unknown> = {}, perWorkspace: Record<string, Record<string, unknown>> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-break-glass-'));
  for (const f of fs.readdirSync(TEST_POLICY_DIR)) fs.copyFileSync(path.join(TEST_POLICY_DIR, f), path.join(dir, f));
  for (const [workspace, spec] of Object.entries(workspaces)) {
    const breakGlass = spec && {
      roles: ['oncall'],
      reviewers: spec.reviewers ?? 2,
      reviewWithin: spec.reviewWithin ?? '1h',
      rateLimit: { perPrincipal: spec.perPrincipal ?? { count: 2, per: '1h' }, perWorkspace: spec.perWorkspace ?? { count: 1000, per: '1h' } },
    };
    fs.writeFileSync(path.join(dir, `${workspace}.json`), JSON.stringify({ schemaVersion: 1, kind: 'workspace', workspace, rules: RULES, ...(breakGlass && { breakGlass }), ...extra, ...perWorkspace[workspace] }));
  }
  return dir;
}

export function release(by: Principal, actionHash: string, extra: Partial<BreakGlassRequest> = {}): BreakGlassRequest {
  return { decisionId: uid('bg'), by, reason: 'incident INC-42: customer data at risk', actionHash, ...extra };
}

export function review(reviewer: Principal, verdict: 'confirm' | 'flag' = 'confirm', extra: Partial<BreakGlassReviewRequest> = {}): BreakGlassReviewRequest {
  return { reviewId: uid('rv'), reviewer, verdict, rationale: verdict === 'confirm' ? 'checked the incident ticket' : 'no incident on record', ...extra };
}

/** Whether the run's workflow is still open (its result not given yet). */
export async function stillOpen(run: RunHandle): Promise<boolean> {
  return (await run.handle.describe()).status.name === 'RUNNING';
}
