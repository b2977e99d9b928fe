/**
 * A TCP listener for an SSH server: every accepted socket gets TCP_NODELAY (small frames such as
 * a keystroke or an RPC reply must not wait on Nagle's algorithm and delayed ACKs, ~40 ms on
 * loopback) and is handed to the server (ssh2's `injectSocket`).
 */
import net, { AddressInfo } from 'node:net';

export interface Listener {
  /** Starts listening; resolves with the bound address (port 0 picks one). */
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting and ends every live connection (via `endAll`). Idempotent. */
  close(): Promise<void>;
}

export function noDelayListener(accept: (sock: net.Socket) => void, endAll: () => void): Listener {
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    accept(sock);
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
        server.close(() => resolve());
        endAll();
      });
      return closing;
    },
  };
}
