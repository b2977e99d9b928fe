/**
 * `watch [--json]`: every change of a session, as it comes, until the client leaves. With --json
 * one NDJSON line per change: `{"type":"session","session":{…list --json's shape…}}` or
 * `{"type":"removed","id":…}`, after one line per session at the start and `{"type":"synced"}`;
 * without, one readable line per change. Changes that come together are written once (a session
 * that changed twice in one burst gives one line), and a client that stops reading is dropped
 * once too much waits for it, rather than held in memory.
 */
import { inertCell, inertJson } from '../../common/terminal-text';
import type { ClusterSession, ClusterView } from '../cluster/view';
import { sessionJson, stateWord } from './format';
import { ListFilter, matchesList } from './list-filter';

/** Most output a watch lets wait for a slow client. */
export const WATCH_BACKLOG_BYTES = 1024 * 1024;

export interface WatchIo {
  out(text: string): void;
  /** Resolves when the client has gone. */
  closed: Promise<void>;
  /** Bytes written but not yet taken by the client. */
  backlog(): number;
}

/** Runs until the client leaves (0) or falls too far behind (1). */
export async function watchSessions(view: ClusterView, filter: ListFilter, json: boolean, io: WatchIo): Promise<number> {
  const last = new Map<string, string>();
  const line = (s: ClusterSession): string => {
    if (json) return `${inertJson({ type: 'session', session: sessionJson(s) })}\n`;
    const e = s.entry;
    const name = e.kind === 'session' ? e.meta.name : '(broken)';
    const a = e.kind === 'session' ? e.activity : null;
    const activity = a ? `${a.state}${a.detail ? ` (${inertCell(a.detail, 80)})` : ''}` : '-';
    return `${new Date().toISOString().slice(11, 19)} ${inertCell(name)} ${inertCell(s.id.slice(0, 8))} on ${inertCell(s.agent)}: ${stateWord(s.state)}, ${activity}\n`;
  };
  let tooSlow = false;
  const flush = (): void => {
    const seen = new Set<string>();
    for (const s of view.sessions()) {
      if (!matchesList(s, filter)) continue;
      seen.add(s.id);
      const text = line(s);
      // The time in a text line is not a change.
      const key = json ? text : text.slice(9);
      if (last.get(s.id) === key) continue;
      last.set(s.id, key);
      io.out(text);
    }
    for (const id of [...last.keys()]) {
      if (seen.has(id)) continue;
      last.delete(id);
      io.out(json ? `${inertJson({ type: 'removed', id })}\n` : `${new Date().toISOString().slice(11, 19)} ${inertCell(id.slice(0, 8))} removed\n`);
    }
    if (io.backlog() > WATCH_BACKLOG_BYTES) tooSlow = true;
  };
  let queued = false;
  let stopWatching: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => (stopWatching = resolve));
  const onChange = (): void => {
    if (queued) return;
    queued = true;
    setImmediate(() => {
      queued = false;
      flush();
      if (tooSlow) stopWatching();
    });
  };
  flush();
  if (json) io.out(`${inertJson({ type: 'synced' })}\n`);
  view.on('change', onChange);
  try {
    await Promise.race([io.closed, ended]);
  } finally {
    view.off('change', onChange);
  }
  return tooSlow ? 1 : 0;
}
