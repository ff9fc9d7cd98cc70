/**
 * CloudEvents 1.0 over HTTP, parsed by hand (the npm `cloudevents` package is unmaintained and pins an
 * old uuid; see shared/reference/runtime-contracts.md §6). `parseCloudEvent({headers, body})` accepts
 * structured mode (`application/cloudevents+json`) and binary mode (`ce-*` headers); batch mode is
 * refused. Every refusal is an `InvalidCloudEventError` naming the attribute that is wrong.
 */
import { z } from 'zod';

/** Largest event accepted, in bytes of body plus `ce-*` headers: the size the spec says intermediaries MUST forward. */
export const MAX_EVENT_BYTES = 64 * 1024;

/**
 * Extension names: `[a-z0-9]`, 1-20 characters. The spec says SHOULD be at most 20; we enforce it as a
 * MUST, so a name that works here works on every conforming intermediary.
 */
const EXTENSION_NAME = /^[a-z0-9]{1,20}$/;

const CORE = ['specversion', 'id', 'source', 'type', 'datacontenttype', 'dataschema', 'subject', 'time'] as const;
const RESERVED = new Set<string>([...CORE, 'data', 'data_base64']);

/** An event that is not valid CloudEvents 1.0; `attribute` is the one at fault (or `(message)`). */
export class InvalidCloudEventError extends Error {
  override readonly name = 'InvalidCloudEventError';
  constructor(
    readonly attribute: string,
    message: string,
  ) {
    super(`invalid CloudEvent: ${attribute}: ${message}`);
  }
}

/** An HTTP-style message; header names are matched case-insensitively. */
export interface HttpMessage {
  headers: Record<string, string | undefined>;
  /** Raw body: text or bytes. */
  body?: string | Uint8Array;
}

export type ExtensionValue = string | number | boolean;

/** A validated event. `data` is parsed JSON when the content type is JSON, else text; bytes for `data_base64`/binary non-text. */
export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  datacontenttype?: string;
  dataschema?: string;
  subject?: string;
  time?: string;
  data?: unknown;
  /** Extension attributes by name. */
  extensions: Record<string, ExtensionValue>;
}

// URI-reference (RFC 3986): no whitespace or control characters; a scheme, when present, is well formed.
const uriReference = z.string().min(1, 'must not be empty').refine((s) => !/[\s\u0000-\u001f\u007f]/.test(s), 'not a URI-reference (whitespace or control characters)');
const absoluteUri = z.string().regex(/^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/, 'expected an absolute URI');
const nonEmpty = z.string().min(1, 'must not be empty');

/** One zod schema per attribute, so an error names the attribute. */
const ATTRIBUTE_SCHEMAS: Record<(typeof CORE)[number], z.ZodType> = {
  specversion: z.literal('1.0', { message: 'must be "1.0"' }),
  id: nonEmpty,
  source: uriReference,
  type: nonEmpty,
  datacontenttype: z.string().regex(/^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$/, 'expected a media type such as application/json'),
  dataschema: absoluteUri,
  subject: nonEmpty,
  time: z.iso.datetime({ offset: true, message: 'expected an RFC 3339 timestamp such as 2026-01-01T00:00:00Z' }),
};
const REQUIRED = ['specversion', 'id', 'source', 'type'] as const;

const mediaType = (ct: string | undefined) => (ct ?? '').split(';')[0].trim().toLowerCase();
const isJson = (ct: string | undefined) => {
  const m = mediaType(ct);
  return m === '' || m === 'application/json' || m === 'text/json' || m.endsWith('+json');
};
const isText = (ct: string | undefined) => isJson(ct) || mediaType(ct).startsWith('text/') || mediaType(ct).endsWith('+xml') || mediaType(ct) === 'application/xml';

function lowerHeaders(headers: HttpMessage['headers']): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out.set(k.toLowerCase(), v);
  return out;
}

function bodyText(body: HttpMessage['body']): string {
  if (body === undefined) return '';
  return typeof body === 'string' ? body : new TextDecoder('utf-8', { fatal: false }).decode(body);
}

const byteLength = (body: HttpMessage['body']) => (body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);

/** Validate core attributes and extensions of a flat attribute map into a CloudEvent (without data). */
function validateAttributes(attrs: Record<string, unknown>): Omit<CloudEvent, 'data'> {
  for (const name of REQUIRED) if (attrs[name] === undefined) throw new InvalidCloudEventError(name, 'required attribute is missing');
  const event: Record<string, unknown> = {};
  for (const name of CORE) {
    if (attrs[name] === undefined) continue;
    const r = ATTRIBUTE_SCHEMAS[name].safeParse(attrs[name]);
    if (!r.success) throw new InvalidCloudEventError(name, typeof attrs[name] === 'string' ? r.error.issues[0].message : 'must be a string');
    event[name] = r.data;
  }
  const extensions: Record<string, ExtensionValue> = {};
  for (const [name, value] of Object.entries(attrs)) {
    if (RESERVED.has(name)) continue;
    if (!EXTENSION_NAME.test(name)) throw new InvalidCloudEventError(name, 'extension names must be 1-20 characters of a-z and 0-9');
    if (value === null) continue; // JSON null means "attribute absent" in the JSON format.
    if (!['string', 'number', 'boolean'].includes(typeof value)) throw new InvalidCloudEventError(name, 'extension values must be strings, numbers or booleans');
    extensions[name] = value as ExtensionValue;
  }
  return { ...(event as Omit<CloudEvent, 'data' | 'extensions'>), extensions };
}

function parseStructured(text: string): CloudEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidCloudEventError('(message)', `structured body is not JSON: ${(err as Error).message}`);
  }
  if (Array.isArray(raw)) throw new InvalidCloudEventError('(message)', 'batch mode (a JSON array of events) is not accepted; send one event per message');
  if (!raw || typeof raw !== 'object') throw new InvalidCloudEventError('(message)', 'structured body must be a JSON object');
  const obj = raw as Record<string, unknown>;
  const event = validateAttributes(obj);
  if (obj.data !== undefined && obj.data_base64 !== undefined) throw new InvalidCloudEventError('data_base64', 'an event carries data or data_base64, not both');
  if (obj.data_base64 !== undefined) {
    if (typeof obj.data_base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(obj.data_base64) || obj.data_base64.length % 4 !== 0) {
      throw new InvalidCloudEventError('data_base64', 'must be a base64 string');
    }
    return { ...event, data: decodeBinary(new Uint8Array(Buffer.from(obj.data_base64, 'base64')), event.datacontenttype) };
  }
  return { ...event, ...(obj.data !== undefined && { data: obj.data }) };
}

/** Bytes as data: parsed JSON for JSON content types, text for text types, bytes otherwise. */
function decodeBinary(bytes: Uint8Array, contentType: string | undefined): unknown {
  if (!isText(contentType)) return bytes;
  const text = new TextDecoder().decode(bytes);
  if (!isJson(contentType) || text.trim() === '') return text;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidCloudEventError('data', `content type ${contentType ?? '(none)'} but the data is not JSON: ${(err as Error).message}`);
  }
}

function percentDecode(name: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new InvalidCloudEventError(name, 'bad percent-encoding in the header value');
  }
}

function parseBinary(headers: Map<string, string>, body: HttpMessage['body']): CloudEvent {
  const attrs: Record<string, unknown> = {};
  for (const [k, v] of headers) {
    if (!k.startsWith('ce-')) continue;
    const name = k.slice(3);
    if (name === 'datacontenttype') throw new InvalidCloudEventError('datacontenttype', 'in binary mode the Content-Type header is the datacontenttype; drop ce-datacontenttype');
    attrs[name] = percentDecode(name, v);
  }
  const contentType = headers.get('content-type');
  if (contentType !== undefined) attrs.datacontenttype = contentType;
  const event = validateAttributes(attrs);
  const hasBody = byteLength(body) > 0;
  if (!hasBody) return event;
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body!;
  return { ...event, data: decodeBinary(bytes, contentType) };
}

/** Parse and validate one CloudEvent from an HTTP-style message; throws `InvalidCloudEventError`. */
export function parseCloudEvent(message: HttpMessage): CloudEvent {
  const headers = lowerHeaders(message.headers);
  let size = byteLength(message.body);
  for (const [k, v] of headers) if (k.startsWith('ce-')) size += k.length + Buffer.byteLength(v);
  if (size > MAX_EVENT_BYTES) throw new InvalidCloudEventError('(message)', `event is ${size} bytes; at most ${MAX_EVENT_BYTES} are accepted`);
  const ct = mediaType(headers.get('content-type'));
  if (ct === 'application/cloudevents-batch+json') throw new InvalidCloudEventError('(message)', 'batch mode (application/cloudevents-batch+json) is not accepted; send one event per message');
  if (ct === 'application/cloudevents+json') return parseStructured(bodyText(message.body));
  if (ct.startsWith('application/cloudevents')) throw new InvalidCloudEventError('datacontenttype', `unsupported event format ${ct}; use application/cloudevents+json`);
  if (!headers.has('ce-specversion') && !headers.has('ce-id')) {
    throw new InvalidCloudEventError('specversion', 'no ce-* headers and not application/cloudevents+json: not a CloudEvent');
  }
  return parseBinary(headers, message.body);
}
