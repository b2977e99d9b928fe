/** Driving real terminals for end-to-end tests: each operator's `ssh -t` runs in its own tmux session. */
import { execFileSync } from 'node:child_process';

/** A private tmux server (its own socket), so tests never touch a developer's tmux. */
export class Tmux {
  constructor(private readonly socket: string) {}

  private run(args: string[]): string {
    // -u: the terminals are UTF-8 whatever this process's locale says.
    return execFileSync('tmux', ['-u', '-L', this.socket, ...args], { encoding: 'utf8' });
  }

  /** Starts `argv` in a new detached session of the given size; the pane stays after it exits. */
  start(name: string, argv: string[], cols = 100, rows = 30): void {
    const cmd = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    this.run(['new-session', '-d', '-s', name, '-x', String(cols), '-y', String(rows), cmd]);
    this.run(['set-option', '-t', name, 'remain-on-exit', 'on']);
  }

  keys(name: string, ...keys: string[]): void {
    this.run(['send-keys', '-t', name, ...keys]);
  }

  /** Types text literally (no key names). */
  type(name: string, text: string): void {
    this.run(['send-keys', '-t', name, '-l', '--', text]);
  }

  screen(name: string): string {
    return this.run(['capture-pane', '-p', '-t', name]);
  }

  /** The screen with all the pane's history above it (a dead pane's notice can scroll its first line off the screen). */
  history(name: string): string {
    return this.run(['capture-pane', '-p', '-S', '-', '-t', name]);
  }

  /** Whether the program in the pane has exited (remain-on-exit keeps the pane). */
  dead(name: string): boolean {
    return this.run(['display-message', '-p', '-t', name, '#{pane_dead}']).trim() === '1';
  }

  resize(name: string, cols: number, rows: number): void {
    this.run(['resize-window', '-t', name, '-x', String(cols), '-y', String(rows)]);
  }

  /** Polls the screen until `pred` holds (bounded); returns the screen. */
  async waitFor(name: string, pred: (screen: string) => boolean, what: string, timeoutMs = 10_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const s = this.screen(name);
      if (pred(s)) return s;
      if (Date.now() > end) throw new Error(`${name}: ${what} not on screen within ${timeoutMs} ms; screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  kill(): void {
    try {
      this.run(['kill-server']);
    } catch {
      /* no server left */
    }
  }
}
