import { PassThrough, Writable } from 'node:stream';
import { BerthError } from '../../common/errors';
import { LogFields, Logger, silentLogger } from '../../common/logging';
import { Activity, BERTH_VERSION, LockInfo, PROTOCOL_VERSION, SessionEntry } from '../../common/protocol';
import { AuditLog } from '../../shell/audit';
import { Agents } from '../../shell/agents/pool';
import { ClusterSession, ClusterView } from '../../shell/cluster/view';
import { Role } from '../../shell/config';
import { assertMay } from '../../shell/roles';
import { ShellService } from '../../shell/service';
import { Field, Key } from '../../shell/ui/dialog';
import { startMenu } from '../../shell/ui/menu';
import { viewEntry } from '../helpers/entries';
import { MenuContext, MenuService, sessionFields } from '../../shell/ui/menu-actions';
import { KEYS, KeyEntry, dispatch, findKey, helpText, hintText } from '../../shell/ui/menu-keys';

const ID = '3f2b8c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';

function web(o: { state?: SessionEntry['state']; restartNeeded?: boolean; attached?: string[]; lock?: LockInfo } = {}): SessionEntry {
  return {
    kind: 'session',
    agent: 'agent-1',
    meta: { version: 1, id: ID, name: 'web', protocol: 'tcp', port: 1001, dns: 'webdns', createdAt: '2026-01-01T00:00:00.000Z', lastAccessedAt: null, createdBy: 'alice' },
    state: o.state ?? 'R',
    attached: o.attached ?? [],
    lock: o.lock ?? null,
    container: null,
    restartNeeded: o.restartNeeded ?? false,
  };
}

const cs = (entry: SessionEntry): ClusterSession => ({ entry, id: ID, agent: entry.agent, agentStatus: 'online', state: entry.state });
const brokenOne: ClusterSession = cs({ kind: 'broken', agent: 'agent-1', id: ID, reason: 'bad json', state: '-', lock: null, container: null });

type Call = [string, ...unknown[]];
interface Opened {
  form?: { title: string; fields: Field[]; submit: (values: string[]) => Promise<void> };
  picker?: { title: string; items: string[]; choose: (i: number) => void };
  confirm?: { question: string; yes: () => void };
  page?: { title: string; text: string };
}

/** A MenuContext that records what the handlers do; runs are kept to be awaited. */
function fakeMenu(role: Role = 'admin', online = ['agent-1']) {
  const calls: Call[] = [];
  const opened: Opened = {};
  const runs: Array<{ label: string; result: Promise<string> }> = [];
  const view = new ClusterView();
  for (const a of online) {
    view.addAgent(a);
    view.setStatus(a, 'online', '');
  }
  const op = (name: string) => async (...args: unknown[]) => {
    calls.push([name, ...args.slice(1)]);
    return undefined as never;
  };
  const service = {
    view,
    check: (o: { name: string; role: Role }, action: Parameters<MenuService['check']>[1]) => assertMay(o, action),
    refused: (_o: unknown, _action: unknown, _ref: unknown, err: Error) => err,
    create: async (_o: unknown, r: { agent?: string }) => (calls.push(['create', r]), { ...web(), agent: r.agent ?? 'agent-1' }),
    edit: async (_o: unknown, ref: string, r: unknown) => (calls.push(['edit', ref, r]), web({ restartNeeded: true })),
    clone: op('clone'),
    simple: op('simple'),
    background: async (_o: unknown, ref: string) => (calls.push(['background', ref]), 1),
    delete: op('delete'),
  } as unknown as MenuService;
  const ctx: MenuContext = {
    operator: { name: role === 'viewer' ? 'vic' : 'alice', role },
    service,
    dialogs: {
      form: (title, fields, submit) => (opened.form = { title, fields, submit }),
      picker: (title, items, choose) => (opened.picker = { title, items, choose }),
      confirm: (question, yes) => (opened.confirm = { question, yes }),
      page: (title, text) => (opened.page = { title, text }),
    },
    pageRows: () => 19,
    move: (d) => calls.push(['move', d]),
    startFilter: () => calls.push(['filter']),
    rows: {
      nextNeedingYou: () => calls.push(['next']),
      dismiss: (x) => calls.push(['dismiss', x.id]),
      cycleSort: () => calls.push(['sort']),
      cycleAgent: () => calls.push(['agent']),
      togglePreview: () => calls.push(['preview']),
      resizePreview: () => calls.push(['preview-size']),
    },
    attach: (s) => calls.push(['attach', s.id]),
    say: (text, error = false) => calls.push(['say', text, error]),
    run: (label, fn) => runs.push({ label, result: fn() }),
    quit: () => calls.push(['quit']),
  };
  return { ctx, calls, opened, runs, view };
}

const press = (ch: string | undefined, name?: string): [string | undefined, Key] => [ch, { name: name ?? ch?.toLowerCase() }];

describe('the key table', () => {
  it('makes the hint bar the menu shows today', () => {
    expect(hintText()).toBe(
      'Enter attach · N new · Tab next · X dismiss · B bg · C clone · M move · E edit · R restart · K kill · D delete · U undo · O override · S · > sort · F agent · / filter · P preview · L · ? help · Q quit',
    );
  });

  it('makes the help page: two keys a line, in two aligned columns', () => {
    const lines = helpText().split('\n');
    expect(lines).toEqual([
      'Enter  attach (viewers: read-only)                 N  new session',
      'Tab    next session needing you                    X  dismiss done/waiting until it changes',
      'B      background your attach                      C  clone',
      'M      move to another agent                       E  edit (restart to apply)',
      'R      restart a stopped session                   K  kill (Y/N if others are attached)',
      'D      delete (asks Y/N; to the trash)             U  undo your last delete here (restore)',
      "O      override a session's lock (admin)           S  settings: version, agents",
      '>      sort: attention, name, agent, last used     F  filter by agent: all, each',
      "/      filter by text                              P  preview: the selected session's screen",
      'L      preview height: 1/3, 1/2, 2/3               ?  this help',
      'Q      quit                                        Ctrl-b d  detach from a session',
    ]);
  });

  it('dispatches every key the hint bar and the help page name, except the attached session’s own', () => {
    const listed = KEYS.filter((e) => e.hint !== undefined || e.help !== undefined);
    for (const e of listed) {
      if (e.on === 'attach') {
        expect(e.keys).toEqual([]);
        continue;
      }
      expect(e.keys.length).toBeGreaterThan(0);
      for (const k of e.keys) {
        const hit = k.length === 1 ? findKey(k, { name: k.toLowerCase() }) : findKey(undefined, { name: k });
        expect(hit).toBe(e);
      }
    }
  });

  it('labels each key as it is pressed: a letter in both cases, a name as written', () => {
    for (const e of KEYS.filter((x) => x.on !== 'attach' && x.hint !== undefined)) {
      const label = e.label.toLowerCase();
      if (e.label.length === 1 && /[A-Z]/.test(e.label)) expect([...e.keys].sort()).toEqual([e.label, label]);
      else expect(e.keys).toContain(e.label.length === 1 ? e.label : label);
    }
  });

  it('gives each key to one entry only', () => {
    const all = KEYS.flatMap((e) => e.keys);
    expect(new Set(all).size).toBe(all.length);
  });

  it('shows the same keys on the hint bar as on the help page (help adds the attached session’s)', () => {
    const onBar = KEYS.filter((e) => e.hint !== undefined).map((e) => e.label);
    const onPage = KEYS.filter((e) => e.help !== undefined && e.on !== 'attach').map((e) => e.label);
    expect(onBar).toEqual(onPage);
  });

  it('builds its texts from the entries it is given', () => {
    const keys: KeyEntry[] = [
      { on: 'menu', label: 'X', keys: ['x'], hint: 'ex', help: 'the x key', run: () => undefined },
      { on: 'menu', label: 'Long', keys: ['long'], hint: '', help: 'a named key', run: () => undefined },
      { on: 'menu', label: 'Y', keys: ['y'], help: 'why', run: () => undefined },
    ];
    expect(hintText(keys)).toBe('X ex · Long');
    expect(helpText(keys)).toBe('X  the x key     Long  a named key\nY  why');
  });
});

describe('dispatching keys', () => {
  const s = cs(web());

  it('moves the selection with the arrows and a page (the table less a row) with PgUp/PgDn', () => {
    const m = fakeMenu();
    for (const name of ['up', 'down', 'pageup', 'pagedown']) dispatch(m.ctx, undefined, { name }, s);
    expect(m.calls).toEqual([['move', -1], ['move', 1], ['move', -19], ['move', 19]]);
  });

  it('attaches with Enter, and does nothing without a session', () => {
    const m = fakeMenu('viewer');
    dispatch(m.ctx, '\r', { name: 'enter' }, s);
    dispatch(m.ctx, '\r', { name: 'enter' }, undefined);
    dispatch(m.ctx, '\r', { name: 'return' }, s);
    expect(m.calls).toEqual([['attach', ID]]);
  });

  it('takes both cases of a letter, and ignores Ctrl with it and unknown keys', () => {
    const m = fakeMenu();
    dispatch(m.ctx, ...press('q'), s);
    dispatch(m.ctx, ...press('Q'), s);
    dispatch(m.ctx, '\x11', { name: 'q', ctrl: true }, s);
    dispatch(m.ctx, ...press('z'), s);
    dispatch(m.ctx, undefined, { name: 'home' }, s);
    expect(m.calls).toEqual([['quit'], ['quit']]);
  });

  it('opens the help page, the settings page and the filter', () => {
    const m = fakeMenu();
    dispatch(m.ctx, ...press('?'), s);
    expect(m.opened.page).toEqual({ title: 'keys', text: helpText() });
    expect(m.opened.page?.text).toContain("override a session's lock");
    dispatch(m.ctx, ...press('S'), s);
    expect(m.opened.page?.title).toBe('settings');
    expect(m.opened.page?.text).toContain(`berth ${BERTH_VERSION} (protocol ${PROTOCOL_VERSION})\noperator alice (admin)`);
    dispatch(m.ctx, ...press('/'), s);
    expect(m.calls).toEqual([['filter']]);
  });

  it('jumps with Tab, dismisses with X, cycles the sort with > and the agent filter with F, for any role', () => {
    const m = fakeMenu('viewer');
    dispatch(m.ctx, '\t', { name: 'tab' }, s);
    dispatch(m.ctx, ...press('x'), s);
    dispatch(m.ctx, ...press('X'), s);
    dispatch(m.ctx, '>', { name: undefined }, s);
    dispatch(m.ctx, ...press('f'), s);
    dispatch(m.ctx, ...press('F'), s);
    expect(m.calls).toEqual([['next'], ['dismiss', ID], ['dismiss', ID], ['sort'], ['agent'], ['agent']]);
  });

  it('jumps, sorts and filters with no session selected; X then does nothing', () => {
    const m = fakeMenu();
    dispatch(m.ctx, '\t', { name: 'tab' }, undefined);
    dispatch(m.ctx, ...press('x'), undefined);
    dispatch(m.ctx, '>', { name: undefined }, undefined);
    dispatch(m.ctx, ...press('f'), undefined);
    expect(m.calls).toEqual([['next'], ['sort'], ['agent']]);
  });

  it('leaves the table keys to a context that draws no table', () => {
    const m = fakeMenu();
    const ctx: MenuContext = { ...m.ctx, rows: undefined };
    for (const [ch, name] of [['\t', 'tab'], ['x', 'x'], ['>', undefined], ['f', 'f']] as const) dispatch(ctx, ch, { name }, s);
    expect(m.calls).toEqual([]);
  });

  it('tells a viewer why a key is refused, and does nothing else', () => {
    const m = fakeMenu('viewer');
    for (const k of ['N', 'B', 'C', 'E', 'R', 'K', 'D', 'O']) dispatch(m.ctx, ...press(k), s);
    expect(m.calls.map((c) => c[1])).toEqual(['create', 'background', 'clone', 'edit', 'restart', 'kill', 'delete', 'override'].map((w) => `vic is a viewer and may not ${w}`));
    expect(m.calls.every((c) => c[0] === 'say' && c[2] === true)).toBe(true);
    expect(m.opened).toEqual({});
    expect(m.runs).toEqual([]);
  });

  it('does nothing for a session key when no session is selected, not even refuse', () => {
    const m = fakeMenu('viewer');
    for (const k of ['B', 'C', 'E', 'R', 'K', 'D', 'O']) dispatch(m.ctx, ...press(k), undefined);
    expect(m.calls).toEqual([]);
  });

  it('runs K and R in the background and reports what they did', async () => {
    const m = fakeMenu();
    dispatch(m.ctx, ...press('K'), s);
    dispatch(m.ctx, ...press('r'), s);
    expect(m.runs.map((r) => r.label)).toEqual(['killing web', 'restarting web']);
    expect(await Promise.all(m.runs.map((r) => r.result))).toEqual(['killed web', 'restarted web']);
    expect(m.calls).toEqual([
      ['simple', 'kill', ID],
      ['simple', 'restart', ID],
    ]);
  });

  it('kills at once when nobody else is attached, the operator herself included', async () => {
    const m = fakeMenu();
    dispatch(m.ctx, ...press('k'), cs(web({ attached: ['alice', 'alice'] })));
    expect(m.opened).toEqual({});
    expect(await m.runs[0]?.result).toBe('killed web');
    expect(m.calls).toEqual([['simple', 'kill', ID]]);
  });

  it('asks Y/N before K kills a session others are attached to, naming each once', async () => {
    const m = fakeMenu();
    dispatch(m.ctx, ...press('K'), cs(web({ attached: ['bob', 'alice', 'carol', 'bob'] })));
    expect(m.opened.confirm?.question).toBe('Kill web? bob and carol are attached');
    expect(m.runs).toEqual([]);
    expect(m.calls).toEqual([]);
    m.opened.confirm?.yes();
    expect(m.runs[0]?.label).toBe('killing web');
    expect(await m.runs[0]?.result).toBe('killed web');
    expect(m.calls).toEqual([['simple', 'kill', ID]]);

    const one = fakeMenu();
    dispatch(one.ctx, ...press('K'), cs(web({ attached: ['bob'] })));
    expect(one.opened.confirm?.question).toBe('Kill web? bob is attached');
  });

  it('says how many of your attaches B ended', async () => {
    const m = fakeMenu();
    dispatch(m.ctx, ...press('b'), s);
    expect(m.runs[0]?.label).toBe('detaching web');
    expect(await m.runs[0]?.result).toBe('detached 1 of your attaches to web');
  });

  it('deletes only after Y', async () => {
    const m = fakeMenu();
    dispatch(m.ctx, ...press('D'), s);
    expect(m.opened.confirm?.question).toBe('Delete web and all its files?');
    expect(m.runs).toEqual([]);
    m.opened.confirm?.yes();
    expect(m.runs[0]?.label).toBe('deleting web');
    expect(await m.runs[0]?.result).toBe('deleted web');
    expect(m.calls).toEqual([['delete', ID]]);
  });

  it('overrides only a locked session, whatever its state, after the role check, asking why', async () => {
    const lock: LockInfo = { operator: 'bob', op: 'clone', since: '2026-01-01T00:00:00.000Z', stale: false };
    const op = fakeMenu('operator');
    dispatch(op.ctx, ...press('O'), cs(web({ state: 'L', lock })));
    expect(op.calls).toEqual([['say', 'alice is an operator and may not override', true]]);
    const m = fakeMenu();
    dispatch(m.ctx, ...press('o'), s);
    expect(m.calls).toEqual([['say', 'web is not locked', true]]);
    // Running (someone attached) and locked: the lock decides, not the state letter.
    dispatch(m.ctx, ...press('o'), cs(web({ state: 'C', attached: ['bob'], lock })));
    const form = m.opened.form!;
    expect(form.title).toBe('override the lock of web');
    expect(form.fields[0]?.check('  ')).toBe('say why');
    expect(form.fields[0]?.check('agent was killed')).toBeNull();
    await form.submit(['agent was killed']);
    expect(m.calls.slice(1)).toEqual([
      ['simple', 'override', ID, 'agent was killed'],
      ['say', 'unlocked web', false],
    ]);
  });

  it('clones under the name asked, web-copy by default', async () => {
    const m = fakeMenu();
    dispatch(m.ctx, ...press('C'), s);
    const form = m.opened.form!;
    expect(form.title).toBe('clone web');
    expect(form.fields.map((f) => f.value)).toEqual(['web-copy']);
    expect(form.fields[0]?.check('no good')).toMatch(/must be/);
    await form.submit(['web-copy']);
    expect(m.calls).toEqual([
      ['clone', ID, 'web-copy'],
      ['say', 'cloned web into web-copy', false],
    ]);
  });

  it('edits with the session’s values and says when a restart applies them', async () => {
    const m = fakeMenu();
    dispatch(m.ctx, ...press('E'), s);
    const form = m.opened.form!;
    expect(form.title).toBe('edit web');
    expect(form.fields.map((f) => [f.label, f.value])).toEqual([
      ['name', 'web'],
      ['protocol', 'tcp'],
      ['port', '1001'],
      ['dns', 'webdns'],
      ['memory MB', ''],
      ['cpus', ''],
      ['pids', ''],
      ['command', ''],
    ]);
    await form.submit(['web', 'udp', '', 'webdns', '2g', '', '', '']);
    await form.submit(['web', 'tcp', '1001', 'webdns', '', '', '', 'claude --dangerously-skip-permissions']);
    expect(m.calls).toEqual([
      ['edit', ID, { name: 'web', protocol: 'udp', port: 0, dns: 'webdns', limits: { memoryMb: 2048 } }],
      ['say', 'edited web: restart it to apply', false],
      ['edit', ID, { name: 'web', protocol: 'tcp', port: 1001, dns: 'webdns', command: 'claude --dangerously-skip-permissions' }],
      ['say', 'edited web: restart it to apply', false],
    ]);
    expect(form.fields.find((f) => f.label === 'command')?.check('a\nb')).toBe('must be one line without control characters');
  });

  it('does not edit a broken session', () => {
    const m = fakeMenu();
    dispatch(m.ctx, ...press('E'), brokenOne);
    expect(m.opened).toEqual({});
    expect(m.calls).toEqual([]);
  });

  it('names a broken session by its id', () => {
    const m = fakeMenu();
    dispatch(m.ctx, ...press('O'), brokenOne);
    expect(m.calls).toEqual([['say', '3f2b8c1e is not locked', true]]);
  });
});

describe('N: a new session', () => {
  it('says so when no agent is online', () => {
    const m = fakeMenu('admin', []);
    dispatch(m.ctx, ...press('N'), undefined);
    expect(m.calls).toEqual([['say', 'no agent is online', true]]);
  });

  it('goes straight to the form with one agent online', async () => {
    const m = fakeMenu('admin', ['agent-1']);
    dispatch(m.ctx, ...press('n'), undefined);
    expect(m.opened.picker).toBeUndefined();
    const form = m.opened.form!;
    expect(form.title).toBe('new session on agent-1');
    expect(form.fields.map((f) => [f.label, f.value])).toEqual([
      ['name', ''],
      ['protocol', 'tcp'],
      ['port', ''],
      ['dns', ''],
      ['memory MB', ''],
      ['cpus', ''],
      ['pids', ''],
      ['command', ''],
      ['repo', ''],
      ['branch', ''],
    ]);
    await form.submit(['web', 'tcp', '-1', 'webdns']);
    await form.submit(['api', 'tcp', '', '', '', '', '', 'claude', 'https://github.com/acme/api.git', 'fix/login']);
    expect(m.calls).toEqual([
      ['create', { name: 'web', agent: 'agent-1', protocol: 'tcp', port: -1, dns: 'webdns' }],
      ['say', 'created web on agent-1', false],
      ['create', { name: 'api', agent: 'agent-1', protocol: 'tcp', port: 0, dns: '', command: 'claude', repo: 'https://github.com/acme/api.git', branch: 'fix/login' }],
      ['say', 'created api on agent-1', false],
    ]);
    expect(form.fields.find((f) => f.label === 'repo')?.check('ext::sh -c x')).toContain('must be https://');
    await expect(form.submit(['x', 'tcp', '', '', '', '', '', '', '', 'b'])).rejects.toMatchObject({ message: 'branch: needs repo' });
  });

  it('asks which agent when several are online, then opens the form for it', () => {
    const m = fakeMenu('admin', ['agent-1', 'agent-2']);
    m.view.addAgent('agent-3');
    dispatch(m.ctx, ...press('N'), undefined);
    expect(m.opened.picker).toMatchObject({ title: 'new session on which agent?', items: ['agent-1  (0 sessions)', 'agent-2  (0 sessions)'] });
    m.opened.picker?.choose(1);
    expect(m.opened.form?.title).toBe('new session on agent-2');
  });

  it('passes an agent’s refusal on to the form', async () => {
    const m = fakeMenu();
    (m.ctx.service as { create: unknown }).create = async () => {
      throw new BerthError('NAME_TAKEN', 'dns: "webdns" is used by session web on agent-2');
    };
    dispatch(m.ctx, ...press('N'), undefined);
    await expect(m.opened.form!.submit(['other', 'tcp', '', 'webdns'])).rejects.toThrow('dns: "webdns" is used by session web on agent-2');
  });
});

describe('session form fields', () => {
  const [name, protocol, port, dns, memory, cpus, pids] = sessionFields('', 'tcp', '', '', undefined, { memoryMb: 4096, cpus: 2, pids: 1024 });

  it('checks limits as typed against the agent\'s maximums; empty means the default', () => {
    expect(memory?.check('')).toBeNull();
    expect(memory?.check('4g')).toBeNull();
    expect(memory?.check('5g')).toBe('at most 4096 on this agent');
    expect(memory?.check('lots')).toBe('must be a size in MB, like 512, 512m or 4g');
    expect(cpus?.check('0.5')).toBeNull();
    expect(cpus?.check('3')).toBe('at most 2 on this agent');
    expect(pids?.check('1.5')).toBe('must be a whole number');
    expect(sessionFields('web', 'tcp', '0', '', { memoryMb: 512, pids: 64 }).slice(4).map((f) => f.value)).toEqual(['512', '', '64', '']);
  });

  it('checks each value as typed', () => {
    expect(name?.check('no good')).toMatch(/^must be 1-64 letters, digits/);
    expect(name?.check('web')).toBeNull();
    expect(protocol?.choices).toEqual(['tcp', 'udp']);
    expect(port?.check('')).toBeNull();
    expect(port?.check('-1')).toBeNull();
    expect(port?.check('2200')).toBeNull();
    expect(port?.check('abc')).toBe('must be 0, -1 or a port number');
    expect(port?.check('70000')).not.toBeNull();
    expect(dns?.check('')).toBeNull();
    expect(dns?.check('Bad_Name')).not.toBeNull();
  });
});

describe('the blessed menu puts attention first', () => {
  const noAgents: Agents = {
    call: () => Promise.reject(new BerthError('AGENT_OFFLINE', 'no')),
    attach: () => Promise.reject(new BerthError('AGENT_OFFLINE', 'no')),
    addressOf: () => null,
  };
  const idOf = (i: number): string => `0000000${i}-aaaa-4bbb-8ccc-00000000000${i}`;
  const entry = (i: number, name: string, activity: Activity | null = null): SessionEntry => ({ ...(viewEntry({ id: idOf(i), name }) as Extract<SessionEntry, { kind: 'session' }>), activity });
  const ESC = '\u001b';
  const CURSOR_RIGHT = new RegExp(`${ESC}\\[(\\d*)C`, 'g');
  const CSI = new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g');
  /** Bytes for a terminal as text: blessed's cursor moves right as spaces, its other sequences as line ends. */
  const asText = (bytes: string): string => bytes.replace(CURSOR_RIGHT, (_m: string, n: string) => ' '.repeat(Number(n || 1))).replace(CSI, '\n');

  /** A menu on in-memory streams over one online agent with sessions a, b, c (no activity yet). */
  function openMenu(bell?: boolean, logger: Logger = silentLogger) {
    const view = new ClusterView();
    view.addAgent('agent-1');
    view.setStatus('agent-1', 'online', '');
    ['a', 'b', 'c'].forEach((name, i) => view.apply('agent-1', { type: 'session', session: entry(i + 1, name) }));
    const service = new ShellService({ view, agents: noAgents, audit: new AuditLog('/dev/null', silentLogger), dns: null, logger: silentLogger });
    let raw = '';
    const output = new Writable({
      write(chunk: Buffer, _enc, cb) {
        raw += chunk.toString();
        cb();
      },
    });
    const input = new PassThrough();
    const menu = startMenu({ input, output, cols: 160, rows: 20, service, operator: { name: 'alice', role: 'admin' }, logger, attach: async () => undefined, bell });
    const bells = (): number => raw.split('\u0007').length - 1;
    /** The whole screen as text: blessed draws only what changed, so it is made to draw all again. */
    const screen = async (): Promise<string> => {
      const from = raw.length;
      menu.resize(160, 20);
      await new Promise((r) => setTimeout(r, 20));
      return asText(raw.slice(from));
    };
    /** Waits until the screen shows `text`; the screen then. */
    const shows = async (text: string): Promise<string> => {
      let s = await screen();
      for (let i = 0; i < 100 && !s.includes(text); i++) s = await screen();
      expect(s).toContain(text);
      return s;
    };
    const push = (e: SessionEntry): void => view.apply('agent-1', { type: 'session', session: e });
    return { menu, input, bells, shows, push, view };
  }

  it('moves a session asking permission to the top, counts it, rings once, keeps the selection on its session, and Tab goes to it', async () => {
    const m = openMenu();
    // The rows of the last draw (after its table head).
    const rowNames = (screen: string): string[] => [...screen.slice(screen.lastIndexOf('NAME')).matchAll(/ ([abc]) +agent-1 /g)].map((x) => x[1] ?? '');
    try {
      expect(rowNames(await m.shows('sort: attention'))).toEqual(['a', 'b', 'c']);
      m.input.write('\u001b[B'); // Down: b
      await new Promise((r) => setTimeout(r, 50));
      expect(m.bells()).toBe(0);
      m.push(entry(3, 'c', { state: 'permission', since: '2026-12-02T10:00:00.000Z', detail: 'Bash' }));
      expect(rowNames(await m.shows('1 needs you'))).toEqual(['c', 'a', 'b']);
      expect(m.bells()).toBe(1);
      m.input.write('x'); // still b, though its row moved down
      await m.shows('b has no activity to dismiss');
      m.input.write('\t');
      m.input.write('x');
      await m.shows('c is permission: only done or waiting can be dismissed');
      // c waits for input (done with the tool): the bell rings again; X dismisses it, the count goes.
      m.push(entry(3, 'c', { state: 'waiting', since: '2026-12-02T10:01:00.000Z', detail: '' }));
      await m.shows(' waiting ');
      expect(m.bells()).toBe(2);
      m.input.write('x');
      const s = await m.shows('dismissed c until its activity changes');
      expect(s).not.toContain('need');
      expect(rowNames(s)).toEqual(['a', 'b', 'c']);
      expect(m.bells()).toBe(2);
    } finally {
      m.menu.destroy();
    }
  });

  it('stays quiet for an operator who turned the bell off', async () => {
    const m = openMenu(false);
    try {
      await m.shows('sort: attention');
      m.push(entry(1, 'a', { state: 'waiting', since: '2026-12-02T10:00:00.000Z', detail: '' }));
      await m.shows('1 needs you');
      expect(m.bells()).toBe(0);
    } finally {
      m.menu.destroy();
    }
  });

  it('goes on after a key or a redraw that throws: the status line says so, the log has the stack, the next keys work', async () => {
    const errors: Array<{ msg: string; fields: LogFields }> = [];
    const logger: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (msg, fields = {}) => void errors.push({ msg, fields }), child: () => logger };
    const m = openMenu(undefined, logger);
    // The view throws on its next `times` reads, as a bug in the code under a key would.
    const sessions = m.view.sessions.bind(m.view);
    let times = 0;
    m.view.sessions = () => {
      if (times > 0) {
        times--;
        throw new Error('view\nbroken');
      }
      return sessions();
    };
    try {
      await m.shows('sort: attention');
      times = 1;
      m.input.write('\u001b[B'); // Down
      const said = await m.shows('INTERNAL: that key failed (view\\nbroken); it is logged');
      expect(said).not.toContain('view\nbroken');
      expect(errors).toEqual([{ msg: 'menu key failed', fields: expect.objectContaining({ operator: 'alice', err: 'view\nbroken', stack: expect.stringContaining('menu-keys.test') }) }]);
      // The keys after it act as before.
      m.input.write('x');
      await m.shows('a has no activity to dismiss');
      // A redraw that throws leaves the screen as it was, and the next one draws.
      times = 1;
      m.push(entry(2, 'b', { state: 'waiting', since: '2026-12-02T10:00:00.000Z', detail: '' }));
      await m.shows('1 needs you');
      expect(errors.map((e) => e.msg)).toEqual(['menu key failed', 'menu redraw failed']);
      // A key that fails every time (held down): each is answered, the log keeps the first 20.
      times = 30;
      for (let i = 0; i < 30; i++) m.input.write('x');
      await new Promise((r) => setTimeout(r, 100));
      times = 0;
      m.input.write('?');
      await m.shows('any key closes');
      expect(errors.length).toBe(20);
    } finally {
      m.menu.destroy();
    }
  });
});
