#!/usr/bin/env node
/**
 * Example approval bot: finds runs of one workspace awaiting approval, and approves those its rule
 * covers (its roles are eligible, the target and operation are on its allow-lists), by the `decide`
 * update. Everything else it leaves to people. Its decision ids are derived from the run and the
 * action hash, so a bot that restarts never approves twice. Where the policy requires signed
 * decisions it signs with its Ed25519 key (`--key`, registered in `defaults.approverKeys`).
 *
 *   node dist/workers/examples/approval-bot.js --workspace demo --id bot-1 --roles approver \
 *     --allow-operation write --allow-target-prefix demo/ [--key bot-1.key] [--once] [--interval 5]
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { PortariumClient } from '../client';
import { loadConfig } from '../config';
import { signDecision } from '../../workflows/run/signatures';
import type { Principal, RunStatus } from '../../workflows/types';

const QUERY_TIMEOUT_MS = 5_000;

export interface BotRule {
  workspaceId: string;
  bot: Principal;
  allowOperations: string[];
  allowTargetPrefixes: string[];
  /** The bot's Ed25519 private key (64 hex digits), for runs whose policy requires signed decisions. */
  privateKey?: string;
}

/** Why the bot will not approve this run, or undefined when its rule covers it. */
function whyNot(rule: BotRule, s: RunStatus): string | undefined {
  if (s.state !== 'AwaitingApproval') return `state is ${s.state}`;
  if (!rule.bot.roles.some((r) => s.eligibleRoles.includes(r))) return 'bot roles not eligible';
  if (!rule.allowOperations.includes(s.action.operation)) return `operation ${s.action.operation} not allowed`;
  if (!rule.allowTargetPrefixes.some((p) => s.action.target.startsWith(p))) return `target ${s.action.target} not allowed`;
  if (s.approvals.some((a) => a.approverId === rule.bot.id)) return 'already approved';
  if (s.signedDecisions && !rule.privateKey) return 'signed decisions required and the bot has no --key';
  return undefined;
}

/** One pass over the workspace's waiting runs; returns the ids it approved. */
export async function approveCoveredRuns(portarium: PortariumClient, rule: BotRule, log = console.log): Promise<string[]> {
  const approved: string[] = [];
  // listRuns reads no memos: a run this bot cannot decode is skipped below, not the end of the pass.
  for (const wf of await portarium.listRuns({ workspace: rule.workspaceId, state: 'AwaitingApproval', limit: 10_000 })) {
    const run = portarium.run(wf.workflowId);
    // A run whose workers are gone cannot answer; skip it rather than stall the whole pass.
    const status = await portarium.client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => run.status()).catch((err: Error) => err);
    if (status instanceof Error) {
      log(`skip ${wf.workflowId}: status unavailable (${status.message})`);
      continue;
    }
    const reason = whyNot(rule, status);
    if (reason) {
      log(`skip ${wf.workflowId}: ${reason}`);
      continue;
    }
    const decisionId = `${rule.bot.id}:${wf.workflowId}:${status.actionHash.slice(0, 16)}`;
    const signed = status.signedDecisions && rule.privateKey ? sign(rule, wf.workflowId, status.firstExecutionRunId, status.actionHash, decisionId) : {};
    await run.decide({ kind: 'approve', decisionId, approver: rule.bot, actionHash: status.actionHash, rationale: 'covered by bot rule', ...signed });
    log(`approved ${wf.workflowId} (${status.action.operation} ${status.action.target})`);
    approved.push(wf.workflowId);
  }
  return approved;
}

/** v2 (bound to the first execution) when the run reports it; v1 for runs started before. */
function sign(rule: BotRule, workflowId: string, firstExecutionRunId: string | undefined, actionHash: string, decisionId: string): { signature: string; signedAt: string } {
  const signedAt = new Date().toISOString();
  const signature = signDecision({ workflowId, ...(firstExecutionRunId && { firstExecutionRunId }), actionHash, kind: 'approve', decisionId, approverId: rule.bot.id, signedAt }, rule.privateKey!);
  return { signature, signedAt };
}

/** The key file as `portarium decision keygen` writes it: 64 hex digits. */
function readBotKey(file: string): string {
  const key = fs.readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-fA-F]{64}$/.test(key)) throw new Error(`--key ${file}: expected 64 hex digits (portarium decision keygen)`);
  return key.toLowerCase();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workspace: { type: 'string' },
      id: { type: 'string', default: 'approval-bot' },
      roles: { type: 'string', default: 'approver' },
      'allow-operation': { type: 'string', multiple: true, default: [] },
      'allow-target-prefix': { type: 'string', multiple: true, default: [] },
      key: { type: 'string' },
      interval: { type: 'string', default: '5' },
      once: { type: 'boolean', default: false },
    },
  });
  if (!values.workspace) throw new Error('--workspace is required');
  const rule: BotRule = {
    workspaceId: values.workspace,
    bot: { id: values.id, roles: values.roles.split(',') },
    allowOperations: values['allow-operation'],
    allowTargetPrefixes: values['allow-target-prefix'],
    ...(values.key && { privateKey: readBotKey(values.key) }),
  };
  const portarium = await PortariumClient.connect(loadConfig());
  let stopping = false;
  process.once('SIGINT', () => (stopping = true));
  process.once('SIGTERM', () => (stopping = true));
  do {
    await approveCoveredRuns(portarium, rule);
    if (!values.once) await new Promise((r) => setTimeout(r, Number(values.interval) * 1000));
  } while (!values.once && !stopping);
  await portarium.close();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`approval bot failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
