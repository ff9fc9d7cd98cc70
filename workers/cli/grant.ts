/**
 * `portarium grant add|list|revoke`: standing approvals. An eligible approver grants in advance up to
 * N approvals of matching actions under one rule, until an expiry; the policy decides which rules
 * accept grants and who may grant. Signed with `--key` where the rule needs signed decisions.
 */
import { randomUUID } from 'node:crypto';
import { HELP } from './format';
import { type Command, type Ctx, UsageError, flag, need, principal, readPrivateKey, str, strings } from './kit';
import { DURATION_PATTERN, durationMs } from '../../policies/duration';
import { GrantClient } from '../grants';
import { InvalidMessageError } from '../client';
import { check, describeIssues } from '../../workflows/schemas';
import { grantRequestSchema, revokeGrantRequestSchema } from '../../workflows/grants/schemas';
import { signGrant } from '../../workflows/grants/signing';
import type { Grant } from '../../workflows/grants/types';

async function grants(ctx: Ctx): Promise<GrantClient> {
  const portarium = await ctx.client();
  return new GrantClient(portarium.client, portarium.routing);
}

function checked<T>(schema: Parameters<typeof check<T>>[0], value: unknown): T {
  const r = check(schema, value);
  if (!r.ok) throw new InvalidMessageError(describeIssues(r.issues), r.issues);
  return r.value;
}

/** `--expires 7d` (from now) or an ISO-8601 time with its zone. */
function expiry(text: string, now = new Date()): string {
  if (DURATION_PATTERN.test(text)) return new Date(now.getTime() + durationMs(text)).toISOString();
  if (!Number.isNaN(Date.parse(text)) && /[zZ]|[+-]\d\d:\d\d$/.test(text)) return text;
  throw new UsageError(`--expires must be a duration such as 7d or an ISO-8601 time with its zone, got ${text}`);
}

/** One line per grant: id, who, scope, uses and expiry, and the revocation if any. */
export function formatGrant(g: Grant): string {
  const s = g.scope;
  const scope = [s.runtime && `runtime ${s.runtime}`, s.target && `target ${s.target}`, s.operation && `operation ${s.operation}`, s.when && `when (${s.when})`].filter(Boolean).join(', ') || 'every action of the rule';
  const revoked = g.revokedAt ? `; revoked by ${g.revokedBy} at ${g.revokedAt}: ${g.revokeReason}` : '';
  return `${g.id}  rule ${g.ruleId}, by ${g.grantor.id}${g.signature ? ' (signed)' : ''}: ${scope}; used ${g.uses} of ${g.maxUses}; expires ${g.expiresAt}; ${g.reason}${revoked}`;
}

async function grantAdd(ctx: Ctx): Promise<number> {
  const v = ctx.values;
  const [workspaceId, ruleId, by, uses, expires, reason] = need(v, 'workspace', 'rule', 'by', 'uses', 'expires', 'reason');
  if (!/^[1-9][0-9]{0,5}$/.test(uses)) throw new UsageError(`--uses must be a whole number from 1, got ${uses}`);
  const scope = Object.fromEntries(['runtime', 'target', 'operation'].map((k) => [k, str(v, k)]).concat([['when', str(v, 'when')]]).filter(([, x]) => x !== undefined));
  let req = checked(grantRequestSchema(), {
    ruleId,
    grantor: principal(by, v),
    scope,
    maxUses: Number(uses),
    expiresAt: expiry(expires),
    reason,
    requestId: str(v, 'request-id') ?? randomUUID(),
  });
  const key = str(v, 'key');
  if (key) {
    // Signed over the checked request, as the registry and the runs see it.
    const signedAt = new Date().toISOString();
    const signature = signGrant({ workspaceId, requestId: req.requestId!, ruleId: req.ruleId, grantorId: req.grantor.id, scope: req.scope, maxUses: req.maxUses, expiresAt: req.expiresAt, reason: req.reason, signedAt }, readPrivateKey(key));
    req = { ...req, signature, signedAt };
  }
  const g = await (await grants(ctx)).grant(workspaceId, req);
  ctx.io.out(v.json ? JSON.stringify(g) : `granted ${formatGrant(g)}`);
  return 0;
}

async function grantList(ctx: Ctx): Promise<number> {
  const [workspaceId] = need(ctx.values, 'workspace');
  const view = await (await grants(ctx)).list(workspaceId);
  const shown = ctx.values.all ? [...view.active, ...view.ended] : view.active;
  if (ctx.values.json) ctx.io.out(JSON.stringify(ctx.values.all ? view : { ...view, ended: undefined }));
  else if (!shown.length) ctx.io.out(ctx.values.all ? 'no grants' : 'no usable grants');
  else for (const g of shown) ctx.io.out(formatGrant(g));
  return 0;
}

async function grantRevoke(ctx: Ctx): Promise<number> {
  const v = ctx.values;
  const [workspaceId, by, reason] = need(v, 'workspace', 'by', 'reason');
  const req = checked(revokeGrantRequestSchema(), { grantId: ctx.args[0], revokedBy: principal(by, v), reason });
  const g = await (await grants(ctx)).revoke(workspaceId, req);
  ctx.io.out(v.json ? JSON.stringify(g) : `revoked ${formatGrant(g)}`);
  return 0;
}

export const GRANT_COMMANDS: readonly Command[] = [
  { ...HELP.grantAdd, run: grantAdd, arity: [0, 0], options: { ...strings('workspace', 'rule', 'by', 'roles', 'uses', 'expires', 'reason', 'runtime', 'target', 'operation', 'when', 'request-id', 'key'), ...flag('json') } },
  { ...HELP.grantList, run: grantList, arity: [0, 0], options: { ...strings('workspace'), ...flag('all'), ...flag('json') } },
  { ...HELP.grantRevoke, run: grantRevoke, arity: [1, 1], options: { ...strings('workspace', 'by', 'roles', 'reason'), ...flag('json') } },
];
