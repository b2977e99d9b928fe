/**
 * The managed dnsmasq forwards names outside the cluster domain upstream, against real dnsmasq
 * processes: a second dnsmasq stands in for the upstream resolver, with a name only it knows and a
 * name in the cluster domain that must never come from it. Checked from the host on loopback, and
 * from inside a real session container, which queries the managed dnsmasq on port 53 of the
 * gateway of a bridge network this test makes (containers query port 53 only).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import { promises as dnsp } from 'node:dns';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { silentLogger } from '../../common/logging';
import { parseResolvConf, renderHosts, startDns, type Dns } from '../../shell/dns';
import { view, type AgentClient } from '../helpers/agent-client';
import { startAgentProcess, type AgentProcess } from '../helpers/agent-process';
import { docker, removeTestNetworks, SESSION_IMAGE, testLabelArgs } from '../helpers/docker';
import { freePort } from '../helpers/ports';
import { until } from '../helpers/wait';

const LOOPBACK = '127.0.0.1';
const DOMAIN = 'berth';
const DNSMASQ = '/usr/sbin/dnsmasq';
const AS_ROOT = process.getuid?.() === 0 ? ['--user=root', '--group=root'] : [];
/** What only the upstream knows: a name outside the domain, and one inside it that must never be asked for. */
const UPSTREAM_ONLY = { name: 'only-upstream.example', address: '198.51.100.7' };
const UPSTREAM_GHOST = { name: `ghost.${DOMAIN}`, address: '198.51.100.66' };
/** A session's name, as the shell would write it. */
const WEB = { name: 'web', address: '198.51.100.10' };

let dir: string;
const started: Dns[] = [];
const upstreams: UpstreamDns[] = [];

/** A dnsmasq standing in for the upstream resolver, logging every query it gets. */
interface UpstreamDns {
  address: string;
  port: number;
  proc: ChildProcess;
  /** The names it was asked for so far, in order. */
  asked: string[];
  lines: string[];
}

async function startUpstream(address: string, port: number): Promise<UpstreamDns> {
  const proc = spawn(DNSMASQ, [
    '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces',
    `--listen-address=${address}`, `--port=${port}`, '--pid-file=', '--log-facility=-', '--log-queries',
    `--host-record=${UPSTREAM_ONLY.name},${UPSTREAM_ONLY.address}`, `--host-record=${UPSTREAM_GHOST.name},${UPSTREAM_GHOST.address}`,
    ...AS_ROOT,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const up: UpstreamDns = { address, port, proc, asked: [], lines: [] };
  upstreams.push(up);
  readline.createInterface({ input: proc.stderr! }).on('line', (line) => {
    up.lines.push(line);
    const m = /query\[[A-Z0-9]+\] (\S+) from/.exec(line);
    if (m?.[1]) up.asked.push(m[1]);
  });
  await until(
    `the upstream dnsmasq on ${address}:${port} answers`,
    async () => (proc.exitCode !== null ? `exited: ${up.lines.join(' | ')}` : await lookup(`${address}:${port}`, UPSTREAM_ONLY.name)),
    (r) => Array.isArray(r) || r.startsWith('exited'),
    5000,
    50,
  ).then((r) => {
    if (!Array.isArray(r)) throw new Error(`the upstream dnsmasq on ${address}:${port} ${r}`);
  });
  return up;
}

/**
 * Resolves once `up` has logged a query for a fresh name sent through `ask`: dnsmasq logs the
 * queries it gets in order, so every query forwarded before it has been logged by then.
 */
async function drained(up: UpstreamDns, ask: (name: string) => Promise<unknown>): Promise<void> {
  const marker = `marker-${randomUUID().slice(0, 8)}.example`;
  await ask(marker);
  await until(`the upstream logs ${marker}`, async () => up.asked.includes(marker), (seen) => seen, 5000, 20);
}

/** Names of the cluster domain the upstream was asked for (must stay empty). */
const leaked = (up: UpstreamDns): string[] => up.asked.filter((n) => n === DOMAIN || n.endsWith(`.${DOMAIN}`));

/** The A records of `name` at server ("host:port"), or the error code (ENOTFOUND: NXDOMAIN). */
async function lookup(server: string, name: string): Promise<string[] | string> {
  const r = new dnsp.Resolver({ timeout: 1000, tries: 1 });
  r.setServers([server]);
  try {
    return await r.resolve4(name);
  } catch (err) {
    return (err as { code: string }).code;
  }
}

function alive(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

async function kill(proc: ChildProcess): Promise<void> {
  if (!alive(proc)) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGKILL');
  await exited;
}

/**
 * Our own dnsmasq, in a folder of its own, serving WEB from the start: the hosts file is written
 * before it starts (it keeps a file it finds), so WEB answers as soon as it does, with no reload
 * to wait for and no query needed to know it.
 */
async function managed(name: string, manage: { listenAddress: string; port: number; upstream?: string[] }, resolvConf?: string): Promise<Dns> {
  const hostsFile = path.join(dir, name, 'hosts');
  await fs.mkdir(path.dirname(hostsFile));
  await fs.writeFile(hostsFile, renderHosts(DOMAIN, [WEB]));
  const dns = await startDns({ domain: DOMAIN, hostsFile, manage, resolvConf, logger: silentLogger });
  started.push(dns);
  return dns;
}

function requireRoot(why: string): void {
  if (process.getuid?.() !== 0) throw new Error(`this test runs as root: ${why}`);
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-dns-upstream-'));
});

afterAll(async () => {
  for (const d of started) await d.stop();
  for (const up of upstreams) await kill(up.proc);
  await fs.rm(dir, { recursive: true, force: true });
});

describe('forwarding, on loopback', () => {
  let up: UpstreamDns;
  let dns: Dns;
  let at: string;

  beforeAll(async () => {
    up = await startUpstream(LOOPBACK, await freePort());
    const port = await freePort();
    at = `${LOOPBACK}:${port}`;
    dns = await managed('configured', { listenAddress: LOOPBACK, port, upstream: [`${LOOPBACK}#${up.port}`] });
  });

  it('resolves a name only the upstream knows, and the domain\'s own names', async () => {
    expect(await lookup(at, UPSTREAM_ONLY.name)).toEqual([UPSTREAM_ONLY.address]);
    expect(await lookup(at, `${WEB.name}.${DOMAIN}`)).toEqual([WEB.address]);
    expect(up.asked).toContain(UPSTREAM_ONLY.name);
  });

  it('answers a missing name of the domain NXDOMAIN itself, never asking upstream', async () => {
    expect(await lookup(at, UPSTREAM_GHOST.name)).toBe('ENOTFOUND');
    expect(await lookup(at, `nobody.${DOMAIN}`)).toBe('ENOTFOUND');
    expect(await lookup(at, DOMAIN)).toBe('ENODATA'); // it has names under it, but no address
    // A plain name (no dot) is never forwarded either.
    expect(await lookup(at, 'plainname')).not.toEqual(expect.any(Array));
    await drained(up, (name) => lookup(at, name));
    expect(leaked(up)).toEqual([]);
    expect(up.asked).not.toContain('plainname');
  });

  it('still takes new records (SIGHUP) and forwards after a restart', async () => {
    await dns.apply([WEB, { name: 'api', address: '198.51.100.11' }]);
    await until('api answers', () => lookup(at, `api.${DOMAIN}`), (r) => Array.isArray(r), 5000, 50);
    const pid = dns.pid!;
    process.kill(pid, 'SIGKILL');
    await until('a new dnsmasq runs', async () => dns.pid, (p) => p !== undefined && p !== pid, 8000, 50);
    expect(await until('the upstream name answers again', () => lookup(at, UPSTREAM_ONLY.name), (r) => Array.isArray(r), 5000, 50)).toEqual([UPSTREAM_ONLY.address]);
    expect(await lookup(at, `api.${DOMAIN}`)).toEqual(['198.51.100.11']);
    expect(await lookup(at, UPSTREAM_GHOST.name)).toBe('ENOTFOUND');
    await drained(up, (name) => lookup(at, name));
    expect(leaked(up)).toEqual([]);
  });

  it('forwards nothing with an empty upstream list', async () => {
    const port = await freePort();
    await managed('none', { listenAddress: LOOPBACK, port, upstream: [] });
    const before = up.asked.length;
    expect(await lookup(`${LOOPBACK}:${port}`, UPSTREAM_ONLY.name)).not.toEqual(expect.any(Array));
    expect(await lookup(`${LOOPBACK}:${port}`, `${WEB.name}.${DOMAIN}`)).toEqual([WEB.address]);
    expect(up.asked.slice(before)).not.toContain(UPSTREAM_ONLY.name);
  });

  it('leaves out an upstream entry that is itself', async () => {
    const port = await freePort();
    const dns = await managed('self', { listenAddress: LOOPBACK, port, upstream: [`${LOOPBACK}#${port}`, `${LOOPBACK}#${up.port}`] });
    const args = (await fs.readFile(`/proc/${dns.pid}/cmdline`, 'utf8')).split('\0');
    expect(args.filter((a) => a.startsWith('--server='))).toEqual([`--server=${LOOPBACK}#${up.port}`]);
    expect(await lookup(`${LOOPBACK}:${port}`, UPSTREAM_ONLY.name)).toEqual([UPSTREAM_ONLY.address]);
  });

  it('refuses a bad upstream entry before starting anything, naming it', async () => {
    const hostsFile = path.join(dir, 'bad', 'hosts');
    for (const entry of ['10.0.0.1:53', 'dns.example', '10.0.0.1#0', '10.0.0.1#70000', '']) {
      const attempt = startDns({ domain: DOMAIN, hostsFile, manage: { listenAddress: LOOPBACK, port: 5353, upstream: [entry] }, logger: silentLogger });
      await expect(attempt).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining(`dns upstream ${JSON.stringify(entry)}`) });
    }
    await expect(fs.stat(hostsFile)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('the host\'s resolvers by default', () => {
  it('reads the nameserver lines of resolv.conf and nothing else', () => {
    const text = [
      '# nameserver 10.0.0.9', '; nameserver 10.0.0.8', 'search example', 'nameserver 10.0.0.1 # first',
      'nameserver\t::1', 'nameserver fe80::1%eth0', 'nameserver 10.0.0.1', 'nameserver bogus', 'nameserver 10.0.0.2#53',
      'nameserver 0.0.0.0', 'nameserver', 'nameservers 10.0.0.3', 'options ndots:1', '',
    ].join('\n');
    expect(parseResolvConf(text)).toEqual(['10.0.0.1', '::1', 'fe80::1%eth0']);
    expect(parseResolvConf('')).toEqual([]);
  });

  it('forwards to the nameservers of resolv.conf, skipping junk', async () => {
    requireRoot('resolv.conf has no ports, so the stand-in upstream listens on port 53 of a loopback address');
    // A loopback address of its own (all of 127/8 is this host's), so port 53 is surely free there.
    const address = `127.${randomInt(64, 250)}.${randomInt(1, 250)}.${randomInt(1, 250)}`;
    const up = await startUpstream(address, 53);
    const port = await freePort();
    const resolvConf = path.join(dir, 'resolv.conf');
    await fs.writeFile(resolvConf, [
      '# made by a test',
      'search example',
      `nameserver ${LOOPBACK}#${port}`, // resolv.conf takes no port: junk
      'nameserver not-an-address',
      `nameserver ${address}`,
      'options ndots:1',
      '',
    ].join('\n'));
    await managed('default', { listenAddress: LOOPBACK, port }, resolvConf);
    const at = `${LOOPBACK}:${port}`;
    expect(await lookup(at, UPSTREAM_ONLY.name)).toEqual([UPSTREAM_ONLY.address]);
    expect(await lookup(at, `${WEB.name}.${DOMAIN}`)).toEqual([WEB.address]);
    expect(await lookup(at, UPSTREAM_GHOST.name)).toBe('ENOTFOUND');
    await drained(up, (name) => lookup(at, name));
    expect(up.asked).toContain(UPSTREAM_ONLY.name);
    expect(leaked(up)).toEqual([]);
  });

  it('answers the domain only when resolv.conf names no server', async () => {
    const port = await freePort();
    const resolvConf = path.join(dir, 'resolv-empty.conf');
    await fs.writeFile(resolvConf, `search example\nnameserver ${LOOPBACK}#1\n`);
    await managed('empty', { listenAddress: LOOPBACK, port }, resolvConf);
    expect(await lookup(`${LOOPBACK}:${port}`, `${WEB.name}.${DOMAIN}`)).toEqual([WEB.address]);
    expect(await lookup(`${LOOPBACK}:${port}`, UPSTREAM_ONLY.name)).toBe('EREFUSED');
  });
});

describe('from inside a session', () => {
  const runLabel = `dns-upstream-${randomUUID().slice(0, 8)}`;
  const network = `berth-test-${runLabel}`;
  let gateway: string;
  let up: UpstreamDns;
  let agent: AgentProcess | undefined;
  let client: AgentClient | undefined;
  let container: string;

  /** `getent hosts NAME` inside the session: its output, or "exit N" when it finds nothing. */
  async function getent(name: string): Promise<string> {
    return docker('exec', container, 'getent', 'hosts', name).catch((err: { code?: number }) => `exit ${err.code}`);
  }

  beforeAll(async () => {
    requireRoot('the managed dnsmasq listens on port 53 of a bridge gateway');
    await docker('image', 'inspect', '--format', '{{.Id}}', SESSION_IMAGE).catch(() => {
      throw new Error(`session image ${SESSION_IMAGE} is missing: run "node dist/deploy/berth.js image build --if-missing"`);
    });
    // A bridge of our own, with inter-container traffic off as the agent requires of its network.
    await docker('network', 'create', '--driver', 'bridge', '--opt', 'com.docker.network.bridge.enable_icc=false', ...testLabelArgs(runLabel), network);
    gateway = await docker('network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', network);
    if (!gateway) throw new Error(`network ${network} has no gateway address`);
    up = await startUpstream(LOOPBACK, await freePort());
    const manage = { listenAddress: gateway, port: 53, upstream: [`${LOOPBACK}#${up.port}`] };
    await managed('session', manage).catch((err: Error) => {
      throw new Error(`the managed dnsmasq cannot answer on ${gateway}:53, the gateway of the test's network (containers query port 53 only): ${err.message}`);
    });
    agent = await startAgentProcess({ runLabel, config: { network, dnsServers: [gateway] } });
    client = await agent.connect();
    const s = view(await client.call('create', { name: 'resolver', dns: WEB.name }));
    const running = view(await client.call('restart', { session: s.meta.id }));
    expect(running.state).toBe('R');
    container = `berth-${s.meta.id}`;
  });

  afterAll(async () => {
    client?.close();
    await agent?.dispose(); // its containers (by the run's label) and its folder
    await removeTestNetworks(runLabel);
  });

  /** What getent prints for a name with one address. */
  const hostsLine = (address: string, name: string): RegExp => new RegExp(`^${address.replace(/\./g, '\\.')}\\s+${name.replace(/\./g, '\\.')}$`);

  it('resolves a name only the upstream knows', async () => {
    expect(await getent(UPSTREAM_ONLY.name)).toMatch(hostsLine(UPSTREAM_ONLY.address, UPSTREAM_ONLY.name));
  });

  it('resolves the domain\'s names, and a missing one is not found without asking upstream', async () => {
    expect(await getent(`${WEB.name}.${DOMAIN}`)).toMatch(hostsLine(WEB.address, `${WEB.name}.${DOMAIN}`));
    expect(await getent(UPSTREAM_GHOST.name)).toBe('exit 2');
    await drained(up, getent);
    expect(leaked(up)).toEqual([]);
  });
});
