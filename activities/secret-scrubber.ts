/**
 * Remembers the secret values one activity fetched and masks them wherever they appear in what the
 * activity returns or throws: a runtime that echoes a credential back (in a body or an error) must not
 * carry it into workflow history, logs or evidence. Also masks the usual encodings (base64, URL, Basic).
 */
import type { JsonValue } from '../workflows/types';
import type { Secret } from './secrets-port';

const MASK = '[secret]';
/** Shorter values would mask ordinary words; credentials are longer than this. */
const MIN_LENGTH = 6;

export class SecretScrubber {
  private readonly values = new Set<string>();

  /** Note a secret's values (and their encodings); returns it unchanged. */
  remember(secret: Secret): Secret {
    const vals = Object.values(secret).filter((v) => typeof v === 'string' && v.length >= MIN_LENGTH);
    for (const v of vals) {
      this.values.add(v);
      this.values.add(Buffer.from(v).toString('base64'));
      this.values.add(encodeURIComponent(v));
    }
    const user = secret.username ?? secret.user;
    if (user && secret.password) this.values.add(Buffer.from(`${user}:${secret.password}`).toString('base64'));
    return secret;
  }

  text(s: string): string {
    let out = s;
    // Longest first, so a value containing another is masked whole.
    for (const v of [...this.values].sort((a, b) => b.length - a.length)) if (v.length >= MIN_LENGTH) out = out.split(v).join(MASK);
    return out;
  }

  json(value: JsonValue): JsonValue {
    if (!this.values.size) return value;
    if (typeof value === 'string') return this.text(value);
    if (Array.isArray(value)) return value.map((v) => this.json(v));
    if (value === null || typeof value !== 'object') return value;
    const out: { [k: string]: JsonValue } = {};
    for (const [k, v] of Object.entries(value)) out[this.text(k)] = this.json(v);
    return out;
  }
}
