/**
 * The shell's DNS against the real dnsmasq on 127.0.0.1 and a free high port: names appear,
 * change and vanish without a restart; a killed dnsmasq comes back with the current records;
 * stop() leaves none; an unmanaged dnsmasq is signalled through its pid file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { promises as dnsp } from 'node:dns';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../common/logging';
import { freePort } from '../helpers/ports';
import { startDns, type Dns } from '../../shell/dns';

const HOST = '127.0.0.1';
const DOMAIN = 'berth';
let dir: string;
const started: Dns[] = [];
const children: ChildProcess[] = [];

/** The addresses `name` resolves to at port, or the error code. */
async function lookup(port: number, name: string, family: 4 | 6 = 4): Promise<string[] | string> {
  const r = new dnsp.Resolver({ timeout: 500, tries: 1 });
  r.setServers([`${HOST}:${port}`]);
  try {
    return await (family === 4 ? r.resolve4(name) : r.resolve6(name));
  } catch (err) {
    return (err as { code: string }).code;
  }
}

/** Polls until `lookup` gives `want` (bounded), and returns the last answer. */
async function until(port: number, name: string, want: string[] | string, family: 4 | 6 = 4, ms = 5000): Promise<string[] | string> {
  const deadline = Date.now() + ms;
  let got = await lookup(port, name, family);
  while (JSON.stringify(got) !== JSON.stringify(want) && Date.now() < deadline) {
    await sleep(50);
    got = await lookup(port, name, family);
  }
  return got;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-dns-'));
});

afterAll(async () => {
  for (const d of started) await d.stop();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await fs.rm(dir, { recursive: true, force: true });
});

describe('managed dnsmasq', () => {
  let dns: Dns;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    dns = await startDns({ domain: DOMAIN, hostsFile: path.join(dir, 'managed', 'hosts'), manage: { listenAddress: HOST, port, upstream: [] }, logger: silentLogger });
    started.push(dns);
  });

  it('answers where it says, from a started, empty hosts file', async () => {
    expect(dns.address).toEqual({ host: HOST, port });
    expect(dns.pid).toEqual(expect.any(Number));
    expect(await lookup(port, `web.${DOMAIN}`)).toBe('ENOTFOUND');
  });

  it('resolves an applied name', async () => {
    await dns.apply([{ name: 'web', address: '127.0.0.2' }]);
    expect(await until(port, `web.${DOMAIN}`, ['127.0.0.2'])).toEqual(['127.0.0.2']);
    expect(await fs.readFile(path.join(dir, 'managed', 'hosts'), 'utf8')).toContain('127.0.0.2 web.berth\n');
  });

  it('sees a changed set without restarting dnsmasq, IPv6 included', async () => {
    const pid = dns.pid;
    await dns.apply([{ name: 'web', address: '127.0.0.3' }, { name: 'api', address: '::1' }]);
    expect(await until(port, `web.${DOMAIN}`, ['127.0.0.3'])).toEqual(['127.0.0.3']);
    expect(await until(port, `api.${DOMAIN}`, ['::1'], 6)).toEqual(['::1']);
    expect(dns.pid).toBe(pid);
  });

  it('is idempotent', async () => {
    const pid = dns.pid;
    const set = [{ name: 'web', address: '127.0.0.3' }, { name: 'api', address: '::1' }];
    await dns.apply(set);
    await dns.apply(set);
    expect(await until(port, `web.${DOMAIN}`, ['127.0.0.3'])).toEqual(['127.0.0.3']);
    expect(dns.pid).toBe(pid);
  });

  it('answers NXDOMAIN for a name no longer in the set, and never forwards', async () => {
    await dns.apply([{ name: 'api', address: '::1' }]);
    expect(await until(port, `web.${DOMAIN}`, 'ENOTFOUND')).toBe('ENOTFOUND');
    expect(await lookup(port, `api.${DOMAIN}`, 6)).toEqual(['::1']);
    expect(await lookup(port, 'example.com')).not.toEqual(expect.any(Array));
  });

  it('refuses a bad record and keeps the current set', async () => {
    await expect(dns.apply([{ name: 'Bad_Name', address: '127.0.0.9' }])).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('"Bad_Name"') });
    expect(await lookup(port, `api.${DOMAIN}`, 6)).toEqual(['::1']);
  });

  it('restarts a killed dnsmasq, which answers the current records', async () => {
    await dns.apply([{ name: 'web', address: '127.0.0.4' }]);
    expect(await until(port, `web.${DOMAIN}`, ['127.0.0.4'])).toEqual(['127.0.0.4']);
    const pid = dns.pid!;
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 5000;
    while ((dns.pid === undefined || dns.pid === pid) && Date.now() < deadline) await sleep(50);
    expect(dns.pid).not.toBe(pid);
    expect(dns.pid).toEqual(expect.any(Number));
    expect(alive(pid)).toBe(false);
    expect(await until(port, `web.${DOMAIN}`, ['127.0.0.4'])).toEqual(['127.0.0.4']);
    // and it takes changes as before
    const restartedPid = dns.pid;
    await dns.apply([{ name: 'web', address: '127.0.0.5' }]);
    expect(await until(port, `web.${DOMAIN}`, ['127.0.0.5'])).toEqual(['127.0.0.5']);
    expect(dns.pid).toBe(restartedPid);
  });

  it('gives a set applied while dnsmasq is down to the restarted one', async () => {
    const pid = dns.pid!;
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 2000;
    while (dns.pid === pid && Date.now() < deadline) await sleep(10);
    expect(dns.pid).toBeUndefined(); // the restart waits out its backoff
    await dns.apply([{ name: 'web', address: '127.0.0.6' }, { name: 'new', address: '127.0.0.7' }]);
    expect(await until(port, `new.${DOMAIN}`, ['127.0.0.7'], 4, 8000)).toEqual(['127.0.0.7']);
    expect(await lookup(port, `web.${DOMAIN}`)).toEqual(['127.0.0.6']);
  });

  it('stop() leaves no dnsmasq, and is idempotent', async () => {
    const pid = dns.pid!;
    expect(alive(pid)).toBe(true);
    await Promise.all([dns.stop(), dns.stop()]);
    await dns.stop();
    expect(alive(pid)).toBe(false);
    expect(dns.pid).toBeUndefined();
    expect(await lookup(port, `web.${DOMAIN}`)).not.toEqual(expect.any(Array));
  });

  it('refuses to start on a port already taken, with dnsmasq\'s reason', async () => {
    const taken = dgram.createSocket('udp4');
    const busy = await freePort();
    await new Promise<void>((resolve) => taken.bind(busy, HOST, () => resolve()));
    try {
      const attempt = startDns({ domain: DOMAIN, hostsFile: path.join(dir, 'busy', 'hosts'), manage: { listenAddress: HOST, port: busy }, logger: silentLogger });
      await expect(attempt).rejects.toMatchObject({ code: 'PORT_UNAVAILABLE', message: expect.stringMatching(/start dnsmasq.*another process holds this port.*in use/) });
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });
});

it('keeps and serves the hosts file it finds at start, also after a crash before any apply', async () => {
  const port = await freePort();
  const hostsFile = path.join(dir, 'kept', 'hosts');
  await fs.mkdir(path.dirname(hostsFile));
  await fs.writeFile(hostsFile, '127.0.0.9 old.berth\n');
  const dns = await startDns({ domain: DOMAIN, hostsFile, manage: { listenAddress: HOST, port }, logger: silentLogger });
  started.push(dns);
  expect(await lookup(port, `old.${DOMAIN}`)).toEqual(['127.0.0.9']);
  const pid = dns.pid!;
  process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + 5000;
  while ((dns.pid === undefined || dns.pid === pid) && Date.now() < deadline) await sleep(50);
  expect(await until(port, `old.${DOMAIN}`, ['127.0.0.9'])).toEqual(['127.0.0.9']);
  await dns.stop();
});

it('refuses a bad domain or listen address before starting anything', async () => {
  const hostsFile = path.join(dir, 'bad', 'hosts');
  await expect(startDns({ domain: 'Bad', hostsFile, manage: null, logger: silentLogger })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  await expect(startDns({ domain: DOMAIN, hostsFile, manage: { listenAddress: 'localhost', port: 5353 }, logger: silentLogger })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  await expect(startDns({ domain: DOMAIN, hostsFile, manage: { listenAddress: HOST, port: 0 }, logger: silentLogger })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  await expect(fs.stat(hostsFile)).rejects.toMatchObject({ code: 'ENOENT' });
});

describe('unmanaged dnsmasq', () => {
  it('writes the file and SIGHUPs the pid in the pid file', async () => {
    const port = await freePort();
    const hostsFile = path.join(dir, 'unmanaged', 'hosts');
    const pidFile = path.join(dir, 'unmanaged', 'dnsmasq.pid');
    const dns = await startDns({ domain: DOMAIN, hostsFile, manage: null, pidFile, logger: silentLogger });
    started.push(dns);
    expect(dns.address).toBeNull();
    expect(dns.pid).toBeUndefined();
    const own = spawn('/usr/sbin/dnsmasq', [
      '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`,
      `--local=/${DOMAIN}/`, '--bind-interfaces', `--listen-address=${HOST}`, `--port=${port}`, `--pid-file=${pidFile}`,
      ...(process.getuid?.() === 0 ? ['--user=root'] : []),
    ], { stdio: 'ignore' });
    children.push(own);
    const deadline = Date.now() + 5000;
    while (!(await fs.stat(pidFile).then(() => true, () => false)) && Date.now() < deadline) await sleep(50);
    expect(Number((await fs.readFile(pidFile, 'utf8')).trim())).toBe(own.pid);
    expect(await until(port, `web.${DOMAIN}`, 'ENOTFOUND')).toBe('ENOTFOUND');

    await dns.apply([{ name: 'web', address: '127.0.0.6' }]);
    expect(await until(port, `web.${DOMAIN}`, ['127.0.0.6'])).toEqual(['127.0.0.6']);
    await dns.apply([{ name: 'web', address: '127.0.0.7' }]);
    expect(await until(port, `web.${DOMAIN}`, ['127.0.0.7'])).toEqual(['127.0.0.7']);
    expect(own.exitCode).toBeNull();
    await dns.stop(); // nothing of ours to stop: the unmanaged dnsmasq keeps running
    expect(alive(own.pid!)).toBe(true);
  });

  it('throws INTERNAL with context when the file cannot be written', async () => {
    const folder = path.join(dir, 'unwritable');
    const dns = await startDns({ domain: DOMAIN, hostsFile: path.join(folder, 'hosts'), manage: null, logger: silentLogger });
    started.push(dns);
    await fs.rm(folder, { recursive: true });
    await fs.writeFile(folder, 'not a folder');
    await expect(dns.apply([{ name: 'web', address: '127.0.0.8' }])).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringContaining(`write dns hosts file ${folder}/hosts`) });
    await expect(startDns({ domain: DOMAIN, hostsFile: path.join(folder, 'hosts'), manage: null, logger: silentLogger })).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('says so when the pid file names no process, after writing the file', async () => {
    const hostsFile = path.join(dir, 'gone', 'hosts');
    const pidFile = path.join(dir, 'gone', 'dnsmasq.pid');
    const dns = await startDns({ domain: DOMAIN, hostsFile, manage: null, pidFile, logger: silentLogger });
    started.push(dns);
    await expect(dns.apply([{ name: 'web', address: '127.0.0.8' }])).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringContaining(pidFile) });
    expect(await fs.readFile(hostsFile, 'utf8')).toContain('127.0.0.8 web.berth');
  });
});
