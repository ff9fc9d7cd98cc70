/**
 * Addresses no runtime may reach (link-local, cloud metadata, unspecified) unless a rule explicitly
 * allows them. Pure functions; the guarded client applies them before connecting and to every
 * resolved address. Allow-list matching is part of the policy language: policies/egress.ts.
 */
import { isIP } from 'node:net';

/** Host names of cloud metadata services, refused like their addresses. */
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal']);

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
