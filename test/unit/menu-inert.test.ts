/**
 * The menu with hostile text: what a session or an agent can influence (a broken session's reason,
 * an agent's error message, note, version and hostname) and what an operator types reach the
 * terminal inert, and never as blessed tags. First the pure lines of menu-view.ts, then the real
 * blessed menu and dialogs on in-memory streams, looking at the bytes they write.
 */
import { PassThrough, Writable } from 'node:stream';
import { BerthError } from '../../common/errors';
import { silentLogger } from '../../common/logging';
import { SessionEntry } from '../../common/protocol';
import { AuditLog } from '../../shell/audit';
import { Agents } from '../../shell/agents/pool';
import { ClusterView } from '../../shell/cluster/view';
import { ShellService } from '../../shell/service';
import { Dialog, Key } from '../../shell/ui/dialog';
import { startMenu } from '../../shell/ui/menu';
import { openMenuScreen } from '../../shell/ui/menu-screen';
import { INITIAL_STATE, finishBusy, startBusy } from '../../shell/ui/menu-state';
import { Line, plain, settingsText, statusLine, tableLines, titleLine } from '../../shell/ui/menu-view';
import { rawChars, viewWithAgent } from '../helpers/raw-text';

const OSC_TITLE = '\u001b]0;pwned\u0007';
const DSR = '\u001b[6n'; // asks the terminal to type its cursor position back
const C1_OSC = '\u009d2;c1\u009c';
const RLO = '\u202e';
const TAGS = '{red-fg}{bold}tag{/bold}';
const HOSTILE = `${OSC_TITLE}${DSR}${C1_OSC}${RLO}txt\n${TAGS}`;
const HOSTILE_SHOWN = `\\x1b]0;pwned\\x07\\x1b[6n\\x9d2;c1\\x9c\\u202etxt\\n${TAGS}`;

const BROKEN = '00000001-aaaa-4bbb-8ccc-000000000001';
const WEB = '00000002-aaaa-4bbb-8ccc-000000000002';

const broken: SessionEntry = { kind: 'broken', agent: 'agent-1', id: BROKEN, reason: `session.json: unknown field "${HOSTILE}"`, state: '-', lock: null, container: null };
const web: SessionEntry = {
  kind: 'session',
  agent: 'agent-1',
  meta: { version: 1, id: WEB, name: 'web', protocol: 'tcp', port: 0, dns: '', createdAt: '2026-01-01T00:00:00.000Z', lastAccessedAt: null, createdBy: 'alice' },
  state: 'C',
  attached: [`eve${OSC_TITLE}`],
  lock: null,
  container: null,
  restartNeeded: false,
};

/** One agent online with hostile hello fields and note, a broken session and a working one; an offline agent. */
function hostileView(): ClusterView {
  const view = viewWithAgent(`9${OSC_TITLE}`, `h${DSR}`);
  view.apply('agent-1', { type: 'session', session: broken });
  view.apply('agent-1', { type: 'session', session: web });
  view.apply('agent-1', { type: 'synced', count: 2 });
  view.apply('agent-1', { type: 'error', error: { code: 'INTERNAL', message: HOSTILE } });
  view.addAgent(`agent-2${C1_OSC}`);
  view.setStatus(`agent-2${C1_OSC}`, 'offline', HOSTILE);
  return view;
}

const lineText = (lines: Line[]): string => lines.map(plain).join('\n');

describe('menu lines (pure)', () => {
  const view = hostileView();
  const sessions = view.sessions();

  it('the table shows a broken reason and attached names inert, one row each, columns aligned', () => {
    const lines = tableLines(sessions, INITIAL_STATE, 10);
    expect(lines).toHaveLength(3);
    const text = lineText(lines);
    expect(rawChars(text, { lines: true })).toEqual([]);
    expect(text).toContain(`(broken: session.json: unknown field "\\x1b]0;pwned\\x07\\x1b[6n`);
    expect(text).toContain('eve\\x1b]0;pwned\\x07');
    const at = plain(lines[0]!).indexOf('AGENT');
    expect(lines.slice(1).map((l) => plain(l).indexOf('agent-1'))).toEqual([at, at]);
  });

  it('the title shows operator and agent names and the filter inert', () => {
    const st = { ...INITIAL_STATE, filter: `we\u007fb${RLO}`, filtering: true };
    const text = plain(titleLine({ name: `m${OSC_TITLE}`, role: 'admin' }, view.agentList(), 2, st));
    expect(rawChars(text)).toEqual([]);
    expect(text).toContain('m\\x1b]0;pwned\\x07 (admin)');
    expect(text).toContain('(? agent-2\\x9d2;c1\\x9c offline)');
    expect(text).toContain('filter: we\\x7fb\\u202e_');
  });

  it('the status line shows an agent error inert on one line, and the op in flight too', () => {
    const failed = statusLine(finishBusy(startBusy(INITIAL_STATE, 'killing web'), `CONFLICT: ${HOSTILE}`, true));
    expect(failed).toEqual([{ text: `CONFLICT: ${HOSTILE_SHOWN}`, tone: 'error' }]);
    expect(plain(statusLine(startBusy(INITIAL_STATE, `killing ${OSC_TITLE}`)))).toMatch(/ killing \\x1b\]0;pwned\\x07$/);
  });

  it('the settings page shows each agent on one line, its version, hostname and note inert', () => {
    const text = settingsText({ name: 'alice', role: 'admin' }, view.agentList());
    expect(rawChars(text, { lines: true })).toEqual([]);
    // The head, then one line per agent.
    expect(text.split('\n')).toHaveLength(8);
    expect(text).toContain(`9\\x1b]0;pwned\\x07  ${HOSTILE_SHOWN}`);
    expect(text).toMatch(/ h\\x1b\[6n$/m);
  });
});

const ESC = String.fromCharCode(0x1b);
// blessed moves the cursor right over blank cells (CSI n C); every other sequence it writes is a CSI
// or a two-character ESC sequence. The hostile CSI in these tests (DSR) is looked for in the raw bytes.
const CURSOR_RIGHT = new RegExp(`${ESC}\\[(\\d*)C`, 'g');
const CSI = new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g');
const ESC_PAIR = new RegExp(`${ESC}[78=>]`, 'g');

/** Writes to a string; `text()` is what a terminal would show, blessed's own sequences taken out. */
function terminal() {
  let raw = '';
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      raw += chunk.toString();
      cb();
    },
  });
  return {
    output,
    raw: () => raw,
    text: () =>
      raw
        .replace(CURSOR_RIGHT, (_m: string, n: string) => ' '.repeat(Number(n || 1)))
        .replace(CSI, '\n')
        .replace(ESC_PAIR, ''),
  };
}

/** Neither the hostile bytes nor what blessed would make of a tag reached the terminal. */
function expectInert(t: ReturnType<typeof terminal>): void {
  for (const bad of ['\u001b]', '\u0007', DSR, '\u009d', '\u009c', RLO]) expect(t.raw()).not.toContain(bad);
  expect(rawChars(t.text(), { lines: true })).toEqual([]);
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30));

/** Waits until the terminal shows `text` (blessed draws on its next tick, an op's result later). */
async function shows(t: ReturnType<typeof terminal>, text: string): Promise<void> {
  for (let i = 0; i < 100 && !t.text().includes(text); i++) await settle();
  expect(t.text()).toContain(text);
}

describe('the blessed menu', () => {
  it('draws the table, an agent error on the status line and the settings page inert, tags as text', async () => {
    const view = hostileView();
    const agents: Agents = {
      call: () => Promise.reject(new BerthError('CONFLICT', `session is broken (${HOSTILE})`)),
      attach: () => Promise.reject(new BerthError('INTERNAL', 'no')),
      addressOf: () => null,
    };
    const service = new ShellService({ view, agents, audit: new AuditLog('/dev/null', silentLogger), dns: null, logger: silentLogger });
    const t = terminal();
    const input = new PassThrough();
    const menu = startMenu({ input, output: t.output, cols: 200, rows: 20, service, operator: { name: 'alice', role: 'admin' }, logger: silentLogger, attach: async () => undefined });
    try {
      await shows(t, `(broken: session.json: unknown field "${HOSTILE_SHOWN}"`);
      input.write('k'); // kill the broken session (the first row): the agent refuses
      await shows(t, `CONFLICT: session is broken (${HOSTILE_SHOWN})`);
      input.write('s'); // the settings page
      await shows(t, 'h\\x1b[6n');
      await shows(t, `9\\x1b]0;pwned\\x07  ${HOSTILE_SHOWN.slice(0, 20)}`);
      expectInert(t);
    } finally {
      menu.destroy();
    }
  });

  it('draws form, picker, confirm and page dialogs inert, titles included, tags as text', async () => {
    const t = terminal();
    const screen = openMenuScreen(new PassThrough(), t.output, 200, 40, [{ text: 'hints', tone: 'dim' }]);
    let open: Dialog | null = null;
    const dialogs = screen.dialogs(
      (d) => (open = d),
      () => (open = null),
    );
    const press = (ch: string | undefined, key: Key): void => open?.key(ch, key);
    try {
      const field = { label: `name${RLO}`, value: `typed\u007f${C1_OSC}`, check: () => null };
      dialogs.form(`edit ${OSC_TITLE}${TAGS}`, [field], () => Promise.reject(new BerthError('CONFLICT', HOSTILE)));
      press(undefined, { name: 'enter' });
      // The refusal, on one line (the box wraps it at its edge).
      await shows(t, '\\x1b]0;pwned\\x07\\x1b[6n\\x9d2;c1\\x9c\\u202etxt\\n{red-fg}');
      expect(t.text()).toContain(`edit \\x1b]0;pwned\\x07${TAGS}`);
      expect(t.text()).toContain('typed\\x7f\\x9d2;c1\\x9c');
      press(undefined, { name: 'escape' });

      dialogs.picker(`on ${DSR}`, [`agent-1${OSC_TITLE}`, TAGS], () => undefined);
      await shows(t, 'on \\x1b[6n');
      expect(t.text()).toContain(`agent-1\\x1b]0;pwned\\x07`);
      press(undefined, { name: 'escape' });

      dialogs.confirm(`Delete ${OSC_TITLE}${TAGS}?`, () => undefined);
      await shows(t, `Delete \\x1b]0;pwned\\x07${TAGS}?`);
      press('n', { name: 'n' });

      dialogs.page(`page ${RLO}`, `line one ${OSC_TITLE}\nline two ${TAGS}${DSR}`);
      await shows(t, 'line one \\x1b]0;pwned\\x07');
      expect(t.text()).toContain(`line two ${TAGS}\\x1b[6n`);
      expect(t.text()).toContain('page \\u202e');
      expectInert(t);
    } finally {
      screen.destroy();
    }
  });
});
