/**
 * Text output of the `portarium` CLI: usage, run status, decision outcomes and run lists.
 * Pure functions from values to text, so the wording is tested without a server.
 */
import type { ListedRun } from '../client';
import type { DecisionOutcome, RunStatus } from '../../workflows/types';

/** What usage text needs to know about a command. */
export interface CommandInfo {
  /** Command words, e.g. `run start`. */
  path: string;
  /** Arguments and options after the command words. */
  synopsis: string;
  /** One line: what the command does. */
  summary: string;
}

const ACTOR = '--by ID [--roles r1,r2]';
const ACTION = '--runtime R --target T --operation O [--input JSON] [--tools a,b]';

/** Synopsis and summary of every command. MAINTENANCE: keep in step with `COMMANDS` in workers/cli.ts. */
export const HELP = {
  runStart: { path: 'run start',
    synopsis: `--workspace W --requester ID [--roles r1,r2] ${ACTION} --reason TEXT [--idempotency-key K] [--correlation-id C] [--tier-override TIER] [--wait]\n       portarium run start --file input.json [--wait]`,
    summary: 'Start a governed run (or find the one with the same idempotency key); print its workflow id and action hash' },
  runStatus: { path: 'run status', synopsis: '<workflowId> [--json | --field PATH]',
    summary: 'Show state, tier, action hash, approvals, deadlines, reasons, refusals and last error; --field prints one value (e.g. actionHash, events.pending)' },
  runEvidence: { path: 'run evidence', synopsis: '<workflowId> [--verify]',
    summary: 'Print the evidence chain as JSON lines; --verify checks every link and hash' },
  runList: { path: 'run list', synopsis: '--workspace W [--state STATE] [--limit N (default 100)]',
    summary: 'List the runs of a workspace, optionally in one state' },
  runCancel: { path: 'run cancel', synopsis: `<workflowId> ${ACTOR} --reason TEXT`, summary: 'Withdraw a run (its requester or an operator)' },
  decide: { path: 'decide',
    synopsis: '<workflowId> <approve|reject|requestChanges> --approver ID [--roles r1,r2] --action-hash H [--rationale TEXT] [--decision-id D] [--signal]',
    summary: 'Approve, reject or request changes; prints the outcome (--signal: fire and forget)' },
  decisionSign: { path: 'decision sign',
    synopsis: '--key FILE --workflow-id ID --action-hash H --kind approve|reject|requestChanges --approver ID [--decision-id D (default random)] [--signed-at ISO (default now)]',
    summary: 'Sign a decision with an approver\'s Ed25519 key, offline; prints {decisionId, signedAt, signature} as JSON' },
  decisionKeygen: { path: 'decision keygen', synopsis: '--out FILE',
    summary: 'Write a new Ed25519 private key (hex, mode 0600, never overwrites); print the public key to register' },
  manualComplete: { path: 'manual-complete',
    synopsis: `<workflowId> ${ACTOR} --action-hash H --evidence-ref REF [--outcome Succeeded|Failed] [--notes TEXT] [--completion-id ID] [--completed-at ISO]`,
    summary: 'Report a ManualOnly run done by a person, with a reference to the proof' },
  breakGlass: { path: 'break-glass', synopsis: `<workflowId> ${ACTOR} --reason TEXT --action-hash H [--decision-id D] [--key FILE]`,
    summary: 'Release a run awaiting approval (or an Assisted veto window) now, as a holder of a break-glass role; opens the mandatory review' },
  breakGlassReview: { path: 'break-glass review', synopsis: '<workflowId> --reviewer ID [--roles r1,r2] --verdict confirm|flag --rationale TEXT [--review-id R] [--key FILE]',
    summary: 'Review a break-glass release afterwards (not the releaser, not the requester): confirm or flag it' },
  amend: { path: 'amend', synopsis: `<workflowId> ${ACTOR} ${ACTION} --reason TEXT [--amendment-id ID]`,
    summary: 'After requestChanges: the requester replaces the action; prints the new status' },
  trigger: { path: 'trigger',
    synopsis: "--file EVENT.json [--policies DIR] [--dry-run]\n       portarium trigger --header 'ce-specversion: 1.0' --header 'ce-type: T' ... [--headers-file FILE] [--data FILE|-] [--content-type CT] [--policies DIR] [--dry-run]",
    summary: 'Start the governed run a CloudEvent is routed to by the policies\' triggers; a redelivered event (same source and id) finds the same run' },
  keysCreate: { path: 'keys create', synopsis: '--workspace W|_system', summary: 'Give a workspace (or the system scope) its first payload key (keyring), once per cluster; does nothing if it has one' },
  keysRotate: { path: 'keys rotate', synopsis: '--workspace W|_system', summary: 'Give a workspace a new active payload key (keyring); old keys stay, so old runs stay readable' },
  keysList: { path: 'keys list', synopsis: '', summary: 'List the keyring\'s payload key ids and fingerprints per workspace (never the keys)' },
  codecServer: { path: 'codec-server', synopsis: '[--listen HOST:PORT (default PORTARIUM_CODEC_ADDRESS, 127.0.0.1:8888)]',
    summary: 'Serve /encode and /decode for the Web UI and CLI (needs PORTARIUM_CODEC_TOKEN or PORTARIUM_CODEC_TOKENS_FILE)' },
  revokeAdd: { path: 'revoke add',
    synopsis: "--scope runtime:R|target:T|target:PREFIX*|tool:NAME|runtimeVersion:V --workspace W|'*' [--runtime R] --reason TEXT --by ID [--roles r1,r2] [--request-id ID] [--key FILE] [--json]",
    summary: 'Revoke a runtime, target (pattern), agent tool or runtime version now, on every worker; waiting runs it covers end Revoked, running ones are cancelled' },
  grantAdd: { path: 'grant add',
    synopsis: '--workspace W --rule RULE --by ID [--roles r1,r2] --uses N --expires DURATION|ISO --reason TEXT [--runtime R] [--target T|PREFIX*] [--operation O] [--when CONDITION] [--request-id ID] [--key FILE] [--json]',
    summary: 'Grant standing approvals in advance: up to N approvals by you of matching actions under one rule, until the expiry' },
  grantList: { path: 'grant list', synopsis: '--workspace W [--all] [--json]', summary: 'List a workspace\'s usable grants with their uses (--all: and the revoked, expired or used-up ones)' },
  grantRevoke: { path: 'grant revoke', synopsis: '<grantId> --workspace W --by ID [--roles r1,r2] --reason TEXT [--json]', summary: 'Revoke a grant: no new use from now on' },
  revokeList: { path: 'revoke list', synopsis: '[--all] [--json]', summary: 'List the revocations in force (--all: and the lifted ones, with who lifted them)' },
  revokeLift: { path: 'revoke lift', synopsis: '<revocationId> --by ID [--roles r1,r2] --reason TEXT [--key FILE] [--json]',
    summary: 'Lift a revocation; needs another operator than the one who revoked' },
  policyCheck: { path: 'policy check', synopsis: '[dir (default PORTARIUM_POLICY_DIR)]', summary: 'Check a policy directory without a Temporal server' },
  policyWhatIf: { path: 'policy what-if', synopsis: '--policies DIR --workspace W [--since 7d] [--evidence-dir DIR] [--payload-dir DIR] [--json]',
    summary: 'Re-decide the workspace\'s recorded runs under other policy files: per recorded rule, runs now denied, now allowed, moved tier; reads the evidence sink, changes nothing, needs no Temporal server' },
  evidenceVerifyRun: { path: 'evidence verify run', synopsis: '<workflowId> [--workspace W [--file LOG.json] [--trusted-head STH.json]] [--public-key HEX]',
    summary: 'Verify a run\'s chain: from the workflow, or (--workspace) every execution\'s chain in the sink, its leaf and the workspace\'s signed head' },
  evidenceVerifyWorkspace: { path: 'evidence verify workspace', synopsis: '<workspace> [--file LOG.json] [--trusted-head STH.json] [--public-key HEX]',
    summary: 'Verify a workspace log: every chain, leaf and signed tree head; --trusted-head: it still extends a head you kept' },
  evidenceVerifyInclusion: { path: 'evidence verify inclusion', synopsis: '<proof.json> [--public-key HEX]', summary: 'Verify that a run head is in a signed tree' },
  evidenceVerifyConsistency: { path: 'evidence verify consistency', synopsis: '<proof.json> [--public-key HEX]', summary: 'Verify that one signed tree extends another' },
  evidenceProveRun: { path: 'evidence prove run', synopsis: '<workflowId> --workspace W [--execution RUN_ID] [--out FILE]', summary: 'Write an inclusion proof of the run\'s newest head (of its last execution, or RUN_ID\'s) in the newest signed tree' },
  evidenceProveConsistency: { path: 'evidence prove consistency', synopsis: '--workspace W --from SIZE [--to SIZE] [--out FILE]', summary: 'Write a consistency proof between two signed trees' },
  evidenceExport: { path: 'evidence export', synopsis: '--workspace W [--out FILE]', summary: 'Write a workspace log (entries, leaves, signed heads) as JSON, for offline audit' },
  evidenceHead: { path: 'evidence head', synopsis: '--workspace W [--out FILE]', summary: 'Print the newest signed tree head: keep it to detect truncation later' },
  evidenceKeygen: { path: 'evidence keygen', synopsis: '--out FILE', summary: 'Write a new Ed25519 tree-head signing key (mode 0600); print its public key' },
  evidencePublicKey: { path: 'evidence public-key', synopsis: '', summary: 'Print the public key of PORTARIUM_EVIDENCE_KEY_FILE' },
  evidenceMigrate: { path: 'evidence migrate', synopsis: '--database-url URL [--writer-role ROLE]',
    summary: 'Create the append-only PostgreSQL evidence tables; grant ROLE SELECT and INSERT only' },
} satisfies Record<string, CommandInfo>;

const CONNECTION_HELP = [
  'Connection options (every command that talks to Temporal):',
  '  --address HOST:PORT   overrides TEMPORAL_ADDRESS (default localhost:7233)',
  '  --namespace NS        overrides TEMPORAL_NAMESPACE (default default)',
  '  --task-queue QUEUE    overrides PORTARIUM_TASK_QUEUE (default portarium)',
];

// MAINTENANCE: keep in step with the exit codes returned in workers/cli.ts.
const EXIT_HELP = [
  'Exit codes:',
  '  0  done',
  '  1  failed: the run did not succeed (--wait), broken evidence chain, policy problems, server error',
  '  2  bad usage, invalid input (e.g. an invalid CloudEvent) or invalid configuration',
  '  3  refused by the run (e.g. SelfApprovalRefused, ActionHashMismatch), or no single trigger route (TriggerNotRouted, TriggerAmbiguous)',
];

/** Overview: every command with its one-line summary. */
export function usage(commands: readonly CommandInfo[]): string {
  const width = Math.max(...commands.map((c) => c.path.length)) + 2;
  return [
    'portarium: governed runs on Temporal',
    '',
    'Usage: portarium <command> [arguments] [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.path.padEnd(width)}${c.summary}`),
    `  ${'help'.padEnd(width)}Show this text; \`portarium <command> --help\` shows a command's options`,
    '',
    ...CONNECTION_HELP,
    '',
    ...EXIT_HELP,
  ].join('\n');
}

/** Usage of one command. */
export function commandUsage(c: CommandInfo): string {
  return [`Usage: portarium ${c.path} ${c.synopsis}`, '', c.summary, '', ...CONNECTION_HELP].join('\n');
}

/** A labelled block: the first value beside the label, the rest indented under it. */
function row(label: string, values: readonly string[]): string[] {
  const pad = ' '.repeat(14);
  const shown = values.length ? values : ['(none)'];
  return shown.map((v, i) => (i === 0 ? label.padEnd(14) : pad) + v);
}

function deadlines(s: RunStatus): string[] {
  return Object.entries(s.deadlines)
    .filter(([, at]) => at !== undefined)
    .map(([name, at]) => `${name} ${at}`);
}

function approvals(s: RunStatus): string[] {
  const summary = `${s.approvals.length} given, ${s.approvalsNeeded} more needed (eligible roles: ${s.eligibleRoles.join(', ') || 'none'})`;
  return [summary, ...s.approvals.map((a) => `${a.approverId} at ${a.at} (${a.grantId ? `standing approval ${a.grantId}` : `decision ${a.decisionId}`})`)];
}

/** The run's quota lease: why it waits (while queued), else where its lease stands. */
function quota(s: RunStatus): string[] {
  const q = s.quota!;
  return [q.waitingFor ?? `${q.phase} (lease ${q.leaseId})`, `coordinator ${q.coordinator}`];
}

/** Human-readable summary of the `status` query. */
export function formatStatus(workflowId: string, s: RunStatus): string {
  const { runtime, target, operation, tools } = s.action;
  return [
    ...row('workflowId', [workflowId]),
    ...row('workspace', [s.workspaceId]),
    ...row('state', [s.state]),
    ...row('tier', [s.tier ?? '(not decided yet)']),
    ...row('action', [`${runtime} ${operation} ${target}${tools?.length ? ` tools: ${tools.join(', ')}` : ''}`]),
    ...row('actionHash', [s.actionHash]),
    ...row('requestedBy', [s.requestedBy]),
    ...row('approvals', approvals(s)),
    ...row('escalated', [s.escalated ? 'yes' : 'no']),
    ...row('deadlines', deadlines(s)),
    ...(s.quota ? row('quota', quota(s)) : []),
    ...(s.revocation ? row('revocation', [`${s.revocation.revocationId} (${s.revocation.scope.kind} ${s.revocation.scope.value}) by ${s.revocation.revokedBy} at ${s.revocation.revokedAt}: ${s.revocation.effect}`, s.revocation.reason]) : []),
    ...row('reasons', s.reasons),
    ...row('refusals', s.refusals.map((r) => `${r.at} ${r.type} via ${r.via}${r.by ? ` by ${r.by}` : ''}: ${r.message}`)),
    ...row('lastError', [s.lastError ? `${s.lastError.type}: ${s.lastError.message}` : '(none)']),
    ...(s.output !== undefined ? row('output', [JSON.stringify(s.output)]) : []),
    ...row('evidence', [`${s.evidenceCount} entries, head ${s.evidenceHead}`]),
  ].join('\n');
}

/** One line for the outcome of the `decide` update. */
export function formatOutcome(o: DecisionOutcome): string {
  const counted = o.counted ? 'counted' : 'not counted (this approver had already decided)';
  return `${o.kind} ${o.decisionId}: ${counted}; state ${o.state}; ${o.approvalsNeeded} more approval(s) needed`;
}

/** Aligned table of runs, or a note that there are none. */
export function formatRunList(runs: readonly ListedRun[]): string {
  if (!runs.length) return '(no runs found)';
  const idWidth = Math.max('WORKFLOW ID'.length, ...runs.map((r) => r.workflowId.length)) + 2;
  const stateWidth = Math.max('STATE'.length, ...runs.map((r) => r.state.length)) + 2;
  const line = (id: string, state: string, started: string) => `${id.padEnd(idWidth)}${state.padEnd(stateWidth)}${started}`;
  return [line('WORKFLOW ID', 'STATE', 'STARTED'), ...runs.map((r) => line(r.workflowId, r.state, r.startTime.toISOString()))].join('\n');
}
