/**
 * Egress rules for the guarded HTTP client: does a workspace's allow-list admit this URL, and is an
 * address one no runtime may reach (link-local, cloud metadata, unspecified) unless explicitly allowed.
 * Pure functions; the client applies them before connecting and to every resolved address.
 */
import { isIP } from 'node:net';
import type { EgressRule } from '../policies/connections';

/** Host names of cloud metadata services, refused like their addresses. */
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal']);

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

/** `host:port` as the allow-list compares it (lower case, IPv6 in brackets, default port filled in). */
export function hostKey(url: URL): { host: string; port: number } {
  return { host: url.hostname.toLowerCase(), port: url.port ? Number(url.port) : defaultPort(url.protocol) };
}

/** True when one allow-list entry admits `host` on `port`. `*.example.com` admits sub-domains only. */
export function entryAdmits(entry: string, host: string, port: number): boolean {
  // IPv6 entries are bracketed like URL host names: `[::1]:8080`.
  const split = entry.startsWith('[') ? entry.indexOf(']') + 1 : entry.indexOf(':') < 0 ? entry.length : entry.indexOf(':');
  const entryHost = entry.slice(0, split);
  const entryPort = entry.length > split ? entry.slice(split + 1) : undefined;
  if (entryPort === undefined ? port !== 80 && port !== 443 : entryPort !== '*' && Number(entryPort) !== port) return false;
  if (entryHost.startsWith('*.')) return host.endsWith(entryHost.slice(1)) && host.length > entryHost.length - 1;
  return entryHost === host;
}

export function allowListAdmits(rule: EgressRule | undefined, url: URL): boolean {
  if (!rule) return false;
  const { host, port } = hostKey(url);
  return rule.hosts.some((e) => entryAdmits(e, host, port));
}

function ipv4Octets(addr: string): number[] | undefined {
  const parts = addr.split('.').map(Number);
  return parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255) ? parts : undefined;
}

/**
 * Why an address is refused, or undefined. Link-local covers the AWS/GCP/Azure metadata address
 * 169.254.169.254; fd00:ec2::254 and 100.100.100.200 are the AWS IPv6 and Alibaba metadata addresses.
 */
export function blockedAddress(address: string, allowLinkLocal: boolean): string | undefined {
  let a = address.toLowerCase().replace(/^\[|\]$/g, '');
  // IPv4-mapped IPv6, dotted (::ffff:169.254.169.254) or as URL parsing normalises it (::ffff:a9fe:a9fe).
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  const mappedHex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a);
  if (mapped) a = mapped[1];
  else if (mappedHex) {
    const [hi, lo] = [parseInt(mappedHex[1], 16), parseInt(mappedHex[2], 16)];
    a = [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
  }
  const v = isIP(a);
  if (v === 4) {
    const o = ipv4Octets(a)!;
    if (o[0] === 0) return 'an unspecified address';
    if (allowLinkLocal) return undefined;
    if (o[0] === 169 && o[1] === 254) return 'a link-local or metadata address';
    if (a === '100.100.100.200') return 'a cloud metadata address';
    return undefined;
  }
  if (v === 6) {
    if (a === '::' || a === '0:0:0:0:0:0:0:0') return 'an unspecified address';
    if (allowLinkLocal) return undefined;
    if (/^fe[89ab][0-9a-f]?:/.test(a)) return 'a link-local address';
    if (a === 'fd00:ec2::254') return 'a cloud metadata address';
    return undefined;
  }
  return undefined;
}

/** Refuse metadata host names before any lookup. */
export function blockedName(host: string, allowLinkLocal: boolean): string | undefined {
  if (allowLinkLocal) return undefined;
  return METADATA_NAMES.has(host.toLowerCase().replace(/\.$/, '')) ? 'a cloud metadata host' : undefined;
}
