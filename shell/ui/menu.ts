/**
 * The operator's menu (blessed). It draws from the cluster view only, so a slow or offline agent
 * never freezes it; every op runs in the background with a spinner and shows the agent's refusal
 * verbatim. It knows nothing of SSH: it gets two streams, a size and the service (STYLE 8).
 */
import { Readable, Writable } from 'node:stream';
import blessed from 'blessed';
import { toBerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import { dnsNameSchema, portRequestSchema, problemWith, sessionNameSchema } from '../../common/names';
import { BERTH_VERSION, PROTOCOL_VERSION } from '../../common/protocol';
import { SESSION_HEAD, sessionRow } from '../cli/format';
import { ClusterSession } from '../cluster/view';
import { Operator, ShellService } from '../service';
import { Action } from '../roles';
import { Dialog, Field, Key, esc, openConfirm, openForm, openPage, openPicker } from './form';

export interface MenuOptions {
  input: Readable;
  output: Writable;
  cols: number;
  rows: number;
  service: ShellService;
  operator: Operator;
  logger: Logger;
  /** Hands the terminal to an attach; resolves when it ends (detach, exit, error). */
  attach(sessionId: string, readOnly: boolean): Promise<void>;
}

export interface Menu {
  /** Redraws now (normally redraws follow cluster changes by themselves). */
  render(): void;
  /** Tells the menu the terminal's new size. */
  resize(cols: number, rows: number): void;
  /** Resolves when the operator quits (Q). */
  done: Promise<void>;
  /** Tears the screen down. Idempotent. */
  destroy(): void;
}

const HELP = `Enter  attach (viewers: read-only)     N  new session
B      background your attach            C  clone
E      edit (restart to apply)           R  restart a stopped session
K      kill (stop the container)         D  delete (asks Y/N)
O      override a stale lock (admin)     S  settings: version, agents
/      filter by text                    ?  this help
Q      quit                              Ctrl-b d  detach from a session`;

const SPIN = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const PROTOCOL_CHOICES = ['tcp', 'udp'];

export function startMenu(o: MenuOptions): Menu {
  const svc = o.service;
  const out = o.output as Writable & { columns: number; rows: number; isTTY: boolean };
  out.columns = o.cols;
  out.rows = o.rows;
  out.isTTY = true;
  (o.input as Readable & { isTTY: boolean }).isTTY = true;
  // @types/blessed lacks enter/leave (NOTES.md): the one cast is here.
  const screen = blessed.screen({
    input: o.input as never,
    output: out as never,
    terminal: 'xterm-256color',
    fullUnicode: true,
    // The operator's terminal is UTF-8 whatever this process's locale says: draw box lines and
    // symbols as Unicode, not with the VT100 alternate character set.
    forceUnicode: true,
    warnings: false,
    autoPadding: false,
  }) as blessed.Widgets.Screen & { enter(): void; leave(): void; tput: { brokenACS: boolean } };
  // blessed maps box lines and symbols to the VT100 alternate charset, which UTF-8 terminals (and
  // tmux, mosh) render badly: send them as Unicode instead.
  screen.tput.brokenACS = true;
  // One line each, cut at the edge rather than wrapped onto the next.
  const title = blessed.box({ parent: screen, top: 0, left: 0, width: '100%', height: 1, tags: true, wrap: false, style: { bg: 'blue', fg: 'white' } });
  const table = blessed.box({ parent: screen, top: 1, left: 0, width: '100%', height: '100%-3', tags: true, wrap: false });
  const status = blessed.box({ parent: screen, bottom: 1, left: 0, width: '100%', height: 1, tags: true, wrap: false });
  const hints = blessed.box({
    parent: screen,
    bottom: 0,
    left: 0,
    width: '100%',
    height: 1,
    tags: true,
    wrap: false,
    content: '{gray-fg}Enter attach · N new · B bg · C clone · E edit · R restart · K kill · D delete · O override · S · / filter · ? help · Q quit{/gray-fg}',
  });
  void hints;

  let selected = 0;
  let top = 0;
  let filter = '';
  let filtering = false;
  let dialog: Dialog | null = null;
  let message = '';
  let messageIsError = false;
  let busy: string | null = null;
  let spin = 0;
  let attached = false;
  let destroyed = false;
  let redrawQueued = false;
  let quit: () => void = () => undefined;
  const done = new Promise<void>((r) => (quit = r));

  const visible = (): ClusterSession[] => {
    const all = svc.view.sessions();
    if (!filter) return all;
    const f = filter.toLowerCase();
    return all.filter((s) => sessionRow(s).join(' ').toLowerCase().includes(f) || s.id.startsWith(f));
  };

  const say = (text: string, error = false): void => {
    message = text;
    messageIsError = error;
    draw();
  };

  const draw = (): void => {
    if (destroyed || attached) return;
    const sessions = visible();
    const agents = svc.view.agentList();
    const online = agents.filter((a) => a.status === 'online').length;
    const away = agents.filter((a) => a.status !== 'online').map((a) => `${a.id} ${a.status}`);
    title.setContent(
      ` {bold}berth{/bold}  ${esc(o.operator.name)} (${o.operator.role})  agents ${online}/${agents.length} online` +
        (away.length ? ` {yellow-fg}(? ${esc(away.join(', '))}){/yellow-fg}` : '') +
        `  sessions ${sessions.length}` +
        (filter || filtering ? `  filter: ${esc(filter)}${filtering ? '_' : ''}` : ''),
    );
    const rows = sessions.map(sessionRow);
    const widths = SESSION_HEAD.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const fmt = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
    const height = Math.max(1, (screen.height as number) - 4);
    selected = Math.min(selected, Math.max(0, sessions.length - 1));
    if (selected < top) top = selected;
    if (selected >= top + height) top = selected - height + 1;
    const lines = [`{bold}${esc(fmt(SESSION_HEAD))}{/bold}`];
    for (let i = top; i < Math.min(sessions.length, top + height); i++) {
      const s = sessions[i];
      const row = esc(fmt(rows[i] ?? []));
      if (!s) continue;
      if (i === selected) lines.push(`{inverse}${row}{/inverse}`);
      else if (s.agentStatus !== 'online') lines.push(`{gray-fg}${row}{/gray-fg}`);
      else lines.push(row);
    }
    if (sessions.length === 0) lines.push(filter ? '{gray-fg}no session matches the filter{/gray-fg}' : '{gray-fg}no sessions yet: N creates one{/gray-fg}');
    table.setContent(lines.join('\n'));
    const text = busy
      ? `{yellow-fg}${SPIN[spin % SPIN.length]} ${esc(busy)}{/yellow-fg}`
      : message
        ? messageIsError
          ? `{red-fg}${esc(message)}{/red-fg}`
          : esc(message)
        : '';
    status.setContent(text);
    screen.render();
  };

  /** Coalesces bursts of cluster changes into one redraw. */
  const redraw = (): void => {
    if (redrawQueued) return;
    redrawQueued = true;
    setTimeout(() => {
      redrawQueued = false;
      draw();
    }, 15).unref();
  };
  svc.view.on('change', redraw);
  const spinner = setInterval(() => {
    if (!busy) return;
    spin++;
    draw();
  }, 120);
  spinner.unref();

  const current = (): ClusterSession | undefined => visible()[selected];

  /** Runs an op in the background with a spinner; the menu keeps answering keys meanwhile. */
  const run = (label: string, fn: () => Promise<string>): void => {
    if (busy) {
      say(`wait: ${busy}`, true);
      return;
    }
    busy = label;
    draw();
    fn().then(
      (ok) => {
        busy = null;
        say(ok);
      },
      (err: unknown) => {
        busy = null;
        const e = toBerthError(err);
        say(`${e.code}: ${e.message}`, true);
      },
    );
  };

  const allowed = (action: Action): boolean => {
    try {
      svc.check(o.operator, action);
      return true;
    } catch (err) {
      say(toBerthError(err).message, true);
      return false;
    }
  };

  const nameOf = (s: ClusterSession): string => (s.entry.kind === 'session' ? s.entry.meta.name : s.id.slice(0, 8));

  const sessionFields = (name: string, protocol: string, port: string, dns: string): Field[] => [
    { label: 'name', value: name, check: (v) => problemWith(sessionNameSchema, v) },
    { label: 'protocol', value: protocol, check: () => null, choices: PROTOCOL_CHOICES },
    { label: 'port', value: port, check: (v) => (v === '' ? null : /^-?\d+$/.test(v) ? problemWith(portRequestSchema, Number(v)) : 'must be 0, -1 or a port number') },
    { label: 'dns', value: dns, check: (v) => problemWith(dnsNameSchema, v) },
  ];

  const newSession = (agent: string | undefined): void => {
    dialog = openForm(screen, agent ? `new session on ${agent}` : 'new session', sessionFields('', 'tcp', '', ''), async ([name = '', protocol, port = '', dns = '']) => {
      const e = await svc.create(o.operator, { name, agent, protocol: protocol as 'tcp' | 'udp', port: port === '' ? 0 : Number(port), dns });
      say(`created ${name} on ${e.agent}`);
    }, closeDialog);
  };

  const closeDialog = (): void => {
    dialog = null;
    draw();
  };

  const attach = (s: ClusterSession): void => {
    const readOnly = o.operator.role === 'viewer';
    if (busy) return say(`wait: ${busy}`, true);
    attached = true;
    screen.leave();
    o.attach(s.id, readOnly)
      .catch((err: unknown) => {
        const e = toBerthError(err);
        message = `${e.code}: ${e.message}`;
        messageIsError = true;
      })
      .finally(() => {
        attached = false;
        if (destroyed) return;
        screen.enter();
        // blessed learns a size from its output stream's resize event (NOTES.md).
        out.emit('resize');
        screen.alloc();
        draw();
      });
  };

  screen.on('keypress', (ch: string | undefined, key: Key) => {
    if (attached || destroyed) return;
    if (dialog) return dialog.key(ch, key);
    if (filtering) {
      if (key.name === 'escape') filter = '';
      if (key.name === 'escape' || key.name === 'enter') filtering = false;
      else if (key.name === 'backspace') filter = filter.slice(0, -1);
      else if (ch && ch.length === 1 && ch >= ' ' && key.name !== 'return') filter += ch;
      selected = 0;
      return draw();
    }
    message = '';
    const s = current();
    const n = visible().length;
    switch (key.name) {
      case 'up':
        selected = Math.max(0, selected - 1);
        return draw();
      case 'down':
        selected = Math.min(Math.max(0, n - 1), selected + 1);
        return draw();
      case 'pageup':
        selected = Math.max(0, selected - ((screen.height as number) - 5));
        return draw();
      case 'pagedown':
        selected = Math.min(Math.max(0, n - 1), selected + ((screen.height as number) - 5));
        return draw();
      case 'enter':
        if (s) attach(s);
        return;
    }
    switch (ch) {
      case 'q':
      case 'Q':
        quit();
        return;
      case '?':
        dialog = openPage(screen, 'keys', HELP, closeDialog);
        return;
      case '/':
        filtering = true;
        return draw();
      case 's':
      case 'S': {
        const agents = svc.view.agentList().map((a) => `${a.id.padEnd(12)} ${a.status.padEnd(10)} ${String(a.sessions.size).padStart(4)} sessions  ${a.hello?.version ?? '-'}  ${a.hello?.hostname ?? ''} ${a.reason}`);
        dialog = openPage(screen, 'settings', `berth ${BERTH_VERSION} (protocol ${PROTOCOL_VERSION})\noperator ${o.operator.name} (${o.operator.role})\n\nagents:\n${agents.join('\n') || '(none enrolled)'}`, closeDialog);
        return;
      }
      case 'n':
      case 'N': {
        if (!allowed('create')) return;
        const agents = svc.view.agentList().filter((a) => a.status === 'online');
        if (agents.length === 0) return say('no agent is online', true);
        if (agents.length === 1) return newSession(agents[0]?.id);
        dialog = openPicker(screen, 'new session on which agent?', agents.map((a) => `${a.id}  (${a.sessions.size} sessions)`), (i) => newSession(agents[i]?.id), closeDialog);
        return;
      }
    }
    if (!s) return;
    const name = nameOf(s);
    switch (ch) {
      case 'r':
      case 'R':
        if (allowed('restart')) run(`restarting ${name}`, async () => (await svc.simple(o.operator, 'restart', s.id), `restarted ${name}`));
        return;
      case 'k':
      case 'K':
        if (allowed('kill')) run(`killing ${name}`, async () => (await svc.simple(o.operator, 'kill', s.id), `killed ${name}`));
        return;
      case 'b':
      case 'B':
        if (allowed('background')) run(`detaching ${name}`, async () => `detached ${await svc.background(o.operator, s.id)} of your attaches to ${name}`);
        return;
      case 'd':
      case 'D':
        if (allowed('delete')) dialog = openConfirm(screen, `Delete ${name} and all its files?`, () => run(`deleting ${name}`, async () => (await svc.delete(o.operator, s.id), `deleted ${name}`)), closeDialog);
        return;
      case 'o':
      case 'O':
        if (!allowed('override')) return;
        if (s.state !== 'L') return say(`${name} is not locked`, true);
        dialog = openForm(screen, `override the lock of ${name}`, [{ label: 'reason', value: '', check: (v) => (v.trim() ? null : 'say why') }], async ([reason]) => {
          await svc.simple(o.operator, 'override', s.id, reason);
          say(`unlocked ${name}`);
        }, closeDialog);
        return;
      case 'c':
      case 'C':
        if (!allowed('clone')) return;
        dialog = openForm(screen, `clone ${name}`, [{ label: 'name', value: `${name}-copy`.slice(0, 64), check: (v) => problemWith(sessionNameSchema, v) }], async ([cloneName]) => {
          await svc.clone(o.operator, s.id, cloneName);
          say(`cloned ${name} into ${cloneName}`);
        }, closeDialog);
        return;
      case 'e':
      case 'E': {
        if (!allowed('edit') || s.entry.kind !== 'session') return;
        const m = s.entry.meta;
        dialog = openForm(screen, `edit ${name}`, sessionFields(m.name, m.protocol, String(m.port), m.dns), async ([nm = '', protocol, port = '', dns = '']) => {
          const e = await svc.edit(o.operator, s.id, { name: nm, protocol: protocol as 'tcp' | 'udp', port: port === '' ? 0 : Number(port), dns });
          say(e.kind === 'session' && e.restartNeeded ? `edited ${nm}: restart it to apply` : `edited ${nm}`);
        }, closeDialog);
        return;
      }
    }
  });

  draw();
  return {
    render: draw,
    resize(cols, rows) {
      out.columns = cols;
      out.rows = rows;
      if (!attached) {
        out.emit('resize');
        screen.alloc();
        draw();
      }
    },
    done,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      clearInterval(spinner);
      svc.view.off('change', redraw);
      screen.destroy();
    },
  };
}
