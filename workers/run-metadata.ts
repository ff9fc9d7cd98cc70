/**
 * The fixed summary and details a run is started with, shown at the top of its Web UI page (and by
 * `temporal workflow describe`). Encrypted like every payload (the codec encodes user metadata), but
 * still kept to what a reviewer may see: ids, the action's runtime, target and operation, the
 * requester, and the reason with credential-looking text masked. Never the action's input. The tier
 * is not known at start: the run's current details show it (workflows/run/details.ts).
 */
import { redactText } from '../workflows/evidence-chain';
import type { GovernedRunInput } from '../workflows/types';

/** Longest static summary (one line in the UI). */
const MAX_STATIC_SUMMARY = 200;
/** Longest static details text. */
const MAX_STATIC_DETAILS = 2_000;

/** Where a run came from, when not a direct start: e.g. the CloudEvent that triggered it. */
export interface RunOrigin {
  cloudEvent?: { type: string; source: string; id: string; trigger: string };
}

const clip = (s: string, max: number) => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);
const code = (s: string) => `\`${s.replace(/[`\r\n]/g, ' ')}\``;

export function staticSummaryOf(input: GovernedRunInput): string {
  const { runtime, operation, target } = input.action;
  return clip(`${input.workspaceId}: ${runtime} ${operation} ${target}`.replace(/[\r\n]+/g, ' '), MAX_STATIC_SUMMARY);
}

export function staticDetailsOf(input: GovernedRunInput, origin: RunOrigin = {}): string {
  const { runtime, operation, target, tools } = input.action;
  const ce = origin.cloudEvent;
  const rows = [
    '| | |',
    '|---|---|',
    `| workspace | ${code(input.workspaceId)} |`,
    `| action | ${code(runtime)} ${code(operation)} on ${code(clip(target, 200))} |`,
    ...(tools?.length ? [`| tools | ${tools.slice(0, 20).map(code).join(', ')} |`] : []),
    `| requested by | ${code(input.requestedBy.id)} (${input.requestedBy.roles.slice(0, 10).join(', ')}) |`,
    `| reason | ${redactText(input.reason, 300).replace(/[|\r\n]+/g, ' ')} |`,
    `| correlation id | ${code(input.correlationId)} |`,
    ...(input.tierOverride ? [`| tier asked for | ${input.tierOverride} (only a stricter one than policy has effect) |`] : []),
    ...(ce ? [`| triggered by | CloudEvent ${code(clip(ce.type, 200))} from ${code(clip(ce.source, 200))} (id ${code(clip(ce.id, 128))}, trigger ${code(ce.trigger)}) |`] : []),
  ];
  return clip(rows.join('\n'), MAX_STATIC_DETAILS);
}
