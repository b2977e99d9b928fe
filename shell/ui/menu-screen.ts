/**
 * The menu's blessed screen on a pair of streams: a title line, the session table, the preview
 * (when shown: a line across, then the selected session's screen), a status line and the hint bar,
 * each painted from the plain lines of menu-view.ts and menu-preview.ts.
 */
import { Readable, Writable } from 'node:stream';
import blessed from 'blessed';
import { Dialog, Dialogs, Key } from './dialog';
import { esc, screenDialogs } from './form';
import { Line, Tone } from './menu-view';

/** One full paint of the menu. */
export interface Frame {
  title: Line;
  table: Line[];
  /** The preview's lines (its headline first); empty: no preview, the table takes its room. */
  preview: Line[];
  /** The rows the preview takes (0: none). */
  previewRows: number;
  status: Line;
}

export interface MenuScreen {
  /** The terminal's height in rows, as blessed last learnt it. */
  rows(): number;
  paint(frame: Frame): void;
  /** Runs `fn` now or, while keys are being read, once they are (the last `fn` given then wins). */
  batch(fn: () => void): void;
  /** Rings the terminal's bell (BEL), with the next paint's output. */
  bell(): void;
  /** Records the terminal's new size; `refit` makes blessed take it. */
  setSize(cols: number, rows: number): void;
  /** Makes blessed take the size last set (and clear its buffers); the next paint redraws all. */
  refit(): void;
  /** Gives the terminal up (for an attach) and takes it back. */
  leave(): void;
  enter(): void;
  onKey(handler: (ch: string | undefined, key: Key) => void): void;
  /** The dialogs on this screen (see form.ts screenDialogs). */
  dialogs(opened: (d: Dialog) => void, closed: () => void): Dialogs;
  /** Tears the screen down. */
  destroy(): void;
}

type TtyOutput = Writable & { columns: number; rows: number; isTTY: boolean };
// @types/blessed lacks enter/leave and tput (NOTES.md): the one cast is here.
type FullScreen = blessed.Widgets.Screen & { enter(): void; leave(): void; tput: { brokenACS: boolean } };

const TAGS: Record<Tone, [string, string]> = {
  plain: ['', ''],
  bold: ['{bold}', '{/bold}'],
  warn: ['{yellow-fg}', '{/yellow-fg}'],
  error: ['{red-fg}', '{/red-fg}'],
  dim: ['{gray-fg}', '{/gray-fg}'],
  good: ['{green-fg}', '{/green-fg}'],
  info: ['{cyan-fg}', '{/cyan-fg}'],
  selected: ['{inverse}', '{/inverse}'],
};

/** A line as blessed tags, its text inert on a terminal and its braces escaped (form.ts esc). */
export function tagged(line: Line): string {
  return line.map(({ text, tone }) => `${TAGS[tone][0]}${esc(text)}${TAGS[tone][1]}`).join('');
}

function newScreen(input: Readable, out: TtyOutput): FullScreen {
  const screen = blessed.screen({
    input: input as never,
    output: out as never,
    terminal: 'xterm-256color',
    fullUnicode: true,
    // The operator's terminal is UTF-8 whatever this process's locale says: draw box lines and
    // symbols as Unicode, not with the VT100 alternate character set.
    forceUnicode: true,
    warnings: false,
    autoPadding: false,
  }) as FullScreen;
  // blessed maps box lines and symbols to the VT100 alternate charset, which UTF-8 terminals (and
  // tmux, mosh) render badly: send them as Unicode instead.
  screen.tput.brokenACS = true;
  return screen;
}

/** The menu is drawn at most this often: keys and window changes can come far faster than that. */
const DRAW_EVERY_MS = 15;

/**
 * Draws, kept few whatever comes in: a draw asked for within DRAW_EVERY_MS of the last one is done
 * once, at the end of that time, for all asked for meanwhile; and every key asks for a draw, a paste
 * being one key per character, so what is asked for while a chunk of input is read (`batch`) is
 * done once, after it. So no flood of keys or window changes can hold the shell.
 */
function fewDraws(screen: FullScreen, input: Readable): (fn: () => void) => void {
  const draw = screen.render.bind(screen);
  const destroyed = (): boolean => (screen as FullScreen & { destroyed?: boolean }).destroyed === true;
  let lastDrawn = 0;
  let due: NodeJS.Timeout | null = null;
  const drawNow = (): void => {
    due = null;
    if (destroyed()) return;
    lastDrawn = Date.now();
    draw();
  };
  let reading = false;
  let drawWanted = false;
  let last: (() => void) | null = null;
  screen.render = () => {
    if (reading) drawWanted = true;
    else if (!due) {
      const wait = lastDrawn + DRAW_EVERY_MS - Date.now();
      if (wait <= 0) drawNow();
      else due = setTimeout(drawNow, wait);
    }
  };
  const done = (): void => {
    if (!reading) return;
    reading = false;
    // A key may have ended the menu (Q): then nothing is left to draw.
    if (destroyed()) return;
    const fn = last;
    last = null;
    fn?.();
    if (drawWanted) {
      drawWanted = false;
      screen.render();
    }
  };
  // Before blessed's own reader, and after it; should a key's handler throw, the next turn ends it.
  input.prependListener('data', () => {
    reading = true;
    setImmediate(done);
  });
  input.on('data', done);
  return (fn) => {
    if (reading) last = fn;
    else fn();
  };
}

/** Opens the screen on `input`/`output` (a terminal `cols`×`rows`), with `hints` on the bottom line. */
export function openMenuScreen(input: Readable, output: Writable, cols: number, rows: number, hints: Line): MenuScreen {
  const out = output as TtyOutput;
  out.columns = cols;
  out.rows = rows;
  out.isTTY = true;
  (input as Readable & { isTTY: boolean }).isTTY = true;
  const screen = newScreen(input, out);
  const batch = fewDraws(screen, input);
  // One line each, cut at the edge rather than wrapped onto the next.
  const line = { left: 0, width: '100%', height: 1, tags: true, wrap: false } as const;
  const title = blessed.box({ parent: screen, top: 0, ...line, style: { bg: 'blue', fg: 'white' } });
  const table = blessed.box({ parent: screen, top: 1, left: 0, width: '100%', height: '100%-3', tags: true, wrap: false });
  // Above the status line; its first line is its headline, underlined across the screen.
  const preview = blessed.box({ parent: screen, bottom: 2, left: 0, width: '100%', height: 1, tags: true, wrap: false, hidden: true });
  const status = blessed.box({ parent: screen, bottom: 1, ...line });
  blessed.box({ parent: screen, bottom: 0, ...line, content: tagged(hints) });
  // blessed parses a box's content again on every setContent: boxes whose text did not change
  // are left alone (most draws change the table only, or one line of it).
  const shown = new Map<blessed.Widgets.BoxElement, string>();
  const put = (box: blessed.Widgets.BoxElement, text: string): void => {
    if (shown.get(box) === text) return;
    shown.set(box, text);
    box.setContent(text);
  };
  const paintNow = (frame: Frame): void => {
    put(title, tagged(frame.title));
    const below = frame.previewRows > 0 ? frame.previewRows : 0;
    table.height = `100%-${3 + below}`;
    if (below > 0) {
      preview.height = below;
      const [head, ...rest] = frame.preview;
      put(preview, [`{underline}${head ? tagged(head) : ''}${' '.repeat(Math.max(0, (screen.width as number) - (head ? head.reduce((n, s) => n + s.text.length, 0) : 0)))}{/underline}`, ...rest.map(tagged)].join('\n'));
      preview.show();
    } else preview.hide();
    put(table, frame.table.map(tagged).join('\n'));
    put(status, tagged(frame.status));
    screen.render();
  };
  return {
    rows: () => screen.height as number,
    paint: paintNow,
    batch,
    bell: () => void screen.program.bell(),
    setSize(c, r) {
      out.columns = c;
      out.rows = r;
    },
    refit() {
      // blessed learns a size from its output stream's resize event (NOTES.md).
      out.emit('resize');
      screen.alloc();
    },
    leave: () => screen.leave(),
    enter: () => screen.enter(),
    onKey: (handler) => screen.on('keypress', handler),
    dialogs: (opened, closed) => screenDialogs(screen, opened, closed),
    destroy: () => screen.destroy(),
  };
}
