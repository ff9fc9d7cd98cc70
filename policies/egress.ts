/**
 * Egress allow-list matching: does a workspace's rule for a runtime admit a URL. Pure; used by the
 * guarded HTTP client at every call and by the policy loader to catch connections their own rules
 * would refuse. MAINTENANCE: keep docs/runtimes.md "Egress" in sync.
 */
import type { EgressRule } from './connections';
import { cidrContains, parseCidr, parseIp } from './ip';

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

/** `host:port` as the allow-list compares it (lower case, IPv6 in brackets, default port filled in). */
export function hostKey(url: URL): { host: string; port: number } {
  return { host: url.hostname.toLowerCase(), port: url.port ? Number(url.port) : defaultPort(url.protocol) };
}

/**
 * True when one allow-list entry admits `host` on `port`. `*.example.com` admits sub-domains only. An
 * address or CIDR entry (`10.0.0.0/8`, `[fd00::/8]`) admits URLs written with an address of its own
 * family in that range, compared as addresses (`[0:0::1]` is `[::1]`); never host names, whatever
 * they resolve to, and never an IPv6 form of an IPv4 address.
 */
export function entryAdmits(entry: string, host: string, port: number): boolean {
  // IPv6 entries are bracketed like URL host names: `[::1]:8080`.
  const split = entry.startsWith('[') ? entry.indexOf(']') + 1 : entry.indexOf(':') < 0 ? entry.length : entry.indexOf(':');
  const entryHost = entry.slice(0, split);
  const entryPort = entry.length > split ? entry.slice(split + 1) : undefined;
  if (entryPort === undefined ? port !== 80 && port !== 443 : entryPort !== '*' && Number(entryPort) !== port) return false;
  if (entryHost.startsWith('*.')) return host.endsWith(entryHost.slice(1)) && host.length > entryHost.length - 1;
  const range = parseCidr(entryHost);
  if (range) {
    const ip = parseIp(host, false);
    return ip !== undefined && cidrContains(range, ip);
  }
  return entryHost === host;
}

export function allowListAdmits(rule: EgressRule | undefined, url: URL): boolean {
  if (!rule) return false;
  const { host, port } = hostKey(url);
  return rule.hosts.some((e) => entryAdmits(e, host, port));
}
