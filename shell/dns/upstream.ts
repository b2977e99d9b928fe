/**
 * Where the managed dnsmasq sends names outside the cluster domain: the servers the shell's config
 * lists, or else the host's own resolvers (the `nameserver` lines of /etc/resolv.conf, read each
 * time dnsmasq starts). The cluster domain itself is never sent anywhere (dnsmasq-child.ts).
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { messageOf } from '../../common/errors';

/** The host's resolver config, read when the shell's config lists no upstream servers. */
export const RESOLV_CONF = '/etc/resolv.conf';

/** An interface name as a zone id may carry it (Linux allows at most 15 characters). */
const ZONE_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/** What an upstream entry says: an address, and its port (53 unless given). */
interface Server {
  address: string;
  port: number;
}

/** "IP" or "IP#PORT" (dnsmasq's own form, as in `--server`), or null if it is not that. */
function parseServer(entry: string): Server | null {
  const hash = entry.lastIndexOf('#');
  const address = hash < 0 ? entry : entry.slice(0, hash);
  const portText = hash < 0 ? '53' : entry.slice(hash + 1);
  if (!/^[1-9][0-9]{0,4}$/.test(portText) || Number(portText) > 65535) return null;
  if (net.isIP(address) === 0) return null;
  const zoneAt = address.indexOf('%');
  if (zoneAt >= 0 && !ZONE_RE.test(address.slice(zoneAt + 1))) return null;
  return { address, port: Number(portText) };
}

/** Why `entry` is not an upstream server ("IP" or "IP#PORT"), or null when it is one. */
export function upstreamProblem(entry: string): string | null {
  if (typeof entry === 'string' && parseServer(entry) !== null) return null;
  return 'must be an IPv4 or IPv6 address, optionally with "#PORT" (e.g. "10.0.0.1", "127.0.0.1#5300", "::1")';
}

/**
 * Pure: the nameserver addresses of a resolv.conf text, in order and without repeats. Like the C
 * library, it reads lines "nameserver ADDRESS" (anything after the address is ignored) and skips
 * everything else: comments, other keywords, addresses that are not IP addresses, and the
 * unspecified 0.0.0.0 and ::, which name no server.
 */
export function parseResolvConf(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const [keyword, address] = line.trim().split(/\s+/);
    if (keyword !== 'nameserver' || address === undefined || address === '0.0.0.0' || address === '::') continue;
    if (parseServer(address)?.address === address && !found.includes(address)) found.push(address);
  }
  return found;
}

/** The servers dnsmasq forwards to, where they came from, and why there are none if so. */
export interface Upstream {
  servers: string[];
  /** "config", or the resolv.conf file they were read from. */
  from: string;
  /** Entries left out because they name this dnsmasq itself (it would ask itself, in a loop). */
  dropped: string[];
  /** Set when the file gave none: why (it could not be read, or names no server). */
  problem?: string;
}

/**
 * The upstream servers: `configured` when given (checked already; [] means none), else the
 * nameservers of `resolvConf`; either way without `self` (our own address and port).
 * Never throws: an unreadable file gives no servers, with the reason.
 */
export async function findUpstream(configured: readonly string[] | undefined, resolvConf: string, self: Server): Promise<Upstream> {
  const isSelf = (entry: string): boolean => {
    const s = parseServer(entry);
    return s !== null && s.address === self.address && s.port === self.port;
  };
  const split = (entries: readonly string[], from: string): Upstream => ({
    servers: entries.filter((e) => !isSelf(e)),
    from,
    dropped: entries.filter(isSelf),
  });
  if (configured) return split(configured, 'config');
  let text: string;
  try {
    text = await fs.readFile(resolvConf, 'utf8');
  } catch (err) {
    return { servers: [], from: resolvConf, dropped: [], problem: `cannot read it: ${messageOf(err)}` };
  }
  const found = split(parseResolvConf(text), resolvConf);
  if (found.servers.length > 0) return found;
  return { ...found, problem: found.dropped.length > 0 ? 'its only nameserver is this dnsmasq itself' : 'it has no "nameserver" line with an IP address' };
}
