/**
 * Cluster DNS end to end: the shell runs its own dnsmasq on a loopback port, and a session's DNS
 * name answers there after create, moves on edit, and is gone after delete.
 */
import { Resolver } from 'node:dns/promises';
import { randomUUID } from 'node:crypto';
import { freePort } from '../helpers/ports';
import { Cluster, startCluster, until } from '../helpers/cluster';

const runLabel = `shell-dns-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
let resolver: Resolver;

/** The A records of a name, or the error code (ENOTFOUND for NXDOMAIN). */
async function lookup(name: string): Promise<string[] | string> {
  try {
    return await resolver.resolve4(name);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  }
}

beforeAll(async () => {
  const port = await freePort();
  cluster = await startCluster({
    runLabel,
    agents: 2,
    shellConfig: { dns: { domain: 'berth.test', manage: { listenAddress: '127.0.0.1', port, upstream: [] } } },
  });
  resolver = new Resolver({ timeout: 1000, tries: 2 });
  resolver.setServers([`127.0.0.1:${port}`]);
  await until('both agents online', () => cluster.ssh('vic', ['agents', '--json']).then((r) => (JSON.parse(r.out || '[]') as Array<{ status: string }>).filter((a) => a.status === 'online').length), (n) => n === 2);
});

afterAll(async () => {
  await cluster?.dispose();
});

test('a name answers after create, moves on edit, and is gone after delete', async () => {
  expect(await lookup('alpha.berth.test')).toBe('ENOTFOUND');
  const created = await cluster.ssh('alice', ['create', '--name', 'a', '--agent', 'agent-2', '--dns', 'alpha']);
  expect(created.code).toBe(0);
  expect(await until('alpha answers', () => lookup('alpha.berth.test'), (r) => Array.isArray(r))).toEqual(['127.0.0.1']);

  expect((await cluster.ssh('alice', ['edit', 'a', '--dns', 'beta'])).code).toBe(0);
  expect(await until('beta answers', () => lookup('beta.berth.test'), (r) => Array.isArray(r))).toEqual(['127.0.0.1']);
  expect(await until('alpha is gone', () => lookup('alpha.berth.test'), (r) => r === 'ENOTFOUND')).toBe('ENOTFOUND');

  expect((await cluster.ssh('alice', ['delete', 'a', '--yes'])).code).toBe(0);
  expect(await until('beta is gone', () => lookup('beta.berth.test'), (r) => r === 'ENOTFOUND')).toBe('ENOTFOUND');
});

test('names outside the cluster domain are never forwarded', async () => {
  const r = await lookup('example.com');
  expect(Array.isArray(r)).toBe(false);
});
