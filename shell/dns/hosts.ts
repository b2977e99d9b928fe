/** The dnsmasq hosts file: its text for a record set (pure); common/atomic-file.ts writes it. */
import net from 'node:net';
import { BerthError } from '../../common/errors';
import { DNS_NAME_RE } from '../../common/names';

/** One name of the cluster: `<name>.<domain>` resolves to `address`. */
export interface DnsRecord {
  /** A DNS label: lowercase a-z, 0-9 and inner "-", 1-63 characters. */
  name: string;
  /** An IPv4 or IPv6 address (no zone id). */
  address: string;
}

/** Throws BerthError BAD_REQUEST unless `domain` is one or more lowercase hostname labels joined by dots. */
export function checkDomain(domain: string): void {
  if (typeof domain !== 'string' || domain.length > 253 || !domain.split('.').every((l) => DNS_NAME_RE.test(l))) {
    throw new BerthError('BAD_REQUEST', `dns domain ${JSON.stringify(domain)} must be lowercase hostname labels joined by "."`);
  }
}

/** The problem with one record as text, or null when it is fine. */
function problemWith(r: DnsRecord): string | null {
  if (typeof r?.name !== 'string' || !DNS_NAME_RE.test(r.name)) {
    return 'name must be a lowercase hostname label (a-z, 0-9, inner "-", at most 63)';
  }
  if (typeof r.address !== 'string' || net.isIP(r.address) === 0 || r.address.includes('%')) {
    return 'address must be an IPv4 or IPv6 address';
  }
  return null;
}

/**
 * Pure: the hosts-file text for a record set, with a header comment, then one
 * "<address> <name>.<domain>" line per record, sorted by name then address (the same set always
 * gives the same text). A name given twice keeps both lines (dnsmasq answers with both).
 * Throws BerthError BAD_REQUEST naming the record for an invalid name or address, or for an
 * invalid domain.
 */
export function renderHosts(domain: string, records: DnsRecord[]): string {
  checkDomain(domain);
  for (const r of records) {
    const problem = problemWith(r);
    if (problem) {
      throw new BerthError('BAD_REQUEST', `dns record ${JSON.stringify(r?.name)} -> ${JSON.stringify(r?.address)}: ${problem}`);
    }
  }
  const sorted = [...records].sort((a, b) => compare(a.name, b.name) || compare(a.address, b.address));
  const header = [
    '# Written by the berth shell: every change replaces this file. Do not edit.',
    `# domain: ${domain}, records: ${records.length}`,
  ];
  return [...header, ...sorted.map((r) => `${r.address} ${r.name}.${domain}`)].join('\n') + '\n';
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
