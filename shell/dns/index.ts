/**
 * The shell's DNS: cluster names in dnsmasq's addn-hosts file, and the dnsmasq that serves them
 * and forwards every other name upstream.
 */
export { renderHosts, type DnsRecord } from './hosts';
export { startDns, type Dns, type DnsOptions } from './dnsmasq';
export { parseResolvConf, upstreamProblem } from './upstream';
