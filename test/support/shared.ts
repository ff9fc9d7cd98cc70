/** What the root hooks set up, for every suite. */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { LogEntry } from '@temporalio/worker';

/** Most recent worker, workflow and activity log entries of this test process, for leak scans. */
export const capturedLogs: LogEntry[] = [];
const MAX_LOGS = 50_000;

export function captureLog(entry: LogEntry): void {
  capturedLogs.push(entry);
  if (capturedLogs.length > MAX_LOGS) capturedLogs.splice(0, capturedLogs.length - MAX_LOGS);
  if (entry.level === 'ERROR') console.error(`[${entry.level}] ${entry.message}`, entry.meta ?? '');
}

export const shared: { env?: TestWorkflowEnvironment; address?: string } = {};

export function testEnv(): TestWorkflowEnvironment {
  if (!shared.env) throw new Error('the root hook did not start a Temporal server');
  return shared.env;
}
