/**
 * Captures of a session's screen shared by the menus that ask within SHARE_MS of each other: many
 * operators previewing one session (each menu refreshes its preview every second) cost one
 * `tmux capture-pane` in the container per window, not one each. A capture is kept only for that
 * window, so a menu never sees one older than it, and an idle agent holds none.
 */

/** How long one capture answers for a session. */
export const SHARE_MS = 250;

export interface Capture {
  text: string;
  /** When it was taken (ISO). */
  at: string;
}

interface Shared {
  lines: number;
  capture: Promise<Capture>;
}

export class SharedCaptures {
  private readonly shared = new Map<string, Shared>();

  constructor(private readonly shareMs = SHARE_MS) {}

  /**
   * Session `id`'s last `lines` lines: from a capture of at least as many lines taken (or under
   * way) within the window, else from `take(lines)`, which is then shared. Rejects as `take` does
   * (a failed capture is not shared).
   */
  async get(id: string, lines: number, take: (lines: number) => Promise<Capture>): Promise<Capture> {
    const known = this.shared.get(id);
    if (known && known.lines >= lines) {
      const c = await known.capture;
      return { text: lastLines(c.text, lines), at: c.at };
    }
    const s: Shared = { lines, capture: take(lines) };
    this.shared.set(id, s);
    const drop = (): void => {
      if (this.shared.get(id) === s) this.shared.delete(id);
    };
    setTimeout(drop, this.shareMs).unref();
    s.capture.catch(drop);
    return s.capture;
  }
}

/** The last `n` lines of `text`. */
function lastLines(text: string, n: number): string {
  const lines = text.split('\n');
  return lines.length <= n ? text : lines.slice(-n).join('\n');
}
