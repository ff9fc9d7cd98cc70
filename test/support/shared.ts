/** What the root hooks set up, for every suite. */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { DataConverter } from '@temporalio/common';
import type { LogEntry } from '@temporalio/worker';
import { loadConfig } from '../../workers/config';
import { portariumDataConverter } from '../../workers/codec/data-converter';

/** Most recent worker, workflow and activity log entries of this test process, for leak scans. */
export const capturedLogs: LogEntry[] = [];
const MAX_LOGS = 50_000;

export function captureLog(entry: LogEntry): void {
  capturedLogs.push(entry);
  if (capturedLogs.length > MAX_LOGS) capturedLogs.splice(0, capturedLogs.length - MAX_LOGS);
  if (entry.level === 'ERROR') console.error(`[${entry.level}] ${entry.message}`, entry.meta ?? '');
}

export const shared: { env?: TestWorkflowEnvironment; address?: string } = {};

/**
 * The environment that lets test processes create a workspace's payload key on first use, as
 * `./temporal-dev.sh` does: tests use many workspaces on one machine and one keyring. Production
 * processes never create workspace keys (docs/encryption.md).
 */
export const DEV_KEYS = { PORTARIUM_DEV_CREATE_KEYS: '1' } as const;

/**
 * The payload keyring every test process shares: the default one (the repository's .data), which
 * in-process workers and CLI calls with an empty environment use too. Worker processes started with
 * their own data dir get it through PORTARIUM_KEYRING_FILE.
 */
export function testKeyringFile(): string {
  const enc = loadConfig({}).payloadEncryption;
  if (enc.kind !== 'keyring') throw new Error('tests expect the keyring default');
  return enc.file;
}

/** The data converter of the suite's client: the same codec and failure converter as the workers'. */
export function testDataConverter(): DataConverter {
  return portariumDataConverter(loadConfig({ ...DEV_KEYS }));
}

export function testEnv(): TestWorkflowEnvironment {
  if (!shared.env) throw new Error('the root hook did not start a Temporal server');
  return shared.env;
}
