/**
 * Size bounds in UTF-8 bytes, the unit Temporal's payload limits and the evidence sinks count in (a
 * string's `length` counts UTF-16 units: 1,000 of them can be 3,000 bytes). A clipped text ends with a
 * fixed mark, which the secret scrubber recognises: the start of a secret cut off by a clip is masked
 * too.
 */

/** Starts the mark that ends a clipped text; the rest says how many bytes were cut. */
export const CLIP_MARK = '…[';
/** Matches the whole mark (`…[1234 more bytes]`). */
export const CLIP_MARK_PATTERN = /…\[\d+ more bytes\]/g;

export const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Bytes of the code point starting at `s[i]`, and how many UTF-16 units it takes. */
function codePointAt(s: string, i: number): { bytes: number; units: number } {
  const c = s.charCodeAt(i);
  if (c < 0x80) return { bytes: 1, units: 1 };
  if (c < 0x800) return { bytes: 2, units: 1 };
  const next = s.charCodeAt(i + 1);
  if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) return { bytes: 4, units: 2 };
  return { bytes: 3, units: 1 };
}

/**
 * `s` if it fits in `maxBytes` of UTF-8, otherwise its longest prefix that fits with the clip mark,
 * cut between code points (never inside a surrogate pair). Reads at most `maxBytes` of the text.
 */
export function clipUtf8(s: string, maxBytes: number): string {
  if (s.length * 3 <= maxBytes) return s;
  const total = utf8Bytes(s);
  if (total <= maxBytes) return s;
  const room = Math.max(0, maxBytes - 32);
  let bytes = 0;
  let i = 0;
  while (i < s.length) {
    const cp = codePointAt(s, i);
    if (bytes + cp.bytes > room) break;
    bytes += cp.bytes;
    i += cp.units;
  }
  return `${s.slice(0, i)}${CLIP_MARK}${total - bytes} more bytes]`;
}
