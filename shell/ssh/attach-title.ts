/**
 * The operator's terminal title while they are attached to a session: `berth · web`, and when
 * other sessions need them, `berth · web — 2 need you: api (permission), db (waiting)`, so they
 * learn of it without detaching. The title is written into the bytes the shell sends the
 * operator, only where those bytes leave the terminal in its ground state: never inside an escape
 * sequence or a UTF-8 character that a chunk boundary cut. At the attach's end it goes back to
 * `berth`. A session cannot write a title of its own meanwhile (the attach pipe's TerminalFilter
 * drops OSC 0, 1 and 2), so whatever the title says is berth's.
 *
 * Pure parts (StreamState, needingOthers, titleText) and one small controller (AttachTitle).
 */
import { inertCell } from '../../common/terminal-text';
import type { ClusterSession, ClusterView } from '../cluster/view';
import { Dismissed, needsYou, sortSessions } from '../ui/menu-attention';

/** The title outside an attach. */
export const PLAIN_TITLE = 'berth';
/** The longest title written, in characters (code points). */
export const TITLE_MAX = 120;
/** The longest a session's name is shown in the title. */
const NAME_MAX = 32;
/** Cluster changes within this long make one new title. */
export const TITLE_COALESCE_MS = 50;

const BEL = 0x07;
const CAN = 0x18;
const SUB = 0x1a;
const ESC = 0x1b;

/** The parser's states, as the DEC parser that xterm, tmux and VTE follow names them. */
const GROUND = 0;
/** After ESC. */
const ESCAPE = 1;
/** After ESC and intermediates (`ESC ( B`, `ESC # 8`). */
const ESCAPE_INTER = 2;
/** CSI (`ESC [` or C1 9B): parameters and intermediates until a final byte. */
const CSI = 3;
/** OSC (`ESC ]` or C1 9D): until BEL or ST. */
const OSC = 4;
/** DCS, SOS, PM, APC (`ESC P`, `ESC X`, `ESC ^`, `ESC _`, or their C1): until ST. */
const STRING = 5;
type ParserState = typeof GROUND | typeof ESCAPE | typeof ESCAPE_INTER | typeof CSI | typeof OSC | typeof STRING;

/** A character the UTF-8 decoder could not make out; a terminal shows it as one. */
const REPLACEMENT = 0xfffd;

/**
 * Where a terminal that has read every byte pushed here stands: in its ground state, or inside an
 * escape sequence or a UTF-8 character. The model is a UTF-8 decoder feeding the DEC parser (C0
 * controls carried out inside sequences, CAN and SUB ending any, ESC starting a new one from
 * anywhere, C1 controls decoded from UTF-8 acting as their 7-bit forms outside strings). Not
 * every terminal ends a string early (tmux reads a DCS on through any ESC until its ST, for its
 * passthrough), so a string also counts as open until its own end: BEL or ST for an OSC, ST for
 * the others. Where
 * terminals could differ it says "inside", never "ground": a title is then only written later.
 * Pure; between chunks it holds a few numbers.
 */
export class StreamState {
  private state: ParserState = GROUND;
  /** The string (OSC or STRING) still open as a terminal that reads it to its own end sees it; GROUND if none. */
  private open: ParserState = GROUND;
  /** Whether the last character inside that open string was ESC (ST's first half). */
  private openEsc = false;
  /** Continuation bytes the current UTF-8 character still needs (0: none started). */
  private need = 0;
  /** The code point decoded so far. */
  private cp = 0;

  /** Whether the terminal is in its ground state: a title written now is read as one. */
  get ground(): boolean {
    return this.state === GROUND && this.need === 0 && this.open === GROUND;
  }

  /** Follows `chunk` as the terminal reads it. Never throws. */
  push(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.ground) {
        // The common case, ASCII text in ground, with no call per byte.
        while (i < n && (chunk[i] as number) < 0x80 && chunk[i] !== ESC) i++;
        if (i === n) break;
      }
      this.byte(chunk[i] as number);
      i++;
    }
  }

  private byte(b: number): void {
    if (this.need > 0) {
      if (b >= 0x80 && b <= 0xbf) {
        this.cp = (this.cp << 6) | (b & 0x3f);
        if (--this.need === 0) this.char(this.cp);
        return;
      }
      // A character cut short: the terminal shows a replacement, then reads this byte afresh.
      this.need = 0;
      this.char(REPLACEMENT);
    }
    if (b < 0x80) return this.char(b);
    if (b >= 0xc2 && b <= 0xdf) return this.lead(1, b & 0x1f);
    if (b >= 0xe0 && b <= 0xef) return this.lead(2, b & 0x0f);
    if (b >= 0xf0 && b <= 0xf4) return this.lead(3, b & 0x07);
    this.char(REPLACEMENT);
  }

  private lead(need: number, bits: number): void {
    this.need = need;
    this.cp = bits;
  }

  /** One decoded character through the parser, and through the open string if there is one. */
  private char(c: number): void {
    if (this.open !== GROUND) this.inOpen(c);
    this.parse(c);
    if ((this.state === OSC || this.state === STRING) && this.open === GROUND) this.open = this.state;
  }

  /** The open string read to its own end. */
  private inOpen(c: number): void {
    if (this.openEsc && c === 0x5c) this.open = GROUND;
    else if (this.open === OSC && c === BEL) this.open = GROUND;
    this.openEsc = this.open !== GROUND && c === ESC;
  }

  private parse(c: number): void {
    // From any state: CAN and SUB end the sequence, ESC starts a new one.
    if (c === CAN || c === SUB) {
      this.state = GROUND;
      return;
    }
    if (c === ESC) {
      this.state = ESCAPE;
      return;
    }
    switch (this.state) {
      case GROUND:
        if (c >= 0x80 && c <= 0x9f) this.state = c1(c);
        return;
      case ESCAPE:
        if (c >= 0x80 && c <= 0x9f) this.state = c1(c);
        else if (c >= 0x20 && c <= 0x2f) this.state = ESCAPE_INTER;
        else if (c === 0x5b) this.state = CSI;
        else if (c === 0x5d) this.state = OSC;
        else if (c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) this.state = STRING;
        else if (c >= 0x30 && c <= 0x7e) this.state = GROUND;
        return;
      case ESCAPE_INTER:
        if (c >= 0x80 && c <= 0x9f) this.state = c1(c);
        else if (c >= 0x30 && c <= 0x7e) this.state = GROUND;
        return;
      case CSI:
        if (c >= 0x80 && c <= 0x9f) this.state = c1(c);
        else if (c >= 0x40 && c <= 0x7e) this.state = GROUND;
        return;
      case OSC:
        if (c === BEL) this.state = GROUND;
        return;
      case STRING:
        // Only ST (ESC \) ends it; C1 controls inside a string are left as its text.
        return;
    }
  }
}

/** The state a C1 control leads to outside a string (ST and the others carried out: ground). */
function c1(c: number): ParserState {
  if (c === 0x9b) return CSI;
  if (c === 0x9d) return OSC;
  if (c === 0x90 || c === 0x98 || c === 0x9e || c === 0x9f) return STRING;
  return GROUND;
}

/** A session that needs the operator, as the title names it. */
export interface Needing {
  name: string;
  state: string;
}

const nameOf = (s: ClusterSession): string => (s.entry.kind === 'session' ? s.entry.meta.name : s.id.slice(0, 8));

/**
 * The sessions other than `self` that need the operator (menu-attention's `needsYou`: permission,
 * waiting or stuck, agent online, not dismissed), in the menu's attention order.
 */
export function needingOthers(all: readonly ClusterSession[], self: string, dismissed: ReadonlyMap<string, Dismissed>): Needing[] {
  // Sorting only those keeps their order: the sort is stable and `all` is in the view's order.
  const needing = all.filter((s) => s.id !== self && needsYou(s, dismissed));
  const out: Needing[] = [];
  for (const s of sortSessions(needing, 'attention', dismissed)) {
    if (s.entry.kind === 'session' && s.entry.activity) out.push({ name: nameOf(s), state: s.entry.activity.state });
  }
  return out;
}

const width = (s: string): number => [...s].length;

/**
 * The title for an attach to `attached` while `needing` need the operator: every name made inert
 * and cut to NAME_MAX, as many of them as fit in `max` characters, then `+N more`.
 */
export function titleText(attached: string, needing: readonly Needing[], max = TITLE_MAX): string {
  const head = `${PLAIN_TITLE} · ${inertCell(attached, NAME_MAX)}`;
  const n = needing.length;
  if (n === 0) return inertCell(head, max);
  const count = `${head} — ${n} ${n === 1 ? 'needs' : 'need'} you`;
  let text = count;
  let shown = 0;
  for (const w of needing) {
    const next = `${text}${shown === 0 ? ':' : ','} ${inertCell(w.name, NAME_MAX)} (${inertCell(w.state, NAME_MAX)})`;
    const rest = n - shown - 1;
    if (width(next) + (rest > 0 ? width(`, +${rest} more`) : 0) > max) break;
    text = next;
    shown++;
  }
  if (shown > 0 && shown < n) text += `, +${n - shown} more`;
  // Only a `max` shorter than the head and count needs this cut.
  return inertCell(text, max);
}

/** The bytes that set the terminal's title (OSC 2) to `text`, which must be inert. */
export function titleBytes(text: string): Buffer {
  return Buffer.from(`\x1b]2;${text}\x07`, 'utf8');
}

export interface AttachTitleOptions {
  /** The cluster view: its 'change' event makes the title be worked out again. */
  view: Pick<ClusterView, 'sessions' | 'on' | 'off'>;
  /** The attached session (its name may change while attached: the view's is used). */
  session: ClusterSession;
  /** The sessions this operator dismissed (the menu's); none when not given. */
  dismissed?: () => ReadonlyMap<string, Dismissed>;
  /** Writes bytes to the operator's terminal, after whatever was sent so far. */
  write(bytes: Buffer): void;
  /** Runs `f` once a burst of changes is over; default TITLE_COALESCE_MS later. */
  defer?: (f: () => void) => void;
}

export interface AttachTitle {
  /**
   * Follows a chunk just sent to the operator; writes a title waiting for a safe point if the
   * stream is now in ground. Never throws.
   */
  sent(chunk: Buffer): void;
  /**
   * Stops following the view and writes the plain title `berth` (after ST if the stream was cut
   * inside a sequence or character: ESC ends a character or a control sequence, and ST any
   * string). Idempotent.
   */
  end(): void;
}

const NO_DISMISSED: ReadonlyMap<string, Dismissed> = new Map();

const deferred = (f: () => void): void => {
  setTimeout(f, TITLE_COALESCE_MS).unref();
};

/**
 * Writes the attach's title at once (nothing was sent yet: the stream is in ground), then a new
 * one whenever the cluster's changes change its text: at once when the stream is in ground, else
 * right after the first chunk sent that leaves it there.
 */
export function startAttachTitle(o: AttachTitleOptions): AttachTitle {
  const stream = new StreamState();
  const defer = o.defer ?? deferred;
  let written: string | null = null;
  let pending: string | null = null;
  let queued = false;
  let ended = false;

  const write = (bytes: Buffer): void => {
    stream.push(bytes);
    o.write(bytes);
  };
  const flush = (): void => {
    if (pending === null || !stream.ground) return;
    written = pending;
    pending = null;
    write(titleBytes(written));
  };
  const compute = (): string => {
    const all = o.view.sessions();
    const self = all.find((s) => s.id === o.session.id) ?? o.session;
    return titleText(nameOf(self), needingOthers(all, self.id, o.dismissed?.() ?? NO_DISMISSED));
  };
  const refresh = (): void => {
    queued = false;
    if (ended) return;
    const text = compute();
    pending = text === written ? null : text;
    flush();
  };
  const onChange = (): void => {
    if (queued || ended) return;
    queued = true;
    defer(refresh);
  };

  pending = compute();
  flush();
  o.view.on('change', onChange);
  return {
    sent(chunk) {
      if (ended) return;
      stream.push(chunk);
      flush();
    },
    end() {
      if (ended) return;
      ended = true;
      o.view.off('change', onChange);
      pending = null;
      if (!stream.ground) write(Buffer.from([ESC, 0x5c]));
      write(titleBytes(PLAIN_TITLE));
    },
  };
}
