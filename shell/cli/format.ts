/** Pure: how sessions and agents read on a terminal and in `--json`. */
import { SessionEntry } from '../../common/protocol';
import { AgentView, ClusterSession } from '../cluster/view';

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
  attached: string[];
  restartNeeded: boolean;
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
  hostname: string | null;
  sessions: number;
  stats: AgentView['stats'];
}

/** The `--json` shape of one session. */
export function sessionJson(s: ClusterSession): SessionJson | BrokenSessionJson {
  const e: SessionEntry = s.entry;
  const common = { id: s.id, agent: s.agent, state: stateWord(s.state), lock: e.lock, container: e.container };
  if (e.kind === 'broken') return { ...common, name: null, broken: e.reason };
  const m = e.meta;
  return {
    ...common,
    name: m.name,
    protocol: m.protocol,
    port: m.port,
    dns: m.dns,
    createdAt: m.createdAt,
    lastAccessedAt: m.lastAccessedAt,
    createdBy: m.createdBy,
    attached: e.attached,
    restartNeeded: e.restartNeeded,
  };
}

export function agentJson(a: AgentView): AgentJson {
  return {
    id: a.id,
    status: a.status,
    reason: a.reason || null,
    version: a.hello?.version ?? null,
    hostname: a.hello?.hostname ?? null,
    sessions: a.sessions.size,
    stats: a.stats,
  };
}

/** A plain table: columns padded to their widest cell. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

/** "2026-11-21 14:05" from an ISO time; "-" for none. */
export function shortTime(iso: string | null): string {
  return iso ? iso.slice(0, 16).replace('T', ' ') : '-';
}

export function sessionRow(s: ClusterSession): string[] {
  const e = s.entry;
  if (e.kind === 'broken') return [s.id.slice(0, 8), `(broken: ${e.reason})`, s.agent, s.state, '', '', '', '', ''];
  const m = e.meta;
  const state = e.restartNeeded ? `${s.state}*` : s.state;
  return [
    s.id.slice(0, 8),
    m.name,
    s.agent,
    state,
    m.port > 0 ? `${m.port}/${m.protocol}` : '-',
    m.dns || '-',
    shortTime(m.createdAt),
    shortTime(m.lastAccessedAt),
    e.attached.join(',') || '-',
  ];
}

export const SESSION_HEAD = ['#', 'NAME', 'AGENT', 'STATE', 'PORT', 'DNS', 'CREATED', 'LAST-USED', 'ATTACHED'];

/** One line saying what an op did. */
export function summary(verb: string, s: ClusterSession): string {
  const e = s.entry;
  const name = e.kind === 'session' ? e.meta.name : '(broken)';
  const port = e.kind === 'session' && e.meta.port > 0 ? `, port ${e.meta.port}/${e.meta.protocol}` : '';
  const dns = e.kind === 'session' && e.meta.dns ? `, dns ${e.meta.dns}` : '';
  return `${verb} ${name} (${s.id.slice(0, 8)}) on ${s.agent}: ${stateWord(s.state)}${port}${dns}\n`;
}
