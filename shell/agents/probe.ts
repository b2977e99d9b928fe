/**
 * Reads a host key fingerprint by starting an SSH handshake and stopping at the key: an agent's
 * (straight, or through its bastion) or a bastion's.
 */
import { Duplex } from 'node:stream';
import { Client } from 'ssh2';
import { BerthError } from '../../common/errors';
import { silentLogger } from '../../common/logging';
import { fingerprint } from '../../common/ssh-keys';
import { PinnedJump } from './enrolled';
import { Route, jumpRoute } from './jump';

/** Reaching an agent through a bastion for a probe: the bastion with its pinned key, and the key it trusts. */
export interface ProbeVia {
  jump: PinnedJump;
  privateKey: Buffer;
}

/**
 * Resolves with "SHA256:…" of the key the SSH server at host:port presents; with `via`, host:port
 * is reached through that bastion (host and port as the bastion sees them). Throws AGENT_OFFLINE
 * when nothing answers within `timeoutMs`, or when the bastion cannot be used (its key is not
 * the pinned one, it refuses the shell's key or the forward), with the reason.
 */
export function probeFingerprint(host: string, port: number, timeoutMs = 10_000, via?: ProbeVia): Promise<string> {
  const where = via ? `${host}:${port} through bastion ${via.jump.host}:${via.jump.port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    const conn = new Client();
    let route: Route | null = null;
    let seen: string | null = null;
    const finish = (): void => {
      clearTimeout(timer);
      conn.end();
      route?.close();
    };
    const timer = setTimeout(() => {
      finish();
      reject(new BerthError('AGENT_OFFLINE', `no SSH answer from ${where} within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.on('error', (err) => {
      finish();
      if (seen) resolve(seen);
      else reject(new BerthError('AGENT_OFFLINE', `cannot reach ${where}: ${err.message}`));
    });
    const handshake = (reach: { host: string; port: number } | { sock: Duplex }): void => {
      conn.connect({
        ...reach,
        username: 'berth-probe',
        readyTimeout: timeoutMs,
        hostVerifier: (key: Buffer) => {
          seen = fingerprint(key);
          finish();
          resolve(seen);
          return false;
        },
      });
    };
    if (!via) return handshake({ host, port });
    route = jumpRoute(
      {
        jump: via.jump,
        to: { host, port },
        privateKey: via.privateKey,
        keepaliveMs: 0,
        readyTimeoutMs: timeoutMs,
        // A probe says what went wrong in its error; it has no log of its own.
        logger: silentLogger,
      },
      {
        open: (sock) => handshake({ sock }),
        lost: (reason) => {
          finish();
          reject(new BerthError('AGENT_OFFLINE', `cannot reach ${where}: ${reason}`));
        },
      },
    );
  });
}
