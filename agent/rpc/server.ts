/**
 * The agent's SSH server: public-key auth against the trusted shell keys, no shell, exec or pty,
 * only the three berth subsystems.
 */
import { Duplex } from 'node:stream';
import { Server, ServerChannel } from 'ssh2';
import { Listener, SshListener, sshListener } from '../../common/listener';
import { messageOf } from '../../common/errors';
import { Logger } from '../../common/logging';
import { HelloEvent, SUBSYSTEMS } from '../../common/protocol';
import { LoginLimits } from '../../common/ssh-guard';
import { inertCell } from '../../common/terminal-text';
import { Sessions } from '../sessions';
import { AttachControl, serveAttach } from './attach-handler';
import { serveEvents } from './events-handler';
import { serveMove } from './move-channel';
import { readTrustedKeys, sameKey } from './keys';
import { serveRpc } from './rpc-handler';
import { OpJournal } from './op-journal';

export interface AgentServerOptions {
  hostKey: Buffer;
  trustedKeysFile: string;
  sessions: Sessions;
  hello: () => HelloEvent;
  statsIntervalMs: number;
  logger: Logger;
  /** Login grace time and pre-auth caps; defaults: 20 s, 30 per address, 200 in all. */
  login?: LoginLimits;
}

export type AgentServer = Listener;

export function createAgentServer(opts: AgentServerOptions): AgentServer {
  const log = opts.logger.child({ component: 'ssh' });
  const clients = new Set<{ end(): void }>();
  // One for every channel: a shell that retries on a new connection is still recognised.
  const journal = new OpJournal();
  const server = new Server({ hostKeys: [opts.hostKey], keepaliveInterval: 5000, keepaliveCountMax: 3 } as never, (client) => {
    const login = listener.loginOf(client);
    if (!login) {
      client.on('error', () => undefined);
      client.end();
      return;
    }
    let peer = 'unknown';
    let connected = false;
    clients.add(client);
    client.on('authentication', (ctx) => {
      const refuse = (why: string): void => {
        const last = login.refused({ user: ctx.username, method: ctx.method, key: ctx.method === 'publickey' ? ctx.key.data : null, why });
        ctx.reject(['publickey']);
        if (last) client.end();
      };
      if (ctx.method !== 'publickey') return refuse('method not allowed');
      readTrustedKeys(opts.trustedKeysFile)
        .then(({ keys }) => {
          const key = keys.find((k) => sameKey(k, ctx.key.data));
          if (!key) return refuse('unknown key');
          if (ctx.signature && ctx.blob && !key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return refuse('bad signature');
          peer = inertCell(ctx.username, 64);
          ctx.accept();
        })
        .catch((err: unknown) => {
          log.error('read trusted keys', { err: messageOf(err) });
          refuse('trusted keys unreadable');
        });
    });
    client.on('ready', () => {
      connected = true;
      login.loggedIn();
      log.info('shell connected', { shell: peer, address: login.address });
      client.on('session', (accept) => {
        const session = accept();
        let attach: AttachControl | null = null;
        let pending: { cols: number; rows: number } | null = null;
        session.on('pty', (_a, reject) => reject?.());
        session.on('shell', (_a, reject) => reject?.());
        session.on('exec', (_a, reject) => reject?.());
        session.on('x11', (_a, reject) => reject?.());
        session.on('env', (_a, reject) => reject?.());
        session.on('window-change', (accept, _r, info) => {
          accept?.();
          if (attach) attach.resize(info.cols, info.rows);
          else pending = { cols: info.cols, rows: info.rows };
        });
        session.on('subsystem', (acceptSub, reject, info) => {
          const open = (): Duplex & { exit(code: number): void } => acceptSub() as ServerChannel as unknown as Duplex & { exit(code: number): void };
          switch (info.name) {
            case SUBSYSTEMS.rpc:
              serveRpc(open(), opts.sessions, log, journal);
              return;
            case SUBSYSTEMS.events:
              serveEvents(open(), opts.sessions, opts.hello(), opts.statsIntervalMs, log);
              return;
            case SUBSYSTEMS.attach:
              attach = serveAttach(open(), opts.sessions, log);
              if (pending) attach.resize(pending.cols, pending.rows);
              return;
            case SUBSYSTEMS.move:
              serveMove(open(), opts.sessions, log);
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
      if (connected) log.info('shell disconnected', { shell: peer });
    });
  });

  const listener: SshListener = sshListener({
    accept: (sock) => server.injectSocket(sock),
    endAll: () => {
      for (const c of clients) c.end();
    },
    limits: opts.login,
    logger: log,
  });
  return listener;
}
