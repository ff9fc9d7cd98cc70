/**
 * What every `portarium` command module shares: its context, the command record, the usage error
 * and option helpers. No command logic.
 */
import * as fs from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import type { CommandInfo } from './format';
import type { PortariumClient } from '../client';
import type { PortariumConfig } from '../config';
import type { Principal } from '../../workflows/types';

/** Where the CLI writes, and the environment it reads. Tests pass their own. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
}

export type Values = Record<string, string | boolean | undefined>;
export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Ctx {
  io: CliIo;
  values: Values;
  /** Positionals after the command words. */
  args: string[];
  config(): PortariumConfig;
  client(): Promise<PortariumClient>;
}

export interface Command extends CommandInfo {
  /** Fewest and most positionals after the command words. */
  arity: [number, number];
  options: Options;
  run(ctx: Ctx): Promise<number>;
}

/** Bad command line: printed with the usage, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A key file that cannot be read or written, or does not hold a key: exit 2, without the usage. */
export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
}

export const strings = (...names: string[]): Options => Object.fromEntries(names.map((n) => [n, { type: 'string' as const }]));
export const flag = (name: string): Options => ({ [name]: { type: 'boolean' } });
export const str = (v: Values, name: string) => (typeof v[name] === 'string' && v[name] !== '' ? (v[name] as string) : undefined);
export const list = (text: string | undefined) => (text ?? '').split(',').map((s) => s.trim()).filter(Boolean);
export const principal = (id: string, v: Values): Principal => ({ id, roles: list(str(v, 'roles')) });

/** The named flags' values, or a usage error naming every missing one. */
export function need(v: Values, ...names: string[]): string[] {
  const missing = names.filter((n) => str(v, n) === undefined);
  if (missing.length) throw new UsageError(`missing ${missing.map((n) => `--${n}`).join(', ')}`);
  return names.map((n) => v[n] as string);
}


/** The private key in `file`, trimmed. Its content is never echoed: it is a secret. */
export function readPrivateKey(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new KeyFileError(`--key ${file}: ${(err as Error).message}`);
  }
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new KeyFileError(`--key ${file}: not an Ed25519 private key (expected 64 hex digits, as written by \`portarium decision keygen\`)`);
  return text;
}
