/**
 * The operators' SSH server: public-key login (the user name must be an operator with that key),
 * the exec CLI (`ssh shell list`), attach over `ssh -t shell attach REF`, and the menu door.
 */
import { Server, ServerChannel } from 'ssh2';
import { Listener, noDelayListener } from '../../common/listener';
import { messageOf, toBerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import { runCommand } from '../cli/commands';
import { Operator, ShellService } from '../service';
import { serveMenu } from './menu-door';
import { KnownOperator, findKey } from './operator-keys';

export interface ShellServerOptions {
  hostKey: Buffer;
  operators: Map<string, KnownOperator>;
  service: ShellService;
  logger: Logger;
}

export type ShellServer = Listener;

interface Terminal {
  cols: number;
  rows: number;
}

export function createShellServer(o: ShellServerOptions): ShellServer {
  const log = o.logger.child({ component: 'operator-ssh' });
  const clients = new Set<{ end(): void }>();
  const server = new Server({ hostKeys: [o.hostKey] }, (client) => {
    clients.add(client);
    let operator: Operator | null = null;
    client.on('authentication', (ctx) => {
      const known = o.operators.get(ctx.username);
      if (ctx.method !== 'publickey' || !known) {
        ctx.reject(['publickey']);
        return;
      }
      const key = findKey(known, ctx.key.data);
      if (!key || (ctx.signature && ctx.blob && !key.verify(ctx.blob, ctx.signature, ctx.hashAlgo))) {
        if (ctx.signature) log.warn('refused operator key', { operator: ctx.username });
        ctx.reject(['publickey']);
        return;
      }
      operator = { name: known.name, role: known.role };
      ctx.accept();
    });
    client.on('ready', () => {
      const op = operator;
      if (!op) return client.end();
      log.info('operator connected', { operator: op.name });
      client.on('session', (accept) => {
        const session = accept();
        let term: Terminal | null = null;
        let onResize: ((t: Terminal) => void) | null = null;
        session.on('pty', (acc, _rej, info) => {
          term = { cols: info.cols || 80, rows: info.rows || 24 };
          acc?.();
        });
        session.on('window-change', (acc, _rej, info) => {
          term = { cols: info.cols, rows: info.rows };
          onResize?.(term);
          acc?.();
        });
        session.on('env', (acc) => acc?.());
        session.on('exec', (acc, _rej, info) => {
          const ch = acc();
          void execCommand(ch, info.command, op, term, (f) => (onResize = f));
        });
        session.on('shell', (acc) => {
          const ch = acc();
          if (!term) {
            ch.stderr.write('berth: the menu needs a terminal: use ssh -t, or run a command (`help` lists them)\n');
            ch.exit(2);
            ch.end();
            return;
          }
          serveMenu(ch, op, term, o.service, log, (f) => (onResize = f));
        });
        session.on('subsystem', (_acc, rej) => rej());
      });
    });
    client.on('error', (err) => log.debug('operator connection error', { err: err.message }));
    client.on('close', () => {
      clients.delete(client);
      if (operator) log.info('operator disconnected', { operator: operator.name });
    });
  });

  const execCommand = async (
    ch: ServerChannel,
    line: string,
    op: Operator,
    term: Terminal | null,
    setResize: (f: (t: Terminal) => void) => void,
  ): Promise<void> => {
    // With a pty the operator's terminal is raw: a newline alone would not return the carriage.
    const crlf = (s: string): string => (term ? s.replace(/\r?\n/g, '\r\n') : s);
    const outcome = await runCommand(line, op, o.service, {
      out: (s) => ch.write(crlf(s)),
      err: (s) => ch.stderr.write(crlf(s)),
    });
    if (!('attach' in outcome)) {
      ch.exit(outcome.code);
      ch.end();
      return;
    }
    if (!term) {
      ch.stderr.write('berth: attach needs a terminal: use ssh -t\n');
      ch.exit(2);
      ch.end();
      return;
    }
    await attach(ch, op, outcome.attach.ref, outcome.attach.readOnly, term, setResize);
  };

  const attach = async (
    ch: ServerChannel,
    op: Operator,
    ref: string,
    readOnly: boolean,
    term: Terminal,
    setResize: (f: (t: Terminal) => void) => void,
  ): Promise<void> => {
    let opened;
    try {
      opened = await o.service.attach(op, ref, readOnly, term.cols, term.rows);
    } catch (err) {
      const e = toBerthError(err);
      ch.stderr.write(`error: ${e.code}: ${e.message}\r\n`);
      ch.exit(1);
      ch.end();
      return;
    }
    const { session, attach: a } = opened;
    let done = false;
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      a.close();
      o.service.detached(op, session);
      if (!ch.destroyed) {
        ch.exit(code);
        ch.end();
      }
    };
    setResize((t) => a.resize(t.cols, t.rows));
    a.stream.on('data', (d: Buffer) => ch.write(d));
    a.stream.on('close', () => finish(0));
    a.stream.on('error', (err: Error) => {
      log.debug('attach stream error', { err: messageOf(err) });
      finish(1);
    });
    a.stream.resume();
    ch.on('data', (d: Buffer) => a.stream.write(d));
    ch.on('close', () => finish(0));
  };

  return noDelayListener(
    (sock) => server.injectSocket(sock),
    () => {
      for (const c of clients) c.end();
    },
  );
}
