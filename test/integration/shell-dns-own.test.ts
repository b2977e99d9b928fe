/**
 * The shell knows its own dnsmasq, against the real dnsmasq on 127.0.0.1 and free high ports:
 * another DNS server on the port is refused (at start, in the restart loop, and by
 * `berth shell serve`); a shell killed with SIGKILL leaves no dnsmasq behind; one an earlier shell
 * left is ended, and nothing else is; the probe record answers with the current child's nonce.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as dnsp } from 'node:dns';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { silentLogger, type LogFields, type Logger } from '../../common/logging';
import { generateEd25519 } from '../../common/ssh-keys';
import { startDns, type Dns } from '../../shell/dns';
import { BERTH_BIN, REPO_ROOT } from '../helpers/agent-process';
import { freePort } from '../helpers/ports';
import { alive, processesMentioning } from '../helpers/procs';
import { until, within } from '../helpers/wait';

const HOST = '127.0.0.1';
const DOMAIN = 'berth';
const PROBE = `_berth-probe.${DOMAIN}`;
const DNSMASQ = '/usr/sbin/dnsmasq';
const AS_ROOT = process.getuid?.() === 0 ? ['--user=root', '--group=root'] : [];
let dir: string;
const started: Dns[] = [];
const children: ChildProcess[] = [];

/** The addresses `name` resolves to at port, or the error code. */
async function lookup(port: number, name: string): Promise<string[] | string> {
  const r = new dnsp.Resolver({ timeout: 500, tries: 1 });
  r.setServers([`${HOST}:${port}`]);
  try {
    return await r.resolve4(name);
  } catch (err) {
    return (err as { code: string }).code;
  }
}

/** The TXT records of `name` at port (chunks joined), or the error code. */
async function txt(port: number, name: string): Promise<string[] | string> {
  const r = new dnsp.Resolver({ timeout: 500, tries: 1 });
  r.setServers([`${HOST}:${port}`]);
  try {
    return (await r.resolveTxt(name)).map((chunks) => chunks.join(''));
  } catch (err) {
    return (err as { code: string }).code;
  }
}

/** Whether any DNS server replies at port (an error reply counts). */
async function anyServer(port: number): Promise<boolean> {
  const got = await lookup(port, `probe.${DOMAIN}`);
  return Array.isArray(got) || ['ENOTFOUND', 'ENODATA', 'EREFUSED', 'ESERVFAIL'].includes(got);
}

/** The probe nonce on the command line of process `pid` (our dnsmasq), or null. */
function nonceOf(pid: number): string | null {
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const arg = args.find((a) => a.startsWith(`--txt-record=${PROBE},`));
  return arg ? arg.slice(`--txt-record=${PROBE},`.length) : null;
}

/** The nonce, once the freshly forked child runs its own command (before that, /proc shows the shell's). */
const nonceSoon = (pid: number): Promise<string | null> => until('its command line', async () => nonceOf(pid), (n) => n !== null, 5000, 10);

/** Field 22 of /proc/PID/stat: the process's start time. */
function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

/** The name of the record a shell keeps of its dnsmasq, next to the hosts file. */
const recordFile = (hostsFile: string): string => `${hostsFile}.dnsmasq.json`;

/** A dnsmasq the test runs itself (not tied to anyone), serving `hostsFile` on port. */
function runDnsmasq(hostsFile: string, port: number, extra: string[] = []): ChildProcess {
  const child = spawn(DNSMASQ, [
    '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`,
    `--local=/${DOMAIN}/`, '--bind-interfaces', `--listen-address=${HOST}`, `--port=${port}`, '--pid-file=', ...extra, ...AS_ROOT,
  ], { stdio: 'ignore' });
  children.push(child);
  return child;
}

/** A dnsmasq of someone else answering on port, with its own hosts file. */
async function foreignDnsmasq(port: number): Promise<ChildProcess> {
  const hostsFile = path.join(dir, `foreign-${port}.hosts`);
  await fs.writeFile(hostsFile, `127.0.0.66 web.${DOMAIN}\n`);
  const child = runDnsmasq(hostsFile, port);
  await until('the foreign dnsmasq answers', () => anyServer(port), (ok) => ok);
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** A hosts file in a folder of its own. */
async function hostsIn(name: string): Promise<string> {
  await fs.mkdir(path.join(dir, name));
  return path.join(dir, name, 'hosts');
}

interface Line {
  level: string;
  msg: string;
  fields?: LogFields;
}

/** A logger that keeps every line, for checking what the shell says. */
function keepingLogger(lines: Line[]): Logger {
  const at = (level: string) => (msg: string, fields?: LogFields): void => void lines.push({ level, msg, fields });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-dns-own-'));
});

afterAll(async () => {
  for (const d of started) await d.stop();
  for (const c of children) await kill(c);
  await fs.rm(dir, { recursive: true, force: true });
});

it('refuses a port another dnsmasq holds, naming it, and leaves none of its own running', async () => {
  const port = await freePort();
  const foreign = await foreignDnsmasq(port);
  const hostsFile = await hostsIn('foreign');
  const attempt = startDns({ domain: DOMAIN, hostsFile, manage: { listenAddress: HOST, port }, logger: silentLogger });
  await expect(attempt).rejects.toMatchObject({
    code: 'PORT_UNAVAILABLE',
    message: expect.stringMatching(new RegExp(`^start dnsmasq on ${HOST}:${port}: another process holds this port.*Address already in use`)),
  });
  expect(processesMentioning(`--addn-hosts=${hostsFile}`)).toEqual([]);
  expect(alive(foreign.pid!)).toBe(true);
  expect(await lookup(port, `web.${DOMAIN}`)).toEqual(['127.0.0.66']); // the other one still serves its own
});

it('berth shell serve refuses to start on a port another DNS server holds', async () => {
  const port = await freePort();
  await foreignDnsmasq(port);
  const shellDir = path.join(dir, 'serve');
  await fs.mkdir(shellDir);
  const config = path.join(shellDir, 'shell.json');
  await fs.writeFile(config, JSON.stringify({
    listen: { host: HOST, port: 0 },
    stateDir: './state',
    operators: [{ name: 'alice', role: 'admin', keys: [generateEd25519('alice').public] }],
    dns: { domain: DOMAIN, manage: { listenAddress: HOST, port } },
    log: { level: 'silent' },
  }));
  const shell = spawn(process.execPath, [BERTH_BIN, 'shell', 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(shell);
  let out = '';
  let err = '';
  shell.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
  shell.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
  const code = await until('the shell exits', async () => shell.exitCode, (c) => c !== null, 20_000, 50);
  expect({ code, out }).toEqual({ code: 1, out: '' });
  expect(err).toMatch(new RegExp(`^error: PORT_UNAVAILABLE: start dnsmasq on ${HOST}:${port}: another process holds this port`));
  expect(processesMentioning(path.join(shellDir, 'state', 'dns.hosts'))).toEqual([]);
});

it('leaves no dnsmasq behind when the process running it is killed with SIGKILL; the next one starts', async () => {
  const port = await freePort();
  const hostsFile = await hostsIn('killed');
  const script = [
    `const { startDns } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist/shell/dns/index.js'))});`,
    `const { silentLogger } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist/common/logging.js'))});`,
    `startDns({ domain: ${JSON.stringify(DOMAIN)}, hostsFile: process.argv[1], manage: { listenAddress: ${JSON.stringify(HOST)}, port: Number(process.argv[2]) }, logger: silentLogger })`,
    '  .then((d) => console.log(`ready ${d.pid}`), (e) => { console.log(`failed ${e.message}`); process.exit(1); });',
  ].join('\n');
  const shell = spawn(process.execPath, ['-e', script, hostsFile, String(port)], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(shell);
  const first = await within('its first line', 20_000, new Promise<string>((resolve) => readline.createInterface({ input: shell.stdout! }).once('line', resolve)));
  expect(first).toMatch(/^ready \d+$/);
  const pid = Number(first.split(' ')[1]);
  expect(processesMentioning(`--addn-hosts=${hostsFile}`)).toEqual([pid]);

  await kill(shell);
  const left = await until('its dnsmasq is gone', async () => processesMentioning(`--addn-hosts=${hostsFile}`), (p) => p.length === 0, 5000, 20).catch(() => processesMentioning(`--addn-hosts=${hostsFile}`));
  expect(left).toEqual([]);

  const dns = await startDns({ domain: DOMAIN, hostsFile, manage: { listenAddress: HOST, port }, logger: silentLogger });
  started.push(dns);
  await dns.apply([{ name: 'after', address: '127.0.0.21' }]);
  expect(await until('the name answers', () => lookup(port, `after.${DOMAIN}`), (v) => Array.isArray(v), 5000, 50)).toEqual(['127.0.0.21']);
  await dns.stop();
});

it('ends a dnsmasq an earlier shell left on its hosts file, then serves with its own', async () => {
  const port = await freePort();
  const hostsFile = await hostsIn('leftover');
  await fs.writeFile(hostsFile, `127.0.0.30 old.${DOMAIN}\n`);
  // As an earlier shell ran it, with the record it kept; not tied to anyone, so it outlived that shell.
  const leftover = runDnsmasq(hostsFile, port, [`--txt-record=${PROBE},0123456789abcdef0123456789abcdef`, '--domain-needed', '--log-facility=-']);
  await until('the leftover answers', () => lookup(port, `old.${DOMAIN}`), (v) => Array.isArray(v));
  await fs.writeFile(recordFile(hostsFile), `${JSON.stringify({ pid: leftover.pid, startTime: startTimeOf(leftover.pid!) })}\n`);

  const dns = await startDns({ domain: DOMAIN, hostsFile, manage: { listenAddress: HOST, port }, logger: silentLogger });
  started.push(dns);
  expect(alive(leftover.pid!)).toBe(false);
  expect(dns.pid).toEqual(expect.any(Number));
  expect(dns.pid).not.toBe(leftover.pid);
  expect(await txt(port, PROBE)).toEqual([nonceOf(dns.pid!)]);
  await dns.apply([{ name: 'new', address: '127.0.0.31' }]);
  expect(await until('the name answers', () => lookup(port, `new.${DOMAIN}`), (v) => Array.isArray(v), 5000, 50)).toEqual(['127.0.0.31']);
  expect(JSON.parse(await fs.readFile(recordFile(hostsFile), 'utf8'))).toEqual({ pid: dns.pid, startTime: startTimeOf(dns.pid!) });
  await dns.stop();
});

it('never ends a process that does not match the record in every respect', async () => {
  const hostsFile = await hostsIn('mismatch');
  const otherPort = await freePort();
  // A dnsmasq of someone else's hosts file; a process that names our file but is no dnsmasq; a
  // dnsmasq of our file whose start time differs from the record's (the pid was reused).
  const otherFile = path.join(dir, 'mismatch', 'other.hosts');
  await fs.writeFile(otherFile, '');
  const notOurs = runDnsmasq(otherFile, otherPort);
  const notDnsmasq = spawn(process.execPath, ['-e', 'setInterval(() => undefined, 1000)', '--', `--addn-hosts=${hostsFile}`], { stdio: 'ignore' });
  children.push(notDnsmasq);
  const reused = runDnsmasq(hostsFile, await freePort());
  await until('the other dnsmasq answers', () => anyServer(otherPort), (ok) => ok);
  const cases = [
    { what: 'not our hosts file', pid: notOurs.pid!, startTime: startTimeOf(notOurs.pid!) },
    { what: 'not dnsmasq', pid: notDnsmasq.pid!, startTime: startTimeOf(notDnsmasq.pid!) },
    { what: 'another start time', pid: reused.pid!, startTime: String(Number(startTimeOf(reused.pid!)) + 1) },
  ];
  for (const c of cases) {
    const port = await freePort();
    await fs.writeFile(recordFile(hostsFile), `${JSON.stringify({ pid: c.pid, startTime: c.startTime })}\n`);
    const dns = await startDns({ domain: DOMAIN, hostsFile, manage: { listenAddress: HOST, port }, logger: silentLogger });
    started.push(dns);
    expect({ what: c.what, alive: alive(c.pid) }).toEqual({ what: c.what, alive: true });
    // The record now names the dnsmasq this shell runs.
    expect(JSON.parse(await fs.readFile(recordFile(hostsFile), 'utf8'))).toEqual({ pid: dns.pid, startTime: startTimeOf(dns.pid!) });
    await dns.stop();
  }
});

it('is ready only when its own probe answers: the nonce of the current child, a new one after a restart', async () => {
  const port = await freePort();
  const hostsFile = await hostsIn('probe');
  const dns = await startDns({ domain: DOMAIN, hostsFile, manage: { listenAddress: HOST, port }, logger: silentLogger });
  started.push(dns);
  await dns.apply([{ name: 'web', address: '127.0.0.40' }]);
  expect(await until('the name answers', () => lookup(port, `web.${DOMAIN}`), (v) => Array.isArray(v), 5000, 50)).toEqual(['127.0.0.40']);
  const pid = dns.pid!;
  const nonce = await nonceSoon(pid);
  expect(nonce).toMatch(/^[0-9a-f]{32}$/);
  expect(await txt(port, PROBE)).toEqual([nonce]);

  process.kill(pid, 'SIGKILL');
  const restarted = await until('a new dnsmasq runs', async () => dns.pid, (p) => p !== undefined && p !== pid, 10_000, 20);
  const fresh = await nonceSoon(restarted!);
  expect(fresh).toMatch(/^[0-9a-f]{32}$/);
  expect(fresh).not.toBe(nonce);
  expect(await until('the new one answers', () => txt(port, PROBE), (v) => Array.isArray(v), 5000, 20)).toEqual([fresh]);
  expect(await lookup(port, `web.${DOMAIN}`)).toEqual(['127.0.0.40']);
  await dns.stop();
});

it('says plainly, once per round, that another process holds the port while restarting, and never claims a start', async () => {
  const port = await freePort();
  const hostsFile = await hostsIn('restart');
  const lines: Line[] = [];
  const dns = await startDns({ domain: DOMAIN, hostsFile, manage: { listenAddress: HOST, port }, logger: keepingLogger(lines) });
  started.push(dns);
  const otherFile = path.join(dir, 'restart', 'other.hosts');
  await fs.writeFile(otherFile, '');
  // Kill ours; another dnsmasq takes the port during the backoff. Should ours win that race,
  // try again (bounded).
  let foreign: ChildProcess | null = null;
  let from = 0;
  for (let attempt = 0; attempt < 3 && !foreign; attempt++) {
    const pid = await until('ours runs', async () => dns.pid, (p) => p !== undefined, 15_000, 20);
    process.kill(pid!, 'SIGKILL');
    await until('ours is down', async () => dns.pid, (p) => p === undefined, 5000, 5);
    const candidate = runDnsmasq(otherFile, port);
    const ok = await until('the other one answers or gives up', async () => ({ up: await anyServer(port), gone: candidate.exitCode !== null }), (s) => (s.up && !s.gone) || s.gone, 5000, 20);
    if (ok.up && !ok.gone && typeof (await txt(port, PROBE)) === 'string') {
      foreign = candidate;
      from = lines.length;
    } else {
      await kill(candidate);
    }
  }
  expect(foreign).not.toBeNull();
  const held = await until('the held port is logged', async () => lines.slice(from).filter((l) => l.msg.startsWith('dns port held by another process')), (l) => l.length >= 2, 20_000, 50);
  expect(held[0]).toMatchObject({ level: 'error', fields: { address: `${HOST}:${port}`, error: expect.stringContaining('another process holds this port') } });
  expect(lines.slice(from).filter((l) => l.msg === 'started dnsmasq')).toEqual([]);
  // One line per round: never more held lines than failed attempts.
  const rounds = lines.slice(from).filter((l) => l.msg === 'dnsmasq says' && /in use/.test(String(l.fields?.line))).length;
  expect(held.length).toBeLessThanOrEqual(rounds);
  expect(dns.pid).toBeUndefined();
  expect(alive(foreign!.pid!)).toBe(true);

  await kill(foreign!);
  await until('ours is back', async () => dns.pid, (p) => p !== undefined, 30_000, 50);
  expect(await until('its probe answers', () => txt(port, PROBE), (v) => Array.isArray(v))).toEqual([nonceOf(dns.pid!)]);
  await dns.stop();
});
