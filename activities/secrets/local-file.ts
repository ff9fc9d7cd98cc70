/**
 * The embedded secret store, used when no Vault is configured: one JSON file per workspace,
 * `{dir}/{workspace}.json`, holding `{ "<runtime>": { "<name>": "<value>" } }`. A workspace can only
 * ever open its own file (ids are validated, the path is checked to stay inside `dir`), and a file
 * other users can read is refused, as ssh refuses a readable private key.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { FailureType, refusal } from '../../workflows/failures';
import { RUNTIME_NAME_PATTERN } from '../../workflows/ids';
import { type Secret, type SecretStore, checkSecretIds } from './port';

const SecretsFile = z.record(z.string().regex(RUNTIME_NAME_PATTERN), z.record(z.string().min(1), z.string()));

export class FileSecretStore implements SecretStore {
  readonly kind = 'file';
  constructor(private readonly dir: string) {}

  async read(workspaceId: string, runtime: string): Promise<Secret> {
    checkSecretIds(workspaceId, runtime);
    const root = path.resolve(this.dir);
    const file = path.resolve(root, `${workspaceId}.json`);
    if (path.dirname(file) !== root) throw refusal(FailureType.CredentialsDenied, `secrets path for ${workspaceId} escapes ${root}`);
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(file);
    } catch {
      throw refusal(FailureType.CredentialsDenied, `no secrets file for workspace ${workspaceId} (expected ${file})`);
    }
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      throw refusal(FailureType.CredentialsDenied, `secrets file ${file} is readable by other users; run: chmod 600 ${file}`);
    }
    let parsed: z.infer<typeof SecretsFile>;
    try {
      parsed = SecretsFile.parse(JSON.parse(await fs.promises.readFile(file, 'utf8')));
    } catch (err) {
      // The zod or JSON message could quote a value; name the file only.
      throw refusal(FailureType.CredentialsDenied, `secrets file ${file} is not valid (${err instanceof z.ZodError ? `at ${err.issues[0]?.path.join('.')}` : 'not JSON'})`);
    }
    const secret = Object.prototype.hasOwnProperty.call(parsed, runtime) ? parsed[runtime] : undefined;
    if (!secret) throw refusal(FailureType.CredentialsDenied, `workspace ${workspaceId} has no ${runtime} secret in ${file}`);
    return Object.freeze({ ...secret });
  }

  async close(): Promise<void> {}
}
