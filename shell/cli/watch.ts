/**
 * `watch [--json]`: every change of a session, as it comes, until the client leaves. With --json
 * one NDJSON line per change: `{"type":"session","session":{…list --json's shape…}}` or
 * `{"type":"removed","id":…}`, after one line per session at the start and `{"type":"synced"}`;
 * without, one readable line per change. Changes that come together are written once (a session
 * that changed twice in one burst gives one line), and a client that stops reading is dropped
 * once too much waits for it (more than WATCH_BACKLOG_BYTES beyond the first snapshot), rather
 * than held in memory.
 */
import { inertCell, inertJson } from '../../common/terminal-text';
import { ClusterSession, ClusterView, perEntry } from '../cluster/view';
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
  /** What was last written per session: its line (without the time, in text). */
  const last = new Map<string, string>();
  /** Lines are made once per entry (see perEntry): a change costs one line, not one per session. */
  const body = perEntry((s) => (json ? `${inertJson({ type: 'session', session: sessionJson(s) })}\n` : textBody(s)));
  const now = (): string => `${new Date().toISOString().slice(11, 19)} `;
  let tooSlow = false;
  /** What may wait for the client: the snapshot it is sent first, and WATCH_BACKLOG_BYTES more. */
  let allowance = WATCH_BACKLOG_BYTES;
  const flush = (): number => {
    let bytes = 0;
    const out = (text: string): void => {
      bytes += Buffer.byteLength(text);
      io.out(text);
    };
    const seen = new Set<string>();
    for (const s of view.sessions()) {
      if (!matchesList(s, filter)) continue;
      seen.add(s.id);
      const key = body(s);
      if (last.get(s.id) === key) continue;
      last.set(s.id, key);
      out(json ? key : now() + key);
    }
    for (const id of [...last.keys()]) {
      if (seen.has(id)) continue;
      last.delete(id);
      out(json ? `${inertJson({ type: 'removed', id })}\n` : `${now()}${inertCell(id.slice(0, 8))} removed\n`);
    }
    return bytes;
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
      if (io.backlog() <= allowance) return;
      tooSlow = true;
      stopWatching();
    });
  };
  allowance += flush();
  if (json) io.out(`${inertJson({ type: 'synced' })}\n`);
  view.on('change', onChange);
  try {
    await Promise.race([io.closed, ended]);
  } finally {
    view.off('change', onChange);
  }
  return tooSlow ? 1 : 0;
}

/** A text line of `s` after its time. */
function textBody(s: ClusterSession): string {
  const e = s.entry;
  const name = e.kind === 'session' ? e.meta.name : '(broken)';
  const a = e.kind === 'session' ? e.activity : null;
  const activity = a ? `${a.state}${a.detail ? ` (${inertCell(a.detail, 80)})` : ''}` : '-';
  return `${inertCell(name)} ${inertCell(s.id.slice(0, 8))} on ${inertCell(s.agent)}: ${stateWord(s.state)}, ${activity}\n`;
}
