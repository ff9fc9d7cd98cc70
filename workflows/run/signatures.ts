/**
 * Signed approvals: an Ed25519 signature by the approver's registered key over the decision's
 * canonical JSON. The signed fields bind the signature to one run (`workflowId`) and one version of
 * the action (`actionHash`), so a signature copied to another run, to an amended action, to another
 * decision kind or to another decision id does not verify. Without that binding, anyone who saw one
 * signed approval could replay it wherever the same approver is eligible.
 *
 * Pure JS (`@noble/curves`), deterministic and free of randomness, so the workflow sandbox verifies
 * with the same bytes as clients. Only `signDecision` and `publicKeyFromPrivate` are for clients.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils';
import { canonicalJson } from '../hashing';

/** Schema tag inside the signed message, so a signature over another kind of document never matches. */
const SIGNED_DECISION_SCHEMA = 'portarium.decision.v1';
/**
 * v2 also binds the first execution's run id, so a signature given in one execution never counts in
 * a later execution under the same workflow id (ids may be reused once a run closed), and it covers
 * every signed message kind. Runs started after SIGNED_V2_PATCH accept only v2.
 */
const SIGNED_DECISION_SCHEMA_V2 = 'portarium.decision.v2';

/** Message kinds a signature can cover: the three decisions, and (v2 only) cancel, amend and manual completion. */
export type SignedKind = 'approve' | 'reject' | 'requestChanges' | 'cancelRun' | 'amendAction' | 'manualCompletion' | 'breakGlass' | 'reviewBreakGlass';
export const SIGNED_KINDS: readonly SignedKind[] = ['approve', 'reject', 'requestChanges', 'cancelRun', 'amendAction', 'manualCompletion', 'breakGlass', 'reviewBreakGlass'];

/** What a signer signs. Every field is bound by the signature. */
export interface SignedFields {
  workflowId: string;
  /**
   * The run id of the workflow's first execution (`status.firstExecutionRunId`). Present: a v2
   * signature; absent: v1 (decisions only, accepted by runs started before v2).
   */
  firstExecutionRunId?: string;
  /** The action the message is about; for `amendAction`, the hash of the amended (new) action. */
  actionHash: string;
  kind: SignedKind;
  /** The message's own id: decisionId, cancelId, amendmentId or completionId. */
  decisionId: string;
  /** The signer's id, normalised (`normalizePrincipalId`). */
  approverId: string;
  /** ISO-8601 time the approver signed. */
  signedAt: string;
}

/**
 * Principal ids are compared case-insensitively: `Alice` and `alice` are one person. Normalised once,
 * at the message schema, in policy lookups and in the signed bytes: ASCII lower case.
 */
export function normalizePrincipalId(id: string): string {
  return typeof id === 'string' ? id.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32)) : id;
}

/**
 * Why a signature was refused.
 * - `missing`: no signature (undefined or empty).
 * - `malformed`: the signature or the approver's registered key is not hex of the right length,
 *   or the fields are not strings (or `kind` is not a decision kind).
 * - `unknown_key`: no key is registered for the approver.
 * - `bad_signature`: it does not verify with the approver's key over these fields.
 */
export type SignatureVerdict = { ok: true } | { ok: false; reason: 'missing' | 'malformed' | 'unknown_key' | 'bad_signature' };

const SIGNATURE_HEX = /^[0-9a-fA-F]{128}$/;
const KEY_HEX = /^[0-9a-fA-F]{64}$/;
const FIELDS = ['workflowId', 'actionHash', 'kind', 'decisionId', 'approverId', 'signedAt'] as const;
const KINDS: readonly unknown[] = ['approve', 'reject', 'requestChanges'];

/**
 * The exact bytes signed: UTF-8 of `canonicalJson({ schema: 'portarium.decision.v1', ...fields })`.
 * Only the declared fields are taken, so extra properties of a decision object never change the bytes.
 */
export function signedMessage(f: SignedFields): Uint8Array {
  const { workflowId, firstExecutionRunId, actionHash, kind, decisionId, approverId, signedAt } = f;
  const doc = firstExecutionRunId === undefined
    ? { schema: SIGNED_DECISION_SCHEMA, workflowId, actionHash, kind, decisionId, approverId, signedAt }
    : { schema: SIGNED_DECISION_SCHEMA_V2, workflowId, firstExecutionRunId, actionHash, kind, decisionId, approverId: normalizePrincipalId(approverId), signedAt };
  return new TextEncoder().encode(canonicalJson(doc));
}

/** True when the fields are what the types promise; input may come from an untyped payload. */
function wellFormed(f: SignedFields): boolean {
  if (typeof f !== 'object' || f === null) return false;
  if (f.firstExecutionRunId === undefined) return FIELDS.every((name) => typeof f[name] === 'string') && KINDS.includes(f.kind);
  return FIELDS.every((name) => typeof f[name] === 'string') && typeof f.firstExecutionRunId === 'string' && SIGNED_KINDS.includes(f.kind);
}

const failed = (reason: Exclude<SignatureVerdict, { ok: true }>['reason']): SignatureVerdict => ({ ok: false, reason });

/**
 * Check `signature` (128 hex digits) over `f` against the key registered for `f.approverId`
 * (`publicKeys`: approver id to 64 hex digits). Strict RFC 8032 verification (`zip215: false`):
 * non-canonical encodings and small-order public keys are refused. Never throws.
 */
export function verifyDecisionSignature(
  f: SignedFields,
  signature: string | undefined,
  publicKeys: Readonly<Record<string, string>>,
): SignatureVerdict {
  if (signature === undefined || signature === '') return failed('missing');
  if (typeof signature !== 'string' || !SIGNATURE_HEX.test(signature) || !wellFormed(f)) return failed('malformed');
  // Own properties only: an approver named `constructor` or `__proto__` has no inherited key.
  const key = registeredKey(publicKeys, f.approverId, f.firstExecutionRunId !== undefined);
  if (key === undefined) return failed('unknown_key');
  if (typeof key !== 'string' || !KEY_HEX.test(key)) return failed('malformed');
  try {
    const ok = ed25519.verify(hexToBytes(signature), signedMessage(f), hexToBytes(key), { zip215: false });
    return ok ? { ok: true } : failed('bad_signature');
  } catch {
    // noble throws on bytes that are the right length but not a point; that is a bad signature too.
    return failed('bad_signature');
  }
}

/** The key registered for `approverId` (v2: ids compared normalised), own properties only. */
function registeredKey(publicKeys: Readonly<Record<string, string>>, approverId: string, normalized: boolean): unknown {
  if (typeof publicKeys !== 'object' || publicKeys === null) return undefined;
  if (Object.hasOwn(publicKeys, approverId)) return publicKeys[approverId];
  // v1 (runs before ids were normalised) looks ids up exactly as signed.
  if (!normalized) return undefined;
  const id = normalizePrincipalId(approverId);
  for (const k of Object.keys(publicKeys)) if (normalizePrincipalId(k) === id) return publicKeys[k];
  return undefined;
}

function privateKeyBytes(privateKeyHex: string): Uint8Array {
  if (typeof privateKeyHex !== 'string' || !KEY_HEX.test(privateKeyHex)) {
    throw new TypeError('an Ed25519 private key must be 64 hex digits (32 bytes)');
  }
  return hexToBytes(privateKeyHex);
}

/** For clients and the CLI, not workflow code: sign `f` with a private key (64 hex digits); returns 128 hex digits. */
export function signDecision(f: SignedFields, privateKeyHex: string): string {
  return bytesToHex(ed25519.sign(signedMessage(f), privateKeyBytes(privateKeyHex)));
}

/** The public key (64 hex digits) to register for a private key (64 hex digits). */
export function publicKeyFromPrivate(privateKeyHex: string): string {
  return bytesToHex(ed25519.getPublicKey(privateKeyBytes(privateKeyHex)));
}
