/**
 * A governed run's side of standing approvals: when it starts waiting for approvals under a rule that
 * accepts grants, it asks the workspace's grant registry for the rule's usable grants, chooses the
 * ones it may count (choose.ts), takes one use of each (one update: the registry serialises them, so
 * a last use goes to one run only), and counts each as an approval of its grantor, judged as any
 * approval. A use it could not count after all (the run moved on meanwhile) stays spent. A registry
 * that does not answer changes nothing: the run waits for approvals by hand (stricter, never looser).
 */
import { isCancellation, proxyActivities } from '@temporalio/workflow';
import type { GrantActivities } from '../../activities/grants/grants';
import { EvidenceCategory, type EvidenceActor } from '../evidence-chain';
import { hashAction } from '../hashing';
import type { GovernedRunState } from '../run/state';
import { RunState } from '../types';
import { chooseGrants } from './choose';
import type { Grant } from './types';

/** Runs recorded before standing approvals never asked for grants; only rules that accept them ask. */
export const STANDING_GRANTS_PATCH = 'portarium-standing-grants-v1';

const { findStandingGrants, useStandingGrants } = proxyActivities<GrantActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', maximumAttempts: 3 },
  summary: 'standing approvals',
});

const SYSTEM: EvidenceActor = { kind: 'System', id: 'portarium' };
const MAX_LISTED = 5;
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 300);

export async function applyStandingGrants(run: GovernedRunState, now: () => Date): Promise<void> {
  const terms = run.policy?.grants;
  if (!terms || run.state !== RunState.AwaitingApproval) return;
  const workspaceId = run.input.workspaceId;
  let offered: Grant[];
  try {
    const { runtime, target, operation } = run.action;
    offered = await findStandingGrants({ workspaceId, ruleId: terms.ruleId, action: { runtime, target, operation }, requesterId: run.requesterId });
  } catch (err) {
    if (isCancellation(err)) throw err;
    run.record(EvidenceCategory.Approval, 'StandingGrantsUnavailable', SYSTEM, 'the grant registry did not answer: waiting for approvals by hand', now(), { error: errorText(err) });
    return;
  }
  if (!offered.length) return;
  const policy = run.policy!;
  const choice = chooseGrants(offered, {
    terms,
    subject: { workspace: workspaceId, action: run.action, requester: { id: run.requesterId, roles: run.input.requestedBy.roles } },
    requesterId: run.requesterId,
    approvedBy: run.book.approvals.map((a) => a.approverId),
    eligibleRoles: run.eligibleRoles,
    eligibleUsers: policy.eligibleUsers,
    ...(policy.signed && { signed: { keys: policy.approverKeys, rolesOf: (id: string) => run.registeredRoles(id) } }),
    dutyConflict: (id) => run.dutyConflict(id, 'approver'),
    needed: run.approvalsNeeded(now()),
    missingRoles: run.missingRoles(now()),
    now: now(),
  });
  if (choice.skipped.length) {
    run.record(EvidenceCategory.Approval, 'StandingGrantsSkipped', SYSTEM, `${choice.skipped.length} grant(s) of rule ${terms.ruleId} do not apply to this run`, now(), {
      skipped: choice.skipped.slice(0, MAX_LISTED).map((s) => ({ grantId: s.grantId, why: s.why.slice(0, 300) })),
    });
  }
  if (!choice.picks.length) return;
  // One use per grant per action: an amended action is a new approval, so it takes (and names) a use
  // of its own. The first action keeps the plain key and decision id (recorded runs hash as stored).
  const amended = run.actionHash !== hashAction(run.input.action) ? `#${run.actionHash.slice(0, 16)}` : '';
  const useKey = `${run.workflowId} ${run.firstExecutionRunId ?? ''}${amended}`;
  let taken;
  try {
    taken = (await useStandingGrants({ workspaceId, useKey, take: choice.picks.map((g) => g.id) })).taken;
  } catch (err) {
    if (isCancellation(err)) throw err;
    run.record(EvidenceCategory.Approval, 'StandingGrantsUnavailable', SYSTEM, 'the grant registry did not answer: waiting for approvals by hand', now(), { error: errorText(err) });
    return;
  }
  for (const t of taken) {
    if (!t.ok) {
      run.record(EvidenceCategory.Approval, 'StandingGrantNotUsed', SYSTEM, `grant ${t.grantId} was not used: ${t.message.slice(0, 300)}`, now(), { grantId: t.grantId, type: t.type });
      continue;
    }
    const g = t.grant;
    // Judged again as the run is now: it may have moved on (or the grantor approved by hand) meanwhile.
    // A use taken and not counted stays taken: the registry cannot tell a run's give-back from a forged one.
    const decisionId = `grant#${g.id}${amended}`;
    const verdict = run.state === RunState.AwaitingApproval
      ? run.applyDecision('approve', { decisionId, approver: { id: g.grantor.id, roles: g.grantor.roles }, actionHash: run.actionHash, ...(g.signature && { signature: g.signature, signedAt: g.signedAt }) }, 'grant', now(), g.id)
      : undefined;
    if (!verdict?.ok || !verdict.counted) {
      run.record(EvidenceCategory.Approval, 'StandingGrantNotUsed', SYSTEM, `a use of grant ${g.id} was taken but not counted: the run had moved on or ${g.grantor.id} had approved already`, now(), { grantId: g.id, type: 'NotCounted' });
    }
  }
}
