/**
 * Delete with an undo window, end to end: the real OpenSSH client against a real shell and real
 * agents and Docker. A deleted session leaves `list` for `trash`, frees its port, keeps its DNS
 * name cluster-wide, and `restore` brings it back whole; a taken port refuses the restore, naming
 * it; a tiny `trashHours` (fractional hours: 0.0005 is 1.8 s) purges it; a kill -9 of the agent
 * mid-delete leaves the session whole, live or in the trash.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { freePort } from '../helpers/ports';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { sessionCli } from '../helpers/session-cli';
import { startAgentProcess } from '../helpers/agent-process';
import { sleep } from '../helpers/wait';
import type { SessionJson } from '../../shell/cli/format';
import type { TrashJson } from '../../shell/cli/trash-commands';

const runLabel = `shtrash-${randomUUID().slice(0, 8)}`;
const tag = runLabel.slice(-6);
let cluster: Cluster;
const { cli, json, list, inSession, startAndWait } = sessionCli(() => cluster, { trim: true });

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 2 });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
});

const trash = (user = 'alice'): Promise<TrashJson[]> => cli('trash --json', user).then((r) => JSON.parse(r.out) as TrashJson[]);
const inTrash = async (id: string): Promise<TrashJson | undefined> => (await trash()).find((t) => t.id === id);
const listed = async (id: string): Promise<boolean> => (await list()).some((s) => s.id === id);
const homeOf = (agent: number, id: string, trashed = false): string => path.join(cluster.agents[agent]!.root, ...(trashed ? ['.trash'] : []), id, 'home');

test('delete → trash; port and DNS name; restore whole and start; audited', async () => {
  const port = await freePort();
  const name = `web-${tag}`;
  const s = await json<SessionJson>(`create --name ${name} --agent agent-1 --port ${port} --dns dns-${tag}`);
  await fs.writeFile(path.join(homeOf(0, s.id), 'marker'), 'kept\n');
  await fs.chmod(path.join(homeOf(0, s.id), 'marker'), 0o644);
  await startAndWait(s.id);

  expect(await cli(`delete ${name} --yes`, 'bob')).toMatchObject({ code: 0, out: `deleted ${s.id}\n` });
  expect(await listed(s.id)).toBe(false);
  const t = await until('in the trash', () => inTrash(s.id), (x) => x !== undefined);
  expect(t).toMatchObject({ id: s.id, name, agent: 'agent-1', port, dns: `dns-${tag}`, deletedBy: 'bob' });
  expect(Date.parse(t!.purgeAt) - Date.parse(t!.deletedAt)).toBe(24 * 3_600_000);
  // A viewer sees the trash, as text too.
  expect((await trash('vic')).map((x) => x.id)).toContain(s.id);
  expect((await cli('trash', 'vic')).out).toMatch(new RegExp(`^NAME .*\\n${name} +${s.id.slice(0, 8)} +agent-1 .* bob `, 'm'));

  // Its DNS name stays taken, on any agent; its port is free for another session.
  const dnsTaken = await cli(`create --name other-${tag} --agent agent-2 --dns dns-${tag}`);
  expect(dnsTaken.code).toBe(1);
  expect(dnsTaken.err).toContain(`error: NAME_TAKEN: dns: "dns-${tag}" is kept by session ${name} in the trash of agent-1`);
  const taker = await json<SessionJson>(`create --name taker-${tag} --agent agent-1 --port ${port}`);
  expect(taker.port).toBe(port);

  // Restore is refused while the port is taken, naming port and holder; nothing changes.
  expect((await cli(`restore ${name}`, 'vic')).err).toContain('FORBIDDEN: vic is a viewer and may not restore');
  const refused = await cli(`restore ${name}`, 'bob');
  expect(refused.code).toBe(1);
  expect(refused.err).toContain(`error: PORT_UNAVAILABLE: port ${port}/tcp is taken by session taker-${tag}; restore it with --no-port`);
  expect(await inTrash(s.id)).toBeDefined();

  // Once it is free again, restore brings it back stopped, with its port, name, DNS name and files.
  expect((await cli(`delete taker-${tag} --yes`)).code).toBe(0);
  const back = await json<SessionJson>(`restore ${s.id.slice(0, 8)}`);
  expect(back).toMatchObject({ id: s.id, name, agent: 'agent-1', port, dns: `dns-${tag}`, state: 'stopped' });
  expect(await inTrash(s.id)).toBeUndefined();
  await startAndWait(s.id);
  expect(await inSession(s.id, ['cat', '/home/claude/marker'])).toMatchObject({ code: 0, out: 'kept' });

  // The name is taken again by the live session: a new session cannot have its DNS name either way.
  expect((await cli(`create --name other-${tag} --agent agent-2 --dns dns-${tag}`)).err).toContain('NAME_TAKEN');
  const audit = (await fs.readFile(cluster.auditFile, 'utf8')).split('\n').filter((l) => l.includes(s.id)).map((l) => JSON.parse(l) as { op: string; result: string; operator: string });
  expect(audit.map((r) => `${r.operator} ${r.op} ${r.result}`)).toEqual(expect.arrayContaining(['bob delete ok', 'bob restore refused', 'alice restore ok']));
  expect((await cli(`delete ${s.id} --yes`)).code).toBe(0);
}, 120_000);

test('restore is refused when a live session took its name; --no-port brings it back without a port', async () => {
  const name = `twin-${tag}`;
  const port = await freePort();
  const s = await json<SessionJson>(`create --name ${name} --agent agent-1 --port ${port}`);
  expect((await cli(`delete ${s.id} --yes`)).code).toBe(0);
  const twin = await json<SessionJson>(`create --name ${name} --agent agent-2 --port ${port}`);
  const refused = await cli(`restore ${s.id}`);
  expect(refused.code).toBe(1);
  expect(refused.err).toContain(`error: NAME_TAKEN: name: "${name}" is used by session ${twin.id.slice(0, 8)} on agent-2`);
  expect((await cli(`edit ${twin.id} --name other-${name}`)).code).toBe(0);
  expect(await json<SessionJson>(`restore ${name} --no-port`)).toMatchObject({ id: s.id, port: 0 });
  for (const id of [s.id, twin.id]) expect((await cli(`delete ${id} --yes`)).code).toBe(0);
}, 60_000);

test('kill -9 of the agent right after a delete started: the session is whole, live or in the trash', async () => {
  const outcomes: string[] = [];
  for (const delay of [0, 250, 1200]) {
    const a = cluster.agents[0]!;
    const s = await json<SessionJson>(`create --name crash-${delay}-${tag} --agent agent-1`);
    await fs.writeFile(path.join(homeOf(0, s.id), 'marker'), 'kept\n');
    await startAndWait(s.id);
    const deleting = cli(`delete ${s.id} --yes`);
    // The delete has begun once it holds the session's lock; then a while more, then the crash.
    const owner = path.join(a.root, s.id, 'session.lock.owner.json');
    await until('delete holds the lock', () => fs.readFile(owner, 'utf8').catch(() => (fs.lstat(path.join(a.root, '.trash', s.id)).then(() => 'gone', () => ''))), (t) => t.includes('"delete"') || t === 'gone', 20_000, 5);
    await sleep(delay);
    await a.kill9();
    await deleting;
    cluster.agents[0] = await startAgentProcess({ dir: a.dir, id: a.id, runLabel, config: { listen: { host: '127.0.0.1', port: a.port } } });
    await cluster.agentsOnline();

    // On disk: exactly one of the live folder and the trashed one.
    const onDisk = await Promise.all([path.join(a.root, s.id), path.join(a.root, '.trash', s.id)].map((p) => fs.lstat(p).then(() => true, () => false)));
    expect(onDisk.filter(Boolean)).toHaveLength(1);
    const trashed = onDisk[1] === true;
    // The shell agrees once the agent has told it everything again.
    const seen = await until('listed or trashed', async () => [await listed(s.id), (await inTrash(s.id)) !== undefined], ([l, t]) => l === !trashed && t === trashed, 20_000);
    const isLive = seen[0] === true;
    expect(await fs.readFile(path.join(homeOf(0, s.id, trashed), 'marker'), 'utf8')).toBe('kept\n');
    const leftovers = (await fs.readdir(a.root)).filter((n) => n.startsWith('.') && !['.agent.pid', '.berth-layout', '.trash'].includes(n));
    expect(leftovers).toEqual([]);
    outcomes.push(`+${delay} ms: ${isLive ? 'live' : 'trashed'}`);
    if (trashed) expect((await cli(`restore ${s.id}`)).code).toBe(0);
    // A lock the killed agent held goes stale; an admin clears it now.
    const r = await cli(`override ${s.id} --reason test`);
    expect([0, 1]).toContain(r.code);
    expect(await cli(`delete ${s.id} --yes`)).toMatchObject({ code: 0 });
  }
  console.log(`kill points: ${outcomes.join('; ')}`);
}, 180_000);

describe('with a tiny trashHours', () => {
  let small: Cluster;
  beforeAll(async () => {
    small = await startCluster({ runLabel: `${runLabel}-small`, agents: 1, agentConfig: { trashHours: 0.0005 } });
    await small.agentsOnline();
  }, 60_000);
  afterAll(async () => {
    await small?.dispose();
  });

  test('the session is purged after the window: out of the trash, its folder gone', async () => {
    const r = await small.ssh('alice', ['create', '--name', `brief-${tag}`, '--json']);
    const s = JSON.parse(r.out) as SessionJson;
    const root = small.agents[0]!.root;
    await fs.writeFile(path.join(root, s.id, 'home', 'marker'), 'x');
    expect((await small.ssh('alice', ['delete', s.id, '--yes'])).code).toBe(0);
    const t = JSON.parse((await small.ssh('alice', ['trash', '--json'])).out) as TrashJson[];
    // It may be purged already on a slow machine; if listed, it is this one.
    expect(t.every((x) => x.id === s.id)).toBe(true);
    await until('purged', async () => JSON.parse((await small.ssh('alice', ['trash', '--json'])).out) as TrashJson[], (l) => l.length === 0, 30_000);
    await until('folder gone', () => fs.readdir(path.join(root, '.trash')), (names) => names.length === 0, 10_000);
    await expect(fs.lstat(path.join(root, s.id))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await small.ssh('alice', ['restore', s.id])).err).toContain('NOT_FOUND');
  }, 60_000);
});
