/**
 * Finds secret values in what a run leaves behind: its full history with every payload decoded by the
 * client's codec (what anyone holding the keys sees), its `status` and `evidence`, and the log entries
 * this process captured. It also checks the history as the server stores it: no string of the run's
 * input may appear in plaintext in any payload there (search attributes and headers, which no codec
 * sees, excepted).
 */
import type { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { decodeRunPayloads } from '../../workers/client';
import { capturedLogs } from './shared';

/** All text in a value: strings as they are, byte arrays (payload data) decoded as UTF-8. */
function collectText(value: unknown, out: string[], seen = new Set<unknown>()): void {
  if (value === null || value === undefined) return;
  if (typeof value === 'string') return void out.push(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return void out.push(String(value));
  if (value instanceof Uint8Array) {
    out.push(Buffer.from(value).toString('utf8'));
    return;
  }
  if (typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  for (const v of Array.isArray(value) ? value : Object.values(value as object)) collectText(v, out, seen);
}

const isPayload = (v: unknown): v is Payload =>
  typeof v === 'object' && v !== null && 'metadata' in v && typeof (v as Payload).metadata === 'object' && (v as Payload).metadata?.encoding instanceof Uint8Array;

/** Every payload in a raw history object, except those of search attributes and headers (never encoded). */
export function payloadsIn(value: unknown, out: Payload[] = [], seen = new Set<unknown>()): Payload[] {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array || seen.has(value)) return out;
  seen.add(value);
  if (isPayload(value)) return out.push(value), out;
  for (const [k, v] of Object.entries(value)) if (k !== 'searchAttributes' && k !== 'header') payloadsIn(v, out, seen);
  return out;
}

/** A copy of the history with every payload decoded by the client's codecs (in the run's serialization context). */
export async function decodedHistory(client: Client, workflowId: string, history: temporal.api.history.v1.IHistory): Promise<unknown> {
  const decode = async (p: Payload) => (await decodeRunPayloads(client, workflowId, [p]))[0];
  const walk = async (v: unknown): Promise<unknown> => {
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return v;
    if (isPayload(v)) return decode(v);
    if (Array.isArray(v)) return Promise.all(v.map(walk));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = await walk(x);
    return out;
  };
  return walk(history);
}

/** String leaves of a value that are long enough to be told apart from random ciphertext bytes. */
function distinctiveStrings(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (typeof value === 'string') {
    if (value.length >= 6) out.add(value);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) distinctiveStrings(v, out);
  }
  return out;
}

/** Which of `values` appear in plaintext in the payloads of a raw history. */
export function plaintextInRawHistory(history: temporal.api.history.v1.IHistory, values: Iterable<string>): string[] {
  const text = payloadsIn(history).map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8')).join('\n');
  return [...values].filter((v) => text.includes(v));
}

/** All text in a value (byte arrays as UTF-8), joined: what a search of the whole object would see. */
export function textOf(value: unknown): string {
  const texts: string[] = [];
  collectText(value, texts);
  return texts.join('\n');
}

export interface LeakReport {
  /** Where each leaked value was found. */
  found: { value: string; where: string }[];
  /** How many history events were scanned (so a test can assert the scan saw something). */
  historyEvents: number;
}

export async function scanRunForSecrets(client: Client, workflowId: string, secrets: string[], extra: Record<string, unknown> = {}): Promise<LeakReport> {
  const raw = await client.workflow.getHandle(workflowId).fetchHistory();
  const history = await decodedHistory(client, workflowId, raw);
  const sources: Record<string, unknown> = { history, logs: capturedLogs, ...extra };
  const found: LeakReport['found'] = [];
  for (const [where, value] of Object.entries(sources)) {
    const texts: string[] = [];
    collectText(value, texts);
    const all = texts.join('\n');
    for (const s of secrets) if (all.includes(s)) found.push({ value: s, where });
  }
  // The server must hold no plaintext of the run's input (the decoded start event's payload).
  const started = (history as temporal.api.history.v1.IHistory).events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
  const inputs = started.map((p) => {
    try {
      return client.options.loadedDataConverter.payloadConverter.fromPayload(p);
    } catch {
      return undefined;
    }
  });
  for (const value of plaintextInRawHistory(raw, distinctiveStrings(inputs))) found.push({ value, where: 'raw history (plaintext input)' });
  return { found, historyEvents: raw.events?.length ?? 0 };
}
