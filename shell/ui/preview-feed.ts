/**
 * Keeps the menu's preview of one session fresh: a capture as soon as the selection lands on a
 * session, again when its entry changes (a push: new activity, state or git), and every
 * REFRESH_MS while it stays selected and running, for output no event tells of. One capture at
 * a time: a selection that moves on while one runs gets its own right after, and a result for a
 * session no longer selected is never shown. Nothing runs while the preview is hidden.
 */
import { toBerthError } from '../../common/errors';
import type { PreviewShot } from './menu-preview';

/** How often a selected running session's screen is captured again. */
export const REFRESH_MS = 1000;

/** What the preview should show now: a session, how many lines, and a key of its entry that changes with it. */
export interface PreviewWant {
  id: string;
  lines: number;
  /** Whether the session may have a screen (else nothing is fetched). */
  live: boolean;
  /** Changes when the session's entry did: a new capture is taken. */
  version: string;
}

export interface PreviewFeedOptions {
  /** The agent's capture of the session's last `lines` lines. */
  fetch(id: string, lines: number): Promise<{ text: string; at: string }>;
  /** Called when a new shot came in (the menu redraws). */
  changed(): void;
  refreshMs?: number;
}

export class PreviewFeed {
  private want: PreviewWant | null = null;
  private shot: PreviewShot | null = null;
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly o: PreviewFeedOptions) {}

  /**
   * Says what to show (null: nothing; the preview is hidden or the menu gave up the terminal).
   * Idempotent: the same want again starts nothing; a new session, size or entry version captures
   * at once.
   */
  show(want: PreviewWant | null): void {
    if (this.stopped) return;
    const before = this.want;
    this.want = want;
    if (!want || !want.live) return this.stopTimer();
    if (before && before.id === want.id && before.lines === want.lines && before.version === want.version && before.live) return;
    this.capture();
    if (!this.timer) {
      this.timer = setInterval(() => this.capture(), this.o.refreshMs ?? REFRESH_MS);
      this.timer.unref();
    }
  }

  /** The last shot, if it is of the session shown now. */
  current(): PreviewShot | null {
    return this.shot && this.want && this.shot.id === this.want.id ? this.shot : null;
  }

  /** Stops for good (the menu is gone). Idempotent. */
  stop(): void {
    this.stopped = true;
    this.want = null;
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private capture(): void {
    const w = this.want;
    if (!w || !w.live || this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.o.fetch(w.id, w.lines).then(
      (r) => this.took({ id: w.id, text: r.text, at: r.at, error: null }),
      (err: unknown) => {
        const e = toBerthError(err);
        this.took({ id: w.id, text: '', at: new Date().toISOString(), error: `${e.code}: ${e.message}` });
      },
    );
  }

  private took(shot: PreviewShot): void {
    this.running = false;
    if (this.stopped) return;
    const changed = !this.shot || this.shot.id !== shot.id || this.shot.text !== shot.text || this.shot.error !== shot.error;
    this.shot = shot;
    if (this.again || (this.want && this.want.id !== shot.id)) {
      this.again = false;
      this.capture();
    }
    if (changed) this.o.changed();
  }
}
