/**
 * The way from the shell to an agent's SSH port, for one connection attempt: a TCP connection of
 * its own, or a direct-tcpip channel through a bastion (an SSH connection whose host key is
 * pinned, logged in with the shell's agent key). The agent's own SSH connection runs over either.
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import { Client } from 'ssh2';
import { Logger } from '../../common/logging';
import { fingerprint } from '../../common/ssh-keys';
import { PinnedJump } from './enrolled';

/** How long a closed route waits for its peer to end the connection before dropping it. */
const CLOSE_GRACE_MS = 2000;

export interface RouteEvents {
  /** The stream to the agent's SSH port is open. Called at most once. */
  open(stream: Duplex): void;
  /**
   * The route could not open or, once open, dropped; `reason` names the part that failed (for the
   * agent's status). Called at most once, and never after close().
   */
  lost(reason: string): void;
}

export interface Route {
  /** Ends the stream and whatever carries it; what does not end within a grace is destroyed. Idempotent. */
  close(): void;
}

/** A TCP connection straight to host:port. */
export function directRoute(host: string, port: number, on: RouteEvents): Route {
  let over = false;
  const sock = net.connect({ host, port, noDelay: true });
  const unreachable = (err: Error): void => {
    if (over) return;
    over = true;
    on.lost(`cannot reach ${host}:${port}: ${err.message}`);
  };
  sock.once('error', unreachable);
  sock.once('connect', () => {
    // From here on the SSH client that reads the socket owns its errors.
    sock.off('error', unreachable);
    if (!over) on.open(sock);
  });
  return {
    close() {
      over = true;
      endSocket(sock);
    },
  };
}

export interface JumpRouteOptions {
  jump: PinnedJump;
  /** The agent's SSH address as the bastion reaches it. */
  to: { host: string; port: number };
  /** The shell's agent key: the bastion trusts it as it would any login key. */
  privateKey: Buffer;
  /** Keepalive interval on the bastion's connection; a bastion silent for ~3 of them is dropped. */
  keepaliveMs: number;
  /** Bound on the bastion's handshake and login. */
  readyTimeoutMs: number;
  logger: Logger;
}

/**
 * An SSH connection to the bastion (its host key checked against the pin before anything else is
 * sent; any other key ends the attempt) and one direct-tcpip channel from it to `to`.
 */
export function jumpRoute(o: JumpRouteOptions, on: RouteEvents): Route {
  const { user, host, port } = o.jump;
  const bastion = `bastion ${user}@${host.includes(':') ? `[${host}]` : host}:${port}`;
  const log = o.logger.child({ component: 'jump', bastion });
  let over = false;
  let wrongKey = '';
  const fail = (reason: string): void => {
    if (over) return;
    over = true;
    on.lost(reason);
  };
  const sock = net.connect({ host, port, noDelay: true });
  const conn = new Client();
  conn.on('ready', () => {
    conn.forwardOut('127.0.0.1', 0, o.to.host, o.to.port, (err, channel) => {
      if (err) return fail(`${bastion} did not open a channel to ${o.to.host}:${o.to.port}: ${err.message}`);
      if (over) return void channel.close();
      on.open(channel);
    });
  });
  conn.on('error', (err: Error & { level?: string }) => {
    if (wrongKey) return fail(wrongKey);
    if (err.level === 'client-socket') return fail(`cannot reach ${bastion}: ${err.message}`);
    if (err.level === 'client-authentication') return fail(`${bastion} refused the shell's key (${err.message})`);
    fail(`${bastion}: ${err.message}`);
  });
  conn.on('close', () => fail(wrongKey || `${bastion} closed the connection`));
  conn.connect({
    sock,
    username: user,
    privateKey: o.privateKey,
    readyTimeout: o.readyTimeoutMs,
    keepaliveInterval: o.keepaliveMs,
    keepaliveCountMax: 3,
    hostVerifier: (key: Buffer) => {
      const seen = fingerprint(key);
      if (seen === o.jump.fingerprint) return true;
      wrongKey = `bastion host key changed: expected ${o.jump.fingerprint}, ${bastion} presented ${seen}`;
      log.error('refused bastion host key', { expected: o.jump.fingerprint, seen });
      return false;
    },
  });
  return {
    close() {
      over = true;
      conn.end();
      endSocket(sock);
    },
  };
}

/** Ends a socket (at once if it is still connecting); destroys it if it is not closed after the grace. */
function endSocket(sock: net.Socket): void {
  if (sock.connecting || sock.destroyed) {
    sock.destroy();
    return;
  }
  sock.end();
  setTimeout(() => sock.destroy(), CLOSE_GRACE_MS).unref();
}
