/**
 * Pure: where a new session goes when the operator names no agent. Only online agents that are
 * not drained and not at their session cap take one; among them the one with the most headroom:
 * the smallest of its free shares of CPU (1 - load / CPUs), memory and disk under the sessions
 * root, as its last `stats` said. An agent that sent none yet counts as half free. Ties (within
 * HEADROOM_TIE) go to the agent with fewer sessions, then the first by id.
 */
import { BerthError } from '../../common/errors';
import type { HostStats } from '../../common/protocol';
import type { AgentView } from './view';

/** Headrooms this close count as equal. */
const HEADROOM_TIE = 0.05;
/** What an agent that sent no figures yet counts as. */
const UNKNOWN_HEADROOM = 0.5;

/** An agent's free share (0-1) of its tightest resource. */
export function headroom(stats: HostStats | null): number {
  if (!stats) return UNKNOWN_HEADROOM;
  const shares = [
    stats.cpus > 0 ? 1 - stats.load1 / stats.cpus : 0,
    stats.memoryTotalMb > 0 ? stats.memoryFreeMb / stats.memoryTotalMb : 0,
  ];
  if (stats.diskFreeMb !== undefined && stats.diskTotalMb) shares.push(stats.diskFreeMb / stats.diskTotalMb);
  return Math.max(0, Math.min(1, ...shares));
}

/** Why `a` takes no new session, or null if it may. */
export function refusesSessions(a: AgentView): string | null {
  if (a.status !== 'online') return `${a.id} is ${a.status}`;
  if (a.drained) return `${a.id} is drained: it takes no new sessions (agent resume ${a.id})`;
  const max = a.hello?.capacity.maxSessions ?? null;
  if (max !== null && a.sessions.size >= max) return `${a.id} has ${a.sessions.size} of its ${max} sessions`;
  return null;
}

/** The agent a new session goes to. Throws AGENT_OFFLINE when no agent is online, CONFLICT when none takes sessions. */
export function placeSession(agents: readonly AgentView[]): string {
  const online = agents.filter((a) => a.status === 'online');
  if (online.length === 0) throw new BerthError('AGENT_OFFLINE', 'no agent is online');
  const open = online.filter((a) => refusesSessions(a) === null);
  if (open.length === 0) throw new BerthError('CONFLICT', `no agent takes new sessions: ${online.map((a) => refusesSessions(a)).join('; ')}`);
  const ranked = open
    .map((a) => ({ a, room: headroom(a.stats) }))
    .sort((x, y) => (Math.abs(x.room - y.room) > HEADROOM_TIE ? y.room - x.room : x.a.sessions.size - y.a.sessions.size || x.a.id.localeCompare(y.a.id)));
  return ranked[0]?.a.id ?? '';
}
