import { Activity, SessionEntry } from '../../common/protocol';
import { AgentStatus, ClusterSession, ClusterView } from '../../shell/cluster/view';
import { SORTS, needingYou, nextAgent, sortSessions } from '../../shell/ui/menu-attention';
import {
  INITIAL_STATE,
  MenuState,
  clearMessage,
  cycleAgent,
  cycleSort,
  dismiss,
  filterKey,
  finishBusy,
  follow,
  jumpToNeedingYou,
  layout,
  matchesFilter,
  moveSelection,
  pageStep,
  refuseWhileBusy,
  say,
  selectedSession,
  shownSessions,
  startBusy,
  startFiltering,
  tableHeight,
  tableRows,
  tick,
  observe,
} from '../../shell/ui/menu-state';
import { viewEntry } from '../helpers/entries';
import { SPINNER, plain, settingsText, statusLine, tableLines, titleLine } from '../../shell/ui/menu-view';

const uuid = (i: number): string => `${String(i).padStart(8, '0')}-aaaa-4bbb-8ccc-${String(i).padStart(12, '0')}`;

function session(i: number, name: string, o: { agent?: string; status?: AgentStatus; state?: SessionEntry['state'] } = {}): ClusterSession {
  const agent = o.agent ?? 'agent-1';
  const status = o.status ?? 'online';
  const entry = viewEntry({ id: uuid(i), name, agent, port: 1000 + i, dns: `${name}dns`, state: o.state });
  return { entry, id: uuid(i), agent, agentStatus: status, state: status === 'online' ? entry.state : '?' };
}

function broken(i: number, reason: string): ClusterSession {
  const entry: SessionEntry = { kind: 'broken', agent: 'agent-2', id: uuid(i), reason, state: '-', lock: null, container: null };
  return { entry, id: uuid(i), agent: 'agent-2', agentStatus: 'online', state: '-' };
}

const rows = (n: number): ClusterSession[] => Array.from({ length: n }, (_, i) => session(i + 1, `s${i + 1}`));
const state = (o: Partial<MenuState>): MenuState => ({ ...INITIAL_STATE, ...o });

describe('which rows are shown', () => {
  const all = [session(1, 'web'), session(2, 'Api', { agent: 'agent-2', state: 'R' }), broken(3, 'bad json')];

  it('shows every session, in the order given, without a filter', () => {
    expect(shownSessions(all, '')).toEqual(all);
  });

  it('matches any cell of the row, ignoring case', () => {
    expect(shownSessions(all, 'WEB').map((s) => s.id)).toEqual([uuid(1)]);
    expect(shownSessions(all, 'api').map((s) => s.id)).toEqual([uuid(2)]);
    expect(shownSessions(all, 'agent-2').map((s) => s.id)).toEqual([uuid(2), uuid(3)]);
    expect(shownSessions(all, '1002/tcp').map((s) => s.id)).toEqual([uuid(2)]);
    expect(shownSessions(all, 'bad json').map((s) => s.id)).toEqual([uuid(3)]);
  });

  it('matches the start of the full id, past the 8 characters the table shows', () => {
    expect(matchesFilter(all[0]!, uuid(1).slice(0, 13))).toBe(true);
    expect(matchesFilter(all[0]!, uuid(2).slice(0, 13))).toBe(false);
  });

  it('shows nothing when nothing matches', () => {
    expect(shownSessions(all, 'nope')).toEqual([]);
  });
});

describe('selection', () => {
  it('moves one row at a time and stays within the rows', () => {
    let st = INITIAL_STATE;
    st = moveSelection(st, -1, 3);
    expect(st.selected).toBe(0);
    st = moveSelection(moveSelection(moveSelection(st, 1, 3), 1, 3), 1, 3);
    expect(st.selected).toBe(2);
  });

  it('moves a page at a time: a table height less one', () => {
    expect(tableHeight(24)).toBe(20);
    expect(pageStep(24)).toBe(19);
    expect(moveSelection(INITIAL_STATE, pageStep(24), 100).selected).toBe(19);
    expect(moveSelection(state({ selected: 30 }), -pageStep(24), 100).selected).toBe(11);
    expect(moveSelection(state({ selected: 5 }), -pageStep(24), 100).selected).toBe(0);
  });

  it('keeps a table row on the smallest terminal', () => {
    expect(tableHeight(3)).toBe(1);
  });

  it('stays at 0 with no rows', () => {
    expect(moveSelection(INITIAL_STATE, 1, 0).selected).toBe(0);
    expect(layout(state({ selected: 4 }), 0, 10).selected).toBe(0);
  });

  it('names the selected session, or none past the rows', () => {
    const shown = rows(3);
    expect(selectedSession(state({ selected: 1 }), shown)?.id).toBe(uuid(2));
    expect(selectedSession(state({ selected: 3 }), shown)).toBeUndefined();
    expect(selectedSession(INITIAL_STATE, [])).toBeUndefined();
  });
});

describe('layout when rows appear and go', () => {
  it('moves the selection up to the last row when rows below it go', () => {
    expect(layout(state({ selected: 7 }), 5, 10).selected).toBe(4);
  });

  it('keeps the selection at its index when rows appear, if no session is followed', () => {
    expect(layout(state({ selected: 2 }), 9, 10).selected).toBe(2);
  });

  it('scrolls down just enough to show the selection', () => {
    expect(layout(state({ selected: 12 }), 30, 10)).toMatchObject({ selected: 12, top: 3 });
  });

  it('scrolls up to the selection when it is above the view', () => {
    expect(layout(state({ selected: 2, top: 6 }), 30, 10)).toMatchObject({ selected: 2, top: 2 });
  });

  it('scrolls back when rows go and the selection moves up', () => {
    expect(layout(state({ selected: 25, top: 16 }), 8, 10)).toMatchObject({ selected: 7, top: 7 });
  });

  it('returns the same state when nothing moves', () => {
    const st = state({ selected: 3, top: 1 });
    expect(layout(st, 10, 10)).toBe(st);
  });
});

describe('typing a filter', () => {
  const key = (name?: string) => ({ name });
  const typing = startFiltering(state({ selected: 4 }));

  it('starts with / and keeps the text typed before', () => {
    expect(startFiltering(state({ filter: 'we' }))).toMatchObject({ filtering: true, filter: 'we' });
  });

  it('adds characters and takes one off with backspace, moving to the first row', () => {
    let st = filterKey(typing, 'w', key('w'));
    st = filterKey(st, 'E', key('e'));
    st = filterKey(st, 'x', key('x'));
    st = filterKey(st, undefined, key('backspace'));
    expect(st).toMatchObject({ filter: 'wE', filtering: true, selected: 0 });
  });

  it('takes printable characters only', () => {
    let st = filterKey(typing, '\t', key('tab'));
    st = filterKey(st, undefined, key('up'));
    st = filterKey(st, ' ', key('space'));
    expect(st.filter).toBe(' ');
  });

  it('ends with Enter, keeping the filter; the Return blessed sends first adds nothing', () => {
    let st = filterKey(state({ filtering: true, filter: 'web' }), '\r', key('return'));
    expect(st).toMatchObject({ filter: 'web', filtering: true });
    st = filterKey(st, '\r', key('enter'));
    expect(st).toMatchObject({ filter: 'web', filtering: false });
  });

  it('ends with Escape, clearing the filter', () => {
    expect(filterKey(state({ filtering: true, filter: 'web', selected: 3 }), '\x1b', key('escape'))).toMatchObject({ filter: '', filtering: false, selected: 0 });
  });
});

describe('status line and ops in flight', () => {
  it('shows a message, plain or as an error, until a key clears it', () => {
    expect(statusLine(say(INITIAL_STATE, 'killed web'))).toEqual([{ text: 'killed web', tone: 'plain' }]);
    const err = say(INITIAL_STATE, 'FORBIDDEN: no', true);
    expect(statusLine(err)).toEqual([{ text: 'FORBIDDEN: no', tone: 'error' }]);
    expect(statusLine(clearMessage(err))).toEqual([]);
    expect(clearMessage(INITIAL_STATE)).toBe(INITIAL_STATE);
  });

  it('shows the op in flight with a turning spinner, over any message', () => {
    let st = startBusy(say(INITIAL_STATE, 'old'), 'killing web');
    expect(statusLine(st)).toEqual([{ text: `${SPINNER[0]} killing web`, tone: 'warn' }]);
    st = tick(tick(st));
    expect(plain(statusLine(st))).toBe(`${SPINNER[2]} killing web`);
    st = { ...st, spin: SPINNER.length + 1 };
    expect(plain(statusLine(st))).toBe(`${SPINNER[1]} killing web`);
  });

  it('does not turn the spinner when no op runs', () => {
    expect(tick(INITIAL_STATE)).toBe(INITIAL_STATE);
  });

  it('refuses another op while one runs, saying which', () => {
    expect(refuseWhileBusy(INITIAL_STATE)).toBeNull();
    const refused = refuseWhileBusy(startBusy(INITIAL_STATE, 'deleting web'));
    expect(refused).toMatchObject({ message: 'wait: deleting web', messageIsError: true, busy: 'deleting web' });
  });

  it('replaces the spinner with the result or the refusal', () => {
    const busy = startBusy(INITIAL_STATE, 'killing web');
    expect(finishBusy(busy, 'killed web', false)).toMatchObject({ busy: null, message: 'killed web', messageIsError: false });
    expect(statusLine(finishBusy(busy, 'AGENT_OFFLINE: agent agent-1 is offline', true))).toEqual([{ text: 'AGENT_OFFLINE: agent agent-1 is offline', tone: 'error' }]);
  });
});

describe('title line', () => {
  const view = new ClusterView();
  view.addAgent('agent-1');
  view.addAgent('agent-2');
  view.setStatus('agent-1', 'online', '');
  const alice = { name: 'alice', role: 'admin' as const };

  it('names the operator, counts the agents online and the sessions shown, names the agents away and the sort', () => {
    const line = titleLine(alice, view.agentList(), 3, INITIAL_STATE);
    expect(plain(line)).toBe(' berth  alice (admin)  agents 1/2 online (? agent-2 connecting)  sessions 3  sort: attention');
    expect(line.find((s) => s.text === 'berth')?.tone).toBe('bold');
    expect(line.find((s) => s.text.startsWith('(?'))?.tone).toBe('warn');
  });

  it('leaves the agents away out when all are online', () => {
    view.setStatus('agent-2', 'online', '');
    expect(plain(titleLine(alice, view.agentList(), 0, INITIAL_STATE))).toBe(' berth  alice (admin)  agents 2/2 online  sessions 0  sort: attention');
  });

  it('shows the filter, with a cursor while it is typed', () => {
    expect(plain(titleLine(alice, [], 1, state({ filter: 'web', filtering: true })))).toMatch(/ {2}filter: web_$/);
    expect(plain(titleLine(alice, [], 1, state({ filter: 'web' })))).toMatch(/ {2}filter: web$/);
    expect(plain(titleLine(alice, [], 1, state({ filtering: true })))).toMatch(/ {2}filter: _$/);
  });
});

describe('session table', () => {
  it('pads the columns to the widest cell, head in bold', () => {
    const lines = tableLines([session(1, 'a-long-name'), session(2, 'b')], INITIAL_STATE, 10);
    expect(lines[0]).toEqual([{ text: expect.stringMatching(/^# {9}NAME {9}AGENT/), tone: 'bold' }]);
    expect(plain(lines[1]!)).toMatch(/^00000001 {2}a-long-name {2}agent-1 {2}- /);
    expect(plain(lines[2]!)).toMatch(/^00000002 {2}b {12}agent-1 {2}- /);
  });

  it('shows the selected row inverse and the rows of agents not online dim', () => {
    const shown = [session(1, 'a'), session(2, 'b', { status: 'offline' }), session(3, 'c')];
    const tones = tableLines(shown, state({ selected: 2 }), 10).map((l) => l[0]?.tone);
    expect(tones).toEqual(['bold', 'plain', 'dim', 'selected']);
    expect(plain(tableLines(shown, INITIAL_STATE, 10)[2]!)).toMatch(/ b +agent-1 +\? /);
  });

  it('shows the rows from the top of the view that fit', () => {
    const st = layout(state({ selected: 12 }), 30, 5);
    const lines = tableLines(rows(30), st, 5);
    expect(lines).toHaveLength(6);
    expect(plain(lines[1]!)).toMatch(/ s9 /);
    expect(lines[5]).toEqual([{ text: expect.stringMatching(/ s13 /), tone: 'selected' }]);
  });

  it('says how to start with no session, or that the filter matches none', () => {
    expect(tableLines([], INITIAL_STATE, 5)[1]).toEqual([{ text: 'no sessions yet: N creates one', tone: 'dim' }]);
    expect(tableLines([], state({ filter: 'x' }), 5)[1]).toEqual([{ text: 'no session matches the filter', tone: 'dim' }]);
  });
});

describe('settings page', () => {
  it("gives the shell's version and build, the operator and each agent with its version and commit", () => {
    const view = new ClusterView();
    view.addAgent('agent-1');
    view.setStatus('agent-1', 'offline', 'connection closed');
    view.addAgent('agent-2');
    view.setStatus('agent-2', 'online', '');
    const capacity = { cpus: 1, memoryMb: 1024, maxSessions: null };
    view.apply('agent-2', { type: 'hello', agent: 'agent-2', protocol: 1, version: '1.2.3', commit: `3f2a9c1${'0'.repeat(33)}`, builtAt: '2026-12-01T09:00:00Z', hostname: 'h2', publishAddress: '127.0.0.1', capacity });
    const build = { version: '1.2.3', commit: 'a'.repeat(40), builtAt: '2026-12-02T10:00:00Z' };
    const text = settingsText({ name: 'vic', role: 'viewer' }, view.agentList(), build);
    expect(text).toMatch(/^berth 1\.2\.3 \(protocol \d+\)\noperator vic \(viewer\)\nthis shell: commit a{40}, built 2026-12-02T10:00:00Z\n\nagents:\n/);
    // The agents as `agents` shows them, capacity and all, with their host names.
    const rows = text.split('\n').slice(5);
    expect(rows[0]?.split(/ {2,}/)).toEqual(['AGENT', 'STATUS', 'SESSIONS', 'RUNNING', 'LOAD/CPUS', 'MEMORY', 'DISK FREE', 'VERSION', 'NOTE', 'HOST']);
    expect(rows[1]?.trim().split(/ {2,}/)).toEqual(['agent-1', 'offline', '0', '-', '-', '-', '-', '-', 'connection closed']);
    expect(rows[2]?.trim().split(/ {2,}/)).toEqual(['agent-2', 'online', '0', '-', '-', '-', '-', '1.2.3 3f2a9c1', 'h2']);
    // An agent that does not know its commit (an unstamped build, an older agent) shows its version alone.
    view.apply('agent-2', { type: 'hello', agent: 'agent-2', protocol: 1, version: '1.2.3', commit: 'unknown', hostname: 'h2', publishAddress: '127.0.0.1', capacity });
    view.apply('agent-2', { type: 'stats', stats: { cpus: 2, load1: 0.5, memoryTotalMb: 4096, memoryFreeMb: 1024, containersRunning: 3, sessions: 5, diskFreeMb: 10240, diskTotalMb: 20480 } });
    view.setDrained('agent-2', true);
    const again = settingsText({ name: 'vic', role: 'viewer' }, view.agentList(), build).split('\n').slice(5);
    expect(again[2]?.trim().split(/ {2,}/)).toEqual(['agent-2', 'online, drained', '0', '3', '0.5/2', '3.0/4.0 GB', '10.0 GB', '1.2.3', 'h2']);
  });

  it('says when no agent is enrolled', () => {
    expect(settingsText({ name: 'vic', role: 'viewer' }, [])).toMatch(/agents:\n\(none enrolled\)$/);
  });
});

// ---- attention first: sort, selection that follows its session, jump, dismiss, agent filter, bell ----

const T0 = Date.parse('2026-12-02T10:00:00.000Z');
/** The time `min` minutes after T0. */
const at = (min: number): string => new Date(T0 + min * 60_000).toISOString();

/** `s` with an activity (null: none) since `since`. */
function act(s: ClusterSession, activity: Activity['state'] | null, since = at(0)): ClusterSession {
  if (s.entry.kind !== 'session') return s;
  return { ...s, entry: { ...s.entry, activity: activity ? { state: activity, since, detail: '' } : null } };
}

/** `s` last attached at `when` (null: never). */
function used(s: ClusterSession, when: string | null): ClusterSession {
  if (s.entry.kind !== 'session') return s;
  return { ...s, entry: { ...s.entry, meta: { ...s.entry.meta, lastAccessedAt: when } } };
}

const names = (shown: readonly ClusterSession[]): string[] => shown.map((s) => (s.entry.kind === 'session' ? s.entry.meta.name : `broken ${s.id.slice(0, 8)}`));

describe('the sort', () => {
  it('puts attention first: permission, waiting, stuck, done, working, idle, exited, then none', () => {
    const all = [
      act(session(1, 'none'), null),
      act(session(2, 'exited'), 'exited'),
      act(session(3, 'idle'), 'idle'),
      act(session(4, 'working'), 'working'),
      act(session(5, 'done'), 'done'),
      act(session(6, 'stuck'), 'stuck'),
      act(session(7, 'waiting'), 'waiting'),
      act(session(8, 'permission'), 'permission'),
    ];
    expect(names(tableRows(all, INITIAL_STATE))).toEqual(['permission', 'waiting', 'stuck', 'done', 'working', 'idle', 'exited', 'none']);
  });

  it('breaks ties by the oldest since (waiting longest first), then by creation', () => {
    const all = [
      act(session(1, 'w-new'), 'waiting', at(5)),
      act(session(2, 'w-old'), 'waiting', at(1)),
      act(session(3, 'w-same-a'), 'waiting', at(3)),
      act(session(4, 'w-same-b'), 'waiting', at(3)),
      act(session(5, 'none-a'), null),
      broken(6, 'bad json'),
      act(session(7, 'none-b'), null),
    ];
    expect(names(sortSessions(all, 'attention', new Map()))).toEqual(['w-old', 'w-same-a', 'w-same-b', 'w-new', 'none-a', `broken ${uuid(6).slice(0, 8)}`, 'none-b']);
  });

  it('counts the activity of an agent away as none (its last report may be stale)', () => {
    const all = [act(session(1, 'here'), 'working'), act(session(2, 'away', { status: 'offline' }), 'permission')];
    expect(names(tableRows(all, INITIAL_STATE))).toEqual(['here', 'away']);
  });

  it('sorts by name (broken ones last), by agent, and by last use (the latest first, never used last), ties by creation', () => {
    const all = [
      used(session(1, 'web', { agent: 'agent-2' }), at(1)),
      used(session(2, 'api', { agent: 'agent-1' }), null),
      broken(3, 'bad json'),
      used(session(4, 'db', { agent: 'agent-1' }), at(9)),
      used(session(5, 'cache', { agent: 'agent-2' }), at(1)),
    ];
    const b = `broken ${uuid(3).slice(0, 8)}`;
    expect(names(sortSessions(all, 'name', new Map()))).toEqual(['api', 'cache', 'db', 'web', b]);
    expect(names(sortSessions(all, 'agent', new Map()))).toEqual(['api', 'db', 'web', b, 'cache']);
    expect(names(sortSessions(all, 'used', new Map()))).toEqual(['db', 'web', 'cache', 'api', b]);
  });

  it('cycles attention → name → agent → last used → attention, and the title says which', () => {
    const alice = { name: 'alice', role: 'admin' as const };
    let st = INITIAL_STATE;
    const seen: string[] = [];
    for (let i = 0; i <= SORTS.length; i++) {
      seen.push(/ {2}sort: ([a-z ]+)$/.exec(plain(titleLine(alice, [], 0, st)))?.[1] ?? '');
      st = cycleSort(st);
    }
    expect(seen).toEqual(['attention', 'name', 'agent', 'last used', 'attention']);
  });
});

describe('the selection follows its session', () => {
  const a = session(1, 'a');
  const b = session(2, 'b');
  const c = session(3, 'c');

  it('stays on the same session when a push moves its row', () => {
    let st = follow(INITIAL_STATE, tableRows([a, b, c], INITIAL_STATE));
    expect(st).toMatchObject({ selected: 0, selectedId: a.id });
    // c starts waiting (to the top), b finishes (second): a is now the third row.
    const pushed = [a, act(b, 'done'), act(c, 'waiting')];
    st = follow(st, tableRows(pushed, st));
    expect(st).toMatchObject({ selected: 2, selectedId: a.id });
    expect(selectedSession(st, tableRows(pushed, st))?.id).toBe(a.id);
  });

  it('acts on the session followed even before the next layout (rows moved, not drawn yet)', () => {
    const st = state({ selected: 0, selectedId: a.id });
    expect(selectedSession(st, [c, b, a])?.id).toBe(a.id);
  });

  it('falls back to its index when its session is no longer shown, then follows the one there', () => {
    let st = follow(state({ selected: 1, selectedId: b.id }), [a, c]);
    expect(st).toMatchObject({ selected: 1, selectedId: c.id });
    st = follow(state({ selected: 2, selectedId: c.id }), [a]);
    expect(st).toMatchObject({ selected: 0, selectedId: a.id });
    expect(follow(state({ selected: 0, selectedId: a.id }), [])).toMatchObject({ selected: 0, selectedId: null });
  });

  it('follows the session the arrows moved to', () => {
    let st = follow(INITIAL_STATE, [a, b, c]);
    st = follow(moveSelection(st, 1, 3), [a, b, c]);
    expect(st).toMatchObject({ selected: 1, selectedId: b.id });
    st = follow(st, [c, b, a]);
    expect(st.selected).toBe(1);
    st = follow(st, [b, c, a]);
    expect(st).toMatchObject({ selected: 0, selectedId: b.id });
  });

  it('keeps its session through a new sort', () => {
    const all = [act(a, null), act(b, 'waiting'), act(c, 'done')];
    let st = follow(INITIAL_STATE, tableRows(all, INITIAL_STATE));
    expect(selectedSession(st, tableRows(all, st))?.id).toBe(b.id);
    st = cycleSort(st);
    st = follow(st, tableRows(all, st));
    expect(st).toMatchObject({ sort: 'name', selected: 1, selectedId: b.id });
  });

  it('goes to the first row when the text filter changes', () => {
    const st = filterKey(state({ filtering: true, selected: 2, selectedId: c.id }), 'a', { name: 'a' });
    expect(follow(st, [a, b, c])).toMatchObject({ selected: 0, selectedId: a.id });
  });
});

describe('the jump to the next session needing you', () => {
  const all = [
    act(session(1, 'perm'), 'permission'),
    act(session(2, 'busy'), 'working'),
    act(session(3, 'wait'), 'waiting'),
    act(session(4, 'done'), 'done'),
    act(session(5, 'stuck'), 'stuck'),
  ];
  const byCreation = { ...INITIAL_STATE, sort: 'agent' as const }; // one agent: creation order

  it('goes to the next row that needs you, skipping the others, and wraps past the end', () => {
    const shown = tableRows(all, byCreation);
    const seen: string[] = [];
    let st = follow(byCreation, shown);
    for (let i = 0; i < 4; i++) {
      st = jumpToNeedingYou(st, shown);
      seen.push(names([selectedSession(st, shown)!])[0]!);
    }
    expect(seen).toEqual(['wait', 'stuck', 'perm', 'wait']);
    expect(st.selectedId).toBe(all[2]!.id);
  });

  it('skips a dismissed waiting and the sessions of an agent away', () => {
    const rows = [act(session(1, 'a'), 'waiting'), act(session(2, 'b', { status: 'offline' }), 'permission'), act(session(3, 'c'), 'permission')];
    let st = dismiss(follow(byCreation, rows), rows[0]!, 'a');
    st = jumpToNeedingYou(st, rows);
    expect(st.selected).toBe(2);
    st = jumpToNeedingYou(st, rows);
    expect(st.selected).toBe(2); // the only one: it stays
  });

  it('says so when no session needs you', () => {
    const st = jumpToNeedingYou(state({ selected: 1 }), [act(session(1, 'x'), 'done'), session(2, 'y')]);
    expect(st).toMatchObject({ selected: 1, message: 'no session needs you', messageIsError: false });
    expect(jumpToNeedingYou(INITIAL_STATE, []).message).toBe('no session needs you');
  });
});

describe('dismiss', () => {
  const view = new ClusterView();
  view.addAgent('agent-1');
  view.setStatus('agent-1', 'online', '');
  const put = (s: ClusterSession): void => view.apply('agent-1', { type: 'session', session: s.entry });
  const alice = { name: 'alice', role: 'admin' as const };

  it('acknowledges a waiting or done until its activity changes: it sorts as none and is not counted', () => {
    const w = act(session(1, 'w'), 'waiting', at(1));
    const d = act(session(2, 'd'), 'done', at(2));
    const p = act(session(3, 'p'), 'permission', at(3));
    const n = session(4, 'n');
    for (const s of [w, d, p, n]) put(s);
    let st = INITIAL_STATE;
    expect(names(tableRows(view.sessions(), st))).toEqual(['p', 'w', 'd', 'n']);
    expect(plain(titleLine(alice, view.agentList(), 4, st))).toContain('  2 need you  ');
    st = dismiss(st, w, 'w');
    expect(st).toMatchObject({ message: 'dismissed w until its activity changes', messageIsError: false });
    st = dismiss(st, d, 'd');
    expect(names(tableRows(view.sessions(), st))).toEqual(['p', 'w', 'd', 'n']);
    expect(needingYou(view.agentList(), st.dismissed)).toBe(1);
    expect(plain(titleLine(alice, view.agentList(), 4, st))).toContain('  1 needs you  ');
    // Dismissed cells are dim; the others keep their colour.
    const lines = tableLines(tableRows(view.sessions(), st), state({ ...st, selected: 3 }), 10);
    expect(lines.slice(1, 4).map((l) => l[1]?.tone)).toEqual(['error', 'dim', 'dim']);

    // w waits again (a new since): no longer dismissed, and forgotten at the next look.
    const again = act(w, 'waiting', at(7));
    put(again);
    expect(names(tableRows(view.sessions(), st))).toEqual(['p', 'w', 'd', 'n']);
    expect(needingYou(view.agentList(), st.dismissed)).toBe(2);
    st = observe(st, view.sessions(), []).state;
    expect([...st.dismissed.keys()]).toEqual([d.id]);
    // d starts working: its dismissal ends too.
    put(act(d, 'working', at(8)));
    st = observe(st, view.sessions(), []).state;
    expect(st.dismissed.size).toBe(0);
    expect(names(tableRows(view.sessions(), st))).toEqual(['p', 'w', 'd', 'n']);
  });

  it('moves a dismissed session below those with an activity', () => {
    const rows = [act(session(1, 'old'), 'done', at(1)), act(session(2, 'new'), 'working', at(2)), session(3, 'none')];
    const st = dismiss(INITIAL_STATE, rows[0]!, 'old');
    expect(names(tableRows(rows, st))).toEqual(['new', 'old', 'none']);
  });

  it('refuses any other activity, none, an agent away and a second dismiss, saying why', () => {
    const say = (s: ClusterSession, st = INITIAL_STATE) => dismiss(st, s, 'web');
    expect(say(act(session(1, 'web'), 'permission'))).toMatchObject({ message: 'web is permission: only done or waiting can be dismissed', messageIsError: true });
    expect(say(act(session(1, 'web'), 'stuck')).message).toBe('web is stuck: only done or waiting can be dismissed');
    expect(say(act(session(1, 'web'), 'working')).message).toBe('web is working: only done or waiting can be dismissed');
    expect(say(session(1, 'web')).message).toBe('web has no activity to dismiss');
    expect(say(broken(1, 'bad')).message).toBe('web has no activity to dismiss');
    expect(say(act(session(1, 'web', { status: 'offline' }), 'done')).message).toBe('web has no activity to dismiss');
    const w = act(session(1, 'web'), 'waiting');
    const once = say(w);
    expect(say(w, once)).toMatchObject({ message: 'web is dismissed already, until its activity changes', messageIsError: true, dismissed: once.dismissed });
  });
});

describe('the agent filter', () => {
  const all = [session(1, 'a1', { agent: 'agent-1' }), session(2, 'b2', { agent: 'agent-2' }), session(3, 'a3', { agent: 'agent-1' })];
  const alice = { name: 'alice', role: 'admin' as const };

  it('cycles all → each agent (by name) → all, beside the text filter, and the title shows it', () => {
    let st = INITIAL_STATE;
    const seen: Array<[string | null, string[]]> = [];
    for (let i = 0; i < 4; i++) {
      seen.push([st.agent, names(tableRows(all, st))]);
      st = cycleAgent(st, ['agent-2', 'agent-1']);
    }
    expect(seen).toEqual([
      [null, ['a1', 'b2', 'a3']],
      ['agent-1', ['a1', 'a3']],
      ['agent-2', ['b2']],
      [null, ['a1', 'b2', 'a3']],
    ]);
    st = state({ agent: 'agent-1', filter: '3' });
    expect(names(tableRows(all, st))).toEqual(['a3']);
    expect(plain(titleLine(alice, [], 1, st))).toMatch(/ {2}sort: attention {2}agent: agent-1 {2}filter: 3$/);
  });

  it('goes back to all when the agent it shows is gone, and says when no row matches', () => {
    expect(nextAgent('agent-9', ['agent-1'])).toBeNull();
    expect(nextAgent(null, [])).toBeNull();
    expect(tableLines([], state({ agent: 'agent-3' }), 5)[1]).toEqual([{ text: 'no session matches the filter', tone: 'dim' }]);
  });

  it('keeps the selected session when it is still shown', () => {
    let st = follow(state({ selected: 2 }), all);
    st = cycleAgent(st, ['agent-1', 'agent-2']);
    expect(follow(st, tableRows(all, st))).toMatchObject({ selected: 1, selectedId: all[2]!.id });
  });
});

describe('the bell', () => {
  const a = session(1, 'a');
  const b = session(2, 'b', { agent: 'agent-2' });

  /** Looks at `all` (`shown` of them pass the filters): whether the bell rang, and the state after. */
  const look = (st: MenuState, all: ClusterSession[], shown = tableRows(all, st)) => observe(st, all, shown);

  it('rings when a session you can see starts waiting or asks permission, never on the first look', () => {
    let r = look(INITIAL_STATE, [act(a, 'waiting'), b]);
    expect(r.ring).toBe(false);
    r = look(r.state, [act(a, 'waiting'), b]);
    expect(r.ring).toBe(false);
    r = look(r.state, [act(a, 'waiting'), act(b, 'permission')]);
    expect(r.ring).toBe(true);
    r = look(r.state, [act(a, 'waiting'), act(b, 'permission')]);
    expect(r.ring).toBe(false);
    // waiting again after working: a new since rings again
    r = look(r.state, [act(a, 'working', at(1)), act(b, 'permission')]);
    expect(r.ring).toBe(false);
    r = look(r.state, [act(a, 'waiting', at(2)), act(b, 'permission')]);
    expect(r.ring).toBe(true);
  });

  it('does not ring for other activities', () => {
    let r = look(INITIAL_STATE, [a, b]);
    for (const x of ['done', 'stuck', 'working', 'idle', 'exited'] as const) {
      r = look(r.state, [act(a, x, at(1)), b]);
      expect(r.ring).toBe(false);
    }
  });

  it('does not ring for a session the filters hide, nor when a waiting session only comes into view', () => {
    let st = state({ agent: 'agent-1' });
    let r = look(st, [a, b]);
    r = look(r.state, [a, act(b, 'waiting')]);
    expect(r.ring).toBe(false);
    st = cycleAgent(r.state, ['agent-1', 'agent-2']);
    expect(st.agent).toBe('agent-2');
    r = look(st, [a, act(b, 'waiting')]);
    expect(r.ring).toBe(false);
    r = look(r.state, [a, act(b, 'permission', at(3))]);
    expect(r.ring).toBe(true);
  });

  it('does not ring for an agent away, nor when it comes back with the same activity', () => {
    const away = session(2, 'b', { agent: 'agent-2', status: 'offline' });
    let r = look(INITIAL_STATE, [a, b]);
    r = look(r.state, [a, act(away, 'waiting')]);
    expect(r.ring).toBe(false);
    r = look(r.state, [a, act(b, 'waiting')]);
    expect(r.ring).toBe(false);
  });
});
