/**
 * Pure: the menu's state (selection, scroll, filter, status message, the op in flight) and how keys
 * and events change it. The blessed layer (menu.ts) holds one MenuState, replaces it with what these
 * functions return and draws it (menu-view.ts); nothing here draws or waits.
 *
 * Rows are in the cluster view's order (creation time); the menu has no sort of its own. The
 * selection is a row index: when rows appear or go, it stays at its index, clamped to the last row.
 */
import { sessionRow } from '../cli/format';
import type { ClusterSession } from '../cluster/view';
import type { Key } from './dialog';

export interface MenuState {
  /** The selected row's index among the shown rows; may run past the end until the next layout. */
  readonly selected: number;
  /** The first row in view (scroll offset). */
  readonly top: number;
  /** Rows are shown only if they match this text (see matchesFilter); '' shows all. */
  readonly filter: string;
  /** Keys go to the filter (after `/`, until Enter or Escape). */
  readonly filtering: boolean;
  /** The status line's message; '' for none. */
  readonly message: string;
  readonly messageIsError: boolean;
  /** What the op in flight is doing ("killing web"); null when none runs. */
  readonly busy: string | null;
  /** The spinner's frame counter while an op runs. */
  readonly spin: number;
}

export const INITIAL_STATE: MenuState = {
  selected: 0,
  top: 0,
  filter: '',
  filtering: false,
  message: '',
  messageIsError: false,
  busy: null,
  spin: 0,
};

/** Lines the title, the table's head, the status line and the hint bar take. */
const CHROME_ROWS = 4;

/** How many session rows fit on a terminal `screenRows` high (at least one). */
export function tableHeight(screenRows: number): number {
  return Math.max(1, screenRows - CHROME_ROWS);
}

/** How far PageUp and PageDown move the selection: a table's height less one row. */
export function pageStep(screenRows: number): number {
  return screenRows - CHROME_ROWS - 1;
}

/** Whether a session matches a filter: any cell of its row, or the start of its id; any case. */
export function matchesFilter(s: ClusterSession, filter: string): boolean {
  const f = filter.toLowerCase();
  return sessionRow(s).join(' ').toLowerCase().includes(f) || s.id.startsWith(f);
}

/** The rows the table shows: the sessions matching the filter, in the order given. */
export function shownSessions(all: ClusterSession[], filter: string): ClusterSession[] {
  return filter ? all.filter((s) => matchesFilter(s, filter)) : all;
}

/** The selected session; undefined when there are no rows or the selection ran past them. */
export function selectedSession(st: MenuState, shown: readonly ClusterSession[]): ClusterSession | undefined {
  return shown[st.selected];
}

/** Moves the selection by `delta` rows, staying within `count` rows. */
export function moveSelection(st: MenuState, delta: number, count: number): MenuState {
  return { ...st, selected: Math.min(Math.max(0, count - 1), Math.max(0, st.selected + delta)) };
}

/**
 * Fits the state to `count` rows and a table `height` rows high, before each draw: the selection
 * moves up to the last row if rows went, and the view scrolls just enough to show it.
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

/**
 * One key while filtering: a character adds to the filter, Backspace takes one off, Enter keeps the
 * filter, Escape clears it; both end the typing. Any key moves the selection to the first row.
 */
export function filterKey(st: MenuState, ch: string | undefined, key: Key): MenuState {
  let { filter, filtering } = st;
  if (key.name === 'escape') filter = '';
  if (key.name === 'escape' || key.name === 'enter') filtering = false;
  else if (key.name === 'backspace') filter = filter.slice(0, -1);
  else if (ch && ch.length === 1 && ch >= ' ' && key.name !== 'return') filter += ch;
  return { ...st, filter, filtering, selected: 0 };
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
