import dgram from 'node:dgram';
import net from 'node:net';
import { PortProbe } from './ports';

/** Really binds the port on the publish address for a moment, then lets it go. */
export function bindProbe(address: string): PortProbe {
  return {
    check: (port, protocol) => (protocol === 'tcp' ? probeTcp(address, port) : probeUdp(address, port)),
  };
}

function probeTcp(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(null)));
  });
}

function probeUdp(address: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
    sock.unref();
    sock.once('error', (err: NodeJS.ErrnoException) => {
      sock.close();
      resolve(err.code ?? err.message);
    });
    sock.bind({ address, port, exclusive: true }, () => sock.close(() => resolve(null)));
  });
}

