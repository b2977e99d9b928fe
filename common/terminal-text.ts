/**
 * Text that a session can influence (a broken session's reason, an agent's error message, names,
 * anything an agent relays) made inert before it reaches an operator's terminal. Whatever runs in a
 * session may be hostile: a raw ESC or C1 control could set the window title, clear the screen or
 * write the clipboard (OSC 52); a carriage return or a bidi override could make text read as
 * something it is not. Each such character is shown as a visible escape (`\x1b`, `\u202e`)
 * instead. Plain text (accents, CJK, emoji) is left as it is; backslashes too, so an escape shown
 * may also have been typed as text: what matters is that nothing reaches the terminal as a control.
 */

/**
 * Characters never printed as they are: controls (C0, DEL, C1), format characters (bidi overrides,
 * embeddings, isolates and marks, zero-width spaces, the BOM, invisible operators, tag characters),
 * line and paragraph separators, and lone surrogates.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
const UNSAFE_ALL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/** Format characters kept: the zero-width joiners that emoji sequences and some scripts need. */
const KEPT = new Set(['\u200c', '\u200d']);

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

function isUnsafe(c: string): boolean {
  return UNSAFE.test(c) && !KEPT.has(c);
}

/** The visible escape for one unsafe character (a code point, or a lone surrogate). */
function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const n = c.codePointAt(0) ?? 0;
  if (n < 0x100) return `\\x${hex(n, 2)}`;
  if (n <= 0xffff) return `\\u${hex(n, 4)}`;
  return `\\u{${hex(n, 1)}}`;
}

/**
 * Every unsafe character of `text` escaped (a newline kept where `keepNewlines`), cut to at most
 * `max` characters (code points), the last of them `…` when it was cut. Escapes are never cut
 * through.
 */
function inert(text: string, keepNewlines: boolean, max: number): string {
  const limit = Math.max(1, Math.floor(max));
  if (text.length <= limit && !UNSAFE.test(text)) return text; // the common case: nothing to do
  // Each character as printed, with its length in code points (an escape is plain ASCII).
  const pieces: Array<[string, number]> = [];
  let length = 0;
  for (const c of text) {
    const escaped = !(keepNewlines && c === '\n') && isUnsafe(c);
    const piece = escaped ? escapeChar(c) : c;
    const n = escaped ? piece.length : 1;
    pieces.push([piece, n]);
    length += n;
    if (length > limit) break;
  }
  if (length <= limit) return pieces.map(([piece]) => piece).join('');
  let out = '';
  let kept = 0;
  for (const [piece, n] of pieces) {
    if (kept + n > limit - 1) break;
    out += piece;
    kept += n;
  }
  return `${out}…`;
}

/**
 * `text` made safe for one line of a terminal (a table cell, a status line, a title): every control
 * (newline and tab too), DEL, C1, format character and line separator shown as an escape; at most
 * `max` characters, ending in `…` when cut. Idempotent: its output passes through it unchanged.
 */
export function inertCell(text: string, max = Infinity): string {
  return inert(text, false, max);
}

/**
 * `text` made safe for a terminal over several lines (an error message, a page): as inertCell, but
 * newlines are kept as line breaks. Idempotent.
 */
export function inertBlock(text: string, max = Infinity): string {
  return inert(text, true, max);
}

/**
 * `value` as one line of JSON whose text is safe on a terminal: JSON.stringify escapes C0 controls
 * but prints DEL, C1, format characters and line separators raw; these are written as `\uXXXX`
 * escapes here. Parsing the result gives back exactly the same value.
 */
export function inertJson(value: unknown): string {
  // Outside strings JSON is plain ASCII, so every match is inside a string, where \uXXXX means the
  // same character (one past U+FFFF as its surrogate pair).
  return JSON.stringify(value).replace(UNSAFE_ALL, (c) => (KEPT.has(c) ? c : jsonEscape(c)));
}

function jsonEscape(c: string): string {
  return c
    .split('')
    .map((unit) => `\\u${hex(unit.charCodeAt(0), 4)}`)
    .join('');
}
