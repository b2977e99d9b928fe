/**
 * A real `berth agent serve` against connections that never log in: the login grace time, the
 * caps per address and in all (refused at once, never a key exchange), the failed-login log
 * (capped, inert, rate-limited), and a stop that does not wait for idle peers.
 */
import { randomUUID } from 'node:crypto';
import { fingerprint, generateEd25519 } from '../../common/ssh-keys';
import { SUBSYSTEMS } from '../../common/protocol';
import { AgentClient } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { IdlePeer, counts, dropPeers, idlePeers } from '../helpers/idle-peers';
import { manyLogins, offerKeys, openLogin, records, tryLogin } from '../helpers/login-attempts';
import { until, within } from '../helpers/wait';

const runLabel = `aguard-${randomUUID().slice(0, 8)}`;
const GRACE_S = 4;
let agent: AgentProcess;

const closedByServer = (peers: IdlePeer[], what: string): Promise<number> =>
  until(what, async () => peers.filter((p) => p.closed).length, (n) => n === peers.length, (GRACE_S + 10) * 1000, 50);

const loginFailed = (address: string) => records(agent.logs, 'login failed').filter((r) => r['address'] === address);

/** A fresh agent for each describe, so each starts with an empty log window. */
function withAgent(): void {
  beforeAll(async () => {
    agent = await startAgentProcess({ runLabel, config: { login: { graceSeconds: GRACE_S, maxPerSource: 10, maxTotal: 30 } } });
  }, 60_000);
  afterAll(async () => {
    await agent?.dispose();
  });
}

describe('grace time and caps', () => {
  withAgent();

  test('a connection that sends only a banner, or nothing, is closed after the grace time; a logged-in one stays', async () => {
    const client: AgentClient = await agent.connect();
    const t0 = Date.now();
    const banner = await idlePeers({ port: agent.port, count: 1, from: '127.0.1.1' });
    const silent = await idlePeers({ port: agent.port, count: 1, from: '127.0.1.1', banner: false });
    expect(counts([...banner, ...silent])).toEqual({ greeted: 2, refused: 0, open: 2 });
    await closedByServer([...banner, ...silent], 'idle peers closed by the agent');
    console.log(`agent: idle peers closed ${Date.now() - t0} ms after connecting (grace ${GRACE_S} s)`);
    await until('both logged', async () => loginFailed('127.0.1.1'), (r) => r.length === 2);
    expect(loginFailed('127.0.1.1').map((r) => r['why'])).toEqual(['login grace time over', 'login grace time over']);
    // The logged-in connection has idled past the grace time and still works.
    expect((await client.call('list', {})).sessions).toEqual([]);
  });

  test('50 idle connections from one address: 40 closed at once, a login from elsewhere still works', async () => {
    const flood = await idlePeers({ port: agent.port, count: 50, from: '127.0.1.2' });
    expect(counts(flood)).toEqual({ greeted: 10, refused: 40, open: 10 });
    expect(records(agent.logs, 'connection refused').filter((r) => r['address'] === '127.0.1.2').length).toBeLessThanOrEqual(5);
    const shell = await openLogin({ port: agent.port, from: '127.0.0.1', username: 'shell', privateKey: agent.shellKey.private });
    shell.end();
    expect(counts(flood).open).toBe(10); // the flood still held its slots meanwhile
    await closedByServer(flood, 'flood closed by the grace time');
    // Its slots are free again.
    const later = await idlePeers({ port: agent.port, count: 1, from: '127.0.1.2' });
    expect(counts(later).greeted).toBe(1);
    await dropPeers(later);
  });

  test('overall cap: full, a new connection is refused before any key exchange; free again after the grace time', async () => {
    const flood = [
      ...(await idlePeers({ port: agent.port, count: 10, from: '127.0.1.3' })),
      ...(await idlePeers({ port: agent.port, count: 10, from: '127.0.1.4' })),
      ...(await idlePeers({ port: agent.port, count: 10, from: '127.0.1.5' })),
    ];
    expect(counts(flood).greeted).toBe(30);
    const refused = await idlePeers({ port: agent.port, count: 1, from: '127.0.0.1' });
    expect(counts(refused)).toEqual({ greeted: 0, refused: 1, open: 0 });
    const [why] = await until('refusal logged', async () => records(agent.logs, 'connection refused').filter((r) => r['address'] === '127.0.0.1'), (r) => r.length === 1);
    expect(why).toMatchObject({ level: 'warn', why: 'too many not logged in', limit: 30 });
    await closedByServer(flood, 'flood closed by the grace time');
    expect(await tryLogin({ port: agent.port, from: '127.0.0.1', username: 'shell', privateKey: agent.shellKey.private })).toBe('LOGGED IN');
  });
});

describe('failed logins and stop', () => {
  withAgent();

  test('one connection may offer at most 10 keys, then it is closed; fewer wrong keys before the right one still log in', async () => {
    const flood = await offerKeys({ port: agent.port, from: '127.0.1.9', username: 'shell', privateKey: agent.shellKey.private, wrong: 15 });
    expect(flood.outcome).not.toBe('LOGGED IN');
    // The client may send one more before it hears the close; the agent took 10, then closed.
    expect(flood.offered).toBeLessThanOrEqual(11);
    const [r] = await until('the closed connection logged', async () => loginFailed('127.0.1.9'), (x) => x.length === 1);
    expect(r).toMatchObject({ attempts: 10, why: 'unknown key; too many attempts' });
    const fine = await offerKeys({ port: agent.port, from: '127.0.1.9', username: 'shell', privateKey: agent.shellKey.private, wrong: 4 });
    expect(fine.outcome).toBe('LOGGED IN');
  });

  test('a failed login is logged with address, user and key fingerprint, capped and inert', async () => {
    const stranger = generateEd25519('stranger');
    const blob = Buffer.from(stranger.public.split(' ')[1] ?? '', 'base64');
    const user = `\x1b[2J\x1b]0;owned\x07\u202e${'x'.repeat(300)}`;
    const outcome = await tryLogin({ port: agent.port, from: '127.0.1.6', username: user, privateKey: stranger.private });
    expect(outcome).toMatch(/authentication methods failed/);
    const [r] = await until('failed login logged', async () => loginFailed('127.0.1.6'), (x) => x.length === 1);
    expect(r).toMatchObject({ level: 'warn', address: '127.0.1.6', why: 'unknown key', method: 'publickey', keys: [fingerprint(blob)] });
    const logged = String(r?.['user']);
    expect([...logged].length).toBeLessThanOrEqual(64);
    expect(logged.startsWith('\\x1b[2J\\x1b]0;owned\\x07\\u202exxx')).toBe(true);
    expect(logged).not.toMatch(/[\p{Cc}\p{Cf}]/u);
  });

  test('a flood of 200 failed logins from one address writes a bounded number of lines', async () => {
    const stranger = generateEd25519('flood');
    const outcomes = await manyLogins(200, 5, () => tryLogin({ port: agent.port, from: '127.0.1.7', username: 'shell', privateKey: stranger.private }));
    expect(outcomes.filter((o) => /authentication methods failed/.test(o))).toHaveLength(200);
    const lines = loginFailed('127.0.1.7');
    console.log(`agent: 200 failed logins from one address -> ${lines.length} lines`);
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(5);
  });

  test('stop with 20 idle pre-auth connections and logged-in sessions (one deaf to the disconnect) ends in bounded time, then says what the log left out', async () => {
    const flood = [...(await idlePeers({ port: agent.port, count: 10, from: '127.0.1.8' })), ...(await idlePeers({ port: agent.port, count: 10, from: '127.0.1.9' }))];
    expect(counts(flood).greeted).toBe(20);
    const shell = await openLogin({ port: agent.port, from: '127.0.0.1', username: 'shell', privateKey: agent.shellKey.private });
    const events = await new Promise<{ on(ev: string, f: () => void): void }>((resolve, reject) =>
      shell.subsys(SUBSYSTEMS.events, (err, ch) => (err ? reject(err) : resolve(ch))),
    );
    events.on('data', () => undefined);
    let shellClosed = false;
    shell.on('close', () => (shellClosed = true));
    // A logged-in peer that never reads the disconnect: the stop cuts it off after its short wait.
    const deaf = await openLogin({ port: agent.port, from: '127.0.0.1', username: 'shell', privateKey: agent.shellKey.private, deaf: true });
    try {
      const t0 = Date.now();
      await within('agent stop', 5000, agent.stop());
      console.log(`agent: stop with 20 idle pre-auth peers, a logged-in session and a deaf one took ${Date.now() - t0} ms`);
      await closedByServer(flood, 'flood closed by the stop');
      await until('logged-in session closed', async () => shellClosed, (c) => c, 5000, 20);
    } finally {
      deaf.destroy();
      shell.destroy();
    }
    // The 200 failures past the first few lines are counted in the summary the stop writes.
    const leftOut = (): Array<{ address: string; left: number }> =>
      records(agent.logs, 'log lines left out').flatMap((r) => (r['top'] as Array<{ address: string; left: number }>).filter((t) => t.address === '127.0.1.7'));
    const [flooded] = await until('summary logged', async () => leftOut(), (r) => r.length > 0, 5000, 50);
    console.log(`agent: summary at stop: ${JSON.stringify(flooded)}`);
    expect(flooded?.left).toBeGreaterThanOrEqual(190);
    expect(loginFailed('127.0.1.8')).toEqual([]); // closing at a stop is not a failed login
  });
});
