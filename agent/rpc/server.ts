/**
 * The agent's SSH server: public-key auth against the trusted shell keys, no shell, exec or pty,
 * only the three berth subsystems.
 */
import { Duplex } from 'node:stream';
import { Server, ServerChannel } from 'ssh2';
import { Listener, noDelayListener } from '../../common/listener';
import { messageOf } from '../../common/errors';
import { Logger } from '../../common/logging';
import { HelloEvent, SUBSYSTEMS } from '../../common/protocol';
import { Sessions } from '../sessions';
import { AttachControl, serveAttach } from './attach-handler';
import { serveEvents } from './events-handler';
import { readTrustedKeys, sameKey } from './keys';
import { serveRpc } from './rpc-handler';

export interface AgentServerOptions {
  hostKey: Buffer;
  trustedKeysFile: string;
  sessions: Sessions;
  hello: () => HelloEvent;
  statsIntervalMs: number;
  logger: Logger;
}

export type AgentServer = Listener;

export function createAgentServer(opts: AgentServerOptions): AgentServer {
  const log = opts.logger.child({ component: 'ssh' });
  const clients = new Set<{ end(): void }>();
  const server = new Server({ hostKeys: [opts.hostKey], keepaliveInterval: 5000, keepaliveCountMax: 3 } as never, (client) => {
    let peer = 'unknown';
    clients.add(client);
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') {
        ctx.reject(['publickey']);
        return;
      }
      readTrustedKeys(opts.trustedKeysFile)
        .then(({ keys }) => {
          const key = keys.find((k) => sameKey(k, ctx.key.data));
          if (!key) {
            log.warn('refused unknown key', { user: ctx.username, algo: ctx.key.algo });
            ctx.reject(['publickey']);
            return;
          }
          if (ctx.signature && ctx.blob && !key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) {
            log.warn('refused bad signature', { user: ctx.username });
            ctx.reject(['publickey']);
            return;
          }
          peer = ctx.username;
          ctx.accept();
        })
        .catch((err: unknown) => {
          log.error('read trusted keys', { err: messageOf(err) });
          ctx.reject(['publickey']);
        });
    });
    client.on('ready', () => {
      log.info('shell connected', { shell: peer });
      client.on('session', (accept) => {
        const session = accept();
        let attach: AttachControl | null = null;
        let pending: { cols: number; rows: number } | null = null;
        session.on('pty', (_a, reject) => reject?.());
        session.on('shell', (_a, reject) => reject?.());
        session.on('exec', (_a, reject) => reject?.());
        session.on('x11', (_a, reject) => reject?.());
        session.on('env', (accept) => accept?.());
        session.on('window-change', (accept, _r, info) => {
          accept?.();
          if (attach) attach.resize(info.cols, info.rows);
          else pending = { cols: info.cols, rows: info.rows };
        });
        session.on('subsystem', (acceptSub, reject, info) => {
          const open = (): Duplex & { exit(code: number): void } => acceptSub() as ServerChannel as unknown as Duplex & { exit(code: number): void };
          switch (info.name) {
            case SUBSYSTEMS.rpc:
              serveRpc(open(), opts.sessions, log);
              return;
            case SUBSYSTEMS.events:
              serveEvents(open(), opts.sessions, opts.hello(), opts.statsIntervalMs, log);
              return;
            case SUBSYSTEMS.attach:
              attach = serveAttach(open(), opts.sessions, log);
              if (pending) attach.resize(pending.cols, pending.rows);
              return;
            default:
              log.warn('refused subsystem', { name: info.name });
              reject();
          }
        });
      });
    });
    client.on('error', (err) => log.debug('connection error', { shell: peer, err: err.message }));
    client.on('close', () => {
      clients.delete(client);
      log.info('shell disconnected', { shell: peer });
    });
  });

  return noDelayListener(
    (sock) => server.injectSocket(sock),
    () => {
      for (const c of clients) c.end();
    },
  );
}
