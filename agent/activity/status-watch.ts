/**
 * Follows what each session's program reports about itself (Claude Code's hooks, through
 * berth-hook) and whether its pane prints (berth-output): a folder per session the container may
 * write to, watched with inotify, so nothing polls. A session whose program never reported
 * through a hook gets its activity from its output: `working` while the pane prints, `idle` once
 * it has been quiet for idleAfterMs (one timer per printing session). Hook reports, once one
 * came, say more and win: the output of Claude Code's screen says nothing of what it waits for. The report is untrusted: read without following links, at most 16 KiB, parsed with a
 * schema (hook-report.ts), and read at most every READ_GAP_MS however fast the session writes, so
 * a session that floods its folder costs the agent ten small reads a second and changes nothing
 * but its own activity.
 */
import { FSWatcher, promises as fs, watch } from 'node:fs';
import path from 'node:path';
import { messageOf } from '../../common/errors';
import { Logger } from '../../common/logging';
import { Activity, GitGlance } from '../../common/protocol';
import { readUntrustedFile } from '../store/untrusted-files';
import { REPORT_CAP_BYTES, activityOfReport, gitOfReport, isNews } from './hook-report';

/** The files berth-hook renames into place: the event, and the project's git state. */
export const REPORT_FILE = 'event.json';
export const GIT_FILE = 'git.txt';
/** The file berth-output renames into place when the pane prints; only its arrival counts. */
export const OUTPUT_FILE = 'output';
const REPORT_FILES = [REPORT_FILE, GIT_FILE] as const;
const MAX_REPORT_BYTES = REPORT_CAP_BYTES;
const MAX_GIT_BYTES = 64 * 1024;
/** How long a `working` session may go without a report before it is `stuck`. */
export const STUCK_AFTER_MS = 10 * 60 * 1000;
/** How long a pane printing nothing makes a session `idle` (when no hook reports for it). */
export const IDLE_AFTER_MS = 30 * 1000;
/** Least time between two reads of one session's report. */
export const READ_GAP_MS = 100;

interface Watched {
  dir: string;
  watcher: FSWatcher | null;
  activity: Activity | null;
  git: GitGlance | null;
  timer: NodeJS.Timeout | null;
  lastRead: number;
  /** A read is under way; files that change meanwhile are read after it. */
  reading: boolean;
  /** The report files renamed since they were last read: only those are read. */
  dirty: Set<string>;
  /** Turns `working` into `stuck` when no report comes in time. */
  stuckTimer: NodeJS.Timeout | null;
  /** A hook reported since the container started: output no longer sets the activity. */
  hooked: boolean;
  /** When the pane last printed (ms), as berth-output said; 0: not since the container started. */
  lastOutput: number;
  /** Turns output-driven `working` into `idle` after a quiet spell. */
  idleTimer: NodeJS.Timeout | null;
  /** The first read also recalls the last output from its file's time (the agent restarted). */
  recall: boolean;
}

export class StatusWatch {
  private readonly sessions = new Map<string, Watched>();

  constructor(
    private readonly o: {
      /** Called when a session's activity changed. */
      changed(id: string): void;
      logger: Logger;
      now?: () => Date;
      /** A session `working` with no report for this long is `stuck` (default 10 min). */
      stuckAfterMs?: number;
      /** A session without hook reports whose pane printed nothing for this long is `idle` (default 30 s). */
      idleAfterMs?: number;
    },
  ) {}

  /** Starts following session `id`'s report folder `dir` (again: a no-op), and reads what is there. */
  follow(id: string, dir: string): void {
    const known = this.sessions.get(id);
    if (known?.watcher && known.dir === dir) return;
    if (known) this.forget(id);
    const w: Watched = {
      dir,
      watcher: null,
      activity: known?.activity ?? null,
      git: known?.git ?? null,
      timer: null,
      lastRead: 0,
      reading: false,
      dirty: new Set(REPORT_FILES),
      stuckTimer: null,
      hooked: known?.hooked ?? false,
      lastOutput: 0,
      idleTimer: null,
      recall: true,
    };
    this.sessions.set(id, w);
    try {
      w.watcher = watch(dir, { persistent: false }, (_kind, name) => {
        if (name !== null && String(name) === OUTPUT_FILE) return this.output(id, w);
        const names = name === null ? REPORT_FILES : REPORT_FILES.filter((f) => f === String(name));
        if (names.length > 0) this.schedule(id, w, names);
      });
      w.watcher.on('error', (err) => this.o.logger.debug('status watch error', { session: id, err: messageOf(err) }));
    } catch (err) {
      this.o.logger.warn('cannot follow session status', { session: id, err: messageOf(err) });
    }
    this.schedule(id, w, REPORT_FILES);
  }

  /**
   * Forgets what the session's program said before (its container is about to start afresh):
   * the old report goes, so the new program starts with none. Removing never follows a link.
   */
  async reset(id: string, dir: string): Promise<void> {
    for (const name of [REPORT_FILE, OUTPUT_FILE]) await fs.rm(path.join(dir, name), { force: true }).catch(() => undefined);
    const w = this.sessions.get(id);
    if (!w) return;
    this.clearTimers(w);
    w.hooked = false;
    w.lastOutput = 0;
    if (w.activity) {
      w.activity = null;
      this.o.changed(id);
    }
  }

  /** Stops following `id` and forgets its activity. */
  forget(id: string): void {
    const w = this.sessions.get(id);
    if (!w) return;
    w.watcher?.close();
    if (w.timer) clearTimeout(w.timer);
    this.clearTimers(w);
    this.sessions.delete(id);
  }

  private clearTimers(w: Watched): void {
    if (w.stuckTimer) clearTimeout(w.stuckTimer);
    if (w.idleTimer) clearTimeout(w.idleTimer);
    w.stuckTimer = null;
    w.idleTimer = null;
  }

  /**
   * The pane printed (berth-output renamed its file). Costs a clock read when nothing changes, so
   * a session that floods its folder gains nothing: its state moves at most twice per quiet spell.
   */
  private output(id: string, w: Watched): void {
    w.lastOutput = Date.now();
    if (w.hooked) return;
    if (w.activity?.state !== 'working') {
      w.activity = { state: 'working', since: this.now().toISOString(), detail: 'output' };
      this.o.changed(id);
    }
    if (!w.idleTimer) this.armIdle(id, w, this.idleAfter());
  }

  /** After `wait` ms: `idle` if the pane printed nothing for idleAfterMs since, else wait the rest. */
  private armIdle(id: string, w: Watched, wait: number): void {
    w.idleTimer = setTimeout(() => {
      w.idleTimer = null;
      if (this.sessions.get(id) !== w || w.hooked || w.activity?.state !== 'working') return;
      const rest = w.lastOutput + this.idleAfter() - Date.now();
      if (rest > 0) return this.armIdle(id, w, rest);
      const quiet = this.now().getTime() - (Date.now() - w.lastOutput);
      w.activity = { state: 'idle', since: new Date(quiet).toISOString(), detail: 'no output' };
      this.o.changed(id);
    }, wait);
    w.idleTimer.unref();
  }

  private idleAfter(): number {
    return this.o.idleAfterMs ?? IDLE_AFTER_MS;
  }

  /** The session's project as last reported, or null. */
  git(id: string): GitGlance | null {
    return this.sessions.get(id)?.git ?? null;
  }

  /** The session's last reported activity, or null. */
  activity(id: string): Activity | null {
    return this.sessions.get(id)?.activity ?? null;
  }

  stop(): void {
    for (const id of [...this.sessions.keys()]) this.forget(id);
  }

  /** Reads `names` soon: at once if the last read was long enough ago, else after the gap. */
  private schedule(id: string, w: Watched, names: readonly string[]): void {
    for (const n of names) w.dirty.add(n);
    if (w.reading || w.timer) return;
    const wait = Math.max(0, w.lastRead + READ_GAP_MS - Date.now());
    w.timer = setTimeout(() => {
      w.timer = null;
      w.lastRead = Date.now();
      w.reading = true;
      const names = new Set(w.dirty);
      w.dirty.clear();
      void this.read(id, w, names).finally(() => {
        w.reading = false;
        if (w.dirty.size > 0 && this.sessions.get(id) === w) this.schedule(id, w, []);
      });
    }, wait);
    w.timer.unref();
  }

  private async read(id: string, w: Watched, names: Set<string>): Promise<void> {
    const [event, git] = await Promise.all([
      names.has(REPORT_FILE) ? this.readFile(w, REPORT_FILE, MAX_REPORT_BYTES) : null,
      names.has(GIT_FILE) ? this.readFile(w, GIT_FILE, MAX_GIT_BYTES) : null,
    ]);
    if (this.sessions.get(id) !== w) return;
    let news = false;
    const glance = git === null ? null : gitOfReport(git);
    if (glance && JSON.stringify(glance) !== JSON.stringify(w.git)) {
      w.git = glance;
      news = true;
    }
    const next = event === null ? null : activityOfReport(event, this.now());
    if (next) {
      w.hooked = true;
      if (w.idleTimer) clearTimeout(w.idleTimer);
      w.idleTimer = null;
      this.armStuck(id, w, next);
    }
    if (next && (isNews(w.activity, next) || w.activity?.state === 'stuck')) {
      // A new detail in the same state (another tool while working) keeps when the state began.
      w.activity = w.activity?.state === next.state ? { ...next, since: w.activity.since } : next;
      news = true;
    }
    if (w.recall) {
      w.recall = false;
      if (await this.recallOutput(id, w)) news = true;
    }
    if (news) this.o.changed(id);
  }

  /**
   * A session followed afresh (the agent restarted under a running container) that no hook
   * reported for: its activity from when its pane last printed, the output file's time (the
   * container's word, so never later than now). Whether anything changed.
   */
  private async recallOutput(id: string, w: Watched): Promise<boolean> {
    if (w.hooked || w.activity) return false;
    const st = await fs.lstat(path.join(w.dir, OUTPUT_FILE)).catch(() => null);
    if (!st?.isFile() || this.sessions.get(id) !== w || w.hooked || w.activity) return false;
    const now = this.now().getTime();
    const at = Math.min(st.mtimeMs, now);
    const quietFor = now - at;
    w.lastOutput = Date.now() - quietFor;
    if (quietFor >= this.idleAfter()) {
      w.activity = { state: 'idle', since: new Date(at).toISOString(), detail: 'no output' };
    } else {
      w.activity = { state: 'working', since: new Date(at).toISOString(), detail: 'output' };
      this.armIdle(id, w, this.idleAfter() - quietFor);
    }
    return true;
  }

  /**
   * A new report came: a `working` session that then says nothing for stuckAfterMs is `stuck`
   * (one timer per working session, started and cleared by its reports; nothing polls).
   */
  private armStuck(id: string, w: Watched, next: Activity): void {
    if (w.stuckTimer) clearTimeout(w.stuckTimer);
    w.stuckTimer = null;
    if (next.state !== 'working') return;
    const after = this.o.stuckAfterMs ?? STUCK_AFTER_MS;
    w.stuckTimer = setTimeout(() => {
      w.stuckTimer = null;
      if (this.sessions.get(id) !== w || w.activity?.state !== 'working') return;
      w.activity = { state: 'stuck', since: this.now().toISOString(), detail: `no report for ${after >= 60_000 ? `${Math.round(after / 60_000)} min` : `${Math.ceil(after / 1000)} s`}` };
      this.o.changed(id);
    }, after);
    w.stuckTimer.unref();
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** A report file's text, or null when there is none we read (missing, a link, a FIFO, too big). */
  private async readFile(w: Watched, name: string, max: number): Promise<string | null> {
    try {
      return (await readUntrustedFile(path.join(w.dir, name), max)).toString('utf8');
    } catch {
      return null;
    }
  }
}
