/**
 * Canonical JSON (RFC 8785 style: sorted keys, no whitespace, `undefined` dropped) and SHA-256,
 * in pure JS so the workflow sandbox (no node:crypto, no Buffer) computes the same bytes as clients.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex } from '@noble/hashes/utils';

/** Thrown for values JSON cannot represent faithfully (NaN, Infinity, functions, class instances). */
export class CanonicalJsonError extends Error {
  override readonly name = 'CanonicalJsonError';
}

export function canonicalJson(value: unknown): string {
  // String concatenation rather than arrays and joins, and no key sort for objects already in order
  // (as JSON.parse of canonical text leaves them): this runs for every evidence entry hashed or verified.
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return jsonString(value);
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError(`non-finite number ${value}`);
      // A finite number prints as JSON.stringify prints it (both are Number::toString).
      return `${value}`;
    case 'object':
      break;
    default:
      throw new CanonicalJsonError(`cannot canonicalise a ${typeof value}`);
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + canonicalJson(value[i] === undefined ? null : value[i]);
    return `${out}]`;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw new CanonicalJsonError('only plain objects are canonicalised');
  const record = value as Record<string, unknown>;
  let out = '{';
  let previous: string | undefined;
  // for-in visits own keys in Object.keys order; an inherited one (a polluted prototype) is not ours.
  for (const key in record) {
    if (!hasOwn.call(record, key)) continue;
    if (previous !== undefined && !(previous < key)) return sortedObjectJson(record);
    previous = key;
    const v = record[key];
    if (v === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${jsonString(key)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

const hasOwn = Object.prototype.hasOwnProperty;

function sortedObjectJson(record: Record<string, unknown>): string {
  let out = '{';
  for (const key of Object.keys(record).sort()) {
    const v = record[key];
    if (v === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${jsonString(key)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

/** JSON.stringify of a string, without the call for the common case of nothing to escape. */
const PLAIN_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
export function jsonString(text: string): string {
  return PLAIN_TEXT.test(text) ? `"${text}"` : JSON.stringify(text);
}

export function sha256Hex(text: string): string {
  return bytesToHex(sha256(new TextEncoder().encode(text)));
}

/**
 * The SHA-256 (and Ed25519 check) that hashing and verification use. Defaults to the pure one, so the
 * workflow bundle never pulls node:crypto; code outside the sandbox (CLI, sinks) passes node:crypto's
 * (`nodeEvidenceCrypto` in activities/evidence/verify.ts). Both give the same bytes.
 */
export interface EvidenceCrypto {
  /** Lowercase hex SHA-256 of the UTF-8 bytes of `text` (a lone surrogate as U+FFFD, as TextEncoder does). */
  sha256Hex(text: string): string;
  /** SHA-256 of `data`, a fresh array the caller may keep. */
  sha256(data: Uint8Array): Uint8Array;
  /** Ed25519 verification, all arguments raw bytes; never throws. Absent: the pure one (@noble/curves). */
  ed25519Verify?(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

export const pureCrypto: EvidenceCrypto = { sha256Hex, sha256: (data) => sha256(data) };

/** Hash of an action: what every decision must name. Clients compute it with the same function. */
export function hashAction(action: unknown): string {
  return sha256Hex(canonicalJson(action));
}
