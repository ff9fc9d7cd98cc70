/**
 * IP addresses as bytes, CIDR ranges, and the IPv4 addresses an IPv6 address can carry. Pure (no Node
 * built-ins): the policy schema, the allow-list and the egress guard share one reading of an address,
 * so `::ffff:a9fe:a9fe`, `64:ff9b::169.254.169.254` and `0251.0376.0251.0376` are all 169.254.169.254.
 * MAINTENANCE: keep docs/runtimes.md "Egress" in sync.
 */

/** 4 bytes for IPv4, 16 for IPv6. */
export interface Ip {
  v: 4 | 6;
  bytes: number[];
}

export interface Cidr extends Ip {
  prefix: number;
}

/** One inet_aton part: decimal, octal (leading 0) or hex (0x). */
function atonPart(p: string): number | undefined {
  if (/^0x[0-9a-f]*$/i.test(p)) return p.length === 2 ? 0 : parseInt(p.slice(2), 16);
  if (/^0[0-7]*$/.test(p)) return parseInt(p, 8);
  if (/^[1-9][0-9]*$/.test(p)) return Number(p);
  return undefined;
}

/**
 * IPv4 as a resolver or socket library may read it. `loose` accepts what inet_aton accepts (1 to 4
 * parts, octal, hex: `2852039166`, `0xa9fea9fe`, `169.254.43518`); otherwise only `a.b.c.d` in decimal.
 */
function parseIPv4(text: string, loose = false): number[] | undefined {
  if (!loose) {
    const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(text);
    const o = m?.slice(1).map(Number);
    return o && o.every((x) => x <= 255) ? o : undefined;
  }
  const parts = text.replace(/\.$/, '').split('.');
  if (parts.length > 4 || parts.some((p) => p.length === 0 || p.length > 12)) return undefined;
  const nums = parts.map(atonPart);
  if (nums.some((n) => n === undefined)) return undefined;
  const last = nums.pop()!;
  if (nums.some((n) => n! > 255) || last >= 256 ** (4 - nums.length)) return undefined;
  const tail = [24, 16, 8, 0].slice(nums.length).map((s) => Math.floor(last / 2 ** s) % 256);
  return [...(nums as number[]), ...tail];
}

function groups(part: string): number[] | undefined {
  if (part === '') return [];
  const out: number[] = [];
  for (const g of part.split(':')) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    out.push(parseInt(g, 16));
  }
  return out;
}

/** IPv6 in any RFC 4291 text form (`::`, a dotted IPv4 tail), with an optional zone id (`%eth0`). */
function parseIPv6(text: string): number[] | undefined {
  let t = text.replace(/%[^%]*$/, '');
  const lastColon = t.lastIndexOf(':');
  const tail4 = t.slice(lastColon + 1);
  if (tail4.includes('.')) {
    const o = parseIPv4(tail4);
    if (!o) return undefined;
    t = `${t.slice(0, lastColon + 1)}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const halves = t.split('::');
  if (halves.length > 2) return undefined;
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  const known = head.length + tail.length;
  if (halves.length === 2 ? known > 7 : known !== 8) return undefined;
  const all = [...head, ...Array<number>(8 - known).fill(0), ...tail];
  return all.flatMap((g) => [g >> 8, g & 255]);
}

/** An address as written in a URL host, a DNS answer or a policy (IPv6 may be bracketed). */
export function parseIp(text: string, loose = true): Ip | undefined {
  const t = text.trim().toLowerCase();
  if (t.includes(':')) {
    const bytes = parseIPv6(t.replace(/^\[(.*)\]$/, '$1'));
    return bytes && { v: 6, bytes };
  }
  const bytes = parseIPv4(t, loose);
  return bytes && { v: 4, bytes };
}

/** `10.0.0.0/8`, `fd00::/8`, or one address (a /32 or /128). Host bits must be zero, to catch typos. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, ...rest] = text.trim().replace(/^\[(.*)\]$/, '$1').split('/');
  if (rest.length) return undefined;
  const ip = parseIp(addr, false);
  if (!ip) return undefined;
  const max = ip.v === 4 ? 32 : 128;
  const prefix = len === undefined ? max : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  const cidr = { ...ip, prefix };
  return masked(ip.bytes, prefix).every((b, i) => b === ip.bytes[i]) ? cidr : undefined;
}

/** The first `prefix` bits of `bytes`, the rest zero. */
function masked(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => (i * 8 + 8 <= prefix ? b : i * 8 >= prefix ? 0 : b & (0xff << (8 - (prefix - i * 8))) & 0xff));
}

/** Whether `ip` lies in `cidr` (same family only: embedded forms are unwrapped by `embeddedIPv4`). */
export function cidrContains(cidr: Cidr, ip: Ip): boolean {
  return cidr.v === ip.v && masked(ip.bytes, cidr.prefix).every((b, i) => b === cidr.bytes[i]);
}

const v4 = (bytes: number[]): Ip => ({ v: 4, bytes });
const zero = (b: number[], from: number, to: number) => b.slice(from, to).every((x) => x === 0);
const startsWith = (b: number[], prefix: number[]) => prefix.every((x, i) => b[i] === x);

/**
 * The IPv4 addresses an IPv6 address carries and may be routed to: IPv4-mapped (::ffff:0:0/96),
 * IPv4-translated (::ffff:0:0:0/96), NAT64 (64:ff9b::/96, and 64:ff9b:1::/48 at each RFC 6052 prefix
 * length, since the operator's choice is unknown), 6to4 (2002::/16), Teredo (2001::/32: server and
 * de-obfuscated client) and IPv4-compatible (::/96, except :: and ::1). Empty for anything else.
 */
export function embeddedIPv4(ip: Ip): Ip[] {
  if (ip.v !== 6) return [];
  const b = ip.bytes;
  const last = v4(b.slice(12));
  if (zero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff) return [last];
  if (zero(b, 0, 8) && b[8] === 0xff && b[9] === 0xff && zero(b, 10, 12)) return [last];
  if (startsWith(b, [0, 0x64, 0xff, 0x9b]) && zero(b, 4, 12)) return [last];
  if (startsWith(b, [0, 0x64, 0xff, 0x9b, 0, 1])) {
    // RFC 6052 layouts for /48, /56, /64 (u-octet b[8] and the suffix zero) and /96; zero padding is no address.
    const layouts = [
      { ok: b[8] === 0 && zero(b, 11, 16), ip: v4([b[6], b[7], b[9], b[10]]) },
      { ok: b[8] === 0 && zero(b, 12, 16), ip: v4([b[7], b[9], b[10], b[11]]) },
      { ok: b[8] === 0 && zero(b, 13, 16), ip: v4(b.slice(9, 13)) },
      { ok: true, ip: last },
    ];
    return layouts.filter((l) => l.ok && !zero(l.ip.bytes, 0, 4)).map((l) => l.ip);
  }
  if (b[0] === 0x20 && b[1] === 0x02) return [v4(b.slice(2, 6))];
  if (startsWith(b, [0x20, 0x01, 0, 0])) return [v4(b.slice(4, 8)), v4(b.slice(12).map((x) => x ^ 0xff))];
  if (zero(b, 0, 12) && !(zero(b, 12, 15) && b[15] <= 1)) return [last];
  return [];
}

export function formatIp(ip: Ip): string {
  if (ip.v === 4) return ip.bytes.join('.');
  const g = Array.from({ length: 8 }, (_, i) => (ip.bytes[2 * i] << 8) | ip.bytes[2 * i + 1]);
  // Compress the longest run of two or more zero groups, as RFC 5952 writes it.
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; i++) {
    let n = 0;
    while (i + n < 8 && g[i + n] === 0) n++;
    if (n > best.len) best = { at: i, len: n };
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  return best.at < 0 ? hex(g) : `${hex(g.slice(0, best.at))}::${hex(g.slice(best.at + best.len))}`;
}
