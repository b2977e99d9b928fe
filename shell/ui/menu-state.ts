/**
 * Pure: the menu's state (selection, scroll, filters, sort, dismissals, status message, the op in
 * flight) and how keys and events change it. The blessed layer (menu.ts) holds one MenuState,
 * replaces it with what these functions return and draws it (menu-view.ts); nothing here draws or
 * waits. What needs the operator, and the sort orders, are menu-attention.ts.
 *
 * Rows are the sessions that pass the filters, in the sort chosen (attention first by default).
 * The selection follows its session: when rows move, appear or go (a push reorders them, a sort
 * or filter changes), the same session stays selected wherever its row went; only when it is no
 * longer shown does the selection stay at its index, clamped to the last row.
 */
import { sessionRow } from '../cli/format';
import type { ClusterSession } from '../cluster/view';
import type { Key } from './dialog';
import { INITIAL_PREVIEW, PreviewLayout, cyclePreviewSize, previewRows, togglePreview } from './menu-preview';
import { Dismissed, SortOrder, Waits, dismissProblem, nextAgent, nextNeedingYou, nextSort, pruneDismissed, rings, sortSessions, waitsOf, withDismissed } from './menu-attention';

export interface MenuState {
  /** The selected row's index among the shown rows; may run past the end until the next layout. */
  readonly selected: number;
  /** The selected session's id, which the selection follows when rows move; null: stay at `selected`. */
  readonly selectedId: string | null;
  /** The first row in view (scroll offset). */
  readonly top: number;
  /** Rows are shown only if they match this text (see matchesFilter); '' shows all. */
  readonly filter: string;
  /** Keys go to the filter (after `/`, until Enter or Escape). */
  readonly filtering: boolean;
  /** Only this agent's sessions are shown; null: every agent's. */
  readonly agent: string | null;
  /** The rows' order (menu-attention.ts). */
  readonly sort: SortOrder;
  /** The activities the operator dismissed, by session id, kept until each changes. */
  readonly dismissed: ReadonlyMap<string, Dismissed>;
  /** The permission and waiting activities seen at the last draw (for the bell); null before the first. */
  readonly waits: Waits | null;
  /** The status line's message; '' for none. */
  readonly message: string;
  readonly messageIsError: boolean;
  /** What the op in flight is doing ("killing web"); null when none runs. */
  readonly busy: string | null;
  /** The spinner's frame counter while an op runs. */
  readonly spin: number;
  /** The preview pane below the table: shown or not, and how high (menu-preview.ts). */
  readonly preview: PreviewLayout;
}

export const INITIAL_STATE: MenuState = {
  selected: 0,
  selectedId: null,
  top: 0,
  filter: '',
  filtering: false,
  agent: null,
  sort: 'attention',
  dismissed: new Map(),
  waits: null,
  message: '',
  messageIsError: false,
  busy: null,
  spin: 0,
  preview: INITIAL_PREVIEW,
};

/** Lines the title, the table's head, the status line and the hint bar take. */
const CHROME_ROWS = 4;

/** How many session rows fit on a terminal `screenRows` high (at least one), beside the preview when shown. */
export function tableHeight(screenRows: number, preview: PreviewLayout = { open: false, size: 0 }): number {
  return Math.max(1, screenRows - CHROME_ROWS - previewRows(screenRows, preview));
}

/** How far PageUp and PageDown move the selection: a table's height less one row. */
export function pageStep(screenRows: number, preview: PreviewLayout = { open: false, size: 0 }): number {
  return Math.max(1, tableHeight(screenRows, preview) - 1);
}

/** Whether a session matches a filter: any cell of its row, or the start of its id; any case. */
export function matchesFilter(s: ClusterSession, filter: string): boolean {
  const f = filter.toLowerCase();
  return sessionRow(s).join(' ').toLowerCase().includes(f) || s.id.startsWith(f);
}

/** The sessions matching the text filter and of `agent` (null: any), in the order given. */
export function shownSessions(all: readonly ClusterSession[], filter: string, agent: string | null = null): readonly ClusterSession[] {
  if (!filter && agent === null) return all;
  return all.filter((s) => (agent === null || s.agent === agent) && (!filter || matchesFilter(s, filter)));
}

/** The rows the table shows: the sessions (in creation order) that pass the filters, in the sort chosen. */
export function tableRows(all: readonly ClusterSession[], st: MenuState): readonly ClusterSession[] {
  let made = tablesByList.get(all);
  if (!made) tablesByList.set(all, (made = []));
  const hit = made.find((t) => t.filter === st.filter && t.agent === st.agent && t.sort === st.sort && t.dismissed === st.dismissed);
  if (hit) return hit.rows;
  const rows = Object.freeze(sortSessions(shownSessions(all, st.filter, st.agent), st.sort, st.dismissed));
  if (made.length >= MAX_TABLES_PER_LIST) made.shift();
  made.push({ filter: st.filter, agent: st.agent, sort: st.sort, dismissed: st.dismissed, rows });
  return rows;
}

/**
 * Rows made per list of the view (it keeps one until the next change) and per way of showing it:
 * the open menus that filter and sort alike (most of them) share one sort per change.
 */
const tablesByList = new WeakMap<readonly ClusterSession[], Array<Pick<MenuState, 'filter' | 'agent' | 'sort' | 'dismissed'> & { rows: readonly ClusterSession[] }>>();
const MAX_TABLES_PER_LIST = 32;

/** The selected session (the one followed, while shown); undefined when there are no rows or the selection ran past them. */
export function selectedSession(st: MenuState, shown: readonly ClusterSession[]): ClusterSession | undefined {
  return (st.selectedId === null ? undefined : shown.find((s) => s.id === st.selectedId)) ?? shown[st.selected];
}

/**
 * Puts the selection back on its session after the rows changed: at that session's row if it is
 * shown, else at the same index (clamped to the last row), now following the session there.
 */
export function follow(st: MenuState, shown: readonly ClusterSession[]): MenuState {
  const at = st.selectedId === null ? -1 : shown.findIndex((s) => s.id === st.selectedId);
  const selected = at >= 0 ? at : Math.min(st.selected, Math.max(0, shown.length - 1));
  const selectedId = shown[selected]?.id ?? null;
  return selected === st.selected && selectedId === st.selectedId ? st : { ...st, selected, selectedId };
}

/** Moves the selection by `delta` rows, staying within `count` rows (`st` follows the rows shown). */
export function moveSelection(st: MenuState, delta: number, count: number): MenuState {
  return { ...st, selected: Math.min(Math.max(0, count - 1), Math.max(0, st.selected + delta)), selectedId: null };
}

/** Selects the next row (wrapping) whose session needs the operator, or says none does. */
export function jumpToNeedingYou(st: MenuState, shown: readonly ClusterSession[]): MenuState {
  const at = follow(st, shown);
  const next = nextNeedingYou(shown, at.selected, st.dismissed);
  if (next === null) return say(at, 'no session needs you');
  return { ...at, selected: next, selectedId: shown[next]?.id ?? null };
}

/** Acknowledges `s`'s done or waiting until its activity changes (`name` for the status line). */
export function dismiss(st: MenuState, s: ClusterSession, name: string): MenuState {
  const problem = dismissProblem(s, st.dismissed);
  if (problem) return say(st, `${name} ${problem}`, true);
  return say({ ...st, dismissed: withDismissed(st.dismissed, s) }, `dismissed ${name} until its activity changes`);
}

/** The next sort order; the selection keeps its session. */
export function cycleSort(st: MenuState): MenuState {
  return { ...st, sort: nextSort(st.sort) };
}

/** P: shows or hides the preview. */
export function flipPreview(st: MenuState): MenuState {
  return { ...st, preview: togglePreview(st.preview) };
}

/** L: the preview's next height (showing it if hidden). */
export function resizePreview(st: MenuState): MenuState {
  return { ...st, preview: cyclePreviewSize(st.preview) };
}

/** Shows all agents' sessions, then each agent's of `agents` in turn; the selection keeps its session if still shown. */
export function cycleAgent(st: MenuState, agents: readonly string[]): MenuState {
  return { ...st, agent: nextAgent(st.agent, agents) };
}

/**
 * Takes in the cluster as it is now, before a draw: forgets dismissals whose activity changed, and
 * says whether the bell rings for a session among `shown` that entered permission or waiting
 * since the last draw (never on the first).
 */
export function observe(st: MenuState, all: readonly ClusterSession[], shown: readonly ClusterSession[]): { state: MenuState; ring: boolean } {
  const waits = waitsOf(all);
  return { state: { ...st, waits, dismissed: pruneDismissed(st.dismissed, all) }, ring: rings(st.waits, waits, shown) };
}

/**
 * Fits the state to `count` rows and a table `height` rows high, before each draw (after `follow`):
 * the selection moves up to the last row if rows went, and the view scrolls just enough to show it.
 */
export function layout(st: MenuState, count: number, height: number): MenuState {
  const selected = Math.min(st.selected, Math.max(0, count - 1));
  let top = st.top;
  if (selected < top) top = selected;
  if (selected >= top + height) top = selected - height + 1;
  return selected === st.selected && top === st.top ? st : { ...st, selected, top };
}

/** Starts typing a filter (`/`); the text typed so far stays. */
export function startFiltering(st: MenuState): MenuState {
  return { ...st, filtering: true };
}

/** The longest filter text kept: past it, typing and pastes are dropped (each key redraws the menu). */
export const MAX_FILTER_CHARS = 256;

/**
 * One key while filtering: a character adds to the filter, Backspace takes one off, Enter keeps the
 * filter, Escape clears it; both end the typing. Any key moves the selection to the first row.
 */
export function filterKey(st: MenuState, ch: string | undefined, key: Key): MenuState {
  let { filter, filtering } = st;
  if (key.name === 'escape') filter = '';
  if (key.name === 'escape' || key.name === 'enter') filtering = false;
  else if (key.name === 'backspace') filter = filter.slice(0, -1);
  else if (ch && ch.length === 1 && ch >= ' ' && key.name !== 'return' && filter.length < MAX_FILTER_CHARS) filter += ch;
  return { ...st, filter, filtering, selected: 0, selectedId: null };
}

/** Puts a message on the status line. */
export function say(st: MenuState, text: string, error = false): MenuState {
  return { ...st, message: text, messageIsError: error };
}

/** Clears the status line's message (each key of the table does, before it acts). */
export function clearMessage(st: MenuState): MenuState {
  return st.message === '' ? st : { ...st, message: '' };
}

/** While an op runs, another op or an attach is refused: the state saying so, or null if none runs. */
export function refuseWhileBusy(st: MenuState): MenuState | null {
  return st.busy ? say(st, `wait: ${st.busy}`, true) : null;
}

/** An op starts running in the background; `label` shows with a spinner. */
export function startBusy(st: MenuState, label: string): MenuState {
  return { ...st, busy: label };
}

/** The op in flight ended: its result (or refusal, as an error) replaces the spinner. */
export function finishBusy(st: MenuState, text: string, error: boolean): MenuState {
  return say({ ...st, busy: null }, text, error);
}

/** The spinner's next frame; nothing changes when no op runs. */
export function tick(st: MenuState): MenuState {
  return st.busy ? { ...st, spin: st.spin + 1 } : st;
}
