/**
 * `move REF --to AGENT` end to end: the OpenSSH client, a real shell, two real agents, real Docker.
 * A running session with a port, a DNS name, a command and a file in its home moves and keeps all
 * of them (listed once, on the target, running, its home intact, the source folder gone, its DNS
 * record in the shell's dnsmasq now at the target's address); a port
 * the target already gives another session refuses the move before anything moves (the session
 * is still on its source, unlocked, running again).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { freePort } from '../helpers/ports';
import { sessionCli } from '../helpers/session-cli';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `move-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
const { cli, json, list, find, inSession, startAndWait } = sessionCli(() => cluster, { trim: true });

/** The shell's own dnsmasq writes its records here (its state folder). */
const hostsFile = (): string => path.join(cluster.dir, 'state', 'dns.hosts');

beforeAll(async () => {
  const dnsPort = await freePort();
  cluster = await startCluster({ runLabel, agents: 2, shellConfig: { dns: { domain: 'berth', manage: { listenAddress: '127.0.0.1', port: dnsPort, upstream: [] } } } });
  await cluster.agentsOnline();
  // agent-2's sessions are named at an address of its own, so the DNS record tells the hosts apart.
  const a2 = cluster.agents[1]!;
  expect((await cli(`agent add agent-2 --host 127.0.0.1 --port ${a2.port} --fingerprint ${a2.fingerprint} --address 127.0.0.2`)).code).toBe(0);
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
});

const exists = (p: string): Promise<boolean> => fs.lstat(p).then(() => true, () => false);

test('a running session moves with its id, name, port, DNS name, command and home, and runs there', async () => {
  const port = await freePort();
  const s = await json<SessionJson>(`create --name mover --agent agent-1 --port ${port} --dns mover --command "bash -l"`);
  const [a1, a2] = cluster.agents;
  const payload = randomBytes(256 * 1024);
  await fs.writeFile(path.join(a1!.root, s.id, 'home', 'marker.bin'), payload);
  await startAndWait(s.id);
  await until('the DNS name at agent-1', () => fs.readFile(hostsFile(), 'utf8').catch(() => ''), (t) => t.includes('127.0.0.1 mover.berth'), 10_000);

  const r = await cli(`move mover --to agent-2`);
  expect({ code: r.code, err: r.err.split('\n').filter((l) => !l.startsWith('moving:')).join('') }).toEqual({ code: 0, err: '' });

  const mine = (await list()).filter((x) => x.id === s.id);
  expect(mine).toHaveLength(1);
  expect(mine[0]).toMatchObject({ id: s.id, name: 'mover', agent: 'agent-2', port, dns: 'mover', command: 'bash -l' });
  expect(await exists(path.join(a1!.root, s.id))).toBe(false);
  // Its DNS name now points at the new host.
  const hosts = await until('the DNS name at agent-2', () => fs.readFile(hostsFile(), 'utf8'), (t) => t.includes('127.0.0.2 mover.berth'), 10_000);
  expect(hosts).not.toContain('127.0.0.1 mover.berth');
  expect(Buffer.compare(await fs.readFile(path.join(a2!.root, s.id, 'home', 'marker.bin')), payload)).toBe(0);
  // It ran at the source: it runs on the target, and sees its own home.
  const running = await find(s.id);
  if (running.state !== 'running') await startAndWait(s.id);
  const inside = await inSession(s.id, ['sha256sum', '/home/claude/marker.bin']);
  expect(inside.out.split(' ')[0]).toBe(createHash('sha256').update(payload).digest('hex'));
  const audit = (await fs.readFile(cluster.auditFile, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { op: string; result: string });
  expect(audit.filter((a) => a.op === 'move').map((a) => a.result)).toEqual(['ok']);
}, 120_000);

test('a port the target gives another session refuses the move before anything moves', async () => {
  const port = await freePort();
  // Stopped on agent-2, so the host port is free: only agent-2's table says it is taken.
  await json<SessionJson>(`create --name holder --agent agent-2 --port ${port}`);
  const s = await json<SessionJson>(`create --name stayer --agent agent-1 --port ${port}`);
  await startAndWait(s.id);

  const r = await cli(`move stayer --to agent-2`);
  expect(r.code).toBe(1);
  expect(r.err).toContain('PORT_UNAVAILABLE');
  const after = await find(s.id);
  expect(after).toMatchObject({ agent: 'agent-1', state: 'running', lock: null, port });
  expect((await list()).filter((x) => x.id === s.id)).toHaveLength(1);
  expect(await exists(path.join(cluster.agents[0]!.root, s.id, 'moving.json'))).toBe(false);
}, 120_000);
