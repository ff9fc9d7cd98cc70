/**
 * Worker log lines as JSON: one object per line, `{time, level, message, ...meta}`, with
 * credential-looking fields and text masked (the same redaction the evidence chain uses), so logs
 * can go to any collector without leaking what a runtime or an error quoted.
 */
import { DefaultLogger, type LogEntry, type LogLevel } from '@temporalio/worker';
import { redact, redactText } from '../workflows/evidence-chain';
import type { JsonValue } from '../workflows/types';

/** Meta as plain JSON: errors by message, bigints as strings, cycles cut. */
function plain(meta: Record<string, unknown>): JsonValue {
  const seen = new WeakSet<object>();
  const text = JSON.stringify(meta, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Error) return { name: v.name, message: v.message };
    if (v && typeof v === 'object') {
      if (seen.has(v)) return '[cycle]';
      seen.add(v);
    }
    return v;
  });
  return text === undefined ? {} : (JSON.parse(text) as JsonValue);
}

/** The JSON line for one log entry. */
export function jsonLogLine(entry: LogEntry): string {
  const meta = entry.meta ? redact(plain(entry.meta)) : {};
  const fields = meta && typeof meta === 'object' && !Array.isArray(meta) ? meta : { meta };
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  return JSON.stringify({ time, level: entry.level, message: redactText(entry.message, 4000), ...fields });
}

export function jsonLogger(level: LogLevel, write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): DefaultLogger {
  return new DefaultLogger(level, (entry) => write(jsonLogLine(entry)));
}
