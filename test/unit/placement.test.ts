/**
 * Where a session goes without --agent: the online agent with the most headroom (the smallest of
 * its free CPU, memory and disk shares), never a drained one or one at its cap; ties to the agent
 * with fewer sessions.
 */
import type { HostStats, SessionEntry } from '../../common/protocol';
import type { AgentView } from '../../shell/cluster/view';
import { headroom, placeSession, refusesSessions } from '../../shell/cluster/placement';

const stats = (o: Partial<HostStats>): HostStats => ({ cpus: 4, load1: 0, memoryTotalMb: 8000, memoryFreeMb: 8000, containersRunning: 0, sessions: 0, ...o });
function agent(id: string, o: Partial<AgentView> & { count?: number; maxSessions?: number | null } = {}): AgentView {
  const sessions = new Map<string, SessionEntry>();
  for (let i = 0; i < (o.count ?? 0); i++) sessions.set(`${id}-${i}`, {} as SessionEntry);
  const hello = { type: 'hello' as const, agent: id, protocol: 1, version: '1', hostname: id, publishAddress: '127.0.0.1', capacity: { cpus: 4, memoryMb: 8000, maxSessions: o.maxSessions ?? null } };
  return { id, status: 'online', reason: '', hello, stats: null, drained: false, trash: [], ...o, sessions };
}

test('headroom is the tightest of CPU, memory and disk', () => {
  expect(headroom(stats({ load1: 1 }))).toBeCloseTo(0.75);
  expect(headroom(stats({ load1: 1, memoryFreeMb: 2000 }))).toBeCloseTo(0.25);
  expect(headroom(stats({ diskFreeMb: 100, diskTotalMb: 1000 }))).toBeCloseTo(0.1);
  expect(headroom(stats({ load1: 9 }))).toBe(0);
  expect(headroom(null)).toBe(0.5);
});

test('the most headroom wins; close headrooms go to fewer sessions; drained, capped and offline agents take none', () => {
  const busy = agent('a', { stats: stats({ load1: 3 }) });
  const idle = agent('b', { stats: stats({ load1: 0.2 }), count: 9 });
  expect(placeSession([busy, idle])).toBe('b');
  // Within the tie band: fewer sessions.
  const twin = agent('c', { stats: stats({ load1: 0.3 }), count: 2 });
  expect(placeSession([busy, idle, twin])).toBe('c');
  expect(placeSession([busy, idle, { ...twin, drained: true }])).toBe('b');
  expect(placeSession([busy, agent('b', { stats: stats({}), count: 3, maxSessions: 3 })])).toBe('a');
  expect(placeSession([busy, { ...idle, status: 'offline' }])).toBe('a');
  expect(refusesSessions({ ...twin, drained: true })).toBe('c is drained: it takes no new sessions (agent resume c)');
  expect(() => placeSession([{ ...busy, drained: true }])).toThrow('no agent takes new sessions: a is drained');
  expect(() => placeSession([{ ...busy, status: 'offline' }])).toThrow('no agent is online');
});
