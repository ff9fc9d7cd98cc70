/** Wiring of the configured evidence sink and its signing key, for the worker and the CLI. */
import { FileEvidenceSink } from '../activities/evidence/file-sink';
import type { EvidenceSink } from '../activities/evidence/sink';
import { type TreeHeadSigner, loadSigningKey } from '../activities/evidence/tree-head-signer';
import type { PortariumConfig } from './config';

/** For readers (the CLI): a sink that can read but never signs. */
const READ_ONLY: TreeHeadSigner = {
  publicKey: '',
  keyId: '',
  sign: () => {
    throw new Error('this evidence sink was opened for reading');
  },
};

/**
 * The configured evidence sink. The embedded file sink creates its signing key on first start; with
 * PostgreSQL every worker must sign with the same key, so the key must already exist there.
 */
export function configuredEvidenceSink(config: PortariumConfig, opts: { readOnly?: boolean } = {}): EvidenceSink {
  const { sink, keyFile } = config.evidence;
  const signer = () => (opts.readOnly ? READ_ONLY : loadSigningKey(keyFile, { create: sink.kind === 'file' }));
  if (sink.kind === 'file') return new FileEvidenceSink({ dir: sink.dir, signer: signer() });
  // Loaded only when configured, so the embedded default does not need the PostgreSQL driver.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PostgresEvidenceSink } = require('../activities/evidence/postgres-sink') as typeof import('../activities/evidence/postgres-sink');
  return new PostgresEvidenceSink({ url: sink.url, signer: signer() });
}

/** The public key tree heads are checked against: given, or derived from the configured key file. */
export function evidencePublicKey(config: PortariumConfig, given?: string): string {
  if (given) return given.toLowerCase();
  return loadSigningKey(config.evidence.keyFile).publicKey;
}
