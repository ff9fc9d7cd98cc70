/**
 * The data converter every Portarium process uses (worker, client helper, CLI, approval bot, codec
 * server, replay): the encrypting payload codec with the configured key provider, and the failure
 * converter that encodes failure messages. Services that build their own `Client` pass
 * `PortariumClient.dataConverter(config)`.
 */
import * as path from 'node:path';
import type { DataConverter } from '@temporalio/common';
import { KeyringKeyProvider } from './keyring';
import type { PayloadKeyProvider } from './keys-port';
import { type VaultOptions, VaultSession } from '../../activities/secrets/vault-session';
import { VaultTransitKeyProvider } from './vault-transit';
import { WorkspacePayloadCodec } from './codec';
import type { PortariumConfig } from '../config';

/** Built next to this file (dist/workers/codec/failure-converter.js); the bundle and the worker load it by path. */
export const FAILURE_CONVERTER_PATH = path.join(__dirname, 'failure-converter.js');
/** Workers' and the bundle's payload converter: undecodable payloads reach handlers as a marker (workers/codec/payload-converter.ts). */
export const PAYLOAD_CONVERTER_PATH = path.join(__dirname, 'payload-converter.js');

/**
 * The configured payload key provider, or undefined when encryption is off. A keyring creates missing
 * workspace keys only with PORTARIUM_DEV_CREATE_KEYS; `create: false` (the codec server) never does.
 */
export function payloadKeyProvider(config: PortariumConfig, opts: { create?: boolean } = {}): PayloadKeyProvider | undefined {
  const enc = config.payloadEncryption;
  if (enc.kind === 'off') return undefined;
  if (enc.kind === 'keyring') return new KeyringKeyProvider(enc.file, { create: enc.createKeys && opts.create !== false });
  // The config check guarantees Vault settings with `vault` encryption.
  return new VaultTransitKeyProvider(vaultSession(config.vault!), { mount: enc.mount });
}

const sessions = new WeakMap<VaultOptions, VaultSession>();

/**
 * The process's Vault session for these settings: the secret store and the transit payload keys built
 * from one configuration share it, so a worker holds one login and renews one token.
 */
export function vaultSession(vault: VaultOptions): VaultSession {
  let session = sessions.get(vault);
  if (!session) sessions.set(vault, (session = new VaultSession(vault)));
  return session;
}

/** Codec and failure converter; `keys` overrides the configured provider (tests, the codec server). */
export function portariumDataConverter(config: PortariumConfig, opts: { keys?: PayloadKeyProvider } = {}): DataConverter {
  const keys = opts.keys ?? payloadKeyProvider(config);
  return { failureConverterPath: FAILURE_CONVERTER_PATH, payloadCodecs: keys ? [new WorkspacePayloadCodec(keys)] : [] };
}

/**
 * What workers use: the same codec, but tolerant, and the tolerant payload converter, so a payload
 * nobody can decode becomes a refused message instead of a workflow task that fails forever.
 */
export function workerDataConverter(config: PortariumConfig, opts: { keys?: PayloadKeyProvider } = {}): DataConverter {
  const keys = opts.keys ?? payloadKeyProvider(config);
  return {
    failureConverterPath: FAILURE_CONVERTER_PATH,
    payloadConverterPath: PAYLOAD_CONVERTER_PATH,
    payloadCodecs: keys ? [new WorkspacePayloadCodec(keys, { tolerant: true })] : [],
  };
}
