/**
 * The shell's DNS: cluster names in dnsmasq's addn-hosts file, and the dnsmasq that serves them.
 */
export { renderHosts, type DnsRecord } from './hosts';
export { startDns, type Dns, type DnsOptions } from './dnsmasq';
