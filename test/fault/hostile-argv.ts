/**
 * Seeded command lines for the shell's exec CLI: real commands and flags with valid and hostile
 * values, junk words, and quoting done right, wrong or not at all. Only commands that cannot
 * destroy what a suite set up are used: no delete, kill, move, override, restore, watch (it never
 * ends by itself), agent or operator (they change the fleet), and no --yes.
 */
import { Rng } from '../helpers/seed';

/** What the line generator names: the suite's sessions and the strings to mix in. */
export interface ArgvWorld {
  /** Words that name sessions: names, ids, id prefixes (and ones that name none). */
  refs: readonly string[];
  hostile: readonly string[];
}

export const COMMANDS = ['list', 'agents', 'whoami', 'version', 'help', 'create', 'edit', 'clone', 'restart', 'background', 'preview', 'ops', 'trash', 'audit', 'attach'] as const;
type Command = (typeof COMMANDS)[number];
/** How often each is drawn: the ones with the most to parse, most. */
const WEIGHTED: readonly Command[] = ['create', 'create', 'create', 'create', 'edit', 'edit', 'edit', 'edit', 'clone', 'clone', 'list', 'list', 'restart', 'preview', 'audit', ...COMMANDS];
const JUNK_COMMANDS = ['', 'lst', 'LIST', 'rm', 'sh', 'bash', '-c', 'exec', 'delete-all', 'list;whoami', 'list|whoami', '../../bin/sh', '/bin/sh', 'help\u0000', 'whöami', 'create\u200b', '--json', '-h', '$SHELL'];

/** Each command's own flags, and whether it takes a REF. */
const OWN: Record<Command, { ref: boolean; flags: readonly string[] }> = {
  list: { ref: false, flags: ['--json', '--agent', '--state', '--activity', '--name'] },
  agents: { ref: false, flags: ['--json'] },
  whoami: { ref: false, flags: ['--json'] },
  version: { ref: false, flags: ['--json'] },
  help: { ref: false, flags: [] },
  ops: { ref: false, flags: ['--json'] },
  trash: { ref: false, flags: ['--json'] },
  create: { ref: false, flags: ['--name', '--name', '--name', '--json', '--op-id', '--agent', '--protocol', '--port', '--dns', '--dns', '--memory', '--cpus', '--pids', '--command', '--env', '--repo', '--branch'] },
  edit: { ref: true, flags: ['--json', '--op-id', '--name', '--protocol', '--port', '--dns', '--dns', '--memory', '--cpus', '--pids', '--command', '--env', '--unset-env'] },
  clone: { ref: true, flags: ['--json', '--op-id', '--name'] },
  restart: { ref: true, flags: ['--json', '--op-id'] },
  background: { ref: true, flags: ['--json', '--op-id'] },
  preview: { ref: true, flags: ['--json', '--lines'] },
  audit: { ref: false, flags: ['--json', '--since', '--operator', '--session', '--op', '--limit'] },
  attach: { ref: true, flags: ['--read-only'] },
};

/** Each flag with values worth trying: valid ones, edge ones and wrong ones. */
const FLAG_VALUES: Record<string, readonly string[]> = {
  '--json': [],
  '--read-only': [],
  '--name': ['fzn-1', 'fzn-2', 'fzn-3', 'fzn-4', 'fzn-5', 'fzn-6', 'x'.repeat(64), 'a b', 'Ä'],
  '--agent': ['agent-1', 'agent-2', 'agent-3', 'AGENT-1', 'agent-1,agent-2'],
  '--protocol': ['tcp', 'udp', 'sctp', 'TCP', ''],
  '--port': ['0', '-1', '22', '65535', '65536', '1.5', 'abc', '-2', '08080', '1e3', ' 80'],
  '--dns': ['fzd-1', 'fzd-2', 'fzd-3', '', 'UPPER', 'a.b', '-x', 'x'.repeat(63), 'x'.repeat(64)],
  '--memory': ['512', '4g', '512m', '0', '-1', '1e9', 'lots', '99999999999999999999'],
  '--cpus': ['0.5', '2', '0', '1000', 'x', '-1'],
  '--pids': ['64', '0', '1e6', '16', '-5'],
  '--command': ['bash', 'sleep 1', '', 'x'.repeat(1001)],
  '--env': ['A=1', 'B=two words', 'HOME=/', 'LD_PRELOAD=/x', 'BAD NAME=1', '=x', 'A', 'A=', '9X=1'],
  '--unset-env': ['A', 'HOME', '9X', ''],
  '--repo': ['ext::sh -c x', '-uhello', 'file:///nonexistent', '/nonexistent', 'https://', 'ssh://127.0.0.1:1/x.git', ''],
  '--branch': ['main', '../x', '-x', 'a..b', 'x.lock', 'ok/branch'],
  '--lines': ['1', '40', '500', '501', '0', '-1', 'x'],
  '--since': ['10m', '2h', '3d', '2026-01-01', 'x', '-1m', '99999d'],
  '--operator': ['alice', 'bob', 'nobody', '../x'],
  '--session': ['fz-one', 'x', '*'],
  '--op': ['create', 'edit', 'x'],
  '--limit': ['1', '1000', '1001', '0', '-1', '99999999999999999999'],
  '--state': ['running', 'stopped', 'running,stopped', 'x'],
  '--activity': ['none', 'working', 'x'],
  '--op-id': ['opid-12345678', 'opid-fixed-x', 'short', 'x'.repeat(65)],
  '--to': ['agent-2'],
  '--reason': ['why'],
};
const FLAGS = Object.keys(FLAG_VALUES);
const JUNK_FLAGS = ['--', '---', '--=', '-x', '--json=1', '--name=', '--port=-1', '--dns=', '--read-only=yes', '--nope', '--NAME', '-', '--name=--json'];

/** One word, quoted so that the shell's word splitting gives it back exactly. */
export function quoted(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A word as written: mostly quoted right, sometimes bare, sometimes in double quotes with escapes. */
function written(rng: Rng, word: string): string {
  const r = rng.next();
  if (r < 0.75 || word === '') return quoted(word);
  if (r < 0.9) return word;
  return `"${word.replace(/["\\$`]/g, (c) => `\\${c}`)}"`;
}

/** Longest line made: an SSH exec request has to fit one packet. */
const MAX_LINE = 12_000;

/**
 * One command line: mostly a command with its REF and its own flags (their values valid, edge or
 * hostile), with now and then a flag of another command, a junk word or a junk command.
 */
export function commandLine(rng: Rng, w: ArgvWorld): string {
  const junk = rng.next() < 0.1;
  const cmd = junk ? (rng.next() < 0.5 ? rng.pick(JUNK_COMMANDS) : rng.pick(w.hostile)) : rng.pick(WEIGHTED);
  const own = OWN[cmd as Command] ?? { ref: false, flags: FLAGS };
  const words: string[] = [cmd];
  if (own.ref && rng.next() < 0.9) words.push(rng.pick(w.refs));
  for (let n = rng.int(0, 4); n > 0; n--) {
    const r = rng.next();
    if (r < 0.05) words.push(rng.pick(rng.next() < 0.5 ? w.refs : w.hostile));
    else if (r < 0.1 || own.flags.length === 0) words.push(rng.next() < 0.7 ? rng.pick(FLAGS) : rng.pick(JUNK_FLAGS));
    else {
      const flag = rng.pick(own.flags);
      const values = FLAG_VALUES[flag] ?? [];
      words.push(flag);
      if (values.length > 0) words.push(rng.next() < 0.75 ? rng.pick(values) : rng.pick(w.hostile));
    }
  }
  let line = words.map((word) => written(rng, word)).join(rng.pick([' ', ' ', ' ', '  ', '\t', ' \n ']));
  if (rng.next() < 0.02) line += rng.pick(["'", '"', '\\', ' "unterminated']);
  return line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line;
}
