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
  // String concatenation rather than arrays and joins: this runs for every evidence entry verified.
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError(`non-finite number ${value}`);
      return JSON.stringify(value);
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
  const keys = Object.keys(record).sort();
  let out = '{';
  for (const key of keys) {
    const v = record[key];
    if (v === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(key)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

export function sha256Hex(text: string): string {
  return bytesToHex(sha256(new TextEncoder().encode(text)));
}

/**
 * The SHA-256 (and Ed25519 check) that hashing and verification use. Defaults to the pure one, so the
 * workflow bundle never pulls node:crypto; code outside the sandbox (CLI, sinks) passes node:crypto's
 * (`nodeEvidenceCrypto` in activities/evidence-verify.ts). Both give the same bytes.
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

/** JSON.stringify of a string, without the call for the common case of nothing to escape. */
const PLAIN_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
export function jsonString(text: string): string {
  return PLAIN_TEXT.test(text) ? `"${text}"` : JSON.stringify(text);
}

/**
 * Whether `JSON.stringify(value)` is already `canonicalJson(value)`: plain objects whose keys are in
 * sorted order (as JSON.parse of canonical text leaves them), finite numbers, nothing canonicalJson
 * refuses. One walk without building strings, so the native serialiser can do the rest.
 */
export function isCanonicalOrder(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  // A toJSON anywhere (own or inherited) would make JSON.stringify print something else.
  if ((value as { toJSON?: unknown }).toJSON !== undefined) return false;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false;
    for (let i = 0; i < value.length; i++) if (value[i] !== undefined && !isCanonicalOrder(value[i])) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const record = value as Record<string, unknown>;
  let previous: string | undefined;
  // for-in on a plain object visits own keys in Object.keys order (integer-like keys first, which the check catches).
  for (const key in record) {
    if (previous !== undefined && !(previous < key)) return false;
    previous = key;
    const v = record[key];
    if (v !== undefined && !isCanonicalOrder(v)) return false;
  }
  return true;
}

/** canonicalJson, by the native serialiser when the value is already in canonical order. */
export function canonicalJsonFast(value: unknown): string {
  return isCanonicalOrder(value) ? JSON.stringify(value) : canonicalJson(value);
}

/** Hash of an action: what every decision must name. Clients compute it with the same function. */
export function hashAction(action: unknown): string {
  return sha256Hex(canonicalJson(action));
}
