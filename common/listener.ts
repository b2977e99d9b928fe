/**
 * The TCP listener of an SSH server (ssh2's `injectSocket` takes what it accepts). Every accepted
 * socket first passes the pre-auth guard (login grace time, caps per address and overall, the
 * failed-login log: common/ssh-guard.ts), then gets TCP_NODELAY (small frames such as a keystroke
 * or an RPC reply must not wait on Nagle's algorithm and delayed ACKs, ~40 ms on loopback).
 */
import net, { AddressInfo } from 'node:net';
import { Logger } from './logging';
import { RateLimit } from './rate-limited-log';
import { Login, LoginLimits, SshGuard } from './ssh-guard';

/** How long a stop waits for logged-in peers to leave after being told to, before it cuts them off. */
export const STOP_GRACE_MS = 1000;

export interface Listener {
  /** Starts listening; resolves with the bound address (port 0 picks one). */
  listen(port: number, host: string): Promise<AddressInfo>;
  /**
   * Stops accepting, destroys every connection not logged in yet, asks the logged-in ones to
   * leave (`endAll`) and destroys those still open after STOP_GRACE_MS; resolves when all are
   * closed. Idempotent.
   */
  close(): Promise<void>;
}

export interface SshListener extends Listener {
  /**
   * The Login of a connection the SSH server made from an accepted socket; null if it is not
   * one of this listener's (or already closed).
   */
  loginOf(connection: object): Login | null;
}

export interface SshListenerOptions {
  /** Hands an admitted socket to the SSH server. */
  accept(sock: net.Socket): void;
  /** Asks every connection the SSH server holds to end (an SSH disconnect); called once, by close(). */
  endAll(): void;
  limits?: LoginLimits;
  logger: Logger;
  rateLimit?: RateLimit;
}

export function sshListener(o: SshListenerOptions): SshListener {
  const guard = new SshGuard({ limits: o.limits, logger: o.logger, rateLimit: o.rateLimit });
  const server = net.createServer((sock) => {
    if (!guard.admit(sock)) return;
    sock.setNoDelay(true);
    o.accept(sock);
  });
  let closing: Promise<void> | null = null;
  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      closing ??= new Promise((resolve) => {
        const cutOff = setTimeout(() => guard.destroyAll(), STOP_GRACE_MS);
        server.close(() => {
          clearTimeout(cutOff);
          guard.flushLog();
          resolve();
        });
        guard.stopPending();
        o.endAll();
      });
      return closing;
    },
    loginOf(connection) {
      // ssh2 keeps the socket a connection came from as `_sock` (not in its typings).
      const sock = (connection as { _sock?: unknown })._sock;
      return sock instanceof net.Socket ? guard.loginOf(sock) : null;
    },
  };
}
