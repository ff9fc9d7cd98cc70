#!/usr/bin/env node
/**
 * `portarium`: start governed runs, read their status and evidence, decide, complete, amend and
 * cancel them, check policy files, and make approver keys and signed decisions offline. Every
 * message goes through `PortariumClient`, so it is checked with the workflow's own schemas before it
 * is sent. Exit codes are listed in `usage()`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import { z } from 'zod';
import { describePool } from '../policies/isolation';
import { PolicyLoadError, loadPolicyDir } from '../activities/policy/load';
import { verifyChainNode } from '../activities/evidence/verify';
import { hashAction } from '../workflows/hashing';
import { actionHashSchema, check, governedRunInputSchema, workspaceIdSchema } from '../workflows/schemas';
import { SIGNED_KINDS, type SignedFields, type SignedKind, publicKeyFromPrivate, signDecision } from '../workflows/run/signatures';
import { DecisionKind, type GovernedAction, type GovernedRunInput, RunState, type Tier } from '../workflows/types';
import { breakGlassCommands } from './cli/break-glass';
import { HELP, commandUsage, formatOutcome, formatRunList, formatStatus, usage } from './cli/format';
import { IdempotencyConflictError, InvalidMessageError, PortariumClient, type RunHandle } from './client';
import { ConfigError, type PortariumConfig, loadConfig } from './config';
import { type CliIo, type Command, type Ctx, KeyFileError, readPrivateKey, type Options, UsageError, type Values, flag, list, need, principal, str, strings } from './cli/kit';
import { EVIDENCE_COMMANDS } from './cli/evidence';
import { TRIGGER_COMMANDS } from './cli/trigger';
import { KEY_COMMANDS } from './cli/keys';
import { WHAT_IF_COMMANDS } from './cli/what-if';
import { REVOKE_COMMANDS } from './cli/revoke';
import { GRANT_COMMANDS } from './cli/grant';
import { InvalidCloudEventError } from './cloudevents';
import { TriggerRoutingError } from './triggers';

export type { CliIo } from './cli/kit';

const COMMON: Options = { ...strings('address', 'namespace', 'task-queue'), help: { type: 'boolean', short: 'h' } };
const ACTION_FLAGS = ['runtime', 'target', 'operation', 'input', 'tools'];
const START_FLAGS = ['workspace', 'requester', 'roles', ...ACTION_FLAGS, 'reason', 'idempotency-key', 'correlation-id', 'tier-override'];
const SIGN_FLAGS = ['workflow-id', 'action-hash', 'kind', 'approver'];
// MAINTENANCE: the rule for `signedAt` in the decision schemas (workflows/schemas.ts); a zone is
// required there because a signed local time would mean different instants to signer and verifier.
const signedAtSchema = () => z.iso.datetime({ offset: true });
const SUCCESS = new Set<string>([RunState.Succeeded, RunState.ManuallyCompleted]);

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function actionFrom(v: Values): GovernedAction {
  const [runtime, target, operation] = need(v, 'runtime', 'target', 'operation');
  const input = str(v, 'input') === undefined ? {} : parseJson(str(v, 'input')!, '--input');
  const tools = str(v, 'tools') === undefined ? undefined : list(str(v, 'tools'));
  return { runtime, target, operation, input: input as GovernedAction['input'], ...(tools && { tools }) };
}

function runInputFrom(v: Values): GovernedRunInput {
  const file = str(v, 'file');
  if (file !== undefined) {
    const mixed = START_FLAGS.filter((n) => v[n] !== undefined);
    if (mixed.length) throw new UsageError(`--file holds the whole input; drop ${mixed.map((n) => `--${n}`).join(', ')}`);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`--file: ${(err as Error).message}`);
    }
    return parseJson(text, `--file ${file}`) as GovernedRunInput;
  }
  const [workspaceId, requester, reason] = need(v, 'workspace', 'requester', 'reason');
  const tierOverride = str(v, 'tier-override') as Tier | undefined;
  return {
    workspaceId,
    correlationId: str(v, 'correlation-id') ?? randomUUID(),
    requestedBy: principal(requester, v),
    action: actionFrom(v),
    idempotencyKey: str(v, 'idempotency-key') ?? randomUUID(),
    reason,
    ...(tierOverride && { tierOverride }),
  };
}

async function runStart(ctx: Ctx): Promise<number> {
  // Validated here too, so the printed hash is of the action exactly as the workflow receives it.
  const checked = check(governedRunInputSchema(), runInputFrom(ctx.values));
  if (!checked.ok) throw new InvalidMessageError('governedRun input', checked.issues);
  const started = await (await ctx.client()).startRun(checked.value);
  ctx.io.out(`workflowId: ${started.workflowId}`);
  ctx.io.out(`existing: ${started.existing ? 'yes (started before with this idempotency key)' : 'no'}`);
  ctx.io.out(`actionHash: ${hashAction(checked.value.action)}`);
  return ctx.values.wait ? waitForResult(ctx, started.run) : 0;
}

async function waitForResult(ctx: Ctx, run: RunHandle): Promise<number> {
  try {
    const result = await run.result();
    ctx.io.out(JSON.stringify(result, null, 2));
    return SUCCESS.has(result.state) ? 0 : 1;
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    ctx.io.err(`failed: ${failureText(err)}`);
    return 1;
  }
}

async function runStatus(ctx: Ctx): Promise<number> {
  const [id] = ctx.args;
  const status = await (await ctx.client()).run(id).status();
  const field = str(ctx.values, 'field');
  if (field !== undefined) {
    // For scripts: one value, e.g. HASH=$(portarium run status ID --field actionHash).
    let value: unknown = status;
    for (const key of field.split('.')) value = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    if (value === undefined) throw new UsageError(`--field ${field}: no such field in the status`);
    ctx.io.out(typeof value === 'string' ? value : JSON.stringify(value));
    return 0;
  }
  ctx.io.out(ctx.values.json ? JSON.stringify(status, null, 2) : formatStatus(id, status));
  return 0;
}

async function runEvidence(ctx: Ctx): Promise<number> {
  const [id] = ctx.args;
  const run = (await ctx.client()).run(id);
  const view = await run.evidence();
  for (const entry of view.entries) ctx.io.out(JSON.stringify(entry));
  if (!ctx.values.verify) return 0;
  const { workspaceId } = await run.status();
  const verdict = verifyChainNode(view.entries, { workspaceId, runId: id });
  if (!verdict.ok) {
    ctx.io.err(`evidence chain broken at seq ${verdict.seq}: ${verdict.reason}`);
    return 1;
  }
  if (verdict.head !== view.head) {
    ctx.io.err(`evidence chain verified, but its head ${verdict.head} is not the reported head ${view.head}`);
    return 1;
  }
  ctx.io.err(`verified: ${verdict.count} entries, head ${verdict.head}`);
  return 0;
}

async function runList(ctx: Ctx): Promise<number> {
  const [workspace] = need(ctx.values, 'workspace');
  if (!workspaceIdSchema().safeParse(workspace).success) throw new UsageError(`--workspace: not a workspace id: ${workspace}`);
  const state = str(ctx.values, 'state');
  if (state !== undefined && !Object.hasOwn(RunState, state)) throw new UsageError(`--state must be one of ${Object.keys(RunState).join(', ')}`);
  const limit = Number(str(ctx.values, 'limit') ?? 100);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive integer');
  ctx.io.out(formatRunList(await (await ctx.client()).listRuns({ workspace, state, limit })));
  return 0;
}

/**
 * `--key <file>`: sign the message (v2: bound to the run's first execution, read from its status) for
 * runs whose rule requires signatures. Without `--key`, nothing is added.
 */
async function signedBy(ctx: Ctx, id: string, kind: SignedKind, messageId: string, signerId: string, actionHash: string): Promise<{ signature?: string; signedAt?: string }> {
  const keyFile = str(ctx.values, 'key');
  if (!keyFile) return {};
  const privateKey = readPrivateKey(keyFile);
  const status = await (await ctx.client()).run(id).status();
  if (!status.firstExecutionRunId) throw new UsageError(`${id} predates bound signatures; sign with \`portarium decision sign\` (v1) instead`);
  const signedAt = new Date().toISOString();
  const fields = { workflowId: id, firstExecutionRunId: status.firstExecutionRunId, actionHash, kind, decisionId: messageId, approverId: signerId, signedAt };
  return { signature: signDecision(fields, privateKey), signedAt };
}

async function runCancel(ctx: Ctx): Promise<number> {
  const [id] = ctx.args;
  const [by, reason] = need(ctx.values, 'by', 'reason');
  const cancelId = str(ctx.values, 'cancel-id') ?? randomUUID();
  const requestedBy = principal(by, ctx.values);
  const hash = str(ctx.values, 'key') ? (await (await ctx.client()).run(id).status()).actionHash : '';
  const signed = await signedBy(ctx, id, 'cancelRun', cancelId, requestedBy.id, hash);
  await (await ctx.client()).run(id).cancel({ requestedBy, reason, cancelId, ...signed });
  ctx.io.out(`cancel sent to ${id}; a refusal shows in \`portarium run status ${id}\``);
  return 0;
}

async function decide(ctx: Ctx): Promise<number> {
  const [id, kind] = ctx.args;
  if (!Object.hasOwn(DecisionKind, kind)) throw new UsageError(`decision must be approve, reject or requestChanges, got ${kind}`);
  const [approver, actionHash] = need(ctx.values, 'approver', 'action-hash');
  const rationale = str(ctx.values, 'rationale');
  const decisionId = str(ctx.values, 'decision-id') ?? randomUUID();
  const who = principal(approver, ctx.values);
  const d = { decisionId, approver: who, actionHash, ...(rationale && { rationale }), ...(await signedBy(ctx, id, kind as SignedKind, decisionId, who.id, actionHash)) };
  const run = (await ctx.client()).run(id);
  if (ctx.values.signal) {
    await run.signalDecision(kind as DecisionKind, d);
    ctx.io.out(`${kind} ${d.decisionId} sent by signal to ${id}; a refusal shows in \`portarium run status ${id}\``);
    return 0;
  }
  ctx.io.out(formatOutcome(await run.decide({ kind: kind as DecisionKind, ...d })));
  return 0;
}

function signedFieldsFrom(v: Values): SignedFields {
  const [workflowId, actionHash, kind, approverId] = need(v, ...SIGN_FLAGS);
  const firstExecutionRunId = str(v, 'first-run-id');
  if (!(SIGNED_KINDS as readonly string[]).includes(kind)) throw new UsageError(`--kind must be one of ${SIGNED_KINDS.join(', ')}, got ${kind}`);
  if (!firstExecutionRunId && !Object.hasOwn(DecisionKind, kind)) throw new UsageError(`--kind ${kind} is signed only with --first-run-id`);
  if (!actionHashSchema().safeParse(actionHash).success) throw new UsageError('--action-hash must be the run\'s actionHash: 64 lower-case hex digits');
  const signedAt = str(v, 'signed-at') ?? new Date().toISOString();
  if (!signedAtSchema().safeParse(signedAt).success) throw new UsageError(`--signed-at must be an ISO-8601 date-time with seconds and a zone (e.g. 2025-01-02T03:04:05Z), got ${signedAt}`);
  return { workflowId, ...(firstExecutionRunId && { firstExecutionRunId }), actionHash, kind: kind as SignedKind, decisionId: str(v, 'decision-id') ?? randomUUID(), approverId, signedAt };
}


async function decisionSign(ctx: Ctx): Promise<number> {
  const [keyFile] = need(ctx.values, 'key', ...SIGN_FLAGS);
  const fields = signedFieldsFrom(ctx.values);
  const signature = signDecision(fields, readPrivateKey(keyFile));
  ctx.io.out(JSON.stringify({ decisionId: fields.decisionId, signedAt: fields.signedAt, signature }));
  return 0;
}

async function decisionKeygen(ctx: Ctx): Promise<number> {
  const [file] = need(ctx.values, 'out');
  const privateKey = randomBytes(32).toString('hex');
  try {
    // `wx`: never overwrite a key that may already be registered. 0600: only its owner can read it.
    fs.writeFileSync(file, `${privateKey}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    throw new KeyFileError(`--out ${file}: ${(err as Error).message}`);
  }
  ctx.io.out(publicKeyFromPrivate(privateKey));
  return 0;
}

async function manualComplete(ctx: Ctx): Promise<number> {
  const [id] = ctx.args;
  const v = ctx.values;
  const [by, actionHash, evidenceRef] = need(v, 'by', 'action-hash', 'evidence-ref');
  const outcome = str(v, 'outcome') as 'Succeeded' | 'Failed' | undefined;
  const notes = str(v, 'notes');
  const completionId = str(v, 'completion-id') ?? randomUUID();
  const completedAt = str(v, 'completed-at') ?? new Date().toISOString();
  const completedBy = principal(by, v);
  const signed = await signedBy(ctx, id, 'manualCompletion', completionId, completedBy.id, actionHash);
  await (await ctx.client()).run(id).completeManually({
    completionId, completedBy, completedAt, evidenceRef, actionHash, ...(outcome && { outcome }), ...(notes && { notes }), ...signed,
  });
  ctx.io.out(`manual completion ${completionId} sent to ${id}; a refusal shows in \`portarium run status ${id}\``);
  return 0;
}

async function amend(ctx: Ctx): Promise<number> {
  const [id] = ctx.args;
  const [by, reason] = need(ctx.values, 'by', 'reason');
  const amendmentId = str(ctx.values, 'amendment-id') ?? randomUUID();
  const action = actionFrom(ctx.values);
  const amendedBy = principal(by, ctx.values);
  const signed = await signedBy(ctx, id, 'amendAction', amendmentId, amendedBy.id, hashAction(action));
  const status = await (await ctx.client()).run(id).amend({ amendmentId, amendedBy, action, reason, ...signed });
  ctx.io.out(formatStatus(id, status));
  return 0;
}

async function policyCheck(ctx: Ctx): Promise<number> {
  const dir = ctx.args[0] ?? ctx.config().policyDir;
  try {
    const policies = loadPolicyDir(dir);
    const { workspaces } = policies;
    ctx.io.out(`ok: ${workspaces.length} workspace(s): ${workspaces.join(', ') || '(none)'}`);
    // Warnings do not fail the check: the rules are valid, but their outcome depends on input types.
    for (const w of policies.warnings) ctx.io.out(`warning: ${w.file}: ${w.path}: ${w.message}`);
    // Where each workspace's runs go, so operators know which workers to start (docs/isolation.md).
    for (const q of policies.routing(ctx.config().taskQueue).queues()) {
      if (q.workspaces.length) ctx.io.out(`queue ${q.queue} (${describePool(q.pool)}): ${q.workspaces.join(', ')}`);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    for (const p of err.problems) ctx.io.out(`${p.file}: ${p.path}: ${p.message}`);
    return 1;
  }
}

const COMMANDS: readonly Command[] = [
  { ...HELP.runStart, run: runStart, arity: [0, 0], options: { ...strings(...START_FLAGS, 'file'), ...flag('wait') } },
  { ...HELP.runStatus, run: runStatus, arity: [1, 1], options: { ...flag('json'), ...strings('field') } },
  { ...HELP.runEvidence, run: runEvidence, arity: [1, 1], options: flag('verify') },
  { ...HELP.runList, run: runList, arity: [0, 0], options: strings('workspace', 'state', 'limit') },
  { ...HELP.runCancel, run: runCancel, arity: [1, 1], options: strings('by', 'roles', 'reason', 'cancel-id', 'key') },
  { ...HELP.decide, run: decide, arity: [2, 2], options: { ...strings('approver', 'roles', 'action-hash', 'rationale', 'decision-id', 'key'), ...flag('signal') } },
  { ...HELP.decisionSign, run: decisionSign, arity: [0, 0], options: strings('key', ...SIGN_FLAGS, 'decision-id', 'signed-at', 'first-run-id') },
  { ...HELP.decisionKeygen, run: decisionKeygen, arity: [0, 0], options: strings('out') },
  { ...HELP.manualComplete, run: manualComplete, arity: [1, 1],
    options: strings('by', 'roles', 'action-hash', 'evidence-ref', 'outcome', 'notes', 'completion-id', 'completed-at', 'key') },
  { ...HELP.amend, run: amend, arity: [1, 1], options: strings('by', 'roles', ...ACTION_FLAGS, 'reason', 'amendment-id', 'key') },
  { ...HELP.policyCheck, run: policyCheck, arity: [0, 1], options: {} },
  ...WHAT_IF_COMMANDS,
  ...breakGlassCommands(signedBy),
  ...TRIGGER_COMMANDS,
  ...EVIDENCE_COMMANDS,
  ...KEY_COMMANDS,
  ...REVOKE_COMMANDS,
  ...GRANT_COMMANDS,
];

function findCommand(argv: string[]): { command: Command; rest: string[] } | undefined {
  for (const command of COMMANDS) {
    const words = command.path.split(' ');
    if (words.every((w, i) => argv[i] === w)) return { command, rest: argv.slice(words.length) };
  }
  return undefined;
}

function parseFor(command: Command, rest: string[]): { values: Values; args: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...COMMON, ...command.options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = parsed.values as Values;
  const [min, max] = command.arity;
  const n = parsed.positionals.length;
  if (!values.help && (n < min || n > max)) {
    throw new UsageError(n < min ? 'missing arguments' : `unexpected argument ${parsed.positionals[max]}`);
  }
  return { values, args: parsed.positionals };
}

function configFrom(env: NodeJS.ProcessEnv, v: Values): PortariumConfig {
  const base = loadConfig(env);
  const address = str(v, 'address') ?? base.temporal.address;
  const namespace = str(v, 'namespace') ?? base.temporal.namespace;
  // Overrides replace the whole `temporal` object, so keep its TLS and API key settings.
  return loadConfig(env, { temporal: { ...base.temporal, address, namespace }, taskQueue: str(v, 'task-queue') ?? base.taskQueue });
}

/** The ApplicationFailure behind a client error (update or workflow failure), if any. */
function failureOf(err: unknown): ApplicationFailure | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof ApplicationFailure) return e;
  return undefined;
}

/**
 * `Type: message` of the run's own failure behind a client error, decoded by the client's data
 * converter (never the plaintext `Encoded failure` left in history, nor the SDK's wrapper text).
 */
function failureText(err: Error): string {
  const app = failureOf(err);
  if (app) return `${app.type ?? 'unknown'}: ${app.message}`;
  for (let e: unknown = err.cause; e instanceof Error; e = e.cause) if (e instanceof TemporalFailure) return `${e.name}: ${e.message}`;
  return `unknown: ${err.message}`;
}

async function connect(config: PortariumConfig): Promise<PortariumClient> {
  try {
    return await PortariumClient.connect(config);
  } catch (err) {
    const { address, namespace } = config.temporal;
    throw new Error(`cannot reach Temporal at ${address} (namespace ${namespace}): ${(err as Error).message}`);
  }
}

function report(err: unknown, io: CliIo, command: Command | undefined): number {
  if (err instanceof UsageError) {
    io.err(`${err.message}\n\n${command ? commandUsage(command) : usage(COMMANDS)}`);
    return 2;
  }
  if (err instanceof InvalidMessageError || err instanceof ConfigError || err instanceof IdempotencyConflictError || err instanceof KeyFileError) {
    io.err(err.message);
    return 2;
  }
  if (err instanceof InvalidCloudEventError) {
    io.err(err.message);
    return 2;
  }
  if (err instanceof TriggerRoutingError) {
    io.err(`refused: ${err.message}`);
    return 3;
  }
  // E.g. `run status` of a run that failed before it could answer queries (InvalidRunInput).
  if (err instanceof WorkflowFailedError) {
    io.err(`failed: ${failureText(err)}`);
    return 1;
  }
  const refusal = err instanceof WorkflowUpdateFailedError ? failureOf(err) : undefined;
  if (refusal) {
    io.err(`refused: ${refusal.type}: ${refusal.message}`);
    return 3;
  }
  io.err(`${err instanceof WorkflowNotFoundError ? 'not found' : 'error'}: ${err instanceof Error ? err.message : String(err)}`);
  return 1;
}

/** Run the CLI on `argv` (without `node` and the script) and return the exit code. */
export async function main(argv: string[], io: CliIo = { out: (t) => console.log(t), err: (t) => console.error(t) }): Promise<number> {
  let command: Command | undefined;
  let client: PortariumClient | undefined;
  try {
    if (!argv.length || ['help', '--help', '-h'].includes(argv[0])) {
      io.out(usage(COMMANDS));
      return 0;
    }
    const found = findCommand(argv);
    if (!found) throw new UsageError(`unknown command: ${argv.slice(0, 2).join(' ')}`);
    command = found.command;
    const { values, args } = parseFor(command, found.rest);
    if (values.help) {
      io.out(commandUsage(command));
      return 0;
    }
    let config: PortariumConfig | undefined;
    const ctx: Ctx = { io, values, args, config: () => (config ??= configFrom(io.env ?? process.env, values)),
      client: async () => (client ??= await connect(ctx.config())) };
    return await command.run(ctx);
  } catch (err) {
    return report(err, io, command);
  } finally {
    await client?.close();
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
