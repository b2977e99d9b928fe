import { inertBlock, inertCell, inertJson } from '../../common/terminal-text';
import { rawChars } from '../helpers/raw-text';

describe('inertCell', () => {
  it('shows ESC and the sequences it starts (OSC title, OSC 52 clipboard, CSI clear) as escapes', () => {
    expect(inertCell('\u001b]0;pwned\u0007')).toBe('\\x1b]0;pwned\\x07');
    expect(inertCell('\u001b]52;c;aGVsbG8=\u001b\\')).toBe('\\x1b]52;c;aGVsbG8=\\x1b\\');
    expect(inertCell('a\u001b[2J\u001b[Hb')).toBe('a\\x1b[2J\\x1b[Hb');
  });

  it('shows every C0 control, DEL and C1 control as \\xNN, newline, tab and carriage return by name', () => {
    expect(inertCell('\u0000\u0001\u0008\u000b\u000c\u001f')).toBe('\\x00\\x01\\x08\\x0b\\x0c\\x1f');
    expect(inertCell('a\nb\tc\rd')).toBe('a\\nb\\tc\\rd');
    expect(inertCell('x\u007fy')).toBe('x\\x7fy');
    // U+009B is CSI and U+009D is OSC to a terminal that takes C1 controls; U+0085 is NEL.
    expect(inertCell('\u009b2J\u009d0;t\u009c\u0085\u0080\u009f')).toBe('\\x9b2J\\x9d0;t\\x9c\\x85\\x80\\x9f');
    for (let n = 0; n <= 0x9f; n++) {
      const c = String.fromCharCode(n);
      if (n >= 0x20 && n < 0x7f) expect(inertCell(c)).toBe(c);
      else expect(inertCell(c)).toMatch(/^\\(x[0-9a-f]{2}|[nrt])$/);
    }
  });

  it('shows bidi overrides, embeddings, isolates and marks as \\uNNNN', () => {
    // "txt.exe" disguised as "exe.txt" with a right-to-left override.
    expect(inertCell('report\u202etxt.exe')).toBe('report\\u202etxt.exe');
    for (const c of ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c']) {
      expect(inertCell(`a${c}b`)).toBe(`a\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}b`);
    }
  });

  it('shows other invisible format characters, line separators and tag characters as escapes', () => {
    expect(inertCell('ad\u200bmin\ufeff\u2060\u00ad')).toBe('ad\\u200bmin\\ufeff\\u2060\\xad');
    expect(inertCell('a\u2028b\u2029c')).toBe('a\\u2028b\\u2029c');
    expect(inertCell('x\u{e0041}\u{e007f}')).toBe('x\\u{e0041}\\u{e007f}');
    expect(inertCell('lone \ud800 surrogate')).toBe('lone \\ud800 surrogate');
  });

  it('keeps plain text: ASCII, accents, CJK, emoji with joiners and variation selectors, backslashes', () => {
    const plain = 'Zoë façade naïve 東京 세션 שלום مرحبا 👩‍💻 👨‍👩‍👧 ❤️ 🇫🇷 C:\\tmp {bold} ~!@#$%^&*()';
    expect(inertCell(plain)).toBe(plain);
    expect(inertBlock(plain)).toBe(plain);
    expect(inertCell('')).toBe('');
  });

  it('cuts at the bound in characters, ending with …, and never through an escape', () => {
    expect(inertCell('abcdef', 6)).toBe('abcdef');
    expect(inertCell('abcdefg', 6)).toBe('abcde…');
    expect(inertCell('東京東京東京東京', 4)).toBe('東京東…');
    expect(inertCell('\u{1f469}\u200d\u{1f4bb}\u{1f469}\u200d\u{1f4bb}', 3)).toBe('\u{1f469}\u200d…');
    // "ab\x1b" is 6 characters: with a bound of 6 the escape fits only without the ellipsis.
    expect(inertCell('ab\u001b', 6)).toBe('ab\\x1b');
    expect(inertCell('ab\u001bc', 6)).toBe('ab…');
    expect(inertCell('x'.repeat(1_000_000), 10)).toBe(`${'x'.repeat(9)}…`);
  });

  it('is idempotent: inert text passes through unchanged', () => {
    const hostile = 'a\u001b]0;t\u0007\u009b\u202e\n\tb東\u200b👩‍💻'.repeat(5);
    for (const max of [Infinity, 40, 7]) {
      const once = inertCell(hostile, max);
      expect(inertCell(once, max)).toBe(once);
      expect(rawChars(once)).toEqual([]);
      const block = inertBlock(hostile, max);
      expect(inertBlock(block, max)).toBe(block);
    }
  });
});

describe('inertBlock', () => {
  it('keeps newlines as line breaks and escapes everything else a cell would', () => {
    expect(inertBlock('line 1\nline 2\u001b[2J\r\n\tx\u202e')).toBe('line 1\nline 2\\x1b[2J\\r\n\\tx\\u202e');
    expect(inertBlock('a\u2028b')).toBe('a\\u2028b');
    expect(inertBlock('abc\ndef', 5)).toBe('abc\n…');
  });
});

describe('inertJson', () => {
  const hostile = {
    reason: 'x\u001b]52;c;aGk=\u0007\u007f\u009b2J\u202eevil\u2066\u2028\u{e0041}',
    plain: 'Zoë 東京 👩‍💻 ❤️',
    list: ['\u0085', 'ok'],
  };

  it('gives JSON that parses back to exactly the same value', () => {
    expect(JSON.parse(inertJson(hostile))).toEqual(hostile);
    expect(JSON.parse(inertJson([1, null, true, 'a\\"b']))).toEqual([1, null, true, 'a\\"b']);
  });

  it('writes no control, C1, bidi or format character raw, where JSON.stringify does', () => {
    expect(rawChars(JSON.stringify(hostile))).not.toEqual([]);
    const text = inertJson(hostile);
    expect(rawChars(text)).toEqual([]);
    expect(text).toContain('x\\u001b]52;c;aGk=\\u0007\\u007f\\u009b2J\\u202eevil\\u2066\\u2028\\udb40\\udc41');
    expect(text).toContain('"Zoë 東京 👩‍💻 ❤️"');
    expect(text).not.toContain('\n');
  });
});
