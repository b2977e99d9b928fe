/**
 * The filter on what a session prints to an operator (shell/ssh/terminal-filter.ts): clipboard
 * sequences (OSC 52) and string sequences (DCS, the form of a tmux passthrough; SOS, PM, APC) go,
 * however they are spelled and however the bytes are cut into chunks; everything else passes
 * byte for byte, and a chunk with nothing to remove comes back as the same buffer.
 */
import { DEFAULT_MAX_DROP, TerminalFilter } from '../../shell/ssh/terminal-filter';

const ESC = '\u001b';
const BEL = '\u0007';
const ST = `${ESC}\\`;

/** Bytes from a string whose characters are bytes (latin1): C1 and UTF-8 bytes written as \xNN. */
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const text = (b: Buffer): string => b.toString('latin1');

/** Pushes the chunks through one filter; everything it let through, joined. */
function run(chunks: Buffer[], filter = new TerminalFilter()): string {
  return text(Buffer.concat(chunks.map((c) => filter.push(c))));
}

const whole = (s: string): string => run([bytes(s)]);

/** The same stream cut in two at every point, and cut into single bytes: each gives `want`. */
function expectAtEverySplit(s: string, want: string): void {
  const b = bytes(s);
  for (let k = 0; k <= b.length; k++) {
    expect({ split: k, out: run([b.subarray(0, k), b.subarray(k)]) }).toEqual({ split: k, out: want });
  }
  const single = Array.from(b, (x) => Buffer.from([x]));
  expect({ split: 'every byte', out: run(single) }).toEqual({ split: 'every byte', out: want });
}

describe('clipboard sequences (OSC 52)', () => {
  it('go, ended by BEL or by ST, and what is around them stays', () => {
    expect(whole(`before${ESC}]52;c;aGVsbG8=${BEL}after`)).toBe('beforeafter');
    expect(whole(`before${ESC}]52;c;aGVsbG8=${ST}after`)).toBe('beforeafter');
    // tmux's own form leaves the selection out.
    expect(whole(`${ESC}]52;;aGVsbG8=${BEL}x`)).toBe('x');
  });

  it('go in the form that asks the terminal to read the clipboard back', () => {
    expect(whole(`a${ESC}]52;c;?${BEL}b`)).toBe('ab');
    expect(whole(`a${ESC}]52;p;?${ST}b`)).toBe('ab');
  });

  it('go however the number is spelled: leading zeros, controls inside it, too many digits', () => {
    expect(whole(`${ESC}]052;c;eA==${BEL}x`)).toBe('x');
    expect(whole(`${ESC}]00052;c;eA==${BEL}x`)).toBe('x');
    // Some terminals skip C0 controls inside an OSC: "5\x012" would be 52 to them.
    expect(whole(`${ESC}]5\u00012;c;eA==${BEL}x`)).toBe('x');
    expect(whole(`${ESC}]000000052;c;eA==${BEL}x`)).toBe('x');
    // An OSC with no number, or one ended by something else, is not one tmux writes.
    expect(whole(`${ESC}];c;eA==${BEL}x`)).toBe('x');
    expect(whole(`${ESC}]52:c;eA==${BEL}x`)).toBe('x');
    // An OSC number ended by an ESC that is not ST: what follows the next removal would extend it.
    expect(whole(`${ESC}]5${ESC}Pjunk${ST}2;c;eA==${BEL}x`)).toBe(`2;c;eA==${BEL}x`);
  });

  it('an OSC number too long to be one tmux writes is dropped at its sixth digit, never held whole', () => {
    const f = new TerminalFilter();
    const out = [f.push(bytes(`a${ESC}]`))];
    for (let i = 0; i < 100; i++) out.push(f.push(bytes('0'.repeat(100))));
    out.push(f.push(bytes(`;title${BEL}b`)));
    expect(text(Buffer.concat(out))).toBe('ab');
  });

  it('go when the terminal would read an escape sequence through controls and DEL after ESC', () => {
    // Terminals carry out C0 controls met inside an escape sequence: ESC BEL ] is an OSC to them.
    const out = whole(`${ESC}${BEL}]52;c;eA==${BEL}x${ESC}\u007f]52;c;eA==${BEL}y`);
    expect(out).not.toContain(ESC);
    expect(out).toBe(`${BEL}]52;c;eA==${BEL}x\u007f]52;c;eA==${BEL}y`);
  });

  it('go as UTF-8 encoded C1 controls (C2 9D), ended by BEL or ST', () => {
    expect(whole(`a\xc2\x9d52;c;eA==${BEL}b`)).toBe('ab');
    expect(whole(`a\xc2\x9d52;c;?${ST}b`)).toBe('ab');
  });
});

describe('string sequences (DCS, SOS, PM, APC)', () => {
  it('a tmux passthrough goes whole, with the OSC 52 inside it', () => {
    // Its last ST is left: a lone ST does nothing.
    expect(whole(`a${ESC}Ptmux;${ESC}${ESC}]52;c;aGVsbG8=${BEL}${ST}b`)).toBe(`a${ST}b`);
  });

  it('what a passthrough reaches the terminal as goes: an OSC 52, a query, one for the operator\'s own tmux', () => {
    expect(whole(`a${ESC}P+q544e${ST}b`)).toBe('ab');
    expect(whole(`a${ESC}P$q"p${ST}b`)).toBe('ab');
    const nested = `a${ESC}Ptmux;${ESC}${ESC}]52;c;bmVzdGVk${BEL}${ST}b`;
    expect(whole(nested)).toBe(`a${ST}b`);
  });

  it('SOS, PM and APC go, in 7-bit and UTF-8 encoded C1 form', () => {
    expect(whole(`a${ESC}X sos ${ST}b${ESC}^ pm ${ST}c${ESC}_Gf=100;AAAA${ST}d`)).toBe('abcd');
    expect(whole(`a\xc2\x90+q544e${ST}b\xc2\x98x${ST}c\xc2\x9ex${ST}d\xc2\x9fx${ST}e`)).toBe('abcde');
  });

  it('a string ends where a terminal stops reading it: CAN, SUB, or another escape sequence', () => {
    expect(whole(`a${ESC}Pjunk\u0018b`)).toBe('ab');
    expect(whole(`a${ESC}Pjunk\u001ab`)).toBe('ab');
    expect(whole(`a${ESC}Pjunk${ESC}[1mb`)).toBe(`a${ESC}[1mb`);
    // An ESC right before a removed sequence would join what follows it: it goes too.
    expect(whole(`a${ESC}${ESC}Pjunk${ST}]52;c;eA==${BEL}`)).toBe(`a]52;c;eA==${BEL}`);
  });
});

describe('what passes byte for byte', () => {
  it('titles and other OSC, CSI, charset and mode changes', () => {
    const keep = [
      `${ESC}]0;my title${BEL}`,
      `${ESC}]2;another${ST}`,
      `${ESC}]112${BEL}`,
      `${ESC}]10;?${ST}${ESC}]11;?${ST}`,
      `${ESC}]4;1;rgb:ff/00/00${BEL}`,
      `${ESC}]8;;https://example.com${ST}link${ESC}]8;;${ST}`,
      `${ESC}[1;31mred${ESC}[0m${ESC}[2J${ESC}[H${ESC}[?25l${ESC}[?1049h${ESC}(B${ESC}7${ESC}8${ESC}M`,
      `${ESC}\\`,
    ];
    for (const k of keep) expectAtEverySplit(k, k);
  });

  it('UTF-8, whole or cut inside a character, with bytes 0x90 and 0x9d inside characters', () => {
    // Ð (C3 90), ǝ (C7 9D), ═ (E2 95 90), ✝ (E2 9C 9D), 📝 (F0 9F 93 9D), ° (C2 B0), NBSP (C2 A0).
    const s = Buffer.from('Ð ǝ ═ ✝ 📝 ° \u00a0 東京 👩‍💻', 'utf8');
    expect(s.includes(0x90) && s.includes(0x9d)).toBe(true);
    expectAtEverySplit(text(s), text(s));
  });

  it('a screen redraw as tmux writes it', () => {
    const redraw = `${ESC}[?25l${ESC}[H${ESC}[K${ESC}[1;1H${ESC}[30m${ESC}[42m[claude] 0:bash* ${ESC}(B${ESC}[m${ESC}]0;title${BEL}${ESC}[24;1H$ ls\r\n`;
    expectAtEverySplit(redraw, redraw);
  });
});

describe('chunks', () => {
  it('a chunk with nothing to remove comes back as the same buffer', () => {
    const f = new TerminalFilter();
    for (const s of ['x', 'plain text\r\n', `${ESC}[1;31mred${ESC}[0m`, `${ESC}]0;title${BEL}`, 'Ð ǝ ═ ✝ 📝 °']) {
      const b = Buffer.from(s, 'utf8');
      expect(f.push(b)).toBe(b);
    }
    const big = Buffer.from(`${ESC}[32m${'a'.repeat(100_000)}${ESC}[0m`);
    expect(f.push(big)).toBe(big);
  });

  it('removes sequences cut at every point, and keeps what is around them', () => {
    const cases: Array<[string, string]> = [
      [`ab${ESC}]52;c;aGVsbG8=${BEL}cd`, 'abcd'],
      [`ab${ESC}]52;c;?${ST}cd`, 'abcd'],
      [`ab${ESC}Ptmux;${ESC}${ESC}]52;c;aGVsbG8=${BEL}${ST}cd`, `ab${ST}cd`],
      [`ab${ESC}]0;title${BEL}${ESC}]052;c;eA==${BEL}Ð${ESC}[1m`, `ab${ESC}]0;title${BEL}Ð${ESC}[1m`],
      [`x\xc2\x9d52;c;eA==${ST}\xc2\xb0${ESC}]112${ST}`, `x\xc2\xb0${ESC}]112${ST}`],
      [`x${ESC}P+q544e${ESC}${ESC}[1my`, `x${ESC}[1my`],
    ];
    for (const [s, want] of cases) {
      expect(whole(s)).toBe(want);
      expectAtEverySplit(s, want);
    }
  });

  it('a string that never ends is dropped up to the cap, then output passes again', () => {
    const f = new TerminalFilter({ maxDrop: 1000 });
    expect(text(f.push(bytes(`before${ESC}]52;c;`)))).toBe('before');
    let out = '';
    for (let i = 0; i < 30; i++) out += text(f.push(bytes('A'.repeat(100))));
    // 1000 bytes dropped ("52;c;" after the introducer, then 995 of these), then the rest passes.
    expect(out).toBe('A'.repeat(3000 - 995));
    expect(text(f.push(bytes(`${ESC}[1mok`)))).toBe(`${ESC}[1mok`);
  });

  it('the default cap is 64 KiB, and nothing is held while dropping', () => {
    const f = new TerminalFilter();
    expect(DEFAULT_MAX_DROP).toBe(64 * 1024);
    expect(f.push(bytes(`${ESC}Ptmux;`)).length).toBe(0);
    const chunk = bytes('x'.repeat(4096));
    let passed = 0;
    for (let i = 0; i < 32; i++) passed += f.push(chunk).length;
    expect(passed).toBe(32 * 4096 - (DEFAULT_MAX_DROP - 'tmux;'.length));
    // Output passes whole again.
    expect(f.push(chunk)).toBe(chunk);
  });
});

describe('random streams of the bytes that matter', () => {
  /** A small deterministic generator (mulberry32), so a failure can be replayed. */
  function random(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  /** Bytes and pairs of bytes the filter decides on, so that random streams meet its cases often. */
  const TOKENS: number[][] = [
    [0x1b], [0x1b, 0x5d], [0x1b, 0x50], [0x1b, 0x5c], [0x1b, 0x5b], [0x5d], [0x50], [0x5f], [0x35], [0x32], [0x35, 0x32], [0x30],
    [0x3b], [0x07], [0x5c], [0xc2], [0xc2, 0x9d], [0xc2, 0x90], [0x9d], [0x90], [0x9c], [0x61], [0x01], [0x18], [0x6d], [0xe2, 0x80], [0x7f],
  ];

  /**
   * Where a terminal could start a removed kind of sequence in `out`, read the most lenient way
   * any terminal might: C0 controls and DEL skipped after ESC and inside an OSC number, leading
   * zeros and any number of digits. -1 if nowhere.
   */
  function unsafeAt(out: Buffer): number {
    const skipped = (c: number | undefined): boolean => c !== undefined && ((c < 0x20 && c !== 0x18 && c !== 0x1a && c !== 0x1b) || c === 0x7f);
    const oscIs52 = (p: number): boolean => {
      let digits = '';
      for (let j = p; j < out.length; j++) {
        const c = out[j] as number;
        if (c >= 0x30 && c <= 0x39) digits += String.fromCharCode(c);
        else if (!skipped(c) || c === 0x07) break;
      }
      return digits !== '' && Number(digits) === 52;
    };
    for (let i = 0; i < out.length; i++) {
      if (out[i] === 0x1b) {
        let j = i + 1;
        while (skipped(out[j])) j++;
        const d = out[j];
        if (d === 0x50 || d === 0x58 || d === 0x5e || d === 0x5f) return i;
        if (d === 0x5d && oscIs52(j + 1)) return i;
      } else if (out[i] === 0xc2) {
        const d = out[i + 1];
        if (d === 0x90 || d === 0x98 || d === 0x9e || d === 0x9f) return i;
        if (d === 0x9d && oscIs52(i + 2)) return i;
      }
    }
    return -1;
  }

  it('the output never starts a removed sequence, and does not depend on how the stream is cut', () => {
    const next = random(20240611);
    for (let round = 0; round < 5000; round++) {
      const count = 1 + Math.floor(next() * 30);
      const input = Buffer.from(Array.from({ length: count }, () => TOKENS[Math.floor(next() * TOKENS.length)] as number[]).flat());
      const len = input.length;
      const maxDrop = next() < 0.3 ? 1 + Math.floor(next() * 8) : DEFAULT_MAX_DROP;
      const once = new TerminalFilter({ maxDrop }).push(input);
      const cuts: Buffer[] = [];
      for (let at = 0; at < len; ) {
        const step = 1 + Math.floor(next() * 5);
        cuts.push(input.subarray(at, at + step));
        at += step;
      }
      const cut = run(cuts, new TerminalFilter({ maxDrop }));
      const where = { input: input.toString('hex'), maxDrop };
      expect({ ...where, cut }).toEqual({ ...where, cut: text(once) });
      expect({ ...where, unsafeAt: unsafeAt(once) }).toEqual({ ...where, unsafeAt: -1 });
    }
  });
});
