/**
 * What a session prints, made safe for the operator's terminal. A session can turn on tmux's
 * `set-clipboard` and `allow-passthrough` (it runs as the user its tmux runs as), and tmux then
 * hands the operator's terminal a clipboard write or read (OSC 52), or any bytes the session
 * chose (a passthrough reaches the terminal unwrapped): queries some terminals answer into the
 * session's input, a passthrough for the operator's own tmux. This filter removes, from the
 * session-to-operator bytes:
 *
 *  - every OSC 52 (`ESC ] 52 ; …`, leading zeros or not), and every OSC whose number is not a
 *    plain number ended by `;`, BEL or ST: terminals read those in ways that differ (some skip
 *    control characters inside it), and tmux never writes one;
 *  - with `dropTitles`, every OSC 0, 1 and 2 (the window title and icon name), so that the title
 *    the shell writes during an attach is the only one the operator's terminal shows;
 *  - every DCS (`ESC P …`, the form of a passthrough), and SOS, PM and APC (`ESC X`, `ESC ^`,
 *    `ESC _`), which tmux never writes either;
 *  - the same introducers as UTF-8 encoded C1 controls (C2 90, C2 98, C2 9D, C2 9E, C2 9F). A
 *    lone 0x90 or 0x9d is a UTF-8 continuation byte and passes;
 *  - an ESC followed by ESC, C2, DEL or another C0 control (terminals read an escape sequence
 *    on through controls and DEL), and a C2 followed by ESC or C2 (not UTF-8). tmux writes none
 *    of these, and without them nothing that passes can join what follows a removal into a
 *    sequence.
 *
 * A removed string ends at its BEL or ST, or where a terminal would stop reading it (CAN, SUB,
 * any other ESC); one that never ends is dropped up to `maxDrop` bytes, then output passes again.
 * Everything else passes byte for byte. Pure: bytes in, bytes out; between chunks it holds only
 * the start of a sequence cut by the chunk's end (at most an OSC's introducer and number).
 */

const BEL = 0x07;
const CAN = 0x18;
const SUB = 0x1a;
const ESC = 0x1b;
const DEL = 0x7f;
const BACKSLASH = 0x5c;
const SEMICOLON = 0x3b;
/** The first byte of U+0080 to U+00BF in UTF-8: C1 controls are C2 80 to C2 9F. */
const C2 = 0xc2;

/** After ESC: the final bytes of DCS, SOS, PM and APC, and of OSC. */
const ESC_STRING = new Set([0x50, 0x58, 0x5e, 0x5f]);
const ESC_OSC = 0x5d;
/** After C2: the C1 controls DCS, SOS, PM and APC, and OSC. */
const C1_STRING = new Set([0x90, 0x98, 0x9e, 0x9f]);
const C1_OSC = 0x9d;

/** Longer OSC numbers are dropped: tmux writes none, and terminals parse them differently. */
const MAX_OSC_DIGITS = 5;
export const DEFAULT_MAX_DROP = 64 * 1024;

/** What to do at an ESC or a C2. */
const KEEP = 0;
/** The byte alone goes. */
const REMOVE = 1;
/** A string sequence starts here: it goes, up to its end. */
const DROP = 2;
/** The bytes so far cannot tell: wait for the next chunk. */
const MORE = 3;
type Verdict = typeof KEEP | typeof REMOVE | typeof DROP | typeof MORE;

const EMPTY = Buffer.alloc(0);

export interface TerminalFilterOptions {
  /** How many bytes of a string that never ends are dropped before output passes again. */
  maxDrop?: number;
  /** Removes OSC 0, 1 and 2 too (leading zeros or not): the title is the shell's. Default false. */
  dropTitles?: boolean;
}

export class TerminalFilter {
  private readonly maxDrop: number;
  private readonly dropTitles: boolean;
  /** The tail of the last chunk that could not be told yet; it goes before the next chunk. */
  private held: Buffer = EMPTY;
  private dropping = false;
  /** Bytes of the current removed string dropped so far. */
  private dropped = 0;

  constructor(o: TerminalFilterOptions = {}) {
    this.maxDrop = Math.max(1, o.maxDrop ?? DEFAULT_MAX_DROP);
    this.dropTitles = o.dropTitles ?? false;
  }

  /**
   * The bytes of `chunk` that may reach the operator, in order: `chunk` itself when all of it
   * passes (the common case: found by indexOf, nothing copied), else another buffer, possibly
   * empty. Never throws.
   */
  push(chunk: Buffer): Buffer {
    const b = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
    this.held = EMPTY;
    const n = b.length;
    let parts: Buffer[] | null = null;
    /** Start of the bytes that pass, up to the next removal. */
    let from = 0;
    let i = 0;
    // The next ESC and the next C2 at or after i (-1: none left; -2: not looked for yet). Both are
    // found with indexOf, which is far quicker than a loop over the bytes.
    let esc = -2;
    let c2 = -2;
    while (i < n) {
      if (this.dropping) {
        parts ??= [];
        i = this.drop(b, i);
        if (this.dropping && i < n) {
          // An ESC at the end: the next chunk tells whether it is ST.
          this.held = Buffer.from(b.subarray(i));
          i = n;
        }
        from = i;
        continue;
      }
      if (esc !== -1 && esc < i) esc = b.indexOf(ESC, i);
      if (c2 !== -1 && c2 < i) c2 = b.indexOf(C2, i);
      if (esc === -1 && c2 === -1) break;
      i = esc === -1 ? c2 : c2 === -1 ? esc : Math.min(esc, c2);
      const v = i === esc ? atEsc(b, i, this.dropTitles) : atC2(b, i, this.dropTitles);
      if (v === KEEP) {
        i++;
        continue;
      }
      if (v === MORE) {
        this.held = Buffer.from(b.subarray(i));
        break;
      }
      parts ??= [];
      if (i > from) parts.push(b.subarray(from, i));
      if (v === REMOVE) {
        i++;
      } else {
        // Past the introducer (ESC and one byte, or C2 and its C1); the drop counts from there.
        i += 2;
        this.dropping = true;
        this.dropped = 0;
      }
      from = i;
    }
    const end = n - this.held.length;
    if (parts === null) return end === n && b === chunk ? chunk : b.subarray(0, end);
    if (end > from) parts.push(b.subarray(from, end));
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /**
   * Drops from `i` to the end of the string being removed, or to the cap, or to the end of `b`.
   * Returns where output passes again (or `b.length`, or an ESC at the very end whose next byte
   * is not here yet, with `dropping` still set).
   */
  private drop(b: Buffer, i: number): number {
    const n = b.length;
    const start = i;
    const limit = Math.min(n, i + (this.maxDrop - this.dropped));
    for (; i < limit; i++) {
      const c = b[i];
      if (c === BEL || c === CAN || c === SUB) {
        this.dropping = false;
        return i + 1;
      }
      if (c === ESC) {
        if (i + 1 >= n) break;
        this.dropping = false;
        // ST ends the string; any other ESC starts a sequence of its own, looked at afresh.
        return b[i + 1] === BACKSLASH ? i + 2 : i;
      }
    }
    this.dropped += i - start;
    // Never ended within the cap: resynchronise, output passes from here.
    if (this.dropped >= this.maxDrop) this.dropping = false;
    return i;
  }
}

/** At an ESC: what follows decides. */
function atEsc(b: Buffer, i: number, dropTitles: boolean): Verdict {
  if (i + 1 >= b.length) return MORE;
  const d = b[i + 1];
  // Terminals carry out C0 controls and ignore DEL while reading an escape sequence, so
  // `ESC BEL P` is a DCS to some; and an ESC before ESC or a C1 is cancelled by it.
  if (d < 0x20 || d === DEL || d === C2) return REMOVE;
  if (ESC_STRING.has(d)) return DROP;
  if (d === ESC_OSC) return oscHead(b, i + 2, dropTitles);
  return KEEP;
}

/** At a C2 (a UTF-8 lead byte): a C1 control when its second byte is 80 to 9F. */
function atC2(b: Buffer, i: number, dropTitles: boolean): Verdict {
  if (i + 1 >= b.length) return MORE;
  const d = b[i + 1];
  if (d === ESC || d === C2) return REMOVE;
  if (C1_STRING.has(d)) return DROP;
  if (d === C1_OSC) return oscHead(b, i + 2, dropTitles);
  return KEEP;
}

/**
 * An OSC whose number starts at `p`: it passes only as a plain number of at most
 * MAX_OSC_DIGITS digits, not 52 (nor 0, 1 or 2 with `dropTitles`), ended by `;`, BEL or ST.
 */
function oscHead(b: Buffer, p: number, dropTitles: boolean): Verdict {
  const n = b.length;
  let value = 0;
  let j = p;
  for (; j < n; j++) {
    const c = b[j];
    if (c < 0x30 || c > 0x39) break;
    if (j - p === MAX_OSC_DIGITS) return DROP;
    value = value * 10 + (c - 0x30);
  }
  if (j >= n) return MORE;
  if (j === p || value === 52 || (dropTitles && value <= 2)) return DROP;
  const t = b[j];
  if (t === SEMICOLON || t === BEL) return KEEP;
  if (t !== ESC) return DROP;
  if (j + 1 >= n) return MORE;
  return b[j + 1] === BACKSLASH ? KEEP : DROP;
}
