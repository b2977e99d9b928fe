import { SessionEntry } from '../../common/protocol';
import { AgentStatus, ClusterSession, ClusterView } from '../../shell/cluster/view';
import {
  INITIAL_STATE,
  MenuState,
  clearMessage,
  filterKey,
  finishBusy,
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
  tick,
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

  it('keeps the selection at its index when rows appear (the view orders by creation time)', () => {
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

  it('names the operator, counts the agents online and the sessions shown, and names the agents away', () => {
    const line = titleLine(alice, view.agentList(), 3, INITIAL_STATE);
    expect(plain(line)).toBe(' berth  alice (admin)  agents 1/2 online (? agent-2 connecting)  sessions 3');
    expect(line.find((s) => s.text === 'berth')?.tone).toBe('bold');
    expect(line.find((s) => s.text.startsWith('(?'))?.tone).toBe('warn');
  });

  it('leaves the agents away out when all are online', () => {
    view.setStatus('agent-2', 'online', '');
    expect(plain(titleLine(alice, view.agentList(), 0, INITIAL_STATE))).toBe(' berth  alice (admin)  agents 2/2 online  sessions 0');
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
  it('gives the versions, the operator and each agent', () => {
    const view = new ClusterView();
    view.addAgent('agent-1');
    view.setStatus('agent-1', 'offline', 'connection closed');
    const text = settingsText({ name: 'vic', role: 'viewer' }, view.agentList());
    expect(text).toMatch(/^berth \S+ \(protocol \d+\)\noperator vic \(viewer\)\n\nagents:\n/);
    expect(text).toContain('agent-1      offline       0 sessions  -   connection closed');
  });

  it('says when no agent is enrolled', () => {
    expect(settingsText({ name: 'vic', role: 'viewer' }, [])).toMatch(/agents:\n\(none enrolled\)$/);
  });
});
