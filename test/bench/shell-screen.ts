/**
 * A small model of a terminal's screen for the shell benchmark: what an operator's terminal shows
 * after the menu's output, good enough to read a session's row. The menu draws only the cells that
 * changed (cursor moves over the rest), so its output stream alone does not say what a row reads;
 * this replays it on a grid of cells.
 *
 * It knows cursor movement, erasing, insert and delete of characters and lines, scroll regions,
 * line feeds with scrolling, and the pending wrap at the last column. Colours, modes and titles
 * are skipped. Every character is one cell wide (the menu draws ASCII, box lines and braille).
 */

/** What an empty cell holds. */
const BLANK = ' ';

/* eslint-disable no-control-regex -- escape sequences begin with ESC, and strings end with BEL */
const CSI = /\x1b\[([0-?]*)([ -/]*)([@-~])/y;
/** OSC, DCS, SOS, PM and APC strings: skipped whole. */
const STRING_SEQ = /\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)/y;
/** Character set designations and the like (ESC ( B). */
const NF_SEQ = /\x1b[ -/]+[0-~]/y;
/** What a sequence cut short by the end of a write looks like: ESC and the start of one of the above. */
const PARTIAL = /\x1b(?:\[[0-?]*[ -/]*|[\]PX^_][^\x07\x1b]*\x1b?|[ -/]*)$/y;
/* eslint-enable no-control-regex */
/** An escape sequence that has not ended after this many characters is dropped, not waited for. */
const MAX_SEQ = 512;

export class Screen {
  private grid: string[][];
  private row = 0;
  /** May equal `cols`: the next character wraps first (the pending wrap). */
  private col = 0;
  private top = 0;
  private bottom: number;
  private saved = { row: 0, col: 0 };
  /** An escape sequence cut at the end of the last write. */
  private carry = '';

  constructor(
    readonly cols: number,
    readonly rows: number,
  ) {
    this.grid = Array.from({ length: rows }, () => this.blankLine());
    this.bottom = rows - 1;
  }

  /** The screen's lines as text, trailing blanks kept. */
  lines(): string[] {
    return this.grid.map((l) => l.join(''));
  }

  write(data: string): void {
    const s = this.carry + data;
    this.carry = '';
    let i = 0;
    while (i < s.length) {
      const ch = s.charCodeAt(i);
      if (ch === 0x1b) {
        const used = this.escape(s, i);
        if (used === 0) {
          if (s.length - i < MAX_SEQ) {
            this.carry = s.slice(i);
            return;
          }
          i++;
        } else i += used;
        continue;
      }
      if (ch < 0x20 || ch === 0x7f) {
        this.control(ch);
        i++;
        continue;
      }
      const cp = s.codePointAt(i) ?? ch;
      this.put(String.fromCodePoint(cp));
      i += cp > 0xffff ? 2 : 1;
    }
  }

  private blankLine(): string[] {
    return Array.from({ length: this.cols }, () => BLANK);
  }

  private put(c: string): void {
    if (this.col >= this.cols) {
      this.col = 0;
      this.lineFeed();
    }
    const line = this.grid[this.row];
    if (line) line[this.col] = c;
    this.col++;
  }

  private control(ch: number): void {
    switch (ch) {
      case 0x0d:
        this.col = 0;
        break;
      case 0x0a:
      case 0x0b:
      case 0x0c:
        this.lineFeed();
        break;
      case 0x08:
        this.col = Math.max(0, Math.min(this.col, this.cols - 1) - 1);
        break;
      case 0x09:
        this.col = Math.min(this.cols - 1, (Math.floor(this.col / 8) + 1) * 8);
        break;
      default:
        // BEL, SO/SI and the rest draw nothing.
        break;
    }
  }

  /** Consumes one escape sequence at `i`; returns its length, or 0 when it is not complete yet. */
  private escape(s: string, i: number): number {
    CSI.lastIndex = i;
    const csi = CSI.exec(s);
    if (csi) {
      this.csi(csi[1] ?? '', csi[2] ?? '', csi[3] ?? '');
      return csi[0].length;
    }
    for (const re of [STRING_SEQ, NF_SEQ]) {
      re.lastIndex = i;
      const m = re.exec(s);
      if (m) return m[0].length;
    }
    PARTIAL.lastIndex = i;
    if (PARTIAL.test(s)) return 0;
    const next = s[i + 1] ?? '';
    // ESC and a character that begins no sequence: the ESC alone is dropped.
    if (next < '0' || next > '~' || '[]PX^_'.includes(next)) return 1;
    switch (next) {
      case '7':
        this.saved = { row: this.row, col: this.col };
        break;
      case '8':
        this.row = this.saved.row;
        this.col = this.saved.col;
        break;
      case 'D':
        this.lineFeed();
        break;
      case 'E':
        this.col = 0;
        this.lineFeed();
        break;
      case 'M':
        this.reverseIndex();
        break;
      case 'c':
        this.grid = Array.from({ length: this.rows }, () => this.blankLine());
        this.row = this.col = this.top = 0;
        this.bottom = this.rows - 1;
        break;
      default:
        break;
    }
    return 2;
  }

  private csi(params: string, inter: string, final: string): void {
    if (inter !== '' || /^[<=>?]/.test(params)) return; // private modes and the like: nothing drawn
    const p = params.split(';').map((x) => (x === '' ? NaN : Number(x)));
    const n = (k: number, dflt = 1): number => {
      const v = p[k];
      return v === undefined || Number.isNaN(v) || v === 0 ? dflt : v;
    };
    const clampRow = (r: number): number => Math.max(0, Math.min(this.rows - 1, r));
    const clampCol = (c: number): number => Math.max(0, Math.min(this.cols - 1, c));
    const col = Math.min(this.col, this.cols - 1);
    switch (final) {
      case 'A':
        this.row = Math.max(this.row >= this.top ? this.top : 0, this.row - n(0));
        this.col = col;
        break;
      case 'B':
      case 'e':
        this.row = Math.min(this.row <= this.bottom ? this.bottom : this.rows - 1, this.row + n(0));
        this.col = col;
        break;
      case 'C':
      case 'a':
        this.col = clampCol(col + n(0));
        break;
      case 'D':
        this.col = clampCol(col - n(0));
        break;
      case 'E':
        this.row = clampRow(this.row + n(0));
        this.col = 0;
        break;
      case 'F':
        this.row = clampRow(this.row - n(0));
        this.col = 0;
        break;
      case 'G':
      case '`':
        this.col = clampCol(n(0) - 1);
        break;
      case 'd':
        this.row = clampRow(n(0) - 1);
        this.col = col;
        break;
      case 'H':
      case 'f':
        this.row = clampRow(n(0) - 1);
        this.col = clampCol(n(1) - 1);
        break;
      case 'J': {
        const mode = Number.isNaN(p[0] ?? NaN) ? 0 : (p[0] ?? 0);
        if (mode === 0) {
          this.erase(this.row, col, this.cols);
          for (let r = this.row + 1; r < this.rows; r++) this.grid[r] = this.blankLine();
        } else if (mode === 1) {
          for (let r = 0; r < this.row; r++) this.grid[r] = this.blankLine();
          this.erase(this.row, 0, col + 1);
        } else for (let r = 0; r < this.rows; r++) this.grid[r] = this.blankLine();
        break;
      }
      case 'K': {
        const mode = Number.isNaN(p[0] ?? NaN) ? 0 : (p[0] ?? 0);
        if (mode === 0) this.erase(this.row, col, this.cols);
        else if (mode === 1) this.erase(this.row, 0, col + 1);
        else this.erase(this.row, 0, this.cols);
        break;
      }
      case 'X':
        this.erase(this.row, col, col + n(0));
        break;
      case '@': {
        const line = this.grid[this.row];
        if (!line) break;
        const k = Math.min(n(0), this.cols - col);
        line.splice(col, 0, ...Array.from({ length: k }, () => BLANK));
        line.length = this.cols;
        break;
      }
      case 'P': {
        const line = this.grid[this.row];
        if (!line) break;
        const k = Math.min(n(0), this.cols - col);
        line.splice(col, k);
        while (line.length < this.cols) line.push(BLANK);
        break;
      }
      case 'L':
        if (this.row >= this.top && this.row <= this.bottom) this.scrollDown(this.row, n(0));
        this.col = 0;
        break;
      case 'M':
        if (this.row >= this.top && this.row <= this.bottom) this.scrollUp(this.row, n(0));
        this.col = 0;
        break;
      case 'S':
        this.scrollUp(this.top, n(0));
        break;
      case 'T':
        this.scrollDown(this.top, n(0));
        break;
      case 'r': {
        const top = n(0) - 1;
        const bottom = n(1, this.rows) - 1;
        if (top < bottom && bottom < this.rows) {
          this.top = top;
          this.bottom = bottom;
        }
        this.row = 0;
        this.col = 0;
        break;
      }
      case 's':
        this.saved = { row: this.row, col: this.col };
        break;
      case 'u':
        this.row = this.saved.row;
        this.col = this.saved.col;
        break;
      default:
        // SGR (m), modes (h, l), reports (n, c) and the rest change nothing on the grid.
        break;
    }
  }

  private erase(row: number, from: number, to: number): void {
    const line = this.grid[row];
    if (!line) return;
    for (let c = Math.max(0, from); c < Math.min(this.cols, to); c++) line[c] = BLANK;
  }

  private lineFeed(): void {
    if (this.row === this.bottom) this.scrollUp(this.top, 1);
    else if (this.row < this.rows - 1) this.row++;
  }

  private reverseIndex(): void {
    if (this.row === this.top) this.scrollDown(this.top, 1);
    else if (this.row > 0) this.row--;
  }

  /** Moves the lines from `from` to the region's bottom up by `k`, blank lines coming in below. */
  private scrollUp(from: number, k: number): void {
    const count = Math.min(k, this.bottom - from + 1);
    this.grid.splice(from, count);
    this.grid.splice(this.bottom - count + 1, 0, ...Array.from({ length: count }, () => this.blankLine()));
  }

  /** Moves the lines from `from` to the region's bottom down by `k`, blank lines coming in at `from`. */
  private scrollDown(from: number, k: number): void {
    const count = Math.min(k, this.bottom - from + 1);
    this.grid.splice(this.bottom - count + 1, count);
    this.grid.splice(from, 0, ...Array.from({ length: count }, () => this.blankLine()));
  }
}
