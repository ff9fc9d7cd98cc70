/**
 * `portarium revoke add|list|lift`: emergency revocations of a runtime, a target (or `prefix*`), an
 * agent tool or a runtime version, for one workspace or all (`--workspace '*'`). Lifting needs
 * another operator than the one who revoked.
 */
import { randomUUID } from 'node:crypto';
import { HELP } from './format';
import { type Command, type Ctx, UsageError, flag, need, principal, readPrivateKey, str, strings } from './kit';
import { signRevocation } from '../../workflows/revocation/signing';
import { RevocationClient } from '../revocations';
import { check, describeIssues } from '../../workflows/schemas';
import { liftRequestSchema, revokeRequestSchema } from '../../workflows/revocation/schemas';
import type { Revocation, RevocationKind } from '../../workflows/revocation/types';
import { InvalidMessageError } from '../client';

const KINDS: readonly RevocationKind[] = ['runtime', 'target', 'tool', 'runtimeVersion'];

async function revocations(ctx: Ctx): Promise<RevocationClient> {
  const { client } = await ctx.client();
  return new RevocationClient(client, ctx.config().taskQueue, ctx.config().revocation.registryId);
}

function checked<T>(schema: Parameters<typeof check<T>>[0], value: unknown): T {
  const r = check(schema, value);
  if (!r.ok) throw new InvalidMessageError(describeIssues(r.issues), r.issues);
  return r.value;
}

/** One line per revocation: id, scope, who and when, and the lift if any. */
export function formatRevocation(r: Revocation): string {
  const s = r.scope;
  const scope = `${s.kind} ${s.value}${s.runtime ? ` (runtime ${s.runtime})` : ''} in ${s.workspaceId === '*' ? 'all workspaces' : `workspace ${s.workspaceId}`}`;
  const lifted = r.liftedAt ? `; lifted by ${r.liftedBy} at ${r.liftedAt}: ${r.liftReason}` : '';
  return `${r.id}  ${scope}; revoked by ${r.revokedBy} at ${r.revokedAt}: ${r.reason}${lifted}`;
}

async function revokeAdd(ctx: Ctx): Promise<number> {
  const v = ctx.values;
  const [scopeText, workspaceId, reason, by] = need(v, 'scope', 'workspace', 'reason', 'by');
  const colon = scopeText.indexOf(':');
  const kind = scopeText.slice(0, colon) as RevocationKind;
  if (colon < 1 || !KINDS.includes(kind)) throw new UsageError(`--scope must be KIND:VALUE with KIND one of ${KINDS.join(', ')}`);
  const runtime = str(v, 'runtime');
  let req = checked(revokeRequestSchema(), {
    scope: { workspaceId, kind, value: scopeText.slice(colon + 1), ...(runtime && { runtime }) },
    reason,
    revokedBy: principal(by, v),
    requestId: str(v, 'request-id') ?? randomUUID(),
  });
  const key = str(v, 'key');
  if (key) {
    // Signed over the checked (trimmed, normalised) request, as the registry sees it.
    const signedAt = new Date().toISOString();
    const registryId = ctx.config().revocation.registryId;
    const signature = signRevocation({ kind: 'revoke', registryId, requestId: req.requestId!, scope: req.scope, reason: req.reason, signerId: req.revokedBy.id, signedAt }, readPrivateKey(key));
    req = { ...req, signature, signedAt };
  }
  const r = await (await revocations(ctx)).revoke(req);
  ctx.io.out(v.json ? JSON.stringify(r) : `revoked ${formatRevocation(r)}`);
  return 0;
}

async function revokeList(ctx: Ctx): Promise<number> {
  const view = await (await revocations(ctx)).list();
  const shown = ctx.values.all ? [...view.active, ...view.lifted] : view.active;
  if (ctx.values.json) ctx.io.out(JSON.stringify(ctx.values.all ? view : { ...view, lifted: undefined }));
  else if (!shown.length) ctx.io.out(ctx.values.all ? 'no revocations' : 'no revocations in force');
  else for (const r of shown) ctx.io.out(formatRevocation(r));
  return 0;
}

async function revokeLift(ctx: Ctx): Promise<number> {
  const v = ctx.values;
  const [reason, by] = need(v, 'reason', 'by');
  let req = checked(liftRequestSchema(), { revocationId: ctx.args[0], reason, liftedBy: principal(by, v) });
  const key = str(v, 'key');
  if (key) {
    const signedAt = new Date().toISOString();
    const registryId = ctx.config().revocation.registryId;
    const signature = signRevocation({ kind: 'lift', registryId, revocationId: req.revocationId, reason: req.reason, signerId: req.liftedBy.id, signedAt }, readPrivateKey(key));
    req = { ...req, signature, signedAt };
  }
  const r = await (await revocations(ctx)).lift(req);
  ctx.io.out(v.json ? JSON.stringify(r) : `lifted ${formatRevocation(r)}`);
  return 0;
}

export const REVOKE_COMMANDS: readonly Command[] = [
  { ...HELP.revokeAdd, run: revokeAdd, arity: [0, 0], options: { ...strings('scope', 'workspace', 'runtime', 'reason', 'by', 'roles', 'request-id', 'key'), ...flag('json') } },
  { ...HELP.revokeList, run: revokeList, arity: [0, 0], options: { ...flag('all'), ...flag('json') } },
  { ...HELP.revokeLift, run: revokeLift, arity: [1, 1], options: { ...strings('reason', 'by', 'roles', 'key'), ...flag('json') } },
];
