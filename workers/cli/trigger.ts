/**
 * `portarium trigger`: start the governed run for one CloudEvent, structured (`--file`) or binary
 * (`--header` / `--headers-file` with `--data` and `--content-type`), routed by the policy files'
 * `triggers`. Invalid events exit 2 naming the attribute; unrouted or ambiguous events exit 3.
 */
import * as fs from 'node:fs';
import { PolicyLoadError, loadPolicyDir } from '../../activities/policy/load';
import { type HttpMessage } from '../cloudevents';
import { HELP } from './format';
import { type Command, type Ctx, UsageError, flag, str, strings } from './kit';
import { routeCloudEvent, startFromCloudEvent } from '../triggers';

function readInput(flagName: string, file: string): Buffer {
  try {
    return fs.readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    throw new UsageError(`--${flagName} ${file}: ${(err as Error).message}`);
  }
}

/** `Name: value` lines; blank lines and `#` comments skipped. */
function parseHeaderLines(lines: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i <= 0) throw new UsageError(`${what}: expected 'name: value', got ${JSON.stringify(line)}`);
    out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return out;
}

function messageFrom(ctx: Ctx): HttpMessage {
  const v = ctx.values;
  const file = str(v, 'file');
  const headerFlags = (v.header as unknown as string[] | undefined) ?? [];
  const binary = headerFlags.length > 0 || str(v, 'headers-file') !== undefined;
  if (file !== undefined) {
    if (binary || str(v, 'data') !== undefined || str(v, 'content-type') !== undefined) {
      throw new UsageError('--file holds a whole structured event; drop --header, --headers-file, --data and --content-type');
    }
    return { headers: { 'content-type': 'application/cloudevents+json' }, body: readInput('file', file).toString('utf8') };
  }
  if (!binary) throw new UsageError('give --file EVENT.json (structured) or --header \'ce-...: value\' / --headers-file (binary)');
  const fromFile = str(v, 'headers-file') === undefined ? {} : parseHeaderLines(readInput('headers-file', str(v, 'headers-file')!).toString('utf8').split(/\r?\n/), '--headers-file');
  const headers = { ...fromFile, ...parseHeaderLines(headerFlags, '--header') };
  if (str(v, 'content-type') !== undefined) headers['content-type'] = str(v, 'content-type')!;
  const data = str(v, 'data');
  return { headers, ...(data !== undefined && { body: new Uint8Array(readInput('data', data)) }) };
}

async function trigger(ctx: Ctx): Promise<number> {
  const message = messageFrom(ctx);
  const dir = str(ctx.values, 'policies') ?? ctx.config().policyDir;
  let policies;
  try {
    policies = loadPolicyDir(dir);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    for (const p of err.problems) ctx.io.err(`${p.file}: ${p.path}: ${p.message}`);
    return 1;
  }
  if (ctx.values['dry-run']) {
    const routed = routeCloudEvent(policies, message);
    ctx.io.out(`route: ${routed.route.workspaceId}/${routed.route.triggerId}`);
    ctx.io.out(JSON.stringify(routed.input, null, 2));
    return 0;
  }
  const started = await startFromCloudEvent(await ctx.client(), policies, message);
  ctx.io.out(`workflowId: ${started.workflowId}`);
  ctx.io.out(`existing: ${started.existing ? 'yes (this event, same source and id, started it before)' : 'no'}`);
  ctx.io.out(`route: ${started.route.workspaceId}/${started.route.triggerId}`);
  return 0;
}

export const TRIGGER_COMMANDS: readonly Command[] = [
  { ...HELP.trigger, run: trigger, arity: [0, 0],
    options: { ...strings('file', 'headers-file', 'data', 'content-type', 'policies'), header: { type: 'string', multiple: true }, ...flag('dry-run') } },
];
