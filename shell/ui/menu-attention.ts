/**
 * Pure: what needs the operator, and the order of the menu's rows. A session's activity counts
 * for attention unless its agent is away (the last report may be stale) or the operator dismissed
 * it; the sort, the jump to the next session needing you, the title's count and the bell all read
 * it through `attentionOf`, so they cannot disagree.
 */
import { ACTIVITIES, Activity } from '../../common/protocol';
import type { AgentView, ClusterSession } from '../cluster/view';

/** Activities that wait for an operator. */
export const NEEDS_YOU: ReadonlySet<string> = new Set(['permission', 'waiting', 'stuck']);

/** Activities the bell rings for when a session enters them. */
const RINGS: ReadonlySet<string> = new Set(['permission', 'waiting']);

/** Activities an operator may dismiss (the others wait for an action, or need none). */
const DISMISSABLE: ReadonlySet<string> = new Set(['done', 'waiting']);

/** What an operator dismissed: the activity as it was then (a new state or `since` ends it). */
export type Dismissed = Pick<Activity, 'state' | 'since'>;

/** The menu's sort orders, in the order the sort key cycles through them. */
export const SORTS = ['attention', 'name', 'agent', 'used'] as const;
export type SortOrder = (typeof SORTS)[number];

/** How the title names each sort order. */
export const SORT_WORDS: Record<SortOrder, string> = { attention: 'attention', name: 'name', agent: 'agent', used: 'last used' };

/** The order after `sort`, back to the first after the last. */
export function nextSort(sort: SortOrder): SortOrder {
  return SORTS[(SORTS.indexOf(sort) + 1) % SORTS.length] ?? 'attention';
}

/** The agent filter after `agent` (null: every agent): all, then each of `agents` in turn, then all. */
export function nextAgent(agent: string | null, agents: readonly string[]): string | null {
  const cycle = [null, ...[...agents].sort()];
  return cycle[(cycle.indexOf(agent) + 1) % cycle.length] ?? null;
}

/** A session's activity as its agent last pushed it, or null for none (a broken session has none). */
function activityOf(s: ClusterSession): Activity | null {
  return s.entry.kind === 'session' ? (s.entry.activity ?? null) : null;
}

/** Whether the operator dismissed this very activity (the same state, the same since). */
export function isDismissed(s: ClusterSession, dismissed: ReadonlyMap<string, Dismissed>): boolean {
  const a = activityOf(s);
  const d = dismissed.get(s.id);
  return a !== null && d !== undefined && d.state === a.state && d.since === a.since;
}

/** The activity that counts for attention: null when there is none, its agent is away, or it was dismissed. */
export function attentionOf(s: ClusterSession, dismissed: ReadonlyMap<string, Dismissed>): Activity | null {
  if (s.agentStatus !== 'online' || isDismissed(s, dismissed)) return null;
  return activityOf(s);
}

/** Whether a session waits for the operator now (permission, waiting or stuck, not dismissed). */
export function needsYou(s: ClusterSession, dismissed: ReadonlyMap<string, Dismissed>): boolean {
  const a = attentionOf(s, dismissed);
  return a !== null && NEEDS_YOU.has(a.state);
}

/** How many sessions of online agents wait for an operator, leaving out those dismissed. */
export function needingYou(agents: AgentView[], dismissed: ReadonlyMap<string, Dismissed> = new Map()): number {
  let n = 0;
  for (const a of agents) {
    if (a.status !== 'online') continue;
    for (const [id, entry] of a.sessions) {
      if (entry.kind !== 'session') continue;
      if (needsYou({ entry, id, agent: a.id, agentStatus: a.status, state: entry.state }, dismissed)) n++;
    }
  }
  return n;
}

/**
 * Why `s` cannot be dismissed (words to follow its name), or null if it can: only a `done` or
 * `waiting` of an online agent, not dismissed already.
 */
export function dismissProblem(s: ClusterSession, dismissed: ReadonlyMap<string, Dismissed>): string | null {
  if (isDismissed(s, dismissed)) return 'is dismissed already, until its activity changes';
  const a = attentionOf(s, dismissed);
  if (!a) return 'has no activity to dismiss';
  return DISMISSABLE.has(a.state) ? null : `is ${a.state}: only done or waiting can be dismissed`;
}

/** `dismissed` with `s`'s activity added (call after dismissProblem said yes). */
export function withDismissed(dismissed: ReadonlyMap<string, Dismissed>, s: ClusterSession): ReadonlyMap<string, Dismissed> {
  const a = activityOf(s);
  if (!a) return dismissed;
  return new Map(dismissed).set(s.id, { state: a.state, since: a.since });
}

/** `dismissed` without the sessions gone or whose activity changed since (the same map if none). */
export function pruneDismissed(dismissed: ReadonlyMap<string, Dismissed>, all: readonly ClusterSession[]): ReadonlyMap<string, Dismissed> {
  if (dismissed.size === 0) return dismissed;
  const kept = new Map<string, Dismissed>();
  for (const s of all) {
    const d = dismissed.get(s.id);
    if (d && isDismissed(s, dismissed)) kept.set(s.id, d);
  }
  return kept.size === dismissed.size ? dismissed : kept;
}

/** A session's place in the attention order: the order of ACTIVITIES (then none), and since when. */
function attentionKey(s: ClusterSession, dismissed: ReadonlyMap<string, Dismissed>): [number, number] {
  const a = attentionOf(s, dismissed);
  if (!a) return [ACTIVITIES.length, 0];
  const t = Date.parse(a.since);
  return [ACTIVITIES.indexOf(a.state), Number.isNaN(t) ? 0 : t];
}

const nameOf = (s: ClusterSession): string | null => (s.entry.kind === 'session' ? s.entry.meta.name : null);
const usedOf = (s: ClusterSession): number => (s.entry.kind === 'session' && s.entry.meta.lastAccessedAt ? Date.parse(s.entry.meta.lastAccessedAt) || 0 : 0);

/** Nulls last, then the strings in a person's order. */
function byText(x: string | null, y: string | null): number {
  if (x === null || y === null) return (x === null ? 1 : 0) - (y === null ? 1 : 0);
  return x.localeCompare(y);
}

/**
 * The rows in `sort` order. `all` comes in creation order (the cluster view's) and the sort is
 * stable, so ties stay in creation order:
 * - attention: permission, waiting, stuck, done, working, idle, exited, then none (dismissed
 *   counts as none); within one activity the longest waiting first (oldest `since`);
 * - name: by name, broken sessions (no name) last;
 * - agent: by agent;
 * - used: the last attached first, never attached last.
 */
export function sortSessions(all: readonly ClusterSession[], sort: SortOrder, dismissed: ReadonlyMap<string, Dismissed>): ClusterSession[] {
  const rows = [...all];
  switch (sort) {
    case 'attention': {
      // Each key once per row, not once per comparison: a menu redraws thousands of rows.
      const keys = new Map(rows.map((s) => [s, attentionKey(s, dismissed)]));
      const key = (s: ClusterSession): [number, number] => keys.get(s) ?? [ACTIVITIES.length, 0];
      return rows.sort((x, y) => key(x)[0] - key(y)[0] || key(x)[1] - key(y)[1]);
    }
    case 'name':
      return rows.sort((x, y) => byText(nameOf(x), nameOf(y)));
    case 'agent':
      return rows.sort((x, y) => x.agent.localeCompare(y.agent));
    case 'used':
      return rows.sort((x, y) => usedOf(y) - usedOf(x));
  }
}

/**
 * The index of the next row after `from` that needs the operator, wrapping past the end (back to
 * `from` itself if it is the only one); null when no row does.
 */
export function nextNeedingYou(shown: readonly ClusterSession[], from: number, dismissed: ReadonlyMap<string, Dismissed>): number | null {
  for (let step = 1; step <= shown.length; step++) {
    const i = (from + step) % shown.length;
    const s = shown[i];
    if (s && needsYou(s, dismissed)) return i;
  }
  return null;
}

/** The permission and waiting activities the menu has seen, by session id ("state since"). */
export type Waits = ReadonlyMap<string, string>;

/** Every session's permission or waiting as the bell knows it. */
export function waitsOf(all: readonly ClusterSession[]): Waits {
  const known = waitsByList.get(all);
  if (known) return known;
  const out = new Map<string, string>();
  for (const s of all) {
    const a = activityOf(s);
    if (a && RINGS.has(a.state)) out.set(s.id, `${a.state} ${a.since}`);
  }
  waitsByList.set(all, out);
  return out;
}

/** waitsOf per list: every open menu looks at the view's one list after a change. */
const waitsByList = new WeakMap<readonly ClusterSession[], Waits>();

/**
 * Whether the bell rings: a shown session of an online agent entered permission or waiting
 * (a new state or `since`) since `before`. Never on the first look (`before` null), and not for a
 * session that was waiting already and only comes into view (through a filter, or its agent back).
 */
export function rings(before: Waits | null, now: Waits, shown: readonly ClusterSession[]): boolean {
  if (!before) return false;
  return shown.some((s) => {
    const w = now.get(s.id);
    return s.agentStatus === 'online' && w !== undefined && before.get(s.id) !== w;
  });
}
