/** Session entries as an agent would send them, for tests of the shell that fake the agents. */
import { SessionEntry } from '../../common/protocol';

export function viewEntry(o: { id: string; name: string; agent?: string; port?: number; dns?: string; state?: SessionEntry['state'] }): SessionEntry {
  return {
    kind: 'session',
    agent: o.agent ?? 'agent-1',
    meta: {
      version: 1,
      id: o.id,
      name: o.name,
      protocol: 'tcp',
      port: o.port ?? 0,
      dns: o.dns ?? '',
      createdAt: '2026-01-01T00:00:00.000Z',
      lastAccessedAt: null,
      createdBy: 'alice',
    },
    state: o.state ?? '-',
    attached: [],
    lock: null,
    container: null,
    restartNeeded: false,
  };
}
