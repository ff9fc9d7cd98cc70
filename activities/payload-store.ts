/**
 * Content-addressed store for payloads too large (or too sensitive to size) for workflow history:
 * history and evidence hold a `PayloadRef` (URI, SHA-256, content type, size) instead. The embedded
 * default keeps one file per payload under `{dataDir}/payloads/{workspace}/`; writing the same content
 * twice is a no-op, so retried activities never duplicate.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FailureType } from '../workflows/failures';
import { WORKSPACE_ID_SOURCE } from '../workflows/ids';
import { checkWorkspaceId } from './secrets/port';

export interface PayloadRef {
  uri: string;
  sha256: string;
  contentType: string;
  bytes: number;
}

export interface PayloadStore {
  put(workspaceId: string, content: string | Uint8Array, contentType: string): Promise<PayloadRef>;
  get(ref: PayloadRef): Promise<Buffer>;
}

const PAYLOAD_URI = new RegExp(`^portarium-payload://(${WORKSPACE_ID_SOURCE})/([0-9a-f]{64})$`);

export class FilePayloadStore implements PayloadStore {
  /** Folders made (or found) already: a put per dispatch need not ask the file system again. */
  private readonly made = new Set<string>();

  constructor(private readonly dir: string) {}

  async put(workspaceId: string, content: string | Uint8Array, contentType: string): Promise<PayloadRef> {
    checkWorkspaceId(workspaceId, FailureType.WorkspaceMismatch);
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const dir = path.join(this.dir, workspaceId);
    if (!this.made.has(dir)) {
      await fs.promises.mkdir(dir, { recursive: true });
      this.made.add(dir);
    }
    const file = path.join(dir, sha256);
    if (!fs.existsSync(file)) {
      // Write then rename, so a crash never leaves a partial file under the content's name.
      const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
      await fs.promises.writeFile(tmp, bytes, { flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
        // The folder went away since it was made (cleaned by hand): make it again, once.
        if (err.code !== 'ENOENT') throw err;
        await fs.promises.mkdir(dir, { recursive: true });
        await fs.promises.writeFile(tmp, bytes, { flag: 'wx' });
      });
      await fs.promises.rename(tmp, file);
    }
    return { uri: `portarium-payload://${workspaceId}/${sha256}`, sha256, contentType, bytes: bytes.length };
  }

  async get(ref: PayloadRef): Promise<Buffer> {
    const m = PAYLOAD_URI.exec(ref.uri);
    if (!m) throw new Error(`not a payload URI: ${ref.uri}`);
    const bytes = await fs.promises.readFile(path.join(this.dir, m[1], m[2]));
    if (createHash('sha256').update(bytes).digest('hex') !== m[2]) throw new Error(`payload ${ref.uri} does not match its hash`);
    return bytes;
  }
}
