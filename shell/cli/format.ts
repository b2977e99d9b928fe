/**
 * Pure: how sessions and agents read on a terminal and in `--json`. Every text an agent or a session
 * can influence is made inert here before it is printed (common/terminal-text.ts); the `--json`
 * shapes keep the values as they are (commands.ts prints them with inertJson).
 */
import { Activity, GitGlance, LockInfo, SessionEntry } from '../../common/protocol';
import { BuildInfo, UNKNOWN } from '../../common/build-info';
import { inertBlock, inertCell } from '../../common/terminal-text';
import { AgentView, ClusterSession, perEntry } from '../cluster/view';
import { headroom } from '../cluster/placement';
import { ageText } from '../jobs-text';

const STATE_WORDS = { '-': 'stopped', R: 'running', C: 'connected', L: 'locked', '?': 'unknown' } as const;
export type StateWord = (typeof STATE_WORDS)[keyof typeof STATE_WORDS];

export function stateWord(state: ClusterSession['state']): StateWord {
  return STATE_WORDS[state];
}

type Entry = ClusterSession['entry'];
type WorkingEntry = Extract<Entry, { kind: 'session' }>;
interface SessionJsonBase {
  id: string;
  agent: string;
  state: StateWord;
  lock: Entry['lock'];
  container: Entry['container'];
}

/** The `--json` shape of a session (what scripts read: a contract). */
export interface SessionJson extends SessionJsonBase {
  name: string;
  protocol: WorkingEntry['meta']['protocol'];
  port: number;
  dns: string;
  createdAt: string;
  lastAccessedAt: string | null;
  createdBy: string;
  /** What the operator asked for; the agent's defaults fill the rest. */
  limits: { memoryMb?: number; cpus?: number; pids?: number };
  /** What tmux runs; null: the agent's default command. */
  command: string | null;
  /** The session's own variables (not secret; the agent's own are never shown). */
  env: Record<string, string>;
  /** Its project: the repository and the session's branch; null for none. */
  repo: { url: string; branch: string } | null;
  attached: string[];
  restartNeeded: boolean;
  /** Running but frozen for a moment (a clone copying its home). */
  paused: boolean;
  /** What its program last reported (state, since, detail); null before any report. */
  activity: Activity | null;
  /** Its project at a glance (branch, ahead, behind, changed, subject); null for none. */
  git: GitGlance | null;
}

/** The `--json` shape of a session whose session.json is unreadable. */
export interface BrokenSessionJson extends SessionJsonBase {
  name: null;
  broken: string;
}

/** The `--json` shape of one agent. */
export interface AgentJson {
  id: string;
  status: AgentView['status'];
  reason: string | null;
  version: string | null;
  /** The git commit the agent was built from and when; null when it does not say (older agents). */
  commit: string | null;
  builtAt: string | null;
  hostname: string | null;
  sessions: number;
  /** No new sessions (an admin's `agent drain`); those it has keep running. */
  drained: boolean;
  /** Its free share (0-1) of its tightest resource, what placement ranks by (cluster/placement.ts). */
  headroom: number;
  stats: AgentView['stats'];
}

/** The `--json` shape of one session. */
export function sessionJson(s: ClusterSession): SessionJson | BrokenSessionJson {
  const e: SessionEntry = s.entry;
  // Whole literals, not spread from a common part: V8 builds these about ten times faster
  // (`list --json` of 10,000 sessions took over 200 ms in this function alone).
  if (e.kind === 'broken') return { id: s.id, agent: s.agent, state: stateWord(s.state), lock: e.lock, container: e.container, name: null, broken: e.reason };
  const m = e.meta;
  return {
    id: s.id,
    agent: s.agent,
    state: stateWord(s.state),
    lock: e.lock,
    container: e.container,
    name: m.name,
    protocol: m.protocol,
    port: m.port,
    dns: m.dns,
    createdAt: m.createdAt,
    lastAccessedAt: m.lastAccessedAt,
    createdBy: m.createdBy,
    limits: m.limits ?? {},
    command: m.command ?? null,
    env: m.env ?? {},
    repo: m.repo ?? null,
    attached: e.attached,
    restartNeeded: e.restartNeeded,
    paused: e.container?.paused === true,
    activity: e.activity ?? null,
    git: e.git ?? null,
  };
}

export function agentJson(a: AgentView): AgentJson {
  return {
    id: a.id,
    status: a.status,
    reason: a.reason || null,
    version: a.hello?.version ?? null,
    commit: a.hello?.commit ?? null,
    builtAt: a.hello?.builtAt ?? null,
    hostname: a.hello?.hostname ?? null,
    sessions: a.sessions.size,
    drained: a.drained,
    headroom: Math.round(headroom(a.stats) * 100) / 100,
    stats: a.stats,
  };
}

/** Longest a free-text cell (a broken session's reason, an agent's note) is shown. */
export const NOTE_MAX = 120;
/** Longest an error message is shown. */
export const MESSAGE_MAX = 4000;

/** Each column's widest cell, the head's included (a loop: a spread of 10,000 rows would not do). */
export function columnWidths(head: readonly string[], rows: ReadonlyArray<readonly string[]>): number[] {
  const widths = head.map((h) => h.length);
  for (const r of rows) for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i] ?? 0, (r[i] ?? '').length);
  return widths;
}

/** A plain table: every cell made inert on one line, columns padded to their widest cell. */
export function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const safe = [head, ...rows].map((r) => r.map((c) => inertCell(c)));
  const widths = columnWidths(head, safe);
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return safe.map(line).join('\n') + '\n';
}

/** "2026-11-21 14:05" from an ISO time; "-" for none. */
export function shortTime(iso: string | null): string {
  return iso ? iso.slice(0, 16).replace('T', ' ') : '-';
}

/** A session's row of the table (the CLI's and the menu's), each cell inert on one line. */
export const sessionRow: (s: ClusterSession) => readonly string[] = perEntry((s) => Object.freeze(formatRow(s)));

function formatRow(s: ClusterSession): string[] {
  const e = s.entry;
  const id = inertCell(s.id.slice(0, 8));
  const agent = inertCell(s.agent);
  if (e.kind === 'broken') return [id, `(broken: ${inertCell(e.reason, NOTE_MAX)})`, agent, s.state, '-', '', '', '', '', ''];
  const m = e.meta;
  const state = `${s.state}${e.restartNeeded ? '*' : ''}${e.container?.paused ? ' (paused)' : ''}`;
  return [
    id,
    inertCell(m.name),
    agent,
    state,
    activityCell(s),
    m.port > 0 ? `${m.port}/${m.protocol}` : '-',
    inertCell(m.dns) || '-',
    inertCell(shortTime(m.createdAt)),
    inertCell(shortTime(m.lastAccessedAt)),
    inertCell(e.attached.join(',')) || '-',
  ];
}

export const SESSION_HEAD = ['#', 'NAME', 'AGENT', 'STATE', 'ACTIVITY', 'PORT', 'DNS', 'CREATED', 'LAST-USED', 'ATTACHED'];
/** The ACTIVITY column's index in SESSION_HEAD. */
export const ACTIVITY_COLUMN = 4;

/** What a session's program last reported, as its cell: the state, "-" for none ("?" while its agent is away). */
export function activityCell(s: ClusterSession): string {
  const a = s.entry.kind === 'session' ? s.entry.activity : null;
  if (!a) return '-';
  return s.agentStatus === 'online' ? a.state : `${a.state}?`;
}

/** An agent's row of the table, each cell inert on one line. */
export function agentRow(a: AgentView): string[] {
  const s = a.stats;
  const gb = (mb: number): string => (mb / 1024).toFixed(1);
  return [
    inertCell(a.id),
    a.drained ? `${a.status}, drained` : a.status,
    String(a.sessions.size),
    s ? String(s.containersRunning) : '-',
    s ? `${s.load1.toFixed(1)}/${s.cpus}` : '-',
    s ? `${gb(s.memoryTotalMb - s.memoryFreeMb)}/${gb(s.memoryTotalMb)} GB` : '-',
    s?.diskFreeMb !== undefined ? `${gb(s.diskFreeMb)} GB` : '-',
    agentVersion(a),
    inertCell(a.reason, NOTE_MAX),
  ];
}

/** An agent's version with its commit's start, when it said them ("0.1.0 3f2a9c1"); "-" before its hello. Inert. */
export function agentVersion(a: AgentView): string {
  const h = a.hello;
  if (!h) return '-';
  const commit = h.commit && h.commit !== UNKNOWN ? ` ${inertCell(h.commit.slice(0, 7))}` : '';
  return `${inertCell(h.version, NOTE_MAX)}${commit}`;
}

/** The agents table: sessions, running containers, load/CPUs, memory used/total, disk free under the sessions root. */
export const AGENT_HEAD = ['AGENT', 'STATUS', 'SESSIONS', 'RUNNING', 'LOAD/CPUS', 'MEMORY', 'DISK FREE', 'VERSION', 'NOTE'];

/** One line saying what an op did. */
export function summary(verb: string, s: ClusterSession): string {
  const e = s.entry;
  const name = e.kind === 'session' ? inertCell(e.meta.name) : '(broken)';
  const port = e.kind === 'session' && e.meta.port > 0 ? `, port ${e.meta.port}/${e.meta.protocol}` : '';
  const dns = e.kind === 'session' && e.meta.dns ? `, dns ${inertCell(e.meta.dns)}` : '';
  const paused = s.entry.container?.paused ? ', paused' : '';
  return `${verb} ${name} (${inertCell(s.id.slice(0, 8))}) on ${inertCell(s.agent)}: ${stateWord(s.state)}${paused}${port}${dns}\n`;
}

/** The line a refused or failed command prints on stderr; the message may span lines. */
export function errorLine(code: string, message: string): string {
  return `error: ${code}: ${inertBlock(message, MESSAGE_MAX)}\n`;
}

/**
 * What a preview says above the screen's lines: the session, its activity, its project's git
 * state and its lock, when known ("web on agent-1 · working: Bash · main +1 -0, 3 changed, last:
 * fix · locked by alice for clone, 12 s"). The lock's age is as of `now`. Inert.
 */
export function previewHeadline(s: ClusterSession, now: Date = new Date()): string {
  if (s.entry.kind !== 'session') return inertCell(s.id);
  const parts = [`${inertCell(s.entry.meta.name)} on ${inertCell(s.agent)}`];
  const a = s.entry.activity;
  if (a) parts.push(a.detail ? `${a.state}: ${inertCell(a.detail, 80)}` : a.state);
  const g = s.entry.git;
  if (g) {
    const ab = g.ahead === null ? '' : ` +${g.ahead} -${g.behind ?? 0}`;
    parts.push(`${inertCell(g.branch)}${ab}, ${g.changed} changed${g.subject ? `, last: ${inertCell(g.subject, 80)}` : ''}`);
  }
  if (s.entry.lock) parts.push(lockText(s.entry.lock, now));
  return parts.join(' · ');
}

/** Who holds a lock, for what and how long: "locked by alice for clone, 12 s" (", stale" once stale). Inert. */
export function lockText(l: LockInfo, now: Date): string {
  return `locked by ${inertCell(l.operator, 64)} for ${inertCell(l.op, 32)}, ${ageText(l.since, now)}${l.stale ? ', stale' : ''}`;
}

/** The operators other than `me` attached to a session, each once, in the order they came. */
export function othersAttached(s: ClusterSession, me: string): string[] {
  const attached = s.entry.kind === 'session' ? s.entry.attached : [];
  return [...new Set(attached)].filter((n) => n !== me);
}

/** Names as a sentence says them: "bob", "bob and carol", "alice, bob and carol". Inert. */
export function nameList(names: string[]): string {
  const safe = names.map((n) => inertCell(n, 64));
  const last = safe.pop();
  if (last === undefined) return '';
  return safe.length === 0 ? last : `${safe.join(', ')} and ${last}`;
}

/** "alice is attached", "alice and bob are attached". Inert. */
export function attachedSentence(names: string[]): string {
  return `${nameList(names)} ${names.length === 1 ? 'is' : 'are'} attached`;
}

/**
 * What `version` says of a build (the shell's own, or `berth version`'s): its version and
 * protocol on the first line ("berth 0.1.0 (protocol 1)"), then its commit and build date.
 */
export function versionText(b: BuildInfo, protocol: number): string {
  return `berth ${inertCell(b.version)} (protocol ${protocol})\n${buildLine(b)}\n`;
}

/** "commit 3f2a…, built 2026-12-03T10:04:11Z" (the whole commit, or `unknown`). Inert. */
export function buildLine(b: BuildInfo): string {
  return `commit ${inertCell(b.commit, 64)}, built ${inertCell(b.builtAt, 40)}`;
}
