/** Reads an agent's host key fingerprint by starting an SSH handshake and stopping at the key. */
import { Client } from 'ssh2';
import { BerthError } from '../../common/errors';
import { fingerprint } from '../../common/ssh-keys';

/** Resolves with "SHA256:…"; throws AGENT_OFFLINE when nothing answers within `timeoutMs`. */
export function probeFingerprint(host: string, port: number, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = new Client();
    let seen: string | null = null;
    const timer = setTimeout(() => {
      conn.end();
      reject(new BerthError('AGENT_OFFLINE', `no SSH answer from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.on('error', (err) => {
      clearTimeout(timer);
      if (seen) resolve(seen);
      else reject(new BerthError('AGENT_OFFLINE', `cannot reach ${host}:${port}: ${err.message}`));
    });
    conn.connect({
      host,
      port,
      username: 'berth-probe',
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        seen = fingerprint(key);
        clearTimeout(timer);
        resolve(seen);
        return false;
      },
    });
  });
}
