/**
 * Every key of the menu, in one table: the dispatcher, the hint bar at the bottom and the help page
 * (`?`) all read it, so they cannot disagree. No blessed here: handlers act through a MenuContext.
 */
import { toBerthError } from '../../common/errors';
import type { ClusterSession } from '../cluster/view';
import type { Action } from '../roles';
import type { Key } from './dialog';
import { MenuContext, background, cloneSession, deleteSession, editSession, moveSession, killSession, nameOf, newSession, overrideLock, refuse, restartSession, undoDelete } from './menu-actions';
import { settingsText } from './menu-view';

interface KeyBase {
  /** How the key reads on the hint bar and the help page ("Enter", "N"). */
  label: string;
  /** What dispatches it: one character ("n", "?") or, when longer, a blessed key name ("enter"). */
  keys: readonly string[];
  /** The hint bar's word after the label ('' for the label alone); absent: not on the bar. */
  hint?: string;
  /** The help page's words after the label; absent: not on the page. */
  help?: string;
  /**
   * The role action it needs: for other roles the key says why not (and does nothing else). Its
   * refusals, the role's or the states', are recorded in the audit as this op's.
   */
  action?: Action;
}

/** A key of the menu itself. */
export interface MenuKey extends KeyBase {
  on: 'menu';
  run(ctx: MenuContext): void;
}

/** A key for the selected session; with no session selected it does nothing. */
export interface SessionKey extends KeyBase {
  on: 'session';
  /** The sessions it applies to; to any other it says `refusal` (after the role check). */
  appliesTo?: { test(s: ClusterSession): boolean; refusal(name: string): string };
  run(ctx: MenuContext, s: ClusterSession): void;
}

/** A key of an attached session (tmux's, not the menu's): listed for the operator, never dispatched. */
export interface AttachKey extends KeyBase {
  on: 'attach';
}

export type KeyEntry = MenuKey | SessionKey | AttachKey;

/** The menu's keys, in the order of the hint bar and the help page. */
export const KEYS: readonly KeyEntry[] = [
  { on: 'menu', label: '↑', keys: ['up'], run: (ctx) => ctx.move(-1) },
  { on: 'menu', label: '↓', keys: ['down'], run: (ctx) => ctx.move(1) },
  { on: 'menu', label: 'PgUp', keys: ['pageup'], run: (ctx) => ctx.move(-ctx.pageRows()) },
  { on: 'menu', label: 'PgDn', keys: ['pagedown'], run: (ctx) => ctx.move(ctx.pageRows()) },
  { on: 'session', label: 'Enter', keys: ['enter'], hint: 'attach', help: 'attach (viewers: read-only)', run: (ctx, s) => ctx.attach(s) },
  { on: 'menu', label: 'N', keys: ['n', 'N'], hint: 'new', help: 'new session', action: 'create', run: newSession },
  { on: 'menu', label: 'Tab', keys: ['tab'], hint: 'next', help: 'next session needing you', run: (ctx) => ctx.rows?.nextNeedingYou() },
  { on: 'session', label: 'X', keys: ['x', 'X'], hint: 'dismiss', help: 'dismiss done/waiting until it changes', run: (ctx, s) => ctx.rows?.dismiss(s) },
  { on: 'session', label: 'B', keys: ['b', 'B'], hint: 'bg', help: 'background your attach', action: 'background', run: background },
  { on: 'session', label: 'C', keys: ['c', 'C'], hint: 'clone', help: 'clone', action: 'clone', run: cloneSession },
  { on: 'session', label: 'M', keys: ['m', 'M'], hint: 'move', help: 'move to another agent', action: 'move', run: moveSession },
  { on: 'session', label: 'E', keys: ['e', 'E'], hint: 'edit', help: 'edit (restart to apply)', action: 'edit', run: editSession },
  { on: 'session', label: 'R', keys: ['r', 'R'], hint: 'restart', help: 'restart a stopped session', action: 'restart', run: restartSession },
  { on: 'session', label: 'K', keys: ['k', 'K'], hint: 'kill', help: 'kill (Y/N if others are attached)', action: 'kill', run: killSession },
  { on: 'session', label: 'D', keys: ['d', 'D'], hint: 'delete', help: 'delete (asks Y/N; to the trash)', action: 'delete', run: deleteSession },
  { on: 'menu', label: 'U', keys: ['u', 'U'], hint: 'undo', help: 'undo your last delete here (restore)', action: 'restore', run: undoDelete },
  {
    on: 'session',
    label: 'O',
    keys: ['o', 'O'],
    hint: 'override',
    help: "override a session's lock (admin)",
    action: 'override',
    appliesTo: { test: (s) => s.entry.lock !== null, refusal: (name) => `${name} is not locked` },
    run: overrideLock,
  },
  {
    on: 'menu',
    label: 'S',
    keys: ['s', 'S'],
    hint: '',
    help: 'settings: version, agents',
    run: (ctx) => ctx.dialogs.page('settings', settingsText(ctx.operator, ctx.service.view.agentList())),
  },
  { on: 'menu', label: '>', keys: ['>'], hint: 'sort', help: 'sort: attention, name, agent, last used', run: (ctx) => ctx.rows?.cycleSort() },
  { on: 'menu', label: 'F', keys: ['f', 'F'], hint: 'agent', help: 'filter by agent: all, each', run: (ctx) => ctx.rows?.cycleAgent() },
  { on: 'menu', label: '/', keys: ['/'], hint: 'filter', help: 'filter by text', run: (ctx) => ctx.startFilter() },
  { on: 'menu', label: 'P', keys: ['p', 'P'], hint: 'preview', help: "preview: the selected session's screen", run: (ctx) => ctx.rows?.togglePreview() },
  { on: 'menu', label: 'L', keys: ['l', 'L'], hint: '', help: 'preview height: 1/3, 1/2, 2/3', run: (ctx) => ctx.rows?.resizePreview() },
  { on: 'menu', label: '?', keys: ['?'], hint: 'help', help: 'this help', run: (ctx) => ctx.dialogs.page('keys', helpText()) },
  { on: 'menu', label: 'Q', keys: ['q', 'Q'], hint: 'quit', help: 'quit', run: (ctx) => ctx.quit() },
  { on: 'attach', label: 'Ctrl-b d', keys: [], help: 'detach from a session' },
];

/** Whether a key press is one of `entry`'s keys. */
export function pressed(entry: KeyEntry, ch: string | undefined, key: Key): boolean {
  return entry.keys.some((k) => (k.length === 1 ? k === ch : k === key.name));
}

/** The menu's entry for a key press, if it has one. */
export function findKey(ch: string | undefined, key: Key, keys: readonly KeyEntry[] = KEYS): MenuKey | SessionKey | undefined {
  for (const e of keys) if (e.on !== 'attach' && pressed(e, ch, key)) return e;
  return undefined;
}

/** Checks the role action (on `s`, for a session key); a refusal, audited, goes to the status line. */
function allowed(ctx: MenuContext, action: Action | undefined, s?: ClusterSession): boolean {
  if (!action) return true;
  try {
    ctx.service.check(ctx.operator, action, s?.id);
    return true;
  } catch (err) {
    ctx.say(toBerthError(err).message, true);
    return false;
  }
}

/**
 * Acts on a key press in the menu (no dialog open, no filter being typed): a session key with no
 * session selected does nothing; then the role check, then whether it applies to the session,
 * then the handler.
 */
export function dispatch(ctx: MenuContext, ch: string | undefined, key: Key, selected: ClusterSession | undefined, keys: readonly KeyEntry[] = KEYS): void {
  const entry = findKey(ch, key, keys);
  if (!entry) return;
  if (entry.on === 'menu') {
    if (allowed(ctx, entry.action)) entry.run(ctx);
    return;
  }
  if (!selected || !allowed(ctx, entry.action, selected)) return;
  if (entry.appliesTo && !entry.appliesTo.test(selected)) {
    return refuse(ctx, entry.action, selected, 'CONFLICT', entry.appliesTo.refusal(nameOf(selected)));
  }
  entry.run(ctx, selected);
}

/** The hint bar: "Enter attach · N new · … · Q quit". */
export function hintText(keys: readonly KeyEntry[] = KEYS): string {
  return keys
    .filter((e) => e.hint !== undefined)
    .map((e) => (e.hint ? `${e.label} ${e.hint}` : e.label))
    .join(' · ');
}

/** The help page: the keys with a help text, two to a line, in two aligned columns. */
export function helpText(keys: readonly KeyEntry[] = KEYS): string {
  const listed = keys.filter((e) => e.help !== undefined);
  const pairs: KeyEntry[][] = [];
  for (let i = 0; i < listed.length; i += 2) pairs.push(listed.slice(i, i + 2));
  const keyWidth = Math.max(...pairs.map(([l]) => l?.label.length ?? 0)) + 2;
  const lefts = pairs.map(([l]) => (l ? `${l.label.padEnd(keyWidth)}${l.help ?? ''}` : ''));
  const column = Math.max(...lefts.map((l) => l.length)) + 5;
  return pairs.map(([, r], i) => (r ? `${(lefts[i] ?? '').padEnd(column)}${r.label}  ${r.help ?? ''}` : (lefts[i] ?? ''))).join('\n');
}
