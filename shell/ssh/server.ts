/**
 * The operators' SSH server: public-key login (the user name must be an operator with that key),
 * the exec CLI (`ssh shell list`), attach over `ssh -t shell attach REF`, and the menu door.
 * Nothing else: forwarding of any kind, subsystems and environment variables are refused, and
 * audited (see Refusals).
 */
import { AuthContext, Connection, Server, ServerChannel, Session, SocketBindInfo, TcpipBindInfo, TcpipRequestInfo } from 'ssh2';
import { Listener, SshListener, sshListener } from '../../common/listener';
import { toBerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import { Login, LoginLimits } from '../../common/ssh-guard';
import { clampTermSize } from '../../common/protocol';
import { inertCell } from '../../common/terminal-text';
import { runCommand } from '../cli/commands';
import { errorLine } from '../cli/format';
import { Operator, ShellService } from '../service';
import { AttachPipe, openAttachPipe } from './attach-pipe';
import { serveMenu } from './menu-door';
import { findKey } from './operator-keys';
import { OperatorRoster } from './operator-roster';

export interface ShellServerOptions {
  hostKey: Buffer;
  /** The operators now (a reload replaces them while connections stay open). */
  operators: OperatorRoster;
  service: ShellService;
  logger: Logger;
  /** Login grace time and pre-auth caps; defaults: 20 s, 30 per address, 200 in all. */
  login?: LoginLimits;
}

export type ShellServer = Listener;

interface Terminal {
  cols: number;
  rows: number;
}

/** An SSH session's terminal: its size (null without a pty), and who follows its window changes. */
interface Tty {
  size: Terminal | null;
  onResize: ((t: Terminal) => void) | null;
}

/** What every connection's handlers need. */
interface Door {
  operators: OperatorRoster;
  service: ShellService;
  log: Logger;
}

export function createShellServer(o: ShellServerOptions): ShellServer {
  const door: Door = { operators: o.operators, service: o.service, log: o.logger.child({ component: 'operator-ssh' }) };
  const clients = new Set<{ end(): void }>();
  const server = new Server({ hostKeys: [o.hostKey] }, (client) => {
    const login = listener.loginOf(client);
    if (!login) {
      client.on('error', () => undefined);
      client.end();
      return;
    }
    clients.add(client);
    serveClient(door, client, login, () => clients.delete(client));
  });
  const listener: SshListener = sshListener({
    accept: (sock) => server.injectSocket(sock),
    endAll: () => {
      for (const c of clients) c.end();
    },
    limits: o.login,
    logger: door.log,
  });
  return listener;
}

/** One operator's connection: public-key login, then their sessions; `gone` runs when it closes. */
function serveClient(door: Door, client: Connection, login: Login, gone: () => void): void {
  let operator: Operator | null = null;
  let connected: Operator | null = null;
  let forget = (): void => undefined;
  let refusals: Refusals | null = null;
  client.on('authentication', (ctx) => {
    const r = authenticate(door, ctx);
    if (!('why' in r)) {
      operator = r;
      ctx.accept();
      return;
    }
    operator = null;
    // A refused key query (no signature yet) counts too: the client goes on to its next key.
    const last = login.refused({ user: ctx.username, method: ctx.method, key: ctx.method === 'publickey' ? ctx.key.data : null, why: r.why });
    ctx.reject(['publickey']);
    if (last) client.end();
  });
  client.on('ready', () => {
    const op = operator;
    if (!op) return client.end();
    connected = op;
    // Removed from the roster: ended; a new role: this op's from the next action on.
    forget = door.operators.connected(op, () => client.end());
    login.loggedIn();
    door.log.info('operator connected', { operator: op.name, address: login.address });
    const refused = new Refusals(door, op);
    refusals = refused;
    client.on('session', (accept) => serveSession(door, accept(), op, refused));
    // Port and socket forwarding asked of the shell (ssh -R).
    client.on('request', (_acc, rej, name: string, info: TcpipBindInfo | SocketBindInfo) => {
      const where = 'socketPath' in info ? info.socketPath : `${info.bindAddr}:${info.bindPort}`;
      refused.refuse(rej, 'forward', `the shell forwards nothing (${name} ${inertCell(where, 200)})`);
    });
    // Channels a client opens to forward through the shell (ssh -L, -D, -W). The SSH library
    // refuses these on its own when nobody listens, unaudited; refused here they are audited. Its
    // refusal then says "connect failed" (there is no way to give another reason through it).
    client.on('tcpip', (_acc, rej, info: TcpipRequestInfo) => {
      refused.refuse(rej, 'forward', `the shell forwards nothing (direct-tcpip ${inertCell(`${info.destIP}:${info.destPort}`, 200)})`);
    });
    client.on('openssh.streamlocal', (_acc, rej, info: { socketPath: string }) => {
      refused.refuse(rej, 'forward', `the shell forwards nothing (direct-streamlocal ${inertCell(info.socketPath, 200)})`);
    });
  });
  client.on('error', (err) => door.log.debug('operator connection error', { err: err.message }));
  client.on('close', () => {
    gone();
    forget();
    const unaudited = refusals?.unaudited ?? 0;
    if (connected) door.log.info('operator disconnected', { operator: connected.name, ...(unaudited > 0 ? { unaudited } : {}) });
  });
}

/** Refused SSH requests of one connection that are audited; later ones are refused and counted only. */
const MAX_AUDITED_REFUSALS = 20;

/**
 * SSH requests the shell does not serve (forwarding, X11, subsystems, variables), refused as SSH says (a
 * failed request) and audited with the operator who asked: the first MAX_AUDITED_REFUSALS of a
 * connection, so that a client repeating one cannot push the real records out of the log.
 */
class Refusals {
  unaudited = 0;
  private audited = 0;

  constructor(
    private readonly door: Door,
    private readonly op: Operator,
  ) {}

  /** Rejects (when the client asked for an answer) and records `op`; never throws. */
  refuse(reject: (() => void) | undefined, op: string, message: string): void {
    reject?.();
    if (this.audited >= MAX_AUDITED_REFUSALS) {
      this.unaudited++;
      return;
    }
    this.audited++;
    void this.door.service.auditLog.record({ operator: this.op.name, op, result: 'refused', code: 'FORBIDDEN', message });
  }
}

/** The operator a login attempt proves to be (the user name's, with one of their keys), or why not. */
function authenticate(door: Door, ctx: AuthContext): Operator | { why: string } {
  if (ctx.method !== 'publickey') return { why: 'method not allowed' };
  const known = door.operators.get(ctx.username);
  if (!known) return { why: 'unknown user' };
  const key = findKey(known, ctx.key.data);
  if (!key) return { why: 'unknown key' };
  if (ctx.signature && ctx.blob && !key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return { why: 'bad signature' };
  return { name: known.name, role: known.role };
}

/** One SSH session: a pty (or none), then a command (exec) or the menu (shell); no subsystems. */
function serveSession(door: Door, session: Session, op: Operator, refusals: Refusals): void {
  const tty: Tty = { size: null, onResize: null };
  // Sizes are the client's word: clamped here, before the menu or an attach sees them.
  session.on('pty', (acc, _rej, info) => {
    tty.size = clampTermSize(info.cols, info.rows);
    acc?.();
  });
  session.on('window-change', (acc, _rej, info) => {
    acc?.();
    // Without a pty there is no terminal to resize; a repeated size changes nothing.
    const last = tty.size;
    if (!last) return;
    const next = clampTermSize(info.cols, info.rows);
    if (next.cols === last.cols && next.rows === last.rows) return;
    tty.size = next;
    tty.onResize?.(next);
  });
  // Variables the client sends reach nothing (a command or an attach gets none of them), so
  // they are refused, as sshd refuses what it does not accept. The locale, which stock OpenSSH
  // clients send on every login (SendEnv LANG LC_*), is refused quietly; anything else is audited
  // by name (never its value, which may be a secret).
  session.on('env', (_acc, rej, info) => {
    if (/^(LANG|LC_[A-Z_]+)$/.test(info.key)) return rej?.();
    refusals.refuse(rej, 'env', `the shell takes no environment (${inertCell(info.key, 64)})`);
  });
  session.on('exec', (acc, _rej, info) => void execCommand(door, acc(), info.command, op, tty));
  session.on('shell', (acc) => {
    const ch = acc();
    if (!tty.size) return refuse(ch, 'berth: the menu needs a terminal: use ssh -t, or run a command (`help` lists them)\n');
    serveMenu(ch, op, tty.size, door.service, door.log, (f) => (tty.onResize = f), { bell: door.operators.get(op.name)?.bell ?? true });
  });
  session.on('subsystem', (_acc, rej, info) => refusals.refuse(rej, 'subsystem', `the shell has no subsystems (${info.name})`));
  session.on('x11', (_acc, rej) => refusals.refuse(rej, 'x11-forward', 'the shell forwards no X11'));
  session.on('auth-agent', (_acc, rej) => refusals.refuse(rej, 'agent-forward', 'the shell forwards no SSH agent'));
}

async function execCommand(door: Door, ch: ServerChannel, line: string, op: Operator, tty: Tty): Promise<void> {
  const term = tty.size;
  // With a pty the operator's terminal is raw: a newline alone would not return the carriage.
  const crlf = (s: string): string => (term ? s.replace(/\r?\n/g, '\r\n') : s);
  const closed = new Promise<void>((resolve) => ch.once('close', () => resolve()));
  const outcome = await runCommand(line, op, door.service, {
    out: (s) => ch.write(crlf(s)),
    err: (s) => ch.stderr.write(crlf(s)),
    client: { closed, backlog: () => ch.writableLength },
  });
  if (!('attach' in outcome)) {
    ch.exit(outcome.code);
    ch.end();
    return;
  }
  if (!term) return refuse(ch, 'berth: attach needs a terminal: use ssh -t\n');
  await attachCommand(door, ch, op, outcome.attach, tty, term);
}

/** `attach REF`: the terminal joined to the session until either ends; exit 1 if refused or failed. */
async function attachCommand(door: Door, ch: ServerChannel, op: Operator, a: { ref: string; readOnly: boolean }, tty: Tty, term: Terminal): Promise<void> {
  let pipe: AttachPipe;
  try {
    pipe = await openAttachPipe({ channel: ch, service: door.service, operator: op, ...a, size: () => tty.size ?? term, logger: door.log, title: { view: door.service.view } });
  } catch (err) {
    const e = toBerthError(err);
    ch.stderr.write(errorLine(e.code, e.message).replace(/\r?\n/g, '\r\n'));
    ch.exit(1);
    ch.end();
    return;
  }
  tty.onResize = (t) => pipe.resize(t);
  const { failed } = await pipe.ended;
  if (!ch.destroyed) {
    ch.exit(failed ? 1 : 0);
    ch.end();
  }
}

/** Says why on stderr and ends the channel with exit code 2 (usage). */
function refuse(ch: ServerChannel, why: string): void {
  ch.stderr.write(why);
  ch.exit(2);
  ch.end();
}
