/**
 * Seeded hostile input for the hostile-* fault suites: strings no field should ever act on, random
 * JSON values, and mutations of valid frames (types changed, fields dropped or added, deep
 * nesting, oversized lines, wrong versions, unknown ops, then bytes flipped, inserted, cut or made
 * invalid UTF-8). Pure apart from the Rng it is given, so a seed replays the same input.
 */
import { Rng } from '../helpers/seed';

/**
 * Strings that would do something if anything ever handed them to a shell, a path, a terminal
 * or a parser: `canary` is the file a shell that ran them would create.
 */
export function hostileStrings(canary: string): string[] {
  return [
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `;touch ${canary}`,
    `a; touch ${canary}`,
    `| touch ${canary}`,
    `&& touch ${canary}`,
    `\ntouch ${canary}\n`,
    `'; touch ${canary}; '`,
    `"; touch ${canary}; "`,
    `\${IFS}touch\${IFS}${canary}`,
    `a$(touch${'\t'}${canary})b`,
    'a\nb',
    'a\rb',
    'a\u0000b',
    '\u0000',
    '\n',
    '\t',
    ' ',
    '',
    '../../../etc/passwd',
    '..',
    '.',
    '/',
    '/etc/passwd',
    '..\\..\\x',
    '%2e%2e%2f',
    'a/../b',
    'é',
    'Ünïcödé',
    '日本語',
    '😀',
    '\u202eevil',
    '\u200b',
    '\ufeff',
    'a\u0301',
    '\ud800',
    '\udfff',
    '\u001b[2J\u001b[H',
    '\u001b]0;title\u0007',
    '\u0007',
    '\u007f',
    '\u0085',
    "'",
    '"',
    '\\',
    '`',
    '$',
    '*',
    '?',
    '~',
    '!',
    '#',
    '{}',
    '[]',
    '<>',
    '&',
    '|',
    ';',
    '%s%n%x',
    '-',
    '-rf',
    '--help',
    'x'.repeat(64),
    'x'.repeat(65),
    'x'.repeat(300),
    'x'.repeat(5000),
    'é'.repeat(2000),
    'A-Z_ok',
    'UPPER',
    'a.b',
    'a..b',
    'xn--80ak6aa92e',
  ];
}

/** Bytes that are not UTF-8 (lone continuation, overlong, truncated, out of range). */
const BAD_UTF8: readonly Buffer[] = [
  Buffer.from([0xff]),
  Buffer.from([0xfe, 0xff]),
  Buffer.from([0x80]),
  Buffer.from([0xc0, 0x80]),
  Buffer.from([0xc3]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf4, 0x90, 0x80, 0x80]),
];

/** Single bytes that matter to a line-based JSON reader. */
const SPECIAL_BYTES = [0x00, 0x0a, 0x0d, 0x20, 0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x5c, 0x1b, 0x7f, 0xff];

const NUMBERS = [0, -0, -1, 1, 1.5, -2, 65535, 65536, 2 ** 31, 2 ** 53, 2 ** 64, 1e308, -1e308, 5e-324];

/** Text in any script, controls included: 0-40 code units. */
export function randomText(rng: Rng, max = 40): string {
  const n = rng.int(0, max);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    if (r < 0.6) s += String.fromCharCode(rng.int(0x20, 0x7e));
    else if (r < 0.75) s += String.fromCharCode(rng.int(0, 0x1f));
    else if (r < 0.9) s += String.fromCodePoint(rng.int(0xa0, 0x2fff));
    else if (r < 0.95) s += String.fromCodePoint(rng.int(0x1f300, 0x1f64f));
    else s += String.fromCharCode(rng.int(0xd800, 0xdfff));
  }
  return s;
}

/** A JSON value of any kind, nested at most a few levels. */
export function randomJson(rng: Rng, strings: readonly string[], depth = 0): unknown {
  switch (rng.int(0, depth >= 3 ? 6 : 8)) {
    case 0:
      return null;
    case 1:
      return rng.next() < 0.5;
    case 2:
      return rng.int(-100_000, 100_000);
    case 3:
      return rng.pick(NUMBERS);
    case 4:
      return rng.pick(strings);
    case 5:
    case 6:
      return randomText(rng);
    case 7:
      return Array.from({ length: rng.int(0, 4) }, () => randomJson(rng, strings, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(0, 4); i > 0; i--) o[rng.next() < 0.5 ? randomText(rng, 8) : rng.pick(strings)] = randomJson(rng, strings, depth + 1);
      return o;
    }
  }
}

/** What a frame mutation may draw on, per subsystem. */
export interface FrameVocabulary {
  /** Values a field may be set to (besides random ones): hostile strings, ids, names. */
  strings: readonly string[];
  /** The top-level keys and the keys one level down (in `nested`) worth hitting. */
  keys: readonly string[];
  nested?: string;
  /** Versions, ops and the like to swap in for the field named. */
  swaps: Record<string, readonly unknown[]>;
  /** The line limit of the reader: oversized frames go past it. */
  maxBytes: number;
}

const PLACEHOLDER = '\u0000berth-nest\u0000';

/**
 * One hostile frame made from a valid one (without its newline): 0-3 changes to its structure,
 * then, now and then, changes to its bytes. A frame left unchanged is valid, on purpose: valid
 * requests go among the junk.
 */
export function mutateFrame(rng: Rng, template: Record<string, unknown>, v: FrameVocabulary): Buffer {
  const obj = structuredClone(template);
  let nest: { open: string; close: string } | null = null;
  const holder = (): Record<string, unknown> => {
    const inner = v.nested ? obj[v.nested] : undefined;
    return inner && typeof inner === 'object' && !Array.isArray(inner) && rng.next() < 0.5 ? (inner as Record<string, unknown>) : obj;
  };
  const someKey = (o: Record<string, unknown>): string => (rng.next() < 0.8 && Object.keys(o).length > 0 ? rng.pick(Object.keys(o)) : rng.pick(v.keys));
  for (let k = rng.int(0, 3); k > 0; k--) {
    const o = holder();
    const key = someKey(o);
    switch (rng.int(0, 9)) {
      case 0:
        o[key] = randomJson(rng, v.strings);
        break;
      case 1:
        o[key] = rng.pick(v.strings);
        break;
      case 2:
        delete o[key];
        break;
      case 3:
        o[rng.next() < 0.5 ? randomText(rng, 12) : rng.pick(v.keys)] = randomJson(rng, v.strings);
        break;
      case 4: {
        const field = rng.pick(Object.keys(v.swaps));
        obj[field] = rng.pick(v.swaps[field] ?? [null]);
        break;
      }
      case 5: {
        // Deep nesting, written as text: the test's own JSON.stringify could not go this deep.
        const depth = rng.pick([50, 1000, 5000, 12_000, 25_000]);
        const arrays = rng.next() < 0.5;
        nest = arrays ? { open: '['.repeat(depth), close: ']'.repeat(depth) } : { open: '{"a":'.repeat(depth), close: '}'.repeat(depth) };
        o[key] = PLACEHOLDER;
        break;
      }
      case 6:
        o[key] = 'x'.repeat(v.maxBytes + rng.int(1, 4096));
        break;
      case 7:
        o[key] = rng.pick([[], {}, '', 0, null, true, [structuredClone(o[key] ?? null)]]);
        break;
      case 8:
        if (v.nested) obj[v.nested] = rng.pick([null, [], 'params', 42, [{}], structuredClone(obj)]);
        break;
      default:
        o[key] = typeof o[key] === 'string' ? `${o[key] as string}${rng.pick(v.strings)}` : String(o[key]);
    }
  }
  let text = JSON.stringify(obj) ?? 'null';
  if (nest) {
    const n = nest as { open: string; close: string };
    text = text.replace(JSON.stringify(PLACEHOLDER), () => `${n.open}1${n.close}`);
  }
  let bytes: Buffer = Buffer.from(text, 'utf8');
  if (rng.next() < 0.4) bytes = mutateBytes(rng, bytes);
  return bytes;
}

/** 1-4 byte-level changes: flips, inserts (invalid UTF-8, newlines, NUL), cuts, repeats, a cut-off end. */
export function mutateBytes(rng: Rng, input: Buffer): Buffer {
  let b: Buffer = input;
  for (let k = rng.int(1, 4); k > 0; k--) {
    const at = rng.int(0, b.length);
    switch (rng.int(0, 6)) {
      case 0:
        if (b.length > 0) {
          b = Buffer.from(b);
          const i = Math.min(at, b.length - 1);
          b[i] = (b[i] ?? 0) ^ (1 << rng.int(0, 7));
        }
        break;
      case 1:
        b = Buffer.concat([b.subarray(0, at), Buffer.from([rng.pick(SPECIAL_BYTES)]), b.subarray(at)]);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), rng.pick(BAD_UTF8), b.subarray(at)]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + rng.int(1, 16)))]);
        break;
      case 4:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.max(0, at - rng.int(1, 32)), at), b.subarray(at)]);
        break;
      case 5:
        b = b.subarray(0, at);
        break;
      default:
        b = Buffer.concat([Buffer.from(rng.pick(['\n', '\r\n', ' \n', '\n\n'])), b]);
    }
  }
  return b;
}

/** A frame that was never valid: random bytes, a bare JSON value, blank space, an empty line. */
export function junkFrame(rng: Rng, strings: readonly string[]): Buffer {
  switch (rng.int(0, 4)) {
    case 0:
      return Buffer.from(Array.from({ length: rng.int(1, 300) }, () => rng.int(0, 255)));
    case 1:
      return Buffer.from(JSON.stringify(randomJson(rng, strings)) ?? 'null', 'utf8');
    case 2:
      return Buffer.from(rng.pick(['', ' ', '\t', '\r', '  \r']));
    case 3:
      return Buffer.from(randomText(rng, 200), 'utf8');
    default:
      return Buffer.from(rng.pick(['{', '}', '[', 'null', 'true', '1', '""', '{}', '[]', '{"v":1}', '{"id":null}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}']));
  }
}
