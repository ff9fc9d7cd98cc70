/**
 * What a worker checks about its payload keys before it polls. The system key (`_system`: codec-server
 * signals, runs without a workspace) exists: a keyring worker creates it, the one key a worker may
 * create, and a Vault worker must be able to use it. And no other worker on its queues holds another
 * keyring: every worker's identity (visible to Temporal, in `DescribeTaskQueue` and the Web UI's
 * Workers tab) carries its keyring's identity, and a worker that finds a different one refuses to
 * start, before two keyrings make payloads only one host can read.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { temporal } from '@temporalio/proto';
import type { NativeConnection } from '@temporalio/worker';
import { KeyringError, createKeyring, keyringIdentity } from './keyring';
import { type PayloadKeyProvider, SYSTEM_SCOPE } from './keys-port';
import { ConfigError, type PortariumConfig } from '../config';

/** Another worker on one of this worker's queues holds another keyring. */
class KeyringMismatch extends Error {
  override readonly name = 'KeyringMismatch';
}

/**
 * Make sure the system key is there; returns the keyring's identity (undefined without a keyring).
 * A production worker (no PORTARIUM_DEV_CREATE_KEYS) refuses a keyring file that does not exist: a
 * missing mount must not become a fresh keyring that cannot read the cluster's payloads.
 */
export async function prepareWorkerKeys(config: PortariumConfig, keys: PayloadKeyProvider | undefined): Promise<string | undefined> {
  const enc = config.payloadEncryption;
  if (enc.kind === 'off' || !keys) return undefined;
  if (enc.kind === 'vault') {
    try {
      await keys.encryptionKey(SYSTEM_SCOPE);
    } catch (err) {
      throw new ConfigError(`the system payload key is not usable (${(err as Error).message}). Create it with \`vault write -f transit/keys/portarium-_system\`, ` +
        'and allow this worker\'s token transit/datakey/plaintext/portarium-_system and transit/decrypt/portarium-_system (docs/encryption.md)');
    }
    return undefined;
  }
  if (!enc.createKeys && !fs.existsSync(enc.file)) {
    throw new ConfigError(`payload keyring ${enc.file} not found: copy the cluster's keyring file here (one keyring per cluster), ` +
      'or set up a new cluster\'s keyring with `npx portarium keys create --workspace _system` (docs/encryption.md)');
  }
  try {
    await createKeyring(enc.file, SYSTEM_SCOPE);
    return keyringIdentity(enc.file);
  } catch (err) {
    if (err instanceof KeyringError) throw new ConfigError(err.message);
    throw err;
  }
}

/** The worker identity Temporal records: the SDK's default plus the keyring's identity. */
export function workerIdentity(keyringId: string | undefined): string {
  return `${process.pid}@${os.hostname()}${keyringId ? ` keyring=${keyringId}` : ''}`;
}

const KEYRING_IN_IDENTITY = /(?:^|\s)keyring=([0-9a-f]{16})(?:\s|$)/;

/**
 * Refuse (KeyringMismatch) when a worker polling one of `queues` announces another keyring. Returns
 * the queues it could not read (a server that refuses DescribeTaskQueue to this identity): a safety
 * net that is not there is reported, not a reason to stay down; payload fingerprints still name a
 * foreign keyring.
 */
export async function checkQueueKeyrings(connection: NativeConnection, namespace: string, queues: string[], keyringId: string): Promise<string[]> {
  const types = [temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY];
  const unchecked: string[] = [];
  for (const queue of queues) {
    for (const taskQueueType of types) {
      let res;
      try {
        res = await connection.workflowService.describeTaskQueue({ namespace, taskQueue: { name: queue }, taskQueueType });
      } catch (err) {
        unchecked.push(`${queue} (${(err as Error).message.slice(0, 120)})`);
        break;
      }
      for (const poller of res.pollers ?? []) {
        const theirs = KEYRING_IN_IDENTITY.exec(poller.identity ?? '')?.[1];
        if (theirs && theirs !== keyringId) {
          throw new KeyringMismatch(`another worker (${poller.identity}) polls queue ${queue} with keyring ${theirs}; this worker's keyring is ${keyringId}. ` +
            'One keyring per cluster: give every host the same keyring file (`npx portarium keys list` prints its identity), then start again. ' +
            'A worker that is gone is forgotten by Temporal within minutes (docs/encryption.md)');
        }
      }
    }
  }
  return unchecked;
}
