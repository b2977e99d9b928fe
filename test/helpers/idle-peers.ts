/**
 * Peers that open TCP connections to an SSH server and then idle, as a flood would: each sends
 * an SSH banner or nothing, and records whether the server sent its own banner (it was admitted)
 * and whether the connection has closed.
 */
import net from 'node:net';
import { until } from './wait';

export interface IdlePeer {
  /** The server sent its SSH banner: the connection got past the caps. */
  greeted: boolean;
  closed: boolean;
  sock: net.Socket;
}

export interface IdlePeerOptions {
  port: number;
  count: number;
  /** Local address to connect from (any 127.x.y.z works on loopback). */
  from: string;
  /** Send an SSH banner (default) or nothing. */
  banner?: boolean;
}

/**
 * Opens `count` connections at once and resolves when each one has been greeted or closed
 * (bounded: 10 s).
 */
export async function idlePeers(o: IdlePeerOptions): Promise<IdlePeer[]> {
  const peers = Array.from({ length: o.count }, () => {
    const sock = net.connect({ host: '127.0.0.1', port: o.port, localAddress: o.from });
    const peer: IdlePeer = { greeted: false, closed: false, sock };
    sock.on('connect', () => {
      if (o.banner !== false) sock.write('SSH-2.0-IdlePeer_1.0\r\n');
    });
    sock.on('data', (d: Buffer) => {
      if (d.toString('latin1').startsWith('SSH-2.0-')) peer.greeted = true;
    });
    sock.on('error', () => undefined);
    sock.on('close', () => (peer.closed = true));
    return peer;
  });
  await until('every idle peer greeted or closed', async () => peers.filter((p) => p.greeted || p.closed).length, (n) => n === o.count, 10_000, 20);
  return peers;
}

/** Destroys every peer's connection and waits (bounded) until each has closed. */
export async function dropPeers(peers: IdlePeer[]): Promise<void> {
  for (const p of peers) p.sock.destroy();
  await until('idle peers closed', async () => peers.filter((p) => !p.closed).length, (n) => n === 0, 5000, 20);
}

export const counts = (peers: IdlePeer[]): { greeted: number; refused: number; open: number } => ({
  greeted: peers.filter((p) => p.greeted).length,
  refused: peers.filter((p) => p.closed && !p.greeted).length,
  open: peers.filter((p) => !p.closed).length,
});
