/**
 * Finds secret values in what a run leaves behind: its full history as the server stores it (every
 * payload decoded), its `status` and `evidence`, and the log entries this process captured.
 */
import type { Client } from '@temporalio/client';
import { capturedLogs } from './shared';

/** All text in a value: strings as they are, byte arrays (payload data) decoded as UTF-8. */
function collectText(value: unknown, out: string[], seen = new Set<unknown>()): void {
  if (value === null || value === undefined) return;
  if (typeof value === 'string') return void out.push(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return void out.push(String(value));
  if (value instanceof Uint8Array) {
    out.push(Buffer.from(value).toString('utf8'));
    return;
  }
  if (typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  for (const v of Array.isArray(value) ? value : Object.values(value as object)) collectText(v, out, seen);
}

export interface LeakReport {
  /** Where each leaked value was found. */
  found: { value: string; where: string }[];
  /** How many history events were scanned (so a test can assert the scan saw something). */
  historyEvents: number;
}

export async function scanRunForSecrets(client: Client, workflowId: string, secrets: string[], extra: Record<string, unknown> = {}): Promise<LeakReport> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const sources: Record<string, unknown> = { history, logs: capturedLogs, ...extra };
  const found: LeakReport['found'] = [];
  for (const [where, value] of Object.entries(sources)) {
    const texts: string[] = [];
    collectText(value, texts);
    const all = texts.join('\n');
    for (const s of secrets) if (all.includes(s)) found.push({ value: s, where });
  }
  return { found, historyEvents: history.events?.length ?? 0 };
}
