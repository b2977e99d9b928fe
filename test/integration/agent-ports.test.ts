/**
 * Port reservation on a real agent: none, pick-any from 1001, explicit, per-protocol uniqueness,
 * the host-bind probe, races between concurrent creates, and what a started container publishes.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { AgentClient, RpcError, view, refusal } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { docker } from '../helpers/docker';
import { freePort } from '../helpers/ports';
import type { SessionView } from '../../common/protocol';

const runLabel = `ports-${randomUUID().slice(0, 8)}`;
let agent: AgentProcess;
let client: AgentClient;
let client2: AgentClient;

async function create(name: string, extra: Record<string, unknown> = {}, c: AgentClient = client): Promise<SessionView> {
  return view(await c.call('create', { name, ...extra }));
}

/** Whether this process can bind 127.0.0.1:port/tcp right now (as the agent's probe does). */
function canBindTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Ports of this agent's sessions, by protocol. */
async function heldPorts(protocol: 'tcp' | 'udp'): Promise<Set<number>> {
  const { sessions } = await client.call('list', {});
  return new Set(sessions.filter((e) => e.kind === 'session' && e.meta.protocol === protocol).map((e) => view(e).meta.port));
}

/**
 * Checks that `got` is what "-1" must give: at least 1001, not held by another session of the
 * agent, and every lower port from 1001 is held by a session or cannot be bound on 127.0.0.1.
 */
async function expectLowestFree(got: number): Promise<void> {
  expect(got).toBeGreaterThanOrEqual(1001);
  const held = await heldPorts('tcp');
  for (let p = 1001; p < got; p++) {
    if (held.has(p)) continue;
    expect({ port: p, bindable: await canBindTcp(p) }).toEqual({ port: p, bindable: false });
  }
}

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel });
  client = await agent.connect();
  client2 = await agent.connect();
});

afterAll(async () => {
  await agent?.dispose();
});

describe('ports', () => {
  test('0 means none; -1 gives the lowest free port from 1001, the next -1 the next one', async () => {
    expect((await create('none', { port: 0 })).meta.port).toBe(0);
    expect((await create('default')).meta.port).toBe(0);

    const a = await create('auto-a', { port: -1 });
    await expectLowestFree(a.meta.port);
    const b = await create('auto-b', { port: -1 });
    expect(b.meta.port).toBeGreaterThan(a.meta.port);
    await expectLowestFree(b.meta.port);
    expect(b.meta.protocol).toBe('tcp');
  });

  test('-1 skips a port that another process on the host holds', async () => {
    const held = await heldPorts('tcp');
    let next = 1001;
    while (held.has(next) || !(await canBindTcp(next))) next++;
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(next, '127.0.0.1', () => r()));
    try {
      const s = await create('auto-skip', { port: -1 });
      expect(s.meta.port).toBeGreaterThan(next);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  test('an explicit port is reserved per protocol: same protocol refused naming the holder, other protocol coexists', async () => {
    const port = await freePort();
    const holder = await create('holder-tcp', { port });
    expect(holder.meta).toMatchObject({ port, protocol: 'tcp' });

    const dup = await refusal(create('dup-tcp', { port, protocol: 'tcp' }));
    expect(dup.code).toBe('PORT_UNAVAILABLE');
    expect(dup.message).toContain(String(port));
    expect(dup.message).toContain('holder-tcp');

    const udp = await create('holder-udp', { port, protocol: 'udp' });
    expect(udp.meta).toMatchObject({ port, protocol: 'udp' });
    const dupUdp = await refusal(create('dup-udp', { port, protocol: 'udp' }));
    expect(dupUdp.code).toBe('PORT_UNAVAILABLE');
    expect(dupUdp.message).toContain('holder-udp');

    const names = (await client.call('list', {})).sessions.map((e) => view(e).meta.name);
    expect(names).not.toContain('dup-tcp');
    expect(names).not.toContain('dup-udp');
  });

  test('a port bound by another process (tcp or udp) is refused', async () => {
    const tcpPort = await freePort();
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(tcpPort, '127.0.0.1', () => r()));
    const udpPort = await freePort();
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(udpPort, '127.0.0.1', () => r()));
    try {
      const t = await refusal(create('busy-tcp', { port: tcpPort }));
      expect(t.code).toBe('PORT_UNAVAILABLE');
      expect(t.message).toContain(`${tcpPort}/tcp`);
      const u = await refusal(create('busy-udp', { port: udpPort, protocol: 'udp' }));
      expect(u.code).toBe('PORT_UNAVAILABLE');
      expect(u.message).toContain(`${udpPort}/udp`);
      // The same numbers in the other protocol are free.
      expect((await create('free-udp', { port: tcpPort, protocol: 'udp' })).meta.port).toBe(tcpPort);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
      await new Promise<void>((r) => sock.close(() => r()));
    }
    // Once released, the port can be taken.
    expect((await create('now-free-tcp', { port: tcpPort })).meta.port).toBe(tcpPort);
  });

  test('two concurrent creates for the same port on two connections: exactly one wins', async () => {
    const port = await freePort();
    const results = await Promise.allSettled([
      client.call('create', { name: 'race-a', port }),
      client2.call('create', { name: 'race-b', port }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.reason).toBeInstanceOf(RpcError);
    expect((lost[0]?.reason as RpcError).code).toBe('PORT_UNAVAILABLE');
    const holders = (await client.call('list', {})).sessions.map(view).filter((e) => e.meta.port === port && e.meta.protocol === 'tcp');
    expect(holders).toHaveLength(1);
  });

  test('10 concurrent creates with -1 all get distinct ports', async () => {
    const before = await heldPorts('tcp');
    const made = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? client : client2).call('create', { name: `many-${i}`, port: -1 })),
    );
    const ports = made.map((e) => view(e).meta.port);
    expect(new Set(ports).size).toBe(10);
    for (const p of ports) {
      expect(p).toBeGreaterThanOrEqual(1001);
      expect(before.has(p)).toBe(false);
    }
  });

  test('edit to a port another session holds is refused; edit keeping its own port is fine', async () => {
    const a = await create('edit-a', { port: await freePort() });
    const b = await create('edit-b', { port: await freePort() });
    const taken = await refusal(client.call('edit', { session: b.meta.id, port: a.meta.port }));
    expect(taken.code).toBe('PORT_UNAVAILABLE');
    expect(taken.message).toContain('edit-a');
    expect(view(await client.call('get', { session: b.meta.id })).meta.port).toBe(b.meta.port);

    const same = view(await client.call('edit', { session: b.meta.id, port: b.meta.port, name: 'edit-b2' }));
    expect(same.meta).toMatchObject({ port: b.meta.port, name: 'edit-b2' });
    // Moving to udp frees tcp: a's tcp port is now fine for b over udp.
    const moved = view(await client.call('edit', { session: b.meta.id, protocol: 'udp', port: a.meta.port }));
    expect(moved.meta).toMatchObject({ protocol: 'udp', port: a.meta.port });
    expect((await create('edit-c', { port: b.meta.port })).meta.port).toBe(b.meta.port);
  });

  test('a started session publishes its port on 127.0.0.1, and the port stays reserved after kill', async () => {
    const port = await freePort();
    const s = await create('published', { port });
    const r = view(await client.call('restart', { session: s.meta.id }));
    expect(r.state).toBe('R');

    const c = (JSON.parse(await docker('inspect', `berth-${s.meta.id}`)) as Array<{
      NetworkSettings: { Ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> };
    }>)[0];
    expect(c?.NetworkSettings.Ports[`${port}/tcp`]).toEqual([{ HostIp: '127.0.0.1', HostPort: String(port) }]);
    expect(await docker('port', `berth-${s.meta.id}`, `${port}/tcp`)).toBe(`127.0.0.1:${port}`);
    // Docker holds the host port: nothing else can bind it, and a TCP connect is accepted.
    expect(await canBindTcp(port)).toBe(false);
    const outcome = await new Promise<string>((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port });
      const t = setTimeout(() => {
        sock.destroy();
        resolve('timeout');
      }, 3000);
      sock.once('connect', () => {
        clearTimeout(t);
        sock.destroy();
        resolve('connected');
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(t);
        resolve(err.code ?? 'error');
      });
    });
    expect(outcome).toBe('connected');

    await client.call('kill', { session: s.meta.id });
    expect(await canBindTcp(port)).toBe(true);
    const still = await refusal(create('after-kill', { port }));
    expect(still.code).toBe('PORT_UNAVAILABLE');
    expect(still.message).toContain('published');
  });
});
