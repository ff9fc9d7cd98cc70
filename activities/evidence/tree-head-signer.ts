/**
 * The worker's Ed25519 key for signing evidence tree heads. The key file holds 64 hex characters
 * (the 32-byte private seed) and must not be readable by other users. The embedded default creates
 * one on first start; production points `PORTARIUM_EVIDENCE_KEY_FILE` at a managed key.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519';
import { bytesToHex } from '@noble/hashes/utils';
import { TREE_HEAD_SCHEMA, type SignedTreeHead, type TreeHeadBody, keyIdOf, treeHeadMessage } from './tree-head';

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface TreeHeadSigner {
  readonly publicKey: string;
  readonly keyId: string;
  sign(body: TreeHeadBody): SignedTreeHead;
}

class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError';
}

export function signerFromHex(privateKeyHex: string): TreeHeadSigner {
  if (!/^[0-9a-f]{64}$/i.test(privateKeyHex)) throw new SigningKeyError('an evidence signing key is 64 hex characters (a 32-byte Ed25519 seed)');
  const key = privateKeyHex.toLowerCase();
  const publicKey = bytesToHex(ed25519.getPublicKey(Buffer.from(key, 'hex')));
  const keyId = keyIdOf(publicKey);
  // node:crypto signs every append ~30x faster than the pure-JS code (Ed25519 signatures are
  // deterministic: the same bytes either way); the key object is built once.
  const privateKey = crypto.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, Buffer.from(key, 'hex')]), format: 'der', type: 'pkcs8' });
  return {
    publicKey,
    keyId,
    sign(body) {
      const unsigned = { schema: TREE_HEAD_SCHEMA, ...body, keyId } as const;
      return { ...unsigned, signature: crypto.sign(null, treeHeadMessage(unsigned), privateKey).toString('hex') };
    },
  };
}

/** Read the key file; with `create`, write a fresh key (mode 0600) when there is none. */
export function loadSigningKey(file: string, opts: { create?: boolean } = {}): TreeHeadSigner {
  if (!fs.existsSync(file)) {
    if (!opts.create) throw new SigningKeyError(`evidence signing key ${file} does not exist`);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    try {
      fs.writeFileSync(file, `${bytesToHex(ed25519.utils.randomPrivateKey())}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another worker on this machine created it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const mode = fs.statSync(file).mode & 0o077;
  if (mode) throw new SigningKeyError(`evidence signing key ${file} is readable by other users; chmod 600 it`);
  return signerFromHex(fs.readFileSync(file, 'utf8').trim());
}
