/**
 * Pure: turning the command string an operator gave `ssh` into words (quotes and backslashes as a
 * POSIX shell reads them, but nothing is ever expanded or run), then into flags and positionals.
 */
import { Limits } from '../../common/protocol';
import { LIMIT_HINTS, parseCpus, parseMemory, parsePids } from '../limits-text';

export class UsageError extends Error {}

/** Splits a command line into words. Throws UsageError for an unterminated quote. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i] ?? '';
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) throw new UsageError('unterminated single quote');
      cur += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new UsageError('unterminated double quote');
        const d = line[i] ?? '';
        if (d === '"') break;
        if (d === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1] ?? '')) {
          cur += line[i + 1];
          i += 2;
        } else {
          cur += d;
          i++;
        }
      }
      inWord = true;
      i++;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[i + 1];
      inWord = true;
      i += 2;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      i++;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/**
 * `string`: a value, never empty; `text`: a value that may be empty (`--dns ''` clears);
 * `boolean`: none; `list`: a value, never empty, that may be given again (`--env A=1 --env B=2`).
 */
export type FlagSpec = Record<string, 'string' | 'text' | 'boolean' | 'list'>;

export interface Parsed {
  flags: Record<string, string | boolean | string[]>;
  positionals: string[];
}

/**
 * Parses `--name value`, `--name=value` and boolean `--flag`. A flag with a value takes the next
 * word (so `--port -1` works), except one starting with `--`, which is taken for the next flag:
 * such a value must be written `--name=--value`. Throws UsageError naming an unknown, valueless
 * or empty flag (where its kind refuses empty), or a surplus argument.
 */
export function parseFlags(words: string[], spec: FlagSpec, maxPositionals: number): Parsed {
  const flags: Record<string, string | boolean | string[]> = {};
  const positionals: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] ?? '';
    if (!w.startsWith('--') || w === '--') {
      positionals.push(w);
      continue;
    }
    const eq = w.indexOf('=');
    const name = eq === -1 ? w.slice(2) : w.slice(2, eq);
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown flag --${name}`);
    if (kind === 'boolean') {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let value: string;
    if (eq !== -1) {
      value = w.slice(eq + 1);
    } else {
      const next = words[i + 1];
      if (next === undefined) throw new UsageError(`--${name} needs a value`);
      if (next.startsWith('--')) throw new UsageError(`--${name} needs a value (one that starts with -- is written --${name}=${next})`);
      value = next;
      i++;
    }
    if (value === '' && (kind === 'string' || kind === 'list')) throw new UsageError(`--${name} must not be empty`);
    if (kind === 'list') {
      const prior = flags[name];
      flags[name] = Array.isArray(prior) ? [...prior, value] : [value];
    } else {
      flags[name] = value;
    }
  }
  if (positionals.length > maxPositionals) throw new UsageError(`unexpected argument: ${positionals[maxPositionals]}`);
  return { flags, positionals };
}

type FlagValue = string | boolean | string[] | undefined;

/** The values of a `list` flag ([] when not given). */
export function listFlag(v: FlagValue): string[] {
  return Array.isArray(v) ? v : [];
}

/**
 * Variables from `--env NAME=VALUE` flags (the value may hold `=` and be empty); undefined when
 * none. Throws UsageError for a word without `=`, or a name given twice.
 */
export function envFlags(v: FlagValue): Record<string, string> | undefined {
  const words = listFlag(v);
  if (words.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env must be NAME=VALUE, got: ${w}`);
    const name = w.slice(0, eq);
    if (name in env) throw new UsageError(`--env ${name} is given twice`);
    env[name] = w.slice(eq + 1);
  }
  return env;
}

/** A whole number from a flag. Throws UsageError naming the flag. */
export function intFlag(v: FlagValue, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new UsageError(`--${name} must be a whole number`);
  return Number(v);
}

export function strFlag(v: FlagValue): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The flags that set a session's limits, shared by create and edit. */
export const LIMIT_FLAGS: FlagSpec = { memory: 'string', cpus: 'string', pids: 'string' };

function limitFlag(v: FlagValue, flag: string, key: keyof typeof LIMIT_HINTS, parse: (t: string) => number | null): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'string' ? parse(v) : null;
  if (n === null) throw new UsageError(`--${flag} must be ${LIMIT_HINTS[key]}`);
  return n;
}

/** A memory size in MB: `512`, `512m` or `4g`. Throws UsageError naming the flag. */
export function memoryFlag(v: FlagValue): number | undefined {
  return limitFlag(v, 'memory', 'memoryMb', parseMemory);
}

/** A CPU count (`0.5`, `2`). Throws UsageError naming the flag. */
export function cpusFlag(v: FlagValue): number | undefined {
  return limitFlag(v, 'cpus', 'cpus', parseCpus);
}

/** The limits an operator asked for with --memory, --cpus and --pids; undefined when none. */
export function limitsFromFlags(flags: Parsed['flags']): Limits | undefined {
  const limits = { memoryMb: memoryFlag(flags.memory), cpus: cpusFlag(flags.cpus), pids: limitFlag(flags.pids, 'pids', 'pids', parsePids) };
  const given = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
  return Object.keys(given).length > 0 ? given : undefined;
}
