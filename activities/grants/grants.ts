/**
 * The grant activities. `grantRuleView` (called by the registry when a grant is added) reads the
 * worker's policy for one rule; `findStandingGrants` and `useStandingGrants` (called by a run) read
 * the workspace's registry and take uses from it by update, which the registry answers one at a time.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { executeUpdateAgain } from '../update-again';
import type { LoadedPolicies } from '../policy/load';
import { type GrantSubject, grantScopeMiss, grantTerms } from '../../policies/grant-scope';
import { normalizePrincipalId } from '../../workflows/run/signatures';
import { grantRegistryId } from '../../workflows/ids';
import { grantsQuery, useGrantsUpdate } from '../../workflows/grants/messages';
import type { Grant, GrantRuleView, UseGrantsRequest, UseGrantsResult } from '../../workflows/grants/types';

/** Grants offered to one run at most (the run counts at most its quorum of them). */
const MAX_OFFERED = 50;

export function createGrantActivities(policies: LoadedPolicies) {
  return {
    async grantRuleView({ workspaceId, ruleId }: { workspaceId: string; ruleId: string }): Promise<GrantRuleView> {
      const s = policies.snapshotFor(workspaceId);
      const rule = s.workspaceKnown ? s.rules.find((r) => r.id === ruleId) : undefined;
      const grants = rule?.approval?.grants;
      return {
        ...(grants && rule && { terms: grantTerms(rule.id, grants) }),
        signed: rule?.approval?.signed === true,
        approverKeys: { ...(s.defaults.approverKeys ?? {}) },
        approverRoles: { ...(s.defaults.approverRoles ?? {}) },
      };
    },

    /**
     * Usable grants for one rule of the workspace; none when it never had a registry. With the run's
     * action and requester, the grants whose patterns cover it and that are not the requester's come
     * first, so grants for other targets never crowd out one that applies (the others are offered
     * while there is room, for the run's evidence to say why they did not apply).
     */
    async findStandingGrants({ workspaceId, ruleId, action, requesterId }: { workspaceId: string; ruleId: string; action?: GrantSubject['action']; requesterId?: string }): Promise<Grant[]> {
      try {
        const view = await Context.current().client.workflow.getHandle(grantRegistryId(workspaceId)).query(grantsQuery);
        const applies = (g: Grant) =>
          (!action || grantScopeMiss({ runtime: g.scope.runtime, target: g.scope.target, operation: g.scope.operation }, { workspace: workspaceId, action, requester: { id: '', roles: [] } }) === undefined) &&
          (requesterId === undefined || normalizePrincipalId(g.grantor.id) !== normalizePrincipalId(requesterId));
        const rule = view.active.filter((g) => g.ruleId === ruleId);
        return [...rule.filter(applies), ...rule.filter((g) => !applies(g))].slice(0, MAX_OFFERED);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return [];
        throw err;
      }
    },

    async useStandingGrants({ workspaceId, ...req }: UseGrantsRequest & { workspaceId: string }): Promise<UseGrantsResult> {
      return executeUpdateAgain(Context.current().client.workflow.getHandle(grantRegistryId(workspaceId)), useGrantsUpdate, { args: [req] });
    },
  };
}

export type GrantActivities = ReturnType<typeof createGrantActivities>;
