/**
 * Logins made with a real ssh2 client from a chosen loopback address, and the JSON log lines a
 * server process wrote, for the tests of the login guard.
 */
import net from 'node:net';
import { Client } from 'ssh2';
import { generateEd25519 } from '../../common/ssh-keys';

export interface LoginOptions {
  port: number;
  /** Local address to connect from (any 127.x.y.z works on loopback). */
  from: string;
  username: string;
  privateKey: string | Buffer;
}

/**
 * One login attempt: resolves with 'LOGGED IN' (the connection is then closed) or the client's
 * error message once the connection has closed. Bounded: ssh2's 10 s ready timeout.
 */
export function tryLogin(o: LoginOptions): Promise<string> {
  return new Promise((resolve) => {
    const c = new Client();
    let outcome = 'CLOSED';
    c.on('ready', () => {
      outcome = 'LOGGED IN';
      c.end();
    });
    c.on('error', (err) => {
      if (outcome === 'CLOSED') outcome = err.message;
    });
    c.on('close', () => resolve(outcome));
    c.connect({ host: '127.0.0.1', port: o.port, localAddress: o.from, username: o.username, privateKey: o.privateKey, readyTimeout: 10_000 });
  });
}

/**
 * A logged-in ssh2 connection that stays open (and idle) until closed. `deaf`: once logged in it
 * reads nothing more, so it never hears a disconnect and never closes its side by itself.
 */
export function openLogin(o: LoginOptions & { deaf?: boolean }): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    const sock = net.connect({ host: '127.0.0.1', port: o.port, localAddress: o.from });
    sock.on('error', () => undefined);
    c.once('ready', () => {
      c.on('error', () => undefined);
      if (o.deaf) sock.pause();
      resolve(c);
    });
    c.once('error', reject);
    c.connect({ sock, username: o.username, privateKey: o.privateKey, readyTimeout: 10_000 });
  });
}

/** Runs `n` attempts, at most `parallel` at a time; resolves with every outcome. */
export async function manyLogins(n: number, parallel: number, attempt: () => Promise<string>): Promise<string[]> {
  const out: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      out.push(await attempt());
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return out;
}

export type LogRecord = Record<string, unknown> & { level: string; message: string };

/** The JSON log records among `lines` with this message (other lines are skipped). */
export function records(lines: string[], message: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of lines) {
    try {
      const r = JSON.parse(line) as LogRecord;
      if (r.message === message) out.push(r);
    } catch {
      // not a log record
    }
  }
  return out;
}

/**
 * One connection that offers `wrong` unknown keys, then the right one: resolves with 'LOGGED IN'
 * or how it ended, and how many keys the client offered.
 */
export function offerKeys(o: LoginOptions & { wrong: number }): Promise<{ outcome: string; offered: number }> {
  return new Promise((resolve) => {
    const keys: Array<string | Buffer> = [...Array.from({ length: o.wrong }, () => generateEd25519('wrong').private), o.privateKey];
    let offered = 0;
    let outcome = 'CLOSED';
    const c = new Client();
    c.on('ready', () => {
      outcome = 'LOGGED IN';
      c.end();
    });
    c.on('error', (err) => {
      if (outcome === 'CLOSED') outcome = err.message;
    });
    c.on('close', () => resolve({ outcome, offered }));
    c.connect({
      host: '127.0.0.1',
      port: o.port,
      localAddress: o.from,
      username: o.username,
      readyTimeout: 10_000,
      authHandler: (_methods, _partial, next) => {
        const key = keys.shift();
        if (key === undefined) return next(false as never);
        offered++;
        next({ type: 'publickey', username: o.username, key } as never);
      },
    });
  });
}
