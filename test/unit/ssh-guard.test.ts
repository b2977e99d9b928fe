/**
 * The pre-auth guard over real loopback sockets (no SSH): caps per address and in all, the grace
 * time, a stop, and the failed-login lines (capped, inert, rate-limited).
 */
import net, { AddressInfo } from 'node:net';
import { generateEd25519, fingerprint } from '../../common/ssh-keys';
import { LogFields, Logger } from '../../common/logging';
import { RateLimitedLog } from '../../common/rate-limited-log';
import { Login, LoginLimits, SshGuard, loginLimitsSchema } from '../../common/ssh-guard';
import { counts, dropPeers, idlePeers } from '../helpers/idle-peers';
import { until } from '../helpers/wait';

interface Line {
  level: string;
  msg: string;
  fields: LogFields;
}

function captureLogger(lines: Line[]): Logger {
  const at =
    (level: string) =>
    (msg: string, fields: LogFields = {}): void => {
      lines.push({ level, msg, fields });
    };
  const self: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => self };
  return self;
}

/** A TCP server whose sockets pass the guard, then get an SSH-like banner (so peers see "greeted"). */
async function guarded(given: Partial<LoginLimits>, lines: Line[]): Promise<{ guard: SshGuard; port: number; logins: Login[]; close(): Promise<void> }> {
  const guard = new SshGuard({ limits: loginLimitsSchema.parse(given), logger: captureLogger(lines) });
  const logins: Login[] = [];
  const server = net.createServer((sock) => {
    const login = guard.admit(sock);
    if (!login) return;
    logins.push(login);
    sock.on('error', () => undefined);
    sock.resume(); // read (and drop) what peers send, so their leaving is seen
    sock.write('SSH-2.0-Guarded\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    guard,
    port: (server.address() as AddressInfo).port,
    logins,
    close: () =>
      new Promise<void>((r) => {
        guard.destroyAll();
        server.close(() => r());
      }),
  };
}

describe('RateLimitedLog', () => {
  test('one address: a few lines, then one summary counting the rest', () => {
    const lines: Line[] = [];
    const log = new RateLimitedLog(captureLogger(lines), { perSource: 5, total: 50, windowMs: 60_000, maxSources: 100 });
    for (let i = 0; i < 200; i++) log.write('warn', '10.0.0.1', 'login failed', { i });
    expect(lines.map((l) => l.fields['i'])).toEqual([0, 1, 2, 3, 4]);
    log.flush();
    log.flush();
    expect(lines.slice(5)).toEqual([{ level: 'warn', msg: 'log lines left out', fields: { left: 195, windowSeconds: 60, top: [{ address: '10.0.0.1', left: 195 }] } }]);
  });

  test('many addresses: the total caps them, past maxSources they count as a crowd', () => {
    const lines: Line[] = [];
    const log = new RateLimitedLog(captureLogger(lines), { perSource: 2, total: 10, windowMs: 60_000, maxSources: 8 });
    for (let i = 0; i < 20; i++) for (let j = 0; j < 3; j++) log.write('warn', `10.0.0.${i}`, 'x', {});
    expect(lines).toHaveLength(10);
    log.flush();
    const summary = lines[10]?.fields as { left: number; top: Array<{ address: string; left: number }> };
    expect(summary.left).toBe(50);
    expect(summary.top).toHaveLength(5);
    expect(lines).toHaveLength(11);
  });

  test('the window ends by itself and a new one starts', async () => {
    const lines: Line[] = [];
    const log = new RateLimitedLog(captureLogger(lines), { perSource: 1, total: 10, windowMs: 200, maxSources: 10 });
    log.write('warn', 'a', 'x', {});
    log.write('warn', 'a', 'x', {});
    await until('summary', async () => lines.length, (n) => n === 2, 5000, 20);
    expect(lines[1]?.msg).toBe('log lines left out');
    log.write('warn', 'a', 'x', {});
    expect(lines).toHaveLength(3);
    log.flush();
  });
});

describe('SshGuard', () => {
  test('per-address cap: the extra connections close at once, another address is let in', async () => {
    const lines: Line[] = [];
    const g = await guarded({ graceSeconds: 60, maxPerSource: 3, maxTotal: 20 }, lines);
    try {
      const flood = await idlePeers({ port: g.port, count: 8, from: '127.0.0.2' });
      expect(counts(flood)).toEqual({ greeted: 3, refused: 5, open: 3 });
      const other = await idlePeers({ port: g.port, count: 2, from: '127.0.0.3' });
      expect(counts(other)).toEqual({ greeted: 2, refused: 0, open: 2 });
      expect(g.guard.counts()).toEqual({ open: 5, pending: 5 });
      const refused = lines.filter((l) => l.msg === 'connection refused');
      expect(refused).toHaveLength(5);
      expect(refused[0]?.fields).toMatchObject({ address: '127.0.0.2', why: 'too many not logged in from this address', limit: 3 });
      // The flood leaves: its slots free up at once.
      await dropPeers(flood);
      await until('slots freed', async () => g.guard.counts().pending, (n) => n === 2, 5000, 20);
      const again = await idlePeers({ port: g.port, count: 3, from: '127.0.0.2' });
      expect(counts(again).greeted).toBe(3);
      await dropPeers([...other, ...again]);
    } finally {
      await g.close();
    }
  });

  test('overall cap, and logged-in connections never count', async () => {
    const lines: Line[] = [];
    const g = await guarded({ graceSeconds: 60, maxPerSource: 5, maxTotal: 6 }, lines);
    try {
      const first = await idlePeers({ port: g.port, count: 2, from: '127.0.0.4' });
      for (const l of g.logins) l.loggedIn();
      const flood = [...(await idlePeers({ port: g.port, count: 5, from: '127.0.0.5' })), ...(await idlePeers({ port: g.port, count: 3, from: '127.0.0.6' }))];
      expect(counts(flood)).toEqual({ greeted: 6, refused: 2, open: 6 });
      expect(lines.filter((l) => l.msg === 'connection refused').map((l) => l.fields['why'])).toEqual(['too many not logged in', 'too many not logged in']);
      expect(g.guard.counts()).toEqual({ open: 8, pending: 6 });
      await dropPeers([...first, ...flood]);
    } finally {
      await g.close();
    }
  });

  test('grace time: a silent or idle connection is closed; a logged-in one stays', async () => {
    const lines: Line[] = [];
    const g = await guarded({ graceSeconds: 1, maxPerSource: 10, maxTotal: 10 }, lines);
    try {
      const silent = await idlePeers({ port: g.port, count: 1, from: '127.0.0.7', banner: false });
      const idle = await idlePeers({ port: g.port, count: 1, from: '127.0.0.7' });
      const kept = await idlePeers({ port: g.port, count: 1, from: '127.0.0.8' });
      g.logins[2]?.loggedIn();
      const t0 = Date.now();
      await until('pre-auth peers closed by the server', async () => [...silent, ...idle].filter((p) => p.closed).length, (n) => n === 2, 10_000, 20);
      console.log(`grace 1 s: closed after ${Date.now() - t0} ms`);
      expect(kept[0]?.closed).toBe(false);
      const failed = lines.filter((l) => l.msg === 'login failed');
      expect(failed.map((l) => l.fields)).toEqual([
        expect.objectContaining({ address: '127.0.0.7', attempts: 0, why: 'login grace time over' }),
        expect.objectContaining({ address: '127.0.0.7', attempts: 0, why: 'login grace time over' }),
      ]);
      await dropPeers(kept);
    } finally {
      await g.close();
    }
  });

  test('a failed login is one line: user capped and inert, key fingerprints, why', async () => {
    const lines: Line[] = [];
    const g = await guarded({ graceSeconds: 60, maxPerSource: 10, maxTotal: 10 }, lines);
    try {
      const peers = await idlePeers({ port: g.port, count: 2, from: '127.0.0.9' });
      const key = Buffer.from(generateEd25519().public.split(' ')[1] ?? '', 'base64');
      const user = `\x1b]52;c;aGk=\x07\u202e${'u'.repeat(500)}`;
      const [a, b] = g.logins;
      a?.refused({ user, method: 'none', why: 'method not allowed' });
      a?.refused({ user, method: 'publickey', key, why: 'unknown key' });
      a?.refused({ user, method: 'publickey', key, why: 'unknown key' });
      b?.refused({ user: 'nobody', method: 'none', why: 'method not allowed' });
      b?.loggedIn();
      await dropPeers(peers);
      await until('failed login logged', async () => lines.filter((l) => l.msg === 'login failed').length, (n) => n >= 1, 5000, 20);
      const failed = lines.filter((l) => l.msg === 'login failed');
      expect(failed).toHaveLength(1);
      const f = failed[0]?.fields as { user: string; keys: string[]; attempts: number; why: string; address: string; method: string };
      expect(f).toMatchObject({ address: '127.0.0.9', keys: [fingerprint(key)], attempts: 2, why: 'unknown key', method: 'publickey' });
      expect([...f.user].length).toBeLessThanOrEqual(64);
      expect(f.user).toMatch(/^\\x1b\]52;c;aGk=\\x07\\u202eu+…$/);
      expect(f.user).not.toMatch(/[\p{Cc}\p{Cf}]/u);
    } finally {
      await g.close();
    }
  });

  test('only a "none" probe, then gone: a failed login with no key offered; a port scan: nothing', async () => {
    const lines: Line[] = [];
    const g = await guarded({ graceSeconds: 60, maxPerSource: 10, maxTotal: 10 }, lines);
    try {
      const peers = await idlePeers({ port: g.port, count: 2, from: '127.0.0.10' });
      g.logins[0]?.refused({ user: 'bob', method: 'none', why: 'method not allowed' });
      await dropPeers(peers);
      await until('pre-auth gone', async () => g.guard.counts().open, (n) => n === 0, 5000, 20);
      expect(lines.map((l) => [l.msg, l.fields['user'], l.fields['why']])).toEqual([['login failed', 'bob', 'no key offered']]);
    } finally {
      await g.close();
    }
  });

  test('stopPending closes pre-auth connections at once and refuses new ones; destroyAll the rest', async () => {
    const lines: Line[] = [];
    const g = await guarded({ graceSeconds: 60, maxPerSource: 10, maxTotal: 30 }, lines);
    try {
      const pre = await idlePeers({ port: g.port, count: 10, from: '127.0.0.11' });
      const inside = await idlePeers({ port: g.port, count: 1, from: '127.0.0.12' });
      g.logins[10]?.loggedIn();
      g.guard.stopPending();
      await until('pre-auth closed', async () => pre.filter((p) => p.closed).length, (n) => n === 10, 5000, 20);
      expect(inside[0]?.closed).toBe(false);
      const late = await idlePeers({ port: g.port, count: 1, from: '127.0.0.13' });
      expect(counts(late)).toEqual({ greeted: 0, refused: 1, open: 0 });
      g.guard.destroyAll();
      await until('logged-in closed', async () => inside[0]?.closed, (c) => c === true, 5000, 20);
      // A stop is not a failed login.
      expect(lines.filter((l) => l.msg === 'login failed')).toEqual([]);
    } finally {
      await g.close();
    }
  });
});

describe('attempts per connection', () => {
  it('says when a connection used up its login attempts, as OpenSSH does past MaxAuthTries', async () => {
    const lines: Line[] = [];
    const g = await guarded({ graceSeconds: 60, maxAuthTries: 3 }, lines);
    try {
      const sock = net.connect(g.port, '127.0.0.1');
      await until('admitted', async () => g.logins.length, (n) => n === 1, 5000, 10);
      const login = g.logins[0]!;
      const attempt = { user: 'mallory', method: 'publickey', key: null, why: 'unknown key' };
      // The "none" probe every client starts with is not an attempt.
      expect(login.refused({ ...attempt, method: 'none' })).toBe(false);
      expect([login.refused(attempt), login.refused(attempt), login.refused(attempt)]).toEqual([false, false, true]);
      sock.destroy();
    } finally {
      await g.close();
    }
  });
});
