/**
 * A real `berth shell serve` and the OpenSSH client against connections that never log in: the
 * login grace time, the caps per address and in all, the failed-login log (capped, inert,
 * rate-limited), and a stop that does not wait for idle peers.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import type { Client } from 'ssh2';
import { fingerprint } from '../../common/ssh-keys';
import { Cluster, SshResult, runSsh, startCluster, until } from '../helpers/cluster';
import { IdlePeer, counts, dropPeers, idlePeers } from '../helpers/idle-peers';
import { manyLogins, offerKeys, openLogin, records, tryLogin } from '../helpers/login-attempts';
import { within } from '../helpers/wait';

const run = promisify(execFile);
const runLabel = `sguard-${randomUUID().slice(0, 8)}`;
const GRACE_S = 4;
let cluster: Cluster;

const closedByServer = (peers: IdlePeer[], what: string): Promise<number> =>
  until(what, async () => peers.filter((p) => p.closed).length, (n) => n === peers.length, (GRACE_S + 10) * 1000, 50);

const loginFailed = (address: string) => records(cluster.shell.logs, 'login failed').filter((r) => r['address'] === address);

const aliceKey = (): Promise<string> => fs.readFile(path.join(cluster.dir, 'key_alice'), 'utf8');

/** OpenSSH as `user` with key file `key`, from local address `from`, running `whoami`. */
function sshFrom(from: string, user: string, key: string): Promise<SshResult> {
  const args = [
    '-p', String(cluster.shell.port),
    '-b', from,
    '-i', key,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR',
    '-o', 'ConnectTimeout=10',
    `${user}@127.0.0.1`,
    'whoami',
  ];
  return runSsh(args);
}

/** Runs one command on a logged-in ssh2 connection; resolves with its output (bounded: 10 s). */
function exec(c: Client, command: string): Promise<string> {
  return within(
    `exec ${command}`,
    10_000,
    new Promise((resolve, reject) => {
      c.exec(command, (err, ch) => {
        if (err) return reject(err);
        let out = '';
        ch.on('data', (d: Buffer) => (out += d.toString()));
        ch.on('close', () => resolve(out));
      });
    }),
  );
}

/** A fresh shell for each describe, so each starts with an empty log window. */
function withShell(): void {
  beforeAll(async () => {
    cluster = await startCluster({ runLabel, agents: 0, shellConfig: { login: { graceSeconds: GRACE_S, maxPerSource: 10, maxTotal: 30 } } });
  }, 60_000);
  afterAll(async () => {
    await cluster?.dispose();
  });
}

describe('grace time and caps', () => {
  withShell();

  test('a connection that sends only a banner, or nothing, is closed after the grace time; a logged-in one stays', async () => {
    const alice = await openLogin({ port: cluster.shell.port, from: '127.0.0.1', username: 'alice', privateKey: await aliceKey() });
    try {
      const t0 = Date.now();
      const banner = await idlePeers({ port: cluster.shell.port, count: 1, from: '127.0.2.1' });
      const silent = await idlePeers({ port: cluster.shell.port, count: 1, from: '127.0.2.1', banner: false });
      expect(counts([...banner, ...silent])).toEqual({ greeted: 2, refused: 0, open: 2 });
      await closedByServer([...banner, ...silent], 'idle peers closed by the shell');
      console.log(`shell: idle peers closed ${Date.now() - t0} ms after connecting (grace ${GRACE_S} s)`);
      await until('both logged', async () => loginFailed('127.0.2.1'), (r) => r.length === 2);
      expect(loginFailed('127.0.2.1').map((r) => r['why'])).toEqual(['login grace time over', 'login grace time over']);
      // The logged-in connection has idled past the grace time and still works.
      expect(await exec(alice, 'whoami')).toBe('alice (admin)\n');
    } finally {
      alice.end();
    }
  });

  test('50 idle connections from one address: 40 closed at once, an operator from elsewhere still logs in', async () => {
    const flood = await idlePeers({ port: cluster.shell.port, count: 50, from: '127.0.2.2' });
    expect(counts(flood)).toEqual({ greeted: 10, refused: 40, open: 10 });
    expect(await cluster.ssh('alice', ['whoami'])).toMatchObject({ code: 0, out: 'alice (admin)\n' });
    expect(counts(flood).open).toBe(10); // the flood still held its slots meanwhile
    await closedByServer(flood, 'flood closed by the grace time');
    const later = await idlePeers({ port: cluster.shell.port, count: 1, from: '127.0.2.2' });
    expect(counts(later).greeted).toBe(1);
    await dropPeers(later);
  });

  test('overall cap: full, OpenSSH is refused before any key exchange; it logs in again after the grace time', async () => {
    const flood = [
      ...(await idlePeers({ port: cluster.shell.port, count: 10, from: '127.0.2.3' })),
      ...(await idlePeers({ port: cluster.shell.port, count: 10, from: '127.0.2.4' })),
      ...(await idlePeers({ port: cluster.shell.port, count: 10, from: '127.0.2.5' })),
    ];
    expect(counts(flood).greeted).toBe(30);
    const refused = await cluster.ssh('alice', ['whoami']);
    expect(refused.code).toBe(255);
    expect(refused.err).toMatch(/kex_exchange_identification|Connection (closed|reset)/);
    const [why] = await until('refusal logged', async () => records(cluster.shell.logs, 'connection refused').filter((r) => r['address'] === '127.0.0.1'), (r) => r.length === 1);
    expect(why).toMatchObject({ level: 'warn', why: 'too many not logged in', limit: 30 });
    await closedByServer(flood, 'flood closed by the grace time');
    expect(await cluster.ssh('alice', ['whoami'])).toMatchObject({ code: 0, out: 'alice (admin)\n' });
  });
});

describe('failed logins and stop', () => {
  withShell();

  test('one connection may offer at most 10 keys: then it is closed; fewer wrong keys before the right one still log in', async () => {
    const offer = async (wrong: number) => offerKeys({ port: cluster.shell.port, from: '127.0.2.9', username: 'alice', privateKey: await aliceKey(), wrong });
    const flood = await offer(15);
    expect(flood.outcome).not.toBe('LOGGED IN');
    // The client may send one more before it hears the close; the server took 10, then closed.
    expect(flood.offered).toBeLessThanOrEqual(11);
    const [r] = await until('the closed connection logged', async () => loginFailed('127.0.2.9'), (x) => x.length === 1);
    expect(r).toMatchObject({ attempts: 10, why: 'unknown key; too many attempts' });
    expect((await offer(4)).outcome).toBe('LOGGED IN');
  });

  test('an unknown key, an unknown user and a hostile user name are logged, capped and inert', async () => {
    const stranger = path.join(cluster.dir, 'key_stranger');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'stranger', '-f', stranger]);
    const blobOf = async (pub: string): Promise<Buffer> => Buffer.from((await fs.readFile(pub, 'utf8')).split(' ')[1] ?? '', 'base64');

    const unknownKey = await sshFrom('127.0.2.6', 'alice', stranger);
    expect(unknownKey).toMatchObject({ code: 255, out: '', err: expect.stringContaining('Permission denied (publickey)') });
    const [k] = await until('unknown key logged', async () => loginFailed('127.0.2.6'), (r) => r.length === 1);
    expect(k).toMatchObject({ level: 'warn', user: 'alice', why: 'unknown key', method: 'publickey', keys: [fingerprint(await blobOf(`${stranger}.pub`))] });

    const unknownUser = await sshFrom('127.0.2.7', 'mallory', path.join(cluster.dir, 'key_alice'));
    expect(unknownUser.code).toBe(255);
    const [u] = await until('unknown user logged', async () => loginFailed('127.0.2.7'), (r) => r.length === 1);
    expect(u).toMatchObject({ user: 'mallory', why: 'unknown user', keys: [fingerprint(await blobOf(path.join(cluster.dir, 'key_alice.pub')))] });

    const hostile = `\x1b[2J\x1b]0;owned\x07\u202e${'x'.repeat(300)}`;
    expect(await tryLogin({ port: cluster.shell.port, from: '127.0.2.8', username: hostile, privateKey: await aliceKey() })).toMatch(/authentication methods failed/);
    const [h] = await until('hostile user logged', async () => loginFailed('127.0.2.8'), (r) => r.length === 1);
    const logged = String(h?.['user']);
    expect(h).toMatchObject({ why: 'unknown user' });
    expect([...logged].length).toBeLessThanOrEqual(64);
    expect(logged.startsWith('\\x1b[2J\\x1b]0;owned\\x07\\u202exxx')).toBe(true);
    expect(logged).not.toMatch(/[\p{Cc}\p{Cf}]/u);
  });

  test('a flood of 200 failed logins from one address writes a bounded number of lines', async () => {
    const key = await fs.readFile(path.join(cluster.dir, 'key_stranger'), 'utf8');
    const outcomes = await manyLogins(200, 5, () => tryLogin({ port: cluster.shell.port, from: '127.0.2.9', username: 'alice', privateKey: key }));
    expect(outcomes.filter((o) => /authentication methods failed/.test(o))).toHaveLength(200);
    const lines = loginFailed('127.0.2.9');
    console.log(`shell: 200 failed logins from one address -> ${lines.length} lines`);
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(5);
  });

  test('stop with 20 idle pre-auth connections and an operator in the menu ends at once, then says what the log left out', async () => {
    const flood = [
      ...(await idlePeers({ port: cluster.shell.port, count: 10, from: '127.0.2.10' })),
      ...(await idlePeers({ port: cluster.shell.port, count: 10, from: '127.0.2.11' })),
    ];
    expect(counts(flood).greeted).toBe(20);
    // An operator idling in the menu: OpenSSH with a terminal, its stdin held open.
    const menu: ChildProcess = spawn('ssh', ['-tt', ...cluster.sshArgs('alice')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    menu.stdout?.on('data', (d: Buffer) => (screen += d.toString()));
    const menuExited = new Promise<void>((r) => menu.on('exit', () => r()));
    const killer = setTimeout(() => menu.kill('SIGKILL'), 30_000);
    try {
      await until('menu drawn', async () => screen.length, (n) => n > 0, 10_000, 50);
      const t0 = Date.now();
      await within('shell stop', 5000, cluster.stopShell());
      console.log(`shell: stop with 20 idle pre-auth peers and an operator in the menu took ${Date.now() - t0} ms`);
      await closedByServer(flood, 'flood closed by the stop');
      await within('menu ssh exits', 5000, menuExited);
    } finally {
      clearTimeout(killer);
      menu.kill('SIGKILL');
    }
    const leftOut = (): Array<{ address: string; left: number }> =>
      records(cluster.shell.logs, 'log lines left out').flatMap((r) => (r['top'] as Array<{ address: string; left: number }>).filter((t) => t.address === '127.0.2.9'));
    const [flooded] = await until('summary logged', async () => leftOut(), (r) => r.length > 0, 5000, 50);
    console.log(`shell: summary at stop: ${JSON.stringify(flooded)}`);
    expect(flooded?.left).toBeGreaterThanOrEqual(190);
    expect(loginFailed('127.0.2.10')).toEqual([]); // closing at a stop is not a failed login
  });
});
