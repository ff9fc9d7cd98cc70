/**
 * Addresses no runtime may reach, matched as CIDR ranges over parsed addresses: an IPv6 form that
 * embeds an IPv4 address (mapped, translated, NAT64, 6to4, Teredo, compatible) is judged as that IPv4
 * address too, and IPv4 in any inet_aton notation is read as the socket would. Pure functions; the
 * guarded client applies them to the URL's address before connecting and to every address a name
 * resolves to. Allow-list matching is part of the policy language: policies/egress.ts.
 * MAINTENANCE: keep docs/runtimes.md "Egress" in sync.
 */
import { type Cidr, type Ip, cidrContains, embeddedIPv4, formatIp, parseCidr, parseIp } from '../../policies/ip';

/** Host names of cloud metadata services, refused like their addresses. */
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal']);

const ranges = (why: string, ...cidrs: string[]) => cidrs.map((c) => ({ cidr: parseCidr(c)!, why }));

/** Refused whatever the rule says: no runtime lives at these. */
const ALWAYS = [
  ...ranges('an unspecified address', '0.0.0.0/8', '::/128'),
  ...ranges('a multicast address', '224.0.0.0/4', 'ff00::/8'),
  ...ranges('a reserved or broadcast address', '240.0.0.0/4'),
];

/** Refused unless the rule says `allowLinkLocal: true`. */
const LINK_LOCAL_OR_METADATA = [
  // 169.254.169.254 is the AWS, GCP, Azure and OpenStack metadata address.
  ...ranges('a link-local or metadata address', '169.254.0.0/16'),
  ...ranges('a link-local address', 'fe80::/10'),
  // AWS IPv6 metadata, Azure wire server, Alibaba metadata.
  ...ranges('a cloud metadata address', 'fd00:ec2::254', '168.63.129.16', '100.100.100.200'),
  // Oracle Cloud metadata (192.0.0.192) sits in the IETF protocol assignments block.
  ...ranges('a cloud metadata or IETF protocol address', '192.0.0.0/24'),
];

function judge(ip: Ip, allowLinkLocal: boolean, deny: Cidr[]): string | undefined {
  const hit = (list: { cidr: Cidr; why: string }[]) => list.find((r) => cidrContains(r.cidr, ip))?.why;
  if (deny.some((c) => cidrContains(c, ip))) return 'on the rule\'s deny list';
  return hit(ALWAYS) ?? (allowLinkLocal ? undefined : hit(LINK_LOCAL_OR_METADATA));
}

/**
 * Why an address is refused, or undefined (also for anything that is not an address: see
 * `blockedName`). `deny` holds the rule's own CIDRs; they win over `allowLinkLocal`. Loopback and
 * private ranges are not refused here: the allow-list decides (runtimes live there).
 */
export function blockedAddress(address: string, allowLinkLocal: boolean, deny: readonly string[] = []): string | undefined {
  const ip = parseIp(address);
  if (!ip) return undefined;
  const denied = deny.map(parseCidr).filter((c): c is Cidr => c !== undefined);
  const why = judge(ip, allowLinkLocal, denied);
  if (why) return why;
  for (const inner of embeddedIPv4(ip)) {
    const innerWhy = judge(inner, allowLinkLocal, denied);
    if (innerWhy) return `${innerWhy} (it carries ${formatIp(inner)})`;
  }
  return undefined;
}

/** True when `host` is an IP address in any notation a resolver would read as one. */
export const isAddress = (host: string): boolean => parseIp(host) !== undefined;

/** Refuse metadata host names before any lookup. */
export function blockedName(host: string, allowLinkLocal: boolean): string | undefined {
  if (allowLinkLocal) return undefined;
  return METADATA_NAMES.has(host.toLowerCase().replace(/\.$/, '')) ? 'a cloud metadata host' : undefined;
}
