/**
 * Every berth-rpc op against a real agent process and the real Docker engine: what each op
 * returns, what it leaves on disk and what Docker ends up running.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { DEFAULT_SESSION_USER } from '../../agent/config';
import { AgentClient, view, refusal } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { docker, removeTestContainers } from '../helpers/docker';
import { freePort } from '../helpers/ports';
import type { SessionView } from '../../common/protocol';

const runLabel = `ops-${randomUUID().slice(0, 8)}`;
let agent: AgentProcess;
let client: AgentClient;
const extraAgents: AgentProcess[] = [];
const extraClients: AgentClient[] = [];

// ---- small helpers ----

interface Inspect {
  Config: { User: string; Labels: Record<string, string> };
  State: { Running: boolean };
  Mounts: Array<{ Type: string; Source: string; Destination: string }>;
  HostConfig: {
    Memory: number;
    NanoCpus: number;
    PidsLimit: number | null;
    Dns: string[] | null;
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> | null;
  };
  NetworkSettings: { Ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> };
}

async function inspect(id: string): Promise<Inspect> {
  return (JSON.parse(await docker('inspect', `berth-${id}`)) as Inspect[])[0] as Inspect;
}

/** Container ids carrying the session's label, in any state. */
async function containersOf(id: string): Promise<string[]> {
  return (await docker('ps', '-aq', '--filter', `label=berth.session=${id}`)).split('\n').filter(Boolean);
}

const exists = (p: string): Promise<boolean> => fs.stat(p).then(() => true, () => false);

async function create(name: string, extra: Record<string, unknown> = {}): Promise<SessionView> {
  return view(await client.call('create', { name, ...extra }));
}

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel });
  client = await agent.connect();
});

afterAll(async () => {
  for (const c of [client, ...extraClients]) c?.close();
  for (const a of [agent, ...extraAgents]) await a?.stop();
  await removeTestContainers(runLabel);
  for (const a of [agent, ...extraAgents]) if (a) await fs.rm(a.dir, { recursive: true, force: true });
});

describe('agent ops against real Docker', () => {
  test('create applies the defaults, writes session.json and starts no container; list and get show it', async () => {
    const s = await create('alpha');
    expect(s.meta).toMatchObject({ name: 'alpha', protocol: 'tcp', port: 0, dns: '', createdBy: 'alice', lastAccessedAt: null });
    expect(s.meta.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(s.agent).toBe(agent.id);
    expect(s.state).toBe('-');
    expect(s.container).toBeNull();
    expect(s.restartNeeded).toBe(false);

    const onDisk = JSON.parse(await fs.readFile(path.join(agent.root, s.meta.id, 'session.json'), 'utf8')) as unknown;
    expect(onDisk).toEqual(s.meta);
    expect(await containersOf(s.meta.id)).toEqual([]);

    const listed = (await client.call('list', {})).sessions.map(view);
    expect(listed.find((e) => e.meta.id === s.meta.id)?.meta).toEqual(s.meta);
    expect(view(await client.call('get', { session: s.meta.id })).meta).toEqual(s.meta);

    const missing = await refusal(client.call('get', { session: randomUUID() }));
    expect(missing.code).toBe('NOT_FOUND');
  });

  test('restart starts the container with the agent config (labels, mount, user, limits, port); a second restart is refused', async () => {
    const s = await create('runner', { port: await freePort() });
    const r = view(await client.call('restart', { session: s.meta.id }));
    expect(r.state).toBe('R');
    expect(r.container?.running).toBe(true);
    expect(r.restartNeeded).toBe(false);

    const c = await inspect(s.meta.id);
    expect(c.State.Running).toBe(true);
    expect(c.Config.Labels).toMatchObject({ 'berth.session': s.meta.id, 'berth.agent': agent.id, 'berth.test': runLabel });
    const home = c.Mounts.find((m) => m.Destination === '/home/claude');
    expect(home?.Source).toBe(path.join(agent.root, s.meta.id, 'home'));
    expect(c.Config.User).toBe(`${DEFAULT_SESSION_USER.uid}:${DEFAULT_SESSION_USER.gid}`);
    expect(c.HostConfig.Memory).toBe(512 * 1024 * 1024);
    expect(c.HostConfig.NanoCpus).toBe(1e9);
    expect(c.HostConfig.PidsLimit).toBe(256);
    expect(c.HostConfig.Dns ?? []).toEqual([]);
    expect(c.HostConfig.PortBindings?.[`${s.meta.port}/tcp`]).toEqual([{ HostIp: '127.0.0.1', HostPort: String(s.meta.port) }]);
    expect(c.NetworkSettings.Ports[`${s.meta.port}/tcp`]).toEqual([{ HostIp: '127.0.0.1', HostPort: String(s.meta.port) }]);

    const again = await refusal(client.call('restart', { session: s.meta.id }));
    expect(again.code).toBe('CONFLICT');
    expect(again.message).toContain('session is already running');
    expect(await containersOf(s.meta.id)).toHaveLength(1);
  });

  test('edit changes name, protocol, port and dns; a running container keeps its old labels until restart', async () => {
    const stopped = await create('edit-stopped');
    const e1 = view(await client.call('edit', { session: stopped.meta.id, name: 'renamed', dns: 'edited-one' }));
    expect(e1.meta).toMatchObject({ name: 'renamed', dns: 'edited-one', protocol: 'tcp', port: 0 });
    expect(e1.restartNeeded).toBe(false);

    const s = await create('edit-running', { port: await freePort(), dns: 'before' });
    await client.call('restart', { session: s.meta.id });
    const e2 = view(await client.call('edit', { session: s.meta.id, name: 'after-name', protocol: 'udp', port: await freePort(), dns: 'after' }));
    expect(e2.meta).toMatchObject({ name: 'after-name', protocol: 'udp', dns: 'after' });
    expect(e2.meta.port).not.toBe(s.meta.port);
    expect(e2.state).toBe('R');
    expect(e2.restartNeeded).toBe(true);
    expect(e2.container?.applied).toEqual({ protocol: 'tcp', port: s.meta.port, dns: 'before', limits: {}, setup: expect.stringMatching(/^[0-9a-f]{16}$/) });
    const disk = JSON.parse(await fs.readFile(path.join(agent.root, s.meta.id, 'session.json'), 'utf8')) as { name: string; protocol: string };
    expect(disk).toMatchObject({ name: 'after-name', protocol: 'udp' });

    const old = await inspect(s.meta.id);
    expect(old.Config.Labels).toMatchObject({ 'berth.protocol': 'tcp', 'berth.port': String(s.meta.port), 'berth.dns': 'before', 'berth.limits': '{}' });
    expect(Object.keys(old.HostConfig.PortBindings ?? {})).toEqual([`${s.meta.port}/tcp`]);
    expect(view(await client.call('get', { session: s.meta.id })).restartNeeded).toBe(true);

    // The dns name of another session is refused.
    const taken = await refusal(client.call('edit', { session: stopped.meta.id, dns: 'after' }));
    expect(taken.code).toBe('NAME_TAKEN');

    await client.call('kill', { session: s.meta.id });
    const r = view(await client.call('restart', { session: s.meta.id }));
    expect(r.restartNeeded).toBe(false);
    const fresh = await inspect(s.meta.id);
    expect(fresh.Config.Labels).toMatchObject({ 'berth.protocol': 'udp', 'berth.port': String(e2.meta.port), 'berth.dns': 'after' });
    expect(fresh.HostConfig.PortBindings?.[`${e2.meta.port}/udp`]).toEqual([{ HostIp: '127.0.0.1', HostPort: String(e2.meta.port) }]);
  });

  test('an op id makes a retry safe: two clones with one op id make one copy and both get it', async () => {
    const src = await create('once-source');
    const opId = randomUUID();
    const before = (await client.call('list', {})).sessions.length;
    const [a, b] = await Promise.all([
      client.request('clone', { session: src.meta.id }, 'alice', { opId }),
      client.request('clone', { session: src.meta.id }, 'alice', { opId }),
    ]);
    expect(a.ok && b.ok).toBe(true);
    expect(a.ok && b.ok && view(a.result as never).meta.id).toBe(b.ok && view(b.result as never).meta.id);
    // A later retry, once done, still gets the same copy; the same id for another op is refused.
    const c = await client.request('clone', { session: src.meta.id }, 'alice', { opId });
    expect(c.ok && view(c.result as never).meta.id).toBe(a.ok && view(a.result as never).meta.id);
    expect((await client.call('list', {})).sessions.length).toBe(before + 1);
    const other = await client.request('kill', { session: src.meta.id }, 'alice', { opId });
    expect(other).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', message: expect.stringContaining('already used for another request') } });
    // Without an op id, each clone is its own.
    await client.call('clone', { session: src.meta.id });
    expect((await client.call('list', {})).sessions.length).toBe(before + 2);
  });

  test('clone copies the home (not the lock) to a new uuid with port 0 and no dns; a running source keeps running', async () => {
    const src = await create('source', { port: await freePort(), dns: 'clone-src' });
    const srcDir = path.join(agent.root, src.meta.id);
    await fs.mkdir(path.join(srcDir, 'home', 'work'), { recursive: true });
    await fs.writeFile(path.join(srcDir, 'home', 'work', 'notes.txt'), 'remember the milk\n');
    await client.call('restart', { session: src.meta.id });

    const c = view(await client.call('clone', { session: src.meta.id }));
    expect(c.meta.id).not.toBe(src.meta.id);
    expect(c.meta).toMatchObject({ name: 'source-copy', protocol: 'tcp', port: 0, dns: '', lastAccessedAt: null });
    expect(c.state).toBe('-');
    expect(c.container).toBeNull();
    const cloneDir = path.join(agent.root, c.meta.id);
    expect(await fs.readFile(path.join(cloneDir, 'home', 'work', 'notes.txt'), 'utf8')).toBe('remember the milk\n');
    expect(await exists(path.join(cloneDir, 'session.lock'))).toBe(false);
    expect(JSON.parse(await fs.readFile(path.join(cloneDir, 'session.json'), 'utf8'))).toEqual(c.meta);

    const srcAfter = view(await client.call('get', { session: src.meta.id }));
    expect(srcAfter.state).toBe('R');
    expect(srcAfter.lock).toBeNull();
    expect((await inspect(src.meta.id)).State.Running).toBe(true);
    expect(await exists(path.join(srcDir, 'session.lock'))).toBe(false);

    const named = view(await client.call('clone', { session: c.meta.id, name: 'named-clone' }));
    expect(named.meta.name).toBe('named-clone');
    expect(await fs.readFile(path.join(agent.root, named.meta.id, 'home', 'work', 'notes.txt'), 'utf8')).toBe('remember the milk\n');
  });

  test('kill removes the container and keeps the directory; background counts only the caller\'s attaches', async () => {
    const s = await create('killme');
    await client.call('restart', { session: s.meta.id });
    expect(await containersOf(s.meta.id)).toHaveLength(1);
    expect(await client.call('background', { session: s.meta.id })).toEqual({ detached: 0 });

    const a = await client.attach({ session: s.meta.id, operator: 'alice' });
    expect((await a.ready).ok).toBe(true);
    expect(await client.call('background', { session: s.meta.id }, 'bob')).toEqual({ detached: 0 });
    expect(await client.call('background', { session: s.meta.id }, 'alice')).toEqual({ detached: 1 });
    expect(view(await client.call('get', { session: s.meta.id })).state).toBe('R');
    a.close();

    const k = view(await client.call('kill', { session: s.meta.id }));
    expect(k.state).toBe('-');
    expect(k.container).toBeNull();
    expect(await containersOf(s.meta.id)).toEqual([]);
    expect(await exists(path.join(agent.root, s.meta.id, 'session.json'))).toBe(true);
    expect(view(await client.call('get', { session: s.meta.id })).state).toBe('-');

    const twice = await refusal(client.call('kill', { session: s.meta.id }));
    expect(twice.code).toBe('CONFLICT');
    const unknown = await refusal(client.call('background', { session: randomUUID() }));
    expect(unknown.code).toBe('NOT_FOUND');
  });

  test('delete removes container and directory, get then says NOT_FOUND, and the port is free again', async () => {
    const s = await create('doomed', { port: await freePort() });
    await client.call('restart', { session: s.meta.id });
    expect(await client.call('delete', { session: s.meta.id })).toMatchObject({ id: s.meta.id });
    expect(await containersOf(s.meta.id)).toEqual([]);
    expect(await exists(path.join(agent.root, s.meta.id))).toBe(false);
    expect((await refusal(client.call('get', { session: s.meta.id }))).code).toBe('NOT_FOUND');
    expect((await refusal(client.call('delete', { session: s.meta.id }))).code).toBe('NOT_FOUND');
    expect((await client.call('list', {})).sessions.map((e) => (e.kind === 'session' ? e.meta.id : e.id))).not.toContain(s.meta.id);

    const reuse = await create('reuse', { port: s.meta.port });
    expect(reuse.meta.port).toBe(s.meta.port);
  });

  test('override refuses an unlocked session and removes a lock left by hand (state L → -)', async () => {
    const s = await create('locked');
    const refused = await refusal(client.call('override', { session: s.meta.id }, 'admin'));
    expect(refused.code).toBe('CONFLICT');

    const lockDir = path.join(agent.root, s.meta.id, 'session.lock');
    await fs.mkdir(lockDir);
    const since = new Date().toISOString();
    await fs.writeFile(
      path.join(agent.root, s.meta.id, 'session.lock.owner.json'),
      JSON.stringify({ operator: 'bob', op: 'edit', since, pid: 424242, agentInstance: 'another-agent' }),
    );
    const locked = view(await client.call('get', { session: s.meta.id }));
    expect(locked.state).toBe('L');
    expect(locked.lock).toMatchObject({ operator: 'bob', op: 'edit', since });
    // A live lock (fresher than lockStaleSeconds) stops other mutations and names its holder.
    const busy = await refusal(client.call('edit', { session: s.meta.id, name: 'nope' }));
    expect(busy.code).toBe('LOCKED');
    expect(busy.message).toContain('bob');

    const o = view(await client.call('override', { session: s.meta.id, reason: 'holder is gone' }, 'admin'));
    expect(o.state).toBe('-');
    expect(o.lock).toBeNull();
    expect(await exists(lockDir)).toBe(false);
    expect(o.meta).toEqual(s.meta);
    expect(view(await client.call('get', { session: s.meta.id })).state).toBe('-');
  });

  test('stats reports host numbers and the session count', async () => {
    const st = await client.call('stats', {});
    const { sessions } = await client.call('list', {});
    expect(st.cpus).toBeGreaterThan(0);
    expect(st.memoryTotalMb).toBeGreaterThan(0);
    expect(st.memoryFreeMb).toBeGreaterThan(0);
    expect(st.memoryFreeMb).toBeLessThanOrEqual(st.memoryTotalMb);
    expect(Number.isFinite(st.load1)).toBe(true);
    expect(st.sessions).toBe(sessions.length);
    expect(st.containersRunning).toBe(sessions.filter((e) => e.state === 'R' || e.state === 'C').length);
    expect(st.containersRunning).toBeGreaterThan(0);
  });

  test('an agent configured with dnsServers hands them to its containers', async () => {
    const dnsAgent = await startAgentProcess({ runLabel, config: { dnsServers: ['127.0.0.1'] } });
    extraAgents.push(dnsAgent);
    const c2 = await dnsAgent.connect();
    extraClients.push(c2);
    const s = view(await c2.call('create', { name: 'with-dns' }));
    await c2.call('restart', { session: s.meta.id });
    const c = await inspect(s.meta.id);
    expect(c.HostConfig.Dns).toEqual(['127.0.0.1']);
    expect(c.Config.Labels['berth.agent']).toBe(dnsAgent.id);
    // The other agent's list does not show this agent's session.
    const ids = (await client.call('list', {})).sessions.map((e) => (e.kind === 'session' ? e.meta.id : e.id));
    expect(ids).not.toContain(s.meta.id);
  });
});
