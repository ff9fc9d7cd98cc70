/**
 * Recorded histories of released paths, replayed in CI against the current bundle. A test calls
 * `keepHistory` at the end of a path; with RECORD_HISTORIES=1 the history is (re)written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { PROJECT_ROOT } from '../../workers/config';
import { type RunHandle, decodeRunPayloads } from '../../workers/client';
import { payloadsIn } from './leak-scan';

export const HISTORY_DIR = path.join(PROJECT_ROOT, 'test', 'histories');

/**
 * Histories recorded by earlier code, before the lean path (portarium-lean-run-v1): never recorded
 * again, replayed so runs started before it keep working.
 */
export const FROZEN_PATHS = [
  'auto-succeeded',
  'assisted-window-elapsed',
  'assisted-vetoed',
  'human-approved',
  'quorum-two-of-three',
  'self-approval-refused',
  'request-changes-amended',
  'rejected',
  'manual-completed',
  'denied',
  'cancelled-while-waiting',
  'cancelled-during-dispatch',
  'dispatch-failed',
  'expired-after-escalation',
  'specialist-approved',
  'signed-approved',
  'cooling-off-elapsed',
  'freshness-renewed',
  'evidence-stored-approved',
  'events-delivered-approved',
  // Recorded before the quota protocol was authenticated (portarium-quota-auth-v1).
  'quota-waited',
  'evidence-reset-own-chain',
  'signed-v2-cancelled',
  'stale-at-dispatch-renewed',
  'quota-authenticated',
  // Lean, recorded before escalation published the roles it added (portarium-escalation-publish-v1).
  'lean-expired-after-escalation-unpublished',
  // Lean, recorded before the dispatch activity stored the outcome entry (their dispatch result has no
  // `outcome`: the run stores it with persistEvidence). Only the paths whose commands changed.
  'lean-v1-auto-succeeded',
  'lean-v1-assisted-window-elapsed',
  'lean-v1-human-approved',
  'lean-v1-quorum-two-of-three',
  'lean-v1-self-approval-refused',
  'lean-v1-request-changes-amended',
  'lean-v1-specialist-approved',
  'lean-v1-signed-approved',
  'lean-v1-cooling-off-elapsed',
  'lean-v1-freshness-renewed',
  'lean-v1-evidence-stored-approved',
  'lean-v1-events-delivered-approved',
  'lean-v1-evidence-reset-own-chain',
  'lean-v1-stale-at-dispatch-renewed',
  'lean-v1-quota-authenticated',
  'lean-v1-escalated-approved',
  'lean-v1-break-glass-reviewed',
  'lean-v1-standing-grant-approved',
  // Lean, recorded before the policy snapshot became a local activity (portarium-lean-run-v2): their
  // first workflow task schedules it as a regular activity.
  'lean-snapshot-activity-auto-succeeded',
  'lean-snapshot-activity-assisted-window-elapsed',
  'lean-snapshot-activity-assisted-vetoed',
  'lean-snapshot-activity-human-approved',
  'lean-snapshot-activity-quorum-two-of-three',
  'lean-snapshot-activity-self-approval-refused',
  'lean-snapshot-activity-request-changes-amended',
  'lean-snapshot-activity-rejected',
  'lean-snapshot-activity-manual-completed',
  'lean-snapshot-activity-denied',
  'lean-snapshot-activity-cancelled-while-waiting',
  'lean-snapshot-activity-cancelled-during-dispatch',
  'lean-snapshot-activity-dispatch-failed',
  'lean-snapshot-activity-expired-after-escalation',
  'lean-snapshot-activity-specialist-approved',
  'lean-snapshot-activity-signed-approved',
  'lean-snapshot-activity-cooling-off-elapsed',
  'lean-snapshot-activity-freshness-renewed',
  'lean-snapshot-activity-evidence-stored-approved',
  'lean-snapshot-activity-events-delivered-approved',
  'lean-snapshot-activity-evidence-reset-own-chain',
  'lean-snapshot-activity-signed-v2-cancelled',
  'lean-snapshot-activity-stale-at-dispatch-renewed',
  'lean-snapshot-activity-quota-authenticated',
  'lean-snapshot-activity-escalated-approved',
  'lean-snapshot-activity-break-glass-reviewed',
  'lean-snapshot-activity-revoked-while-waiting',
  'lean-snapshot-activity-revoked-during-dispatch',
  'lean-snapshot-activity-standing-grant-approved',
  'lean-snapshot-activity-refused-during-dispatch',
  'lean-snapshot-activity-outcome-unconfirmed',
] as const;

/** Paths the tests record now (`keepHistory`). MAINTENANCE: a new path adds its name here and records it. */
export const CURRENT_PATHS = [
  'lean-auto-succeeded',
  'lean-assisted-window-elapsed',
  'lean-assisted-vetoed',
  'lean-human-approved',
  'lean-quorum-two-of-three',
  'lean-self-approval-refused',
  'lean-request-changes-amended',
  'lean-rejected',
  'lean-manual-completed',
  'lean-denied',
  'lean-cancelled-while-waiting',
  'lean-cancelled-during-dispatch',
  'lean-dispatch-failed',
  'lean-expired-after-escalation',
  'lean-specialist-approved',
  'lean-signed-approved',
  'lean-cooling-off-elapsed',
  'lean-freshness-renewed',
  'lean-evidence-stored-approved',
  'lean-events-delivered-approved',
  'lean-evidence-reset-own-chain',
  'lean-signed-v2-cancelled',
  'lean-stale-at-dispatch-renewed',
  'lean-quota-authenticated',
  'lean-escalated-approved',
  'lean-break-glass-reviewed',
  'lean-revoked-while-waiting',
  'lean-revoked-during-dispatch',
  'lean-standing-grant-approved',
  'lean-refused-during-dispatch',
  'lean-outcome-unconfirmed',
] as const;

/** Every path whose history CI replays. */
export const RECORDED_PATHS = [...FROZEN_PATHS, ...CURRENT_PATHS] as const;
export type RecordedPath = (typeof CURRENT_PATHS)[number];

/**
 * Workflow id each history was recorded under. Replay must use it: signed decisions and the evidence
 * genesis are bound to the workflow id, so replaying under another id takes other branches.
 */
export const WORKFLOW_IDS_FILE = path.join(HISTORY_DIR, 'workflow-ids.json');

export function recordedWorkflowIds(): Record<string, string> {
  return fs.existsSync(WORKFLOW_IDS_FILE) ? JSON.parse(fs.readFileSync(WORKFLOW_IDS_FILE, 'utf8')) : {};
}

export async function keepHistory(name: RecordedPath, run: RunHandle): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  const history = await run.handle.fetchHistory();
  // Recorded decoded, so replay needs no keys (plaintext payloads decode as they are).
  for (const p of payloadsIn(history)) {
    const [decoded] = await decodeRunPayloads(run.handle.client, run.workflowId, [p]);
    p.metadata = decoded.metadata;
    p.data = decoded.data;
  }
  fs.mkdirSync(HISTORY_DIR, { recursive: true });
  fs.writeFileSync(path.join(HISTORY_DIR, `${name}.json`), historyToJSON(history) + '\n');
  const ids = { ...recordedWorkflowIds(), [name]: run.workflowId };
  const sorted = Object.fromEntries(Object.entries(ids).sort(([a], [b]) => a.localeCompare(b)));
  fs.writeFileSync(WORKFLOW_IDS_FILE, JSON.stringify(sorted, null, 2) + '\n');
}
