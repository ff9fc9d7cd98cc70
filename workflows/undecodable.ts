/**
 * What a workflow receives for a payload the worker could not decode (bad ciphertext, a key of
 * another workspace, an unknown encoding, invalid JSON): a plain marker object instead of a
 * workflow-task failure, which would retry forever and wedge the run. Every message schema refuses
 * it (`check` in ./schemas.ts names the reason), so such a message becomes a recorded `InvalidMessage`.
 * The payload converter (workers/codec/payload-converter.ts) and the worker's codec produce it.
 */

/** Property of the marker object; no message schema accepts it. */
const UNDECODABLE_KEY = 'portarium.undecodable';

/** Encoding the worker's codec gives a payload it could not decrypt; the payload converter maps it to the marker. */
export const UNDECODABLE_ENCODING = 'binary/portarium-undecodable';

/** Longest reason kept: reasons are ours (codec and converter), but bound them anyway. */
const MAX_REASON = 200;

export interface Undecodable {
  readonly [UNDECODABLE_KEY]: string;
}

export function undecodable(reason: string): Undecodable {
  return { [UNDECODABLE_KEY]: String(reason).slice(0, MAX_REASON) };
}

/** The reason when `value` is the marker, else undefined. */
export function undecodableReason(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || !Object.hasOwn(value, UNDECODABLE_KEY)) return undefined;
  const reason = (value as Record<string, unknown>)[UNDECODABLE_KEY];
  return typeof reason === 'string' ? reason : 'payload could not be decoded';
}
