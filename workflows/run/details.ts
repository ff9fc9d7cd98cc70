/**
 * What the Web UI shows of a run: its current details (Markdown, rendered on the run page) and the
 * one-line summaries of its timers and activities. Pure, and bundled into the workflow: built from
 * the same `RunStatus` the `status` query returns, so the page and the query never disagree.
 *
 * Everything here is ids, states, counts and times: no action input, no free text a requester or a
 * refused message wrote (refusals are shown as counts by type). Ids are schema-checked
 * (workflows/schemas.ts), so they are safe inside code spans and single-quoted shell words.
 */
import type { RunDeadlines, RunStatus } from '../types';

/** Longest details text handed to the SDK; the page stays readable, the payload small. */
export const MAX_DETAILS_CHARS = 8_000;
/** Longest summary of a timer or activity (the UI shows one line). */
export const MAX_SUMMARY_CHARS = 200;
/** Approvals listed one by one before the rest are only counted. */
const MAX_APPROVALS_LISTED = 10;

/** States a decision (approve, reject, requestChanges) is taken in. */
const DECIDABLE = new Set<string>(['AwaitingApproval', 'VetoWindow']);

const clip = (s: string, max: number) => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);
/** One line, bounded: what a timer or activity summary may be. */
export const oneLine = (s: string) => clip(s.replace(/[\r\n]+/g, ' '), MAX_SUMMARY_CHARS);
/** A single-quoted shell word; ids cannot hold a quote, but a quote would still be quoted right. */
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const code = (s: string) => `\`${s.replace(/`/g, "'")}\``;
const list = (xs: readonly string[]) => (xs.length ? xs.map(code).join(', ') : '(none)');

/**
 * The commands that approve this run, as a person types them: the `portarium` CLI (it signs with
 * `--key` when the rule is signed) and the Temporal CLI's signal. `YOUR-ID` and `DECISION-ID` are
 * the parts a person fills in. MAINTENANCE: workers/examples/demo.ts prints the same lines with an address.
 */
export function approveLines(workflowId: string, actionHash: string, role: string, signed: boolean): { portarium: string; temporal: string } {
  const key = signed ? ' --key YOUR-KEY-FILE' : '';
  const input = JSON.stringify({ decisionId: 'DECISION-ID', approver: { id: 'YOUR-ID', roles: [role] }, actionHash });
  return {
    portarium: `npx portarium decide ${sq(workflowId)} approve --approver YOUR-ID --roles ${role} --action-hash ${actionHash}${key}`,
    temporal: `temporal workflow signal -w ${sq(workflowId)} --name approve --input ${sq(input)}`,
  };
}

/** Refusals by type, from the bounded list the status keeps, with the run's total. */
function refusalCounts(s: RunStatus): string {
  const total = s.refusalsTotal ?? s.refusals.length;
  if (!total) return '0';
  const byType = new Map<string, number>();
  for (const r of s.refusals) byType.set(r.type, (byType.get(r.type) ?? 0) + (r.count ?? 1));
  return `${total} (latest: ${[...byType].map(([t, n]) => `${code(t)} ×${n}`).join(', ')})`;
}

function deadlineRows(d: RunDeadlines): string[] {
  const rows: [string, string | undefined][] = [
    ['veto ends', d.vetoEndsAt],
    ['escalates', d.escalatesAt],
    ['expires', d.expiresAt],
    ['quota frees', d.quotaFreesAt],
  ];
  return rows.filter(([, at]) => at).map(([what, at]) => `| ${what} | ${at} |`);
}

function approvalRows(s: RunStatus): string[] {
  if (s.tier !== 'HumanApprove' && !s.approvals.length) return [];
  const given = s.approvals.slice(0, MAX_APPROVALS_LISTED).map((a) => `${code(a.approverId)} (${a.approverRoles.join(', ')}) at ${a.at}${a.countsFrom > a.at ? `, counts from ${a.countsFrom}` : ''}`);
  if (s.approvals.length > MAX_APPROVALS_LISTED) given.push(`and ${s.approvals.length - MAX_APPROVALS_LISTED} more`);
  return [
    `| approved by | ${given.length ? given.join('; ') : '(none)'} |`,
    `| still needed | ${s.approvalsNeeded} |`,
    `| may approve | ${list(s.eligibleRoles)}${s.escalated ? ' (escalated)' : ''} |`,
    ...(s.eligibleUsers.length ? [`| or users | ${list(s.eligibleUsers)} |`] : []),
    ...(s.missingRoles.length ? [`| roles missing | ${list(s.missingRoles)} |`] : []),
  ];
}

function decideSection(workflowId: string, s: RunStatus): string[] {
  if (!DECIDABLE.has(s.state)) return [];
  const lines = approveLines(workflowId, s.actionHash, s.eligibleRoles[0] ?? 'approver', s.signedDecisions === true);
  const what = s.state === 'VetoWindow' ? 'Release it early (or `reject` to veto)' : 'Approve';
  return [
    '',
    `${what}, as a holder of an eligible role (fill in \`YOUR-ID\` and a fresh \`DECISION-ID\`):`,
    '',
    '```',
    lines.portarium,
    '```',
    '',
    ...(s.signedDecisions ? ['Decisions on this run must be signed (`npx portarium decision sign`); the signal needs `signature` and `signedAt`.', ''] : []),
    '```',
    lines.temporal,
    '```',
  ];
}

/** The run's current details, as Markdown: state, approvals, deadlines, refusals, and how to decide. */
export function runDetails(workflowId: string, s: RunStatus): string {
  const headline = `**${s.state}** · tier ${s.tier ?? '(not decided yet)'}${s.tier === 'HumanApprove' && DECIDABLE.has(s.state) ? ` · ${s.approvalsNeeded} approval(s) still needed` : ''}`;
  const text = [
    headline,
    '',
    '| | |',
    '|---|---|',
    `| action | ${code(s.action.runtime)} ${code(s.action.operation)} on ${code(s.action.target)} |`,
    `| requester | ${code(s.requestedBy)} |`,
    ...approvalRows(s),
    ...breakGlassRows(s),
    ...deadlineRows(s.deadlines),
    `| refusals | ${refusalCounts(s)} |`,
    ...(s.lastError && !s.refusals.length ? [`| last error | ${code(s.lastError.type)} |`] : []),
    `| action hash | ${code(s.actionHash)} |`,
    `| evidence | ${s.evidenceCount} entries, ${s.evidenceStored ? `${s.evidenceStored.count} stored` : 'none stored yet'} |`,
    ...decideSection(workflowId, s),
    '',
    `Full state: \`npx portarium run status ${sq(workflowId)}\``,
  ].join('\n');
  return clip(text, MAX_DETAILS_CHARS);
}

/** A break-glass release and its review (ids, states and times only; the reason is in `status`). */
function breakGlassRows(s: RunStatus): string[] {
  const b = s.breakGlass;
  if (!b) return [];
  const confirmed = b.review.reviews.filter((r) => r.verdict === 'confirm').length;
  return [`| break-glass | by ${code(b.by)} at ${b.at}; review **${b.review.state}** (${confirmed}/${b.review.needed} confirmed, due ${b.review.dueAt}) |`];
}

/** Summary of a timer the main loop waits on: which deadline ends the wait. */
export function timerSummary(what: 'veto window' | 'escalation' | 'expiry' | 'cooling-off' | 'manual completion expiry' | 'amendment expiry', at: string | undefined): string {
  return oneLine(at ? `${what} at ${at}` : what);
}
