/**
 * A session is untrusted code. What the agent asks of Docker for a session's container, read back
 * from Docker itself: no capabilities, no new privileges, nothing privileged, no host namespace,
 * no mount but the home, a read-only root with a bounded /tmp, the default user, and the sessions'
 * network with inter-container traffic off. Then what that means inside (no setuid file, nothing
 * writable but the home and /tmp, tmux and bash still work, across a restart), how the agent makes
 * the network (once, also when two agents race; never one that lets containers talk), and that
 * two sessions cannot reach each other while their published ports still answer.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { DEFAULT_SESSION_USER } from '../../agent/config';
import { DockerodeRuntime } from '../../agent/docker/dockerode-runtime';
import { silentLogger } from '../../common/logging';
import { AgentClient, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { SESSION_IMAGE, docker, removeTestContainers, removeTestNetworks, testLabelArgs, testLabels } from '../helpers/docker';
import { freePort } from '../helpers/ports';
import { until } from '../helpers/wait';

const runLabel = `harden-${randomUUID().slice(0, 8)}`;
/** Networks of this run only: the machine's own `berth` network is never touched. */
const networkName = (what: string): string => `bt-${runLabel.slice(7)}-${what}`;
const NETWORK = networkName('main');
const USER = `${DEFAULT_SESSION_USER.uid}:${DEFAULT_SESSION_USER.gid}`;
const ICC = 'com.docker.network.bridge.enable_icc';

let agent: AgentProcess;
let client: AgentClient;
const agents: AgentProcess[] = [];

interface ContainerInspect {
  Config: { User: string };
  State: { Running: boolean };
  Mounts: Array<{ Type: string; Source: string; Destination: string; RW: boolean }>;
  HostConfig: {
    Binds: string[] | null;
    CapAdd: string[] | null;
    CapDrop: string[] | null;
    SecurityOpt: string[] | null;
    Privileged: boolean;
    NetworkMode: string;
    PidMode: string;
    IpcMode: string;
    UTSMode: string;
    UsernsMode: string;
    CgroupnsMode: string;
    Devices: unknown[] | null;
    DeviceCgroupRules: unknown[] | null;
    ReadonlyRootfs: boolean;
    Tmpfs: Record<string, string> | null;
    Memory: number;
    NanoCpus: number;
    PidsLimit: number | null;
  };
  NetworkSettings: { Networks: Record<string, { NetworkID: string; IPAddress: string; Gateway: string }> };
}

interface NetworkInspect {
  Id: string;
  Name: string;
  Driver: string;
  Options: Record<string, string> | null;
  Labels: Record<string, string> | null;
}

async function inspectContainer(sessionId: string): Promise<ContainerInspect> {
  return (JSON.parse(await docker('inspect', `berth-${sessionId}`)) as ContainerInspect[])[0] as ContainerInspect;
}

async function inspectNetwork(nameOrId: string): Promise<NetworkInspect> {
  return (JSON.parse(await docker('network', 'inspect', nameOrId)) as NetworkInspect[])[0] as NetworkInspect;
}

/** Ids of the networks named exactly `name`. */
async function networksNamed(name: string): Promise<string[]> {
  const rows = (await docker('network', 'ls', '--no-trunc', '--filter', `name=${name}`, '--format', '{{.ID}} {{.Name}}')).split('\n');
  return rows.map((r) => r.split(' ')).filter(([, n]) => n === name).map(([id = '']) => id);
}

/**
 * Runs a command in a session's container, as its own user unless told (another user starts in /,
 * as the home is not theirs); resolves with the exit code and output.
 */
async function inContainer(sessionId: string, cmd: string[], user?: string): Promise<{ code: number; out: string }> {
  const args = ['exec', ...(user ? ['-u', user, '-w', '/'] : []), `berth-${sessionId}`, ...cmd];
  return docker(...args).then(
    (out) => ({ code: 0, out }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: err.code ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}`.trim() }),
  );
}

async function runningSession(c: AgentClient, name: string, port = 0): Promise<string> {
  const s = view(await c.call('create', { name, port }));
  const r = view(await c.call('restart', { session: s.meta.id }));
  expect(r.state).toBe('R');
  return s.meta.id;
}

/** One line from a TCP server on 127.0.0.1 (a published port), or an error. */
function readLineFrom(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = '';
    sock.setTimeout(2000, () => sock.destroy(new Error('timed out')));
    sock.on('data', (d: Buffer) => (got += d.toString()));
    sock.on('end', () => resolve(got.trim()));
    sock.on('error', reject);
  });
}

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel, config: { network: NETWORK } });
  agents.push(agent);
  client = await agent.connect();
}, 30_000);

afterAll(async () => {
  for (const a of agents) await a.dispose().catch(() => undefined);
  await removeTestContainers(runLabel);
  await removeTestNetworks(runLabel);
});

describe('a session container, read back from Docker', () => {
  let id = '';
  let c: ContainerInspect;

  beforeAll(async () => {
    id = await runningSession(client, 'hardened', await freePort());
    c = await inspectContainer(id);
  });

  test('no capability, no new privileges, not privileged, no host namespace, no device', () => {
    expect(c.State.Running).toBe(true);
    expect(c.HostConfig.CapDrop).toEqual(['ALL']);
    expect(c.HostConfig.CapAdd ?? []).toEqual([]);
    expect(c.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    expect(c.HostConfig.Privileged).toBe(false);
    for (const mode of [c.HostConfig.PidMode, c.HostConfig.IpcMode, c.HostConfig.UTSMode, c.HostConfig.UsernsMode, c.HostConfig.CgroupnsMode]) {
      expect(mode).not.toBe('host');
    }
    expect(c.HostConfig.IpcMode).toBe('private');
    expect(c.HostConfig.CgroupnsMode).toBe('private');
    expect(c.HostConfig.Devices ?? []).toEqual([]);
    expect(c.HostConfig.DeviceCgroupRules ?? []).toEqual([]);
  });

  test('the only mounts are the home and the status folder; the root is read-only with a bounded /tmp; limits from the config', () => {
    const byTarget = Object.fromEntries(c.Mounts.map((m) => [m.Destination, m]));
    expect(Object.keys(byTarget).sort()).toEqual(['/home/claude', '/run/berth/status']);
    const home = byTarget['/home/claude'];
    expect(home).toMatchObject({ Type: 'bind', RW: true, Source: path.join(agent.root, id, 'home') });
    // The status folder beside the home, not in it: the session writes its reports there, and
    // nothing else of the session's folder (session.json, the lock) is in its reach.
    expect(byTarget['/run/berth/status']).toMatchObject({ Type: 'bind', RW: true, Source: path.join(agent.root, id, 'status') });
    expect(c.HostConfig.Binds).toHaveLength(1);
    expect(JSON.stringify(c)).not.toContain('docker.sock');
    expect(c.HostConfig.ReadonlyRootfs).toBe(true);
    // The test agent's memory limit is 512 MB: /tmp may hold half of it.
    expect(c.HostConfig.Tmpfs).toEqual({ '/tmp': 'rw,exec,nosuid,nodev,size=256m' });
    expect(c.HostConfig.Memory).toBe(512 * 1024 * 1024);
    expect(c.HostConfig.NanoCpus).toBe(1e9);
    expect(c.HostConfig.PidsLimit).toBe(256);
  });

  test('it runs as the default user, on the sessions network only, which has inter-container traffic off', async () => {
    expect(c.Config.User).toBe(USER);
    expect(Object.keys(c.NetworkSettings.Networks)).toEqual([NETWORK]);
    const n = await inspectNetwork(NETWORK);
    expect(c.HostConfig.NetworkMode).toBe(n.Id);
    expect(c.NetworkSettings.Networks[NETWORK]?.NetworkID).toBe(n.Id);
    expect(n.Driver).toBe('bridge');
    expect(n.Options?.[ICC]).toBe('false');
    expect(n.Labels).toMatchObject({ 'berth.network': 'sessions', 'berth.test': runLabel });
  });

  test('inside: no setuid or setgid file, no capability at all, no new privileges', async () => {
    // As root in the container (which has no capability either), so that find can read every folder.
    const found = await inContainer(id, ['find', '/', '-xdev', '-perm', '/6000'], '0');
    expect(found).toEqual({ code: 0, out: '' });
    const status = await inContainer(id, ['cat', '/proc/1/status']);
    for (const field of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) {
      expect(status.out).toMatch(new RegExp(`^${field}:\\s+0+$`, 'm'));
    }
    expect(status.out).toMatch(/^NoNewPrivs:\s+1$/m);
    const uid = await inContainer(id, ['id', '-u']);
    expect(uid.out).toBe(String(DEFAULT_SESSION_USER.uid));
    // Even root in the container cannot take a file it does not own.
    const chown = await inContainer(id, ['chown', '0', '/home/claude'], '0');
    expect(chown.code).not.toBe(0);
  });

  test('inside: the home and /tmp are writable, the root filesystem is not', async () => {
    expect((await inContainer(id, ['touch', '/home/claude/.probe'])).code).toBe(0);
    expect((await inContainer(id, ['touch', '/tmp/probe'])).code).toBe(0);
    for (const p of ['/probe', '/etc/probe', '/usr/local/bin/probe', '/var/tmp/probe']) {
      const r = await inContainer(id, ['touch', p]);
      expect(r.code).not.toBe(0);
      expect(r.out).toContain('Read-only file system');
    }
    const mounts = await inContainer(id, ['cat', '/proc/mounts']);
    const tmp = mounts.out.split('\n').find((l) => l.split(' ')[1] === '/tmp') ?? '';
    expect(tmp.split(' ')[3]?.split(',')).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev']));
    const root = mounts.out.split('\n').find((l) => l.split(' ')[1] === '/') ?? '';
    expect(root.split(' ')[3]?.split(',')).toContain('ro');
  });
});

describe('tmux, bash and the entry script on a read-only root', () => {
  test('attach, type, leave; kill and attach again: the session comes back and its home kept what was written', async () => {
    const s = view(await client.call('create', { name: 'works' }));
    const first = await client.attach({ session: s.meta.id, operator: 'alice' });
    expect((await first.ready).ok).toBe(true);
    first.write('echo "who=$(id -un):$(id -u)" > ~/probe; echo written-$((20+22))\r');
    await first.waitForText('written-42');
    first.write('echo tmp-$(mktemp -p /tmp | wc -l)-ok; echo "$HOME:$(pwd)" | sed s/^/at-/\r');
    await first.waitForText('tmp-1-ok');
    await first.waitForText('at-/home/claude:/home/claude');
    first.close();
    await first.closed;

    view(await client.call('kill', { session: s.meta.id }));
    const again = await client.attach({ session: s.meta.id, operator: 'alice' });
    expect((await again.ready).ok).toBe(true);
    again.write('cat ~/probe | sed s/^/saw-/\r');
    await again.waitForText(`saw-who=claude:${DEFAULT_SESSION_USER.uid}`);
    again.close();
    await again.closed;
  });

  test('a configured uid the image does not know still gets a passwd entry, named claude', async () => {
    const other = await startAgentProcess({ runLabel, config: { network: NETWORK, user: { uid: 62_345, gid: 62_345 } } });
    agents.push(other);
    const c = await other.connect();
    const s = view(await c.call('create', { name: 'other-uid' }));
    const a = await c.attach({ session: s.meta.id, operator: 'alice' });
    expect((await a.ready).ok).toBe(true);
    a.write('echo "me=$(whoami):$(id -u):$(id -gn)" | tr a-z A-Z\r');
    await a.waitForText('ME=CLAUDE:62345:CLAUDE');
    a.close();
    await a.closed;
    expect((await inspectContainer(s.meta.id)).Config.User).toBe('62345:62345');
  });
});

describe('agent settings', () => {
  test('readOnlyRoot off: the root is writable and /tmp is the image\'s; the rest of the hardening stays', async () => {
    const a = await startAgentProcess({ runLabel, config: { network: NETWORK, readOnlyRoot: false } });
    agents.push(a);
    const id = await runningSession(await a.connect(), 'writable-root');
    const c = await inspectContainer(id);
    expect(c.HostConfig.ReadonlyRootfs).toBe(false);
    expect(c.HostConfig.Tmpfs ?? {}).toEqual({});
    expect(c.HostConfig.CapDrop).toEqual(['ALL']);
    expect(c.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    expect(c.Mounts.map((m) => m.Destination).sort()).toEqual(['/home/claude', '/run/berth/status']);
    expect((await inContainer(id, ['touch', '/tmp/probe'])).code).toBe(0);
    // The image's tools that used to raise privileges are plain programs now.
    const modes = await inContainer(id, ['stat', '-c', '%a %n', '/usr/bin/su', '/usr/bin/passwd', '/usr/bin/mount']);
    expect(modes.out.split('\n')).toEqual(['755 /usr/bin/su', '755 /usr/bin/passwd', '755 /usr/bin/mount']);
  });

  test('a configured uid that a host account has: the agent warns at start, naming it', async () => {
    const passwd = await fs.readFile('/etc/passwd', 'utf8');
    const [account = '', , uid = ''] = passwd.split('\n').map((l) => l.split(':')).find(([, , u]) => Number(u) > 0) ?? [];
    const a = await startAgentProcess({ runLabel, config: { network: NETWORK, user: { uid: Number(uid), gid: Number(uid) } } });
    agents.push(a);
    const warning = a.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'containers run as an existing host user');
    expect(warning).toMatchObject({ level: 'warn', uid: Number(uid), account });
    // The default user is no host account here: no such warning.
    expect(agent.logs.some((l) => l.includes('existing host user'))).toBe(false);
  });
});

describe('the sessions network', () => {
  test('agents racing to make it on one engine end with one network, and every container on it', async () => {
    // In-process runtimes, so that the creates really overlap (Docker 20.10 then makes one each).
    const name = networkName('race');
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-race-'));
    try {
      const runtimes = Array.from({ length: 6 }, (_, i) =>
        new DockerodeRuntime({ socketPath: '/var/run/docker.sock', agent: `race-${runLabel}-${i}`, root, extraLabels: testLabels(runLabel), logger: silentLogger }),
      );
      await Promise.all(runtimes.map((r) => r.ensureNetwork(name)));
      const ids = await networksNamed(name);
      expect(ids).toHaveLength(1);
      const n = await inspectNetwork(ids[0] ?? '');
      expect(n.Options?.[ICC]).toBe('false');
      // A runtime that kept a twin since removed finds the network again when it starts a container.
      for (const [i, r] of runtimes.entries()) {
        const sessionId = randomUUID();
        await r.start({
          sessionId,
          agent: `race-${runLabel}-${i}`,
          image: SESSION_IMAGE,
          command: 'bash',
          env: {},
          mounts: [],
          statusDir: null,
          setup: '',
          user: DEFAULT_SESSION_USER,
          homeDir: root,
          hostname: 'race',
          protocol: 'tcp',
          port: 0,
          dns: '',
          publishAddress: '127.0.0.1',
          dnsServers: [],
          limits: { memoryMb: 128, pids: 64 },
          sessionLimits: {},
          extraLabels: testLabels(runLabel),
          network: name,
          readOnlyRoot: true,
        });
        expect((await inspectContainer(sessionId)).HostConfig.NetworkMode).toBe(n.Id);
      }
      expect(await networksNamed(name)).toEqual(ids);
    } finally {
      await removeTestContainers(runLabel);
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  test('an agent that starts again keeps the network as it is', async () => {
    const name = networkName('again');
    const a = await startAgentProcess({ runLabel, config: { network: name } });
    agents.push(a);
    const ids = await networksNamed(name);
    expect(ids).toHaveLength(1);
    await a.stop();
    const again = await startAgentProcess({ runLabel, dir: a.dir, id: a.id, config: { network: name } });
    agents.push(again);
    expect(await networksNamed(name)).toEqual(ids);
  });

  test('an existing network of that name with inter-container traffic on: the agent refuses to start, naming it and the fix', async () => {
    const name = networkName('icc');
    await docker('network', 'create', ...testLabelArgs(runLabel), name);
    const started = startAgentProcess({ runLabel, config: { network: name } });
    const err = await started.then(
      (a) => {
        agents.push(a);
        return null;
      },
      (e: Error) => e,
    );
    expect(err?.message).toContain(`network ${name} has inter-container traffic on`);
    expect(err?.message).toContain(`docker network rm ${name}`);
  });

  test('one that already exists with inter-container traffic off is used as it is', async () => {
    const name = networkName('pre');
    const made = await docker('network', 'create', ...testLabelArgs(runLabel), '-o', `${ICC}=false`, name);
    const a = await startAgentProcess({ runLabel, config: { network: name } });
    agents.push(a);
    const s = await runningSession(await a.connect(), 'pre-made');
    expect((await inspectContainer(s)).HostConfig.NetworkMode).toBe(made.trim());
    expect(await networksNamed(name)).toEqual([made.trim()]);
  });

  test('a network removed while the agent runs is made again at the next start', async () => {
    const name = networkName('gone');
    const a = await startAgentProcess({ runLabel, config: { network: name } });
    agents.push(a);
    const [before] = await networksNamed(name);
    await docker('network', 'rm', name);
    const s = await runningSession(await a.connect(), 'after-removal');
    const [after] = await networksNamed(name);
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    expect((await inspectContainer(s)).HostConfig.NetworkMode).toBe(after);
  });
});

describe('sessions cannot reach each other', () => {
  /** Connects with bash's /dev/tcp from inside a session: 0 connected, 1 refused, 124 no answer in 3 s. */
  async function connectFrom(sessionId: string, ip: string, port: number): Promise<number> {
    return (await inContainer(sessionId, ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`])).code;
  }

  test("a listener in one session answers on its published port and to itself, never to the other session", async () => {
    const portA = await freePort();
    const a = await runningSession(client, 'listener', portA);
    const b = await runningSession(client, 'prober', await freePort());
    // The image has perl (Debian's base): a one-line TCP server that greets and hangs up.
    await docker(
      'exec', '-d', `berth-${a}`, 'perl', '-MIO::Socket::INET', '-e',
      `my $s = IO::Socket::INET->new(LocalPort => ${portA}, Listen => 5, ReuseAddr => 1) or die; ` +
        'while (my $c = $s->accept) { print $c "hello from a\\n"; close $c }',
    );
    // Control: the listener is up and reachable through the published port on the host's loopback.
    await until('published port answers', () => readLineFrom(portA).catch((e: Error) => e.message), (r) => r === 'hello from a', 10_000, 200);

    const netA = (await inspectContainer(a)).NetworkSettings.Networks[NETWORK];
    const netB = (await inspectContainer(b)).NetworkSettings.Networks[NETWORK];
    if (!netA?.IPAddress || !netB?.Gateway) throw new Error('sessions have no address on the sessions network');
    // Control: the listener answers on its bridge address (from its own container).
    expect(await connectFrom(a, netA.IPAddress, portA)).toBe(0);
    // B's packets do leave it: the host, at the bridge's gateway, refuses a closed port at once.
    expect(await connectFrom(b, netB.Gateway, 1)).toBe(1);
    // B reaches nothing of A: neither the listener nor a closed port answers (refused would mean reachable).
    expect(await connectFrom(b, netA.IPAddress, portA)).toBe(124);
    expect(await connectFrom(b, netA.IPAddress, 1)).toBe(124);
  });
});
