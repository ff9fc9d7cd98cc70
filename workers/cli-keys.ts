/**
 * `portarium keys rotate|list` (the embedded keyring's payload keys; Vault keys rotate in Vault) and
 * `portarium codec-server` (the optional codec server for the Web UI and CLI). No key or token is
 * ever printed.
 */
import { KeyringError, describeKeyring, rotateKeyring } from '../activities/keyring';
import { HELP } from './cli-format';
import { type Command, type Ctx, UsageError, need, str, strings } from './cli-kit';
import { startConfiguredCodecServer } from './codec-server';
import { ConfigError } from './config';
import { workspaceIdSchema } from '../workflows/schemas';

function keyringFile(ctx: Ctx): string {
  const enc = ctx.config().payloadEncryption;
  if (enc.kind === 'vault') throw new ConfigError('PORTARIUM_PAYLOAD_ENCRYPTION is vault: rotate the workspace\'s transit key in Vault (vault write -f transit/keys/portarium-<workspace>/rotate)');
  if (enc.kind === 'off') throw new ConfigError('PORTARIUM_PAYLOAD_ENCRYPTION is off: there are no payload keys');
  return enc.file;
}

async function keysRotate(ctx: Ctx): Promise<number> {
  const [workspace] = need(ctx.values, 'workspace');
  if (!workspaceIdSchema().safeParse(workspace).success) throw new UsageError(`--workspace: not a workspace id: ${workspace}`);
  const file = keyringFile(ctx);
  try {
    ctx.io.out(`active key of ${workspace}: ${await rotateKeyring(file, workspace)} (older keys stay for reading old runs)`);
  } catch (err) {
    if (err instanceof KeyringError) throw new ConfigError(err.message);
    throw err;
  }
  return 0;
}

async function keysList(ctx: Ctx): Promise<number> {
  const file = keyringFile(ctx);
  let rows;
  try {
    rows = describeKeyring(file);
  } catch (err) {
    if (err instanceof KeyringError) throw new ConfigError(err.message);
    throw err;
  }
  if (!rows.length) ctx.io.out(`no payload keys yet in ${file}`);
  for (const r of rows) ctx.io.out(`${r.workspace}: active ${r.active}; keys ${r.keys.map((k) => `${k.id} (${k.createdAt})`).join(', ')}`);
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
  { ...HELP.keysRotate, run: keysRotate, arity: [0, 0], options: strings('workspace') },
  { ...HELP.keysList, run: keysList, arity: [0, 0], options: {} },
  { ...HELP.codecServer, run: codecServer, arity: [0, 0], options: strings('listen') },
];
