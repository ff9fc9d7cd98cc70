/**
 * `portarium policy what-if`: what a policy change would have changed, on the workspace's recorded
 * runs (activities/policy/what-if.ts). Reads the evidence sink and the payload store; writes nothing
 * (the file sink's read takes no lock and creates nothing), and needs no Temporal server.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PolicyLoadError, loadPolicyDir } from '../../activities/policy/load';
import { NOT_RE_EVALUABLE_TEXT, type NotReEvaluable, type RecordedInput, type RecordedRun, type WhatIfReport, recordedRuns, whatIf } from '../../activities/policy/what-if';
import { FilePayloadStore } from '../../activities/payload-store';
import { DURATION_PATTERN, durationMs } from '../../policies/duration';
import { workspaceIdSchema } from '../../workflows/schemas';
import { configuredEvidenceSink } from '../evidence';
import { type Command, type Ctx, UsageError, flag, need, str, strings } from './kit';
import { HELP } from './format';

/** Well above the 256 KiB of JSON an action input may hold (workflows/schemas.ts); a bigger file is not one. */
const MAX_INPUT_FILE_BYTES = 1024 * 1024;
const SHA256 = /^[0-9a-f]{64}$/;

/** The recorded inputs of `runs`, by SHA-256, read from the payload folder (never written to). */
async function readInputs(dir: string, workspaceId: string, runs: readonly RecordedRun[]): Promise<Map<string, RecordedInput>> {
  const store = new FilePayloadStore(dir);
  const out = new Map<string, RecordedInput>();
  for (const sha256 of new Set(runs.flatMap((r) => (r.inputSha256 ? [r.inputSha256] : [])))) {
    // The hash names a file: anything but 64 hex digits (a tampered log) is never turned into a path.
    if (!SHA256.test(sha256)) {
      out.set(sha256, { ok: false, reason: 'not a payload hash' });
      continue;
    }
    try {
      // The store's own layout ({dir}/{workspace}/{sha256}): checked before the whole file is read.
      if (fs.statSync(path.join(dir, workspaceId, sha256)).size > MAX_INPUT_FILE_BYTES) {
        out.set(sha256, { ok: false, reason: 'larger than an action input can be' });
        continue;
      }
      const bytes = await store.get({ uri: `portarium-payload://${workspaceId}/${sha256}`, sha256, contentType: 'application/json', bytes: 0 });
      out.set(sha256, { ok: true, input: JSON.parse(bytes.toString('utf8')) });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const reason = e.code === 'ENOENT' ? 'not in the payload store' : e.code ? `payload store unreadable (${e.code})` : e instanceof SyntaxError ? 'not JSON' : 'does not match its hash';
      out.set(sha256, { ok: false, reason });
    }
  }
  return out;
}

function sinceDate(v: string | undefined, now: Date): Date | undefined {
  if (v === undefined) return undefined;
  if (!DURATION_PATTERN.test(v)) throw new UsageError(`--since must be a duration such as 7d, 24h or 90m, got ${v}`);
  return new Date(now.getTime() - durationMs(v));
}

const cell = (n: number) => String(n);

/** The report as an aligned table, then each change with its examples. */
export function formatWhatIf(r: WhatIfReport): string {
  const lines = [
    `workspace ${r.workspaceId}${r.since ? ` since ${r.since}` : ''}: ${r.runs.total} run(s), ${r.runs.reEvaluated} re-evaluated, ${r.runs.notReEvaluable} not re-evaluable`,
    `new policy hash ${r.policyHash}; recorded under ${Object.entries(r.recordedPolicyHashes).map(([h, n]) => `${h.slice(0, 12)}… (${n})`).join(', ') || '(none)'}`,
    '',
  ];
  const head = ['rule (recorded)', 'runs', 'now denied', 'now allowed', 'tier up', 'tier down', 'unchanged'];
  const rows = r.rules.map((x) => [x.rule, cell(x.runs), cell(x.nowDenied.count), cell(x.nowAllowed.count), cell(x.tierUp.count), cell(x.tierDown.count), cell(x.unchanged.count)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  for (const row of [head, ...rows]) lines.push(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd());
  const changes: string[] = [];
  for (const x of r.rules) {
    if (x.nowDenied.count) changes.push(`  ${x.rule}: now denied ${x.nowDenied.count}: ${x.nowDenied.examples.join(', ')}`);
    if (x.nowAllowed.count) changes.push(`  ${x.rule}: now allowed ${x.nowAllowed.count}: ${x.nowAllowed.examples.join(', ')}`);
    for (const [what, m] of [['tier up', x.tierUp], ['tier down', x.tierDown]] as const) {
      if (m.count) changes.push(`  ${x.rule}: ${what} ${Object.entries(m.moves).map(([k, n]) => `${k} ${n}`).join(', ')}: ${m.examples.join(', ')}`);
    }
  }
  lines.push('', changes.length ? 'changes:' : 'changes: none', ...changes);
  const skipped = Object.entries(r.notReEvaluable);
  if (skipped.length) {
    lines.push('not re-evaluable:', ...skipped.map(([code, o]) => {
      const details = o.details ? ` (${Object.entries(o.details).map(([d, n]) => `${d}: ${n}`).join('; ')})` : '';
      return `  ${code}: ${NOT_RE_EVALUABLE_TEXT[code as NotReEvaluable]}${details}: ${o.count}: ${o.examples.join(', ')}`;
    }));
  }
  return lines.join('\n');
}

async function policyWhatIf(ctx: Ctx): Promise<number> {
  const [dir, workspaceId] = need(ctx.values, 'policies', 'workspace');
  if (!workspaceIdSchema().safeParse(workspaceId).success) throw new UsageError(`--workspace: not a workspace id: ${workspaceId}`);
  const since = sinceDate(str(ctx.values, 'since'), new Date());
  let snapshot;
  try {
    snapshot = loadPolicyDir(dir).snapshotFor(workspaceId);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    for (const p of err.problems) ctx.io.err(`${p.file}: ${p.path}: ${p.message}`);
    return 1;
  }
  const config = ctx.config();
  const evidenceDir = str(ctx.values, 'evidence-dir');
  const sinkConfig = evidenceDir === undefined ? config : { ...config, evidence: { ...config.evidence, sink: { kind: 'file' as const, dir: path.resolve(evidenceDir) } } };
  const sinkOf = sinkConfig.evidence.sink;
  // A missing folder would read as an empty log: say so instead of reporting no runs.
  if (sinkOf.kind === 'file' && !fs.existsSync(sinkOf.dir)) {
    ctx.io.err(`error: cannot read the evidence sink: no folder ${sinkOf.dir}`);
    return 1;
  }
  const sink = configuredEvidenceSink(sinkConfig, { readOnly: true });
  let runs: RecordedRun[];
  try {
    runs = recordedRuns((await sink.readWorkspace(workspaceId)).entries);
  } catch (err) {
    ctx.io.err(`error: cannot read the evidence sink (${sinkOf.kind}): ${(err as Error).message}`);
    return 1;
  } finally {
    await sink.close();
  }
  const payloadDir = str(ctx.values, 'payload-dir') ?? path.join(config.dataDir, 'payloads');
  const report = whatIf(snapshot, runs, await readInputs(payloadDir, workspaceId, runs), { since });
  ctx.io.out(ctx.values.json ? JSON.stringify(report, null, 2) : formatWhatIf(report));
  return 0;
}

export const WHAT_IF_COMMANDS: readonly Command[] = [
  { ...HELP.policyWhatIf, run: policyWhatIf, arity: [0, 0], options: { ...strings('policies', 'workspace', 'since', 'evidence-dir', 'payload-dir'), ...flag('json') } },
];
