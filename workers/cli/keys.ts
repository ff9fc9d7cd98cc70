/**
 * `portarium keys create|rotate|list` (the embedded keyring's payload keys; Vault keys live in Vault) and
 * `portarium codec-server` (the optional codec server for the Web UI and CLI). No key or token is
 * ever printed.
 */
import { KeyringError, createKeyring, describeKeyring, keyringIdentity, rotateKeyring } from '../codec/keyring';
import { SCOPE_PATTERN } from '../codec/keys-port';
import { HELP } from './format';
import { type Command, type Ctx, UsageError, need, str, strings } from './kit';
import { startConfiguredCodecServer } from '../codec/server';
import { ConfigError } from '../config';

function keyringFile(ctx: Ctx): string {
  const enc = ctx.config().payloadEncryption;
  if (enc.kind === 'vault') throw new ConfigError('PORTARIUM_PAYLOAD_ENCRYPTION is vault: payload keys are transit keys in Vault (vault write -f transit/keys/portarium-<workspace> creates one, .../rotate rotates it)');
  if (enc.kind === 'off') throw new ConfigError('PORTARIUM_PAYLOAD_ENCRYPTION is off: there are no payload keys');
  return enc.file;
}

/** The --workspace value: a workspace id, or `_system` (the key of codec-server signals and id-less runs). */
function scopeOption(ctx: Ctx): string {
  const [workspace] = need(ctx.values, 'workspace');
  if (!SCOPE_PATTERN.test(workspace)) throw new UsageError(`--workspace: not a workspace id (or _system): ${workspace}`);
  return workspace;
}

async function keyringCall<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof KeyringError) throw new ConfigError(err.message);
    throw err;
  }
}

async function keysCreate(ctx: Ctx): Promise<number> {
  const workspace = scopeOption(ctx);
  const file = keyringFile(ctx);
  const { keyId, created } = await keyringCall(() => createKeyring(file, workspace));
  ctx.io.out(created ? `created ${keyId} in ${file}; share this keyring file with every process of the cluster` : `${workspace} already has a key: active ${keyId} (nothing changed)`);
  return 0;
}

async function keysRotate(ctx: Ctx): Promise<number> {
  const workspace = scopeOption(ctx);
  const file = keyringFile(ctx);
  const keyId = await keyringCall(() => rotateKeyring(file, workspace));
  ctx.io.out(`active key of ${workspace}: ${keyId} (older keys stay for reading old runs)`);
  return 0;
}

async function keysList(ctx: Ctx): Promise<number> {
  const file = keyringFile(ctx);
  const rows = await keyringCall(() => describeKeyring(file));
  const identity = await keyringCall(() => keyringIdentity(file));
  if (!rows.length) ctx.io.out(`no payload keys yet in ${file}`);
  // Compare this line between hosts: one keyring per cluster has one identity.
  else ctx.io.out(`keyring ${file}: identity ${identity ?? '(none yet: no _system key; workers create it at start)'}`);
  for (const r of rows) ctx.io.out(`${r.workspace}: active ${r.active}; keys ${r.keys.map((k) => `${k.id} (${k.createdAt}, fingerprint ${k.fingerprint})`).join(', ')}`);
  return 0;
}

async function codecServer(ctx: Ctx): Promise<number> {
  const server = await startConfiguredCodecServer(ctx.config(), str(ctx.values, 'listen'));
  ctx.io.out(`portarium codec server pid=${process.pid} listening ${server.url}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await server.keys.close();
  return 0;
}

export const KEY_COMMANDS: readonly Command[] = [
  { ...HELP.keysCreate, run: keysCreate, arity: [0, 0], options: strings('workspace') },
  { ...HELP.keysRotate, run: keysRotate, arity: [0, 0], options: strings('workspace') },
  { ...HELP.keysList, run: keysList, arity: [0, 0], options: {} },
  { ...HELP.codecServer, run: codecServer, arity: [0, 0], options: strings('listen') },
];
