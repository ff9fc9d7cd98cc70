/**
 * The payload converter of workers and the workflow bundle (`payloadConverterPath`): the SDK's default
 * converter, except that a payload it cannot convert (unknown encoding, invalid JSON, or a payload the
 * worker's codec marked undecodable) becomes the `Undecodable` marker instead of an exception. Anyone
 * who may signal a run can send such a payload; thrown, it would fail the workflow task before our
 * handler runs, again on every retry, and the run would never move or answer `status` again.
 * Clients keep the default converter: a caller should see its own decoding errors.
 */
import { type ConverterHint, DefaultPayloadConverter, type Payload, type SerializationContext } from '@temporalio/common';
import { UNDECODABLE_ENCODING, undecodable } from '../../workflows/undecodable';

const ENCODING_KEY = 'encoding';

function text(bytes: Uint8Array | null | undefined): string {
  if (!bytes) return '';
  let s = '';
  // ASCII only; the reasons the codec writes are ASCII, and this runs in the workflow sandbox.
  for (let i = 0; i < bytes.length && i < 200; i++) s += String.fromCharCode(bytes[i] < 128 ? bytes[i] : 63);
  return s;
}

class TolerantPayloadConverter extends DefaultPayloadConverter {
  override fromPayload<T>(payload: Payload, context?: SerializationContext, hint?: ConverterHint<T>): T {
    const encoding = text(payload?.metadata?.[ENCODING_KEY]);
    if (encoding === UNDECODABLE_ENCODING) return undecodable(`payload could not be decrypted: ${text(payload.data)}`) as T;
    try {
      return super.fromPayload<T>(payload, context, hint);
    } catch (err) {
      const why = err instanceof Error ? err.name : 'error';
      return undecodable(`payload could not be converted (encoding ${JSON.stringify(encoding.slice(0, 40))}, ${why})`) as T;
    }
  }
}

export const payloadConverter = new TolerantPayloadConverter();
