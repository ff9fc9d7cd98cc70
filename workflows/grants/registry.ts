/**
 * `grantRegistry`: one workspace's standing approvals (id `<workspace>/grants`, so its payloads are
 * the workspace's). Approvers add and revoke grants by update (`portarium grant`); runs take uses by
 * update through an activity, one update at a time, so a grant's last use goes to one run only.
 * A grant is checked against the worker's policy when added (the rule must accept grants from this
 * grantor, within its caps, signed where it needs signatures); each run checks it again under its own
 * snapshot before counting it. Durable in this workflow's history; continues as new when it grows.
 */
import { allHandlersFinished, condition, continueAsNew, log, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { GrantActivities } from '../../activities/grants/grants';
import { FailureType, refusal } from '../failures';
import { workspaceOfWorkflowId } from '../ids';
import { parsedOrRefuse as parsed } from '../schemas';
import { GrantBook, emptyGrantRegistry, grantPolicyRefusal } from './book';
import { grantUpdate, grantsPingSignal, grantsQuery, revokeGrantUpdate, useGrantsUpdate } from './messages';
import { grantRequestSchema, revokeGrantRequestSchema, useGrantsRequestSchema } from './schemas';
import type { GrantRegistryInput } from './types';

const MAX_HISTORY_EVENTS = 2_000;
/** A smaller budget (or none that is a whole number) from input is ignored: it would continue as new in a loop. */
const MIN_HISTORY_EVENTS = 20;

const { grantRuleView } = proxyActivities<GrantActivities>({
  startToCloseTimeout: '10s',
  retry: { maximumAttempts: 3 },
  summary: 'rule terms for grants',
});

const now = () => new Date();

export async function grantRegistry(input: GrantRegistryInput): Promise<void> {
  const workspaceId = workspaceOfWorkflowId(workflowInfo().workflowId);
  if (!workspaceId || input?.workspaceId !== workspaceId) {
    throw refusal(FailureType.InvalidRunInput, `a grant registry's id is <workspace>/grants and its input names that workspace (id ${workflowInfo().workflowId})`);
  }
  // State only from the registry's own continue-as-new: a hand-started one with forged state starts empty.
  const carried = workflowInfo().continuedFromExecutionRunId !== undefined ? input.state : undefined;
  const book = new GrantBook(workspaceId, carried ?? emptyGrantRegistry());

  setHandler(
    grantUpdate,
    async (raw) => {
      const req = parsed(grantRequestSchema(), raw);
      const earlier = book.earlier(req);
      if (earlier) {
        const other = GrantBook.otherRequest(earlier, req);
        if (other) throw refusal(FailureType.GrantRefused, other);
        return earlier;
      }
      const why = grantPolicyRefusal(req, workspaceId, await grantRuleView({ workspaceId, ruleId: req.ruleId }), now());
      if (why) throw refusal(why.type, why.message);
      const v = book.add(req, now());
      if (!v.ok) throw refusal(v.type, v.message);
      log.info('standing approval granted', { id: v.grant.id, rule: v.grant.ruleId, by: v.grant.grantor.id, maxUses: v.grant.maxUses, expiresAt: v.grant.expiresAt });
      return v.grant;
    },
    { validator: (raw) => void parsed(grantRequestSchema(), raw) },
  );
  setHandler(
    revokeGrantUpdate,
    (raw) => {
      const v = book.revoke(parsed(revokeGrantRequestSchema(), raw), now());
      if (!v.ok) throw refusal(v.type, v.message);
      log.info('standing approval revoked', { id: v.grant.id, by: v.grant.revokedBy });
      return v.grant;
    },
    { validator: (raw) => void parsed(revokeGrantRequestSchema(), raw) },
  );
  setHandler(useGrantsUpdate, (raw) => book.use(parsed(useGrantsRequestSchema(), raw), now()), {
    validator: (raw) => void parsed(useGrantsRequestSchema(), raw),
  });
  setHandler(grantsQuery, () => book.view(now()));
  setHandler(grantsPingSignal, () => undefined);

  await condition(() => continueDue(input));
  await condition(allHandlersFinished);
  const budget = historyBudget(input);
  return continueAsNew<typeof grantRegistry>({ schemaVersion: 1, workspaceId, state: book.state, ...(budget !== MAX_HISTORY_EVENTS && { maxHistoryEvents: budget }) });
}

function historyBudget(input: GrantRegistryInput): number {
  const n = input.maxHistoryEvents;
  return typeof n === 'number' && Number.isInteger(n) && n >= MIN_HISTORY_EVENTS ? n : MAX_HISTORY_EVENTS;
}

function continueDue(input: GrantRegistryInput): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength > historyBudget(input);
}

