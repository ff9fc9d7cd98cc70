/**
 * Remembers the secret values one activity fetched (and credentials it minted, such as a StackStorm
 * token) and masks them wherever they appear in what the activity returns or throws: a runtime that
 * echoes a credential back (in a body or an error) must not carry it into workflow history, logs or
 * evidence. Also masks the usual encodings: base64 and base64url (at any byte offset, so a secret
 * inside a larger encoded blob is found), hex in either case, URL and JSON escaping, and the
 * `user:password` pair of Basic auth. MAINTENANCE: keep docs/runtimes.md "Credentials" in sync.
 */
import type { JsonValue } from '../../workflows/types';
import type { Secret } from './port';
import { CLIP_MARK, CLIP_MARK_PATTERN } from '../utf8';

const MASK = '[secret]';
/**
 * Forms at least this long are masked wherever they appear. Shorter ones (a 3-character password,
 * the hex of a 2-character value) are masked only as whole words, bounded by non-alphanumerics or the
 * ends of the text, so `eu` is masked in `region eu` but `europe` stays readable.
 */
const ANYWHERE_MIN = 6;
/** A clip may cut a secret: a tail before a clip mark that starts a form is masked from this length. */
const CUT_MIN = 4;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const ALNUM = /[A-Za-z0-9]/;
/** A pattern for `v` as a whole word: no letter or digit may continue it where it ends in one. */
const wordOf = (v: string) => `${ALNUM.test(v[0]) ? '(?<![A-Za-z0-9])' : ''}${escapeRegExp(v)}${ALNUM.test(v[v.length - 1]) ? '(?![A-Za-z0-9])' : ''}`;

/**
 * The base64 characters that depend only on `value` when it sits `offset` bytes into a longer
 * encoded stream: what a substring search can find whatever came before or after it.
 */
function base64Core(value: Buffer, offset: number, alphabet: 'base64' | 'base64url'): string {
  const text = Buffer.concat([Buffer.alloc(offset), value]).toString(alphabet).replace(/=+$/, '');
  return text.slice(Math.ceil((offset * 8) / 6), Math.floor(((offset + value.length) * 8) / 6));
}

/** Every form of `value` a runtime or a library might print. */
function encodingsOf(value: string): Set<string> {
  const bytes = Buffer.from(value, 'utf8');
  const hex = bytes.toString('hex');
  const forms = new Set([value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1), hex, hex.toUpperCase()]);
  for (const alphabet of ['base64', 'base64url'] as const) {
    forms.add(bytes.toString(alphabet).replace(/=+$/, ''));
    for (const offset of [0, 1, 2]) {
      const core = base64Core(bytes, offset, alphabet);
      if (core.length >= ANYWHERE_MIN) forms.add(core);
    }
  }
  forms.delete('');
  return forms;
}

export class SecretScrubber {
  private readonly anywhere = new Set<string>();
  private readonly words = new Set<string>();
  private readonly seen = new Set<string>();
  private sorted?: string[];
  private wordPattern?: RegExp;

  /** Note a secret's values (and their encodings); returns it unchanged. */
  remember(secret: Secret): Secret {
    for (const v of Object.values(secret)) if (typeof v === 'string') this.add(v);
    const user = secret.username ?? secret.user;
    if (user && secret.password) this.add(`${user}:${secret.password}`);
    return secret;
  }

  /** Note one credential (a token the adapter minted), with its encodings. */
  add(value: string): void {
    if (typeof value !== 'string' || !value || this.seen.has(value)) return;
    this.seen.add(value);
    for (const form of encodingsOf(value)) (form.length >= ANYWHERE_MIN ? this.anywhere : this.words).add(form);
    this.sorted = undefined;
    this.wordPattern = undefined;
  }

  text(s: string): string {
    if (!this.anywhere.size && !this.words.size) return s;
    // Longest first, so a value containing another is masked whole.
    this.sorted ??= [...this.anywhere, ...this.words].sort((a, b) => b.length - a.length);
    let out = s;
    for (const v of this.sorted) if (v.length >= ANYWHERE_MIN && out.includes(v)) out = out.split(v).join(MASK);
    if (this.words.size) {
      this.wordPattern ??= new RegExp(this.sorted.filter((v) => v.length < ANYWHERE_MIN).map(wordOf).join('|'), 'g');
      out = out.replace(this.wordPattern, MASK);
    }
    return out.includes(CLIP_MARK) ? this.cutTails(out) : out;
  }

  /** Mask the start of a secret that a clip (see utf8.ts) cut off just before its mark. */
  private cutTails(s: string): string {
    let out = '';
    let last = 0;
    for (const m of s.matchAll(CLIP_MARK_PATTERN)) {
      const piece = s.slice(last, m.index);
      const k = this.cutLength(piece);
      out += (k ? piece.slice(0, piece.length - k) + MASK : piece) + m[0];
      last = m.index! + m[0].length;
    }
    return out + s.slice(last);
  }

  /** How many characters at the end of `text` are the start of a form (0 if none). */
  private cutLength(text: string): number {
    for (const form of this.sorted!) {
      const word = form.length < ANYWHERE_MIN;
      for (let k = form.length - 1; k >= Math.max(1, Math.min(CUT_MIN, form.length - 1)); k--) {
        if (!text.endsWith(form.slice(0, k))) continue;
        if (!word || !ALNUM.test(form[0]) || !ALNUM.test(text.charAt(text.length - k - 1))) return k;
      }
    }
    return 0;
  }

  json(value: JsonValue): JsonValue {
    if (!this.anywhere.size && !this.words.size) return value;
    if (typeof value === 'string') return this.text(value);
    if (Array.isArray(value)) return value.map((v) => this.json(v));
    if (value === null || typeof value !== 'object') return value;
    const out: { [k: string]: JsonValue } = {};
    for (const [k, v] of Object.entries(value)) out[this.text(k)] = this.json(v);
    return out;
  }
}

const REDACTED_FIELD = '[redacted]';

/**
 * Credentials a runtime's error text may carry that are not the workspace's own secret (SecretScrubber
 * knows only those): a model provider's key in a URL or a message (`?key=AIza…`, `sk-proj-…`,
 * `sk-ant-api03-…`), JWTs, GitHub and Slack tokens. Applied to failure text; the workflow's own
 * `redactText` then masks `Bearer …` and `api_key=…`.
 */
const CREDENTIAL_TEXT: [RegExp, string][] = [
  [/([?&;](?:key|api[-_]?key|apikey|access[-_]?token|token|sig|signature|password|secret|client[-_]?secret|code)=)[^&\s"'#<>]+/gi, '$1[redacted]'],
  [/\b(?:sk|pk|rk)-(?:[A-Za-z0-9]+-){0,3}[A-Za-z0-9_-]{16,}/g, '[redacted]'],
  [/\bAIza[0-9A-Za-z_-]{30,}/g, '[redacted]'],
  [/\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/g, '[redacted]'],
  [/\b(?:gh[pousr]|github_pat)_[A-Za-z0-9_]{20,}/g, '[redacted]'],
  [/\bxox[abposr]-[A-Za-z0-9-]{10,}/g, '[redacted]'],
];

/** Mask credential-shaped text (see CREDENTIAL_TEXT). */
export function maskCredentialText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of CREDENTIAL_TEXT) out = out.replace(pattern, replacement);
  return out;
}

/** Words of a field name: `accessToken` and `access-token` give [access, token]. */
function fieldWords(key: string): string[] {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
}

/** Words that make a field a credential wherever they appear in its name. */
const CREDENTIAL_WORD = /secret|passw|passphrase|credential|authori[sz]ation|cookie|apikey|privatekey|bearer|jwt|pwd/;
/** Before `key`, these words make it a credential (`ssh_key`, `client_key`); `primary_key` stays. */
const KEY_KIND = new Set(['api', 'private', 'access', 'secret', 'ssh', 'subscription', 'client', 'signing', 'encryption', 'master']);
/** Before plural `tokens`, these words make it a list of credentials (`auth_tokens`), not a count. */
const TOKENS_KIND = new Set(['auth', 'access', 'refresh', 'api', 'id', 'bearer', 'session']);
/** After `token`, these words make the field a count or a description of tokens, not one (`token_usage`, `token_count`). */
const TOKEN_METRIC = new Set(['usage', 'usages', 'count', 'counts', 'limit', 'limits', 'used', 'type', 'id', 'ids', 'index', 'length', 'budget', 'estimate', 'details', 'stats', 'cost', 'costs']);

/**
 * Whether a field name says it holds a credential: `password`, `client_secret`, `authorization`,
 * `api_key`/`apiKey`/`x-api-key`, `private_key`, and token fields (`token`, `access_token`,
 * `refreshToken`, `token_value`). Not token counts and usage (`token_usage`, `prompt_tokens`,
 * `max_tokens`, `token_count`): an LLM flow's usage figures must survive. Values are masked by what
 * they are, too (SecretScrubber), so a secret under an innocent name is still caught.
 */
export function isCredentialField(key: string): boolean {
  const w = fieldWords(key);
  if (w.some((x) => CREDENTIAL_WORD.test(x))) return true;
  for (let i = 0; i < w.length; i++) {
    const next = w[i + 1];
    if (KEY_KIND.has(w[i]) && next === 'key') return true;
    if (TOKENS_KIND.has(w[i]) && next === 'tokens') return true;
    // `token`, `accesstoken`, `id_token` ... ; plural `tokens` is a count.
    if (w[i].endsWith('token') && (next === undefined || !TOKEN_METRIC.has(next))) return true;
  }
  return false;
}

/** Fields that name the header or setting whose value sits beside them (`{key: "Authorization", value}`). */
const PAIR_NAME = ['key', 'name', 'header'];

/** `auth`, `basic_auth` holding text is a credential (`Bearer …`, `user:pass`); an object under it is walked. */
const authText = (key: string, v: JsonValue) => typeof v === 'string' && fieldWords(key).at(-1) === 'auth';

/**
 * Replace values under credential-named fields, at any depth (runtime output before it enters history).
 * Also a value paired with a credential name: `{key|name|header: "Authorization", value: ...}` (a
 * Langflow API Request component's headers table) and `["Authorization", "Bearer ..."]` (header tuples).
 */
export function redactCredentialFields(value: JsonValue): JsonValue {
  if (Array.isArray(value)) {
    if (value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string' && isCredentialField(value[0])) return [value[0], REDACTED_FIELD];
    return value.map(redactCredentialFields);
  }
  if (value === null || typeof value !== 'object') return value;
  const named = PAIR_NAME.some((f) => typeof value[f] === 'string' && isCredentialField(value[f] as string));
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(value)) out[k] = isCredentialField(k) || authText(k, v) || (named && k === 'value') ? REDACTED_FIELD : redactCredentialFields(v);
  return out;
}
