/**
 * A bare relay process, for the benchmarks' floor paths: `node relay.js LISTEN TARGET`, each
 * `tcp:PORT` (127.0.0.1) or `unix:PATH`. Every connection it accepts gets its own connection to
 * TARGET, and bytes go both ways as they come, read → write, with no other work: what any Node
 * process costs a byte that has to pass through it. berth's shell and agent are Node processes on
 * the operator's path; the benchmarks splice one of these into the direct path where each stands
 * and measure that too, to tell the cost of a Node process in the path from the cost of the work
 * berth does in it.
 *
 * Prints `ready` once listening. Exits when its stdin closes (the bench that started it ended,
 * however it ended), and on SIGTERM.
 */
import net from 'node:net';
import { promises as fs } from 'node:fs';

type Address = { port: number; host: string } | { path: string };

function address(arg: string | undefined): Address {
  const m = /^(tcp|unix):(.+)$/.exec(arg ?? '');
  if (!m?.[2]) throw new Error(`not an address: ${JSON.stringify(arg)} (want tcp:PORT or unix:PATH)`);
  if (m[1] === 'unix') return { path: m[2] };
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not a port: ${JSON.stringify(m[2])}`);
  return { port, host: '127.0.0.1' };
}

async function main(): Promise<void> {
  const listen = address(process.argv[2]);
  const target = address(process.argv[3]);
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ ...target, noDelay: true });
    client.on('data', (d: Buffer) => upstream.write(d));
    upstream.on('data', (d: Buffer) => client.write(d));
    // Either side going takes the other with it; errors end up as a close.
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  if ('path' in listen) await fs.rm(listen.path, { force: true });
  server.listen(listen, () => process.stdout.write('ready\n'));
  const quit = (): void => {
    server.close();
    process.exit(0);
  };
  process.stdin.on('end', quit).on('close', quit).resume();
  process.once('SIGTERM', quit);
}

main().catch((err: unknown) => {
  process.stderr.write(`relay: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
