/**
 * The cluster as the shell knows it, fed only by the agents' event streams: every menu and every
 * listing reads from here and never waits on the network. Pure: no I/O.
 * Emits 'change' after every update that can change the session table, and 'stats' when only an
 * agent's host figures changed (every few seconds per agent: no reason to redraw every menu), and
 * 'jobs' when a running job (a clone) started, moved on or ended.
 */
import { EventEmitter } from 'node:events';
import { AgentEvent, HelloEvent, HostStats, Job, SessionEntry, TrashEntry, entryId } from '../../common/protocol';

export type AgentStatus = 'connecting' | 'online' | 'offline';

export interface AgentView {
  id: string;
  status: AgentStatus;
  reason: string;
  hello: HelloEvent | null;
  stats: HostStats | null;
  /** Drained by an admin (agents.json): no new sessions; those it has keep running. */
  drained: boolean;
  sessions: Map<string, SessionEntry>;
  /** Its trash as it last told it (deleted sessions until purged; their DNS names stay taken). */
  trash: TrashEntry[];
}

/** A session with where it lives; `state` is `?` while its agent is not online. */
export interface ClusterSession {
  entry: SessionEntry;
  id: string;
  agent: string;
  agentStatus: AgentStatus;
  state: SessionEntry['state'] | '?';
}

/** A trashed session with the agent whose trash holds it. */
export interface ClusterTrash {
  entry: TrashEntry;
  id: string;
  agent: string;
}

/** A job running on an agent, as its last push told. */
export interface ClusterJob {
  agent: string;
  job: Job;
}

export class ClusterView extends EventEmitter {
  private readonly agents = new Map<string, AgentView>();
  /** Running jobs by agent, then op id. */
  private readonly running = new Map<string, Map<string, Job>>();
  /** Sessions received since a hello, until `synced` makes them the agent's whole set. */
  private readonly staging = new Map<string, Map<string, SessionEntry>>();
  /** The agents' session and trash events so far: see mark(). */
  private told = 0;
  /**
   * Per agent, per session: the count of events when the agent last told of it; sessions it
   * removed apart, the last MAX_REMOVED_TOLD of them only (a shell runs for months).
   */
  private readonly lastTold = new Map<string, { live: Map<string, number>; removed: Map<string, number> }>();
  /** Per agent: the count of events when it last told its whole trash. */
  private readonly trashTold = new Map<string, number>();

  /** sessions() as of the last change: every menu's redraw and every listing reads it. */
  private sorted: readonly ClusterSession[] | null = null;

  constructor() {
    super();
    // Every open menu and every attach follows the view: one listener each, as many as operators.
    this.setMaxListeners(0);
  }

  addAgent(id: string): void {
    if (this.agents.has(id)) return;
    this.agents.set(id, { id, status: 'connecting', reason: '', hello: null, stats: null, drained: false, sessions: new Map(), trash: [] });
    this.changed();
  }

  /** Marks an agent drained (or not). */
  setDrained(id: string, drained: boolean): void {
    const a = this.agents.get(id);
    if (!a || a.drained === drained) return;
    a.drained = drained;
    this.changed();
  }

  removeAgent(id: string): void {
    this.dropJobs(id);
    this.lastTold.delete(id);
    this.trashTold.delete(id);
    if (this.agents.delete(id)) this.changed();
  }

  setStatus(id: string, status: AgentStatus, reason: string): void {
    const a = this.agents.get(id);
    if (!a) return;
    a.status = status;
    a.reason = reason;
    if (status !== 'online') {
      this.staging.delete(id);
      this.dropJobs(id);
    }
    this.changed();
  }

  /** Applies one event from agent `id`. */
  apply(id: string, e: AgentEvent): void {
    const a = this.agents.get(id);
    if (!a) return;
    switch (e.type) {
      case 'hello':
        a.hello = e;
        this.staging.set(id, new Map());
        // The agent tells its running jobs again after `synced`.
        this.dropJobs(id);
        break;
      case 'session': {
        const sid = entryId(e.session);
        this.tell(id, sid, false);
        const prev = a.sessions.get(sid);
        // The same entry again (the event after an op's own reply was upserted, a re-sync): no
        // change to draw, and the entry kept keeps every row and line made from it.
        const same = prev !== undefined && JSON.stringify(prev) === JSON.stringify(e.session);
        this.staging.get(id)?.set(sid, same ? prev : e.session);
        if (same) return;
        a.sessions.set(sid, e.session);
        break;
      }
      case 'session-removed':
        this.tell(id, e.id, true);
        this.staging.get(id)?.delete(e.id);
        a.sessions.delete(e.id);
        break;
      case 'synced': {
        const staged = this.staging.get(id);
        if (staged) {
          // The sessions it no longer has went while the link was down: told of as removed now.
          for (const sid of a.sessions.keys()) if (!staged.has(sid)) this.tell(id, sid, true);
          a.sessions = staged;
        }
        this.staging.delete(id);
        break;
      }
      case 'stats':
        a.stats = e.stats;
        this.emit('stats', id);
        return;
      case 'job': {
        const jobs = this.running.get(id) ?? new Map<string, Job>();
        this.running.set(id, jobs);
        if (e.job.phase === 'done' || e.job.phase === 'failed') jobs.delete(e.job.opId);
        else jobs.set(e.job.opId, e.job);
        this.emit('jobs');
        return;
      }
      case 'trash':
        this.trashTold.set(id, ++this.told);
        a.trash = e.trash;
        break;
      case 'error':
        a.reason = e.error.message;
        break;
    }
    this.changed();
  }

  /**
   * Where the agents' word stands now: take it before sending an op, and give it to upsert with
   * the op's reply.
   */
  mark(): number {
    return this.told;
  }

  /**
   * Records a session an op just returned, before its event arrives (so names are taken at once).
   * `since` is mark() from before the op went out. If the agent has told of the session since,
   * the reply is dropped: the agent pushes every change it makes, so what it told is as new as the
   * reply or newer, and the reply (which crossed it on the way, or waited on the shell's own
   * steps) would take the session back to an older state that no later event would correct.
   */
  upsert(agent: string, entry: SessionEntry, since: number): void {
    const a = this.agents.get(agent);
    if (!a) return;
    const id = entryId(entry);
    const told = this.lastTold.get(agent);
    if ((told?.live.get(id) ?? told?.removed.get(id) ?? -1) > since) return;
    a.sessions.set(id, entry);
    this.changed();
  }

  private tell(agent: string, session: string, removed: boolean): void {
    let told = this.lastTold.get(agent);
    if (!told) this.lastTold.set(agent, (told = { live: new Map(), removed: new Map() }));
    const n = ++this.told;
    told.removed.delete(session);
    if (!removed) {
      told.live.set(session, n);
      return;
    }
    told.live.delete(session);
    told.removed.set(session, n);
    // The oldest removal goes first (a Map keeps insertion order).
    if (told.removed.size > MAX_REMOVED_TOLD) told.removed.delete(told.removed.keys().next().value as string);
  }

  /** Every change to the sessions or agents goes through here. */
  private changed(): void {
    this.sorted = null;
    this.emit('change');
  }

  private dropJobs(agent: string): void {
    if (this.running.get(agent)?.size) {
      this.running.delete(agent);
      this.emit('jobs');
    }
  }

  forget(agent: string, id: string): void {
    if (this.agents.get(agent)?.sessions.delete(id)) this.changed();
  }

  /**
   * Records a session an op just put in the trash (or took out: `entry` null), before the agent's
   * push. `since` as for upsert: a whole trash list the agent told since the op went out is as new
   * as the reply or newer (a purge after the delete, say), so it stands.
   */
  setTrashed(agent: string, id: string, entry: TrashEntry | null, since: number): void {
    const a = this.agents.get(agent);
    if (!a || (this.trashTold.get(agent) ?? -1) > since) return;
    a.trash = [...a.trash.filter((t) => t.id !== id), ...(entry ? [entry] : [])];
    this.changed();
  }

  /** Every agent's trash (offline ones' as last told), oldest deletion first. */
  trash(): ClusterTrash[] {
    const out: ClusterTrash[] = [];
    for (const a of this.agents.values()) for (const entry of a.trash) out.push({ entry, id: entry.id, agent: a.id });
    return out.sort((x, y) => x.entry.deletedAt.localeCompare(y.entry.deletedAt) || x.id.localeCompare(y.id));
  }

  /** The jobs running on online agents, oldest first. */
  jobs(): ClusterJob[] {
    const out: ClusterJob[] = [];
    for (const [agent, jobs] of this.running) for (const job of jobs.values()) out.push({ agent, job });
    return out.sort((x, y) => x.job.startedAt.localeCompare(y.job.startedAt));
  }

  agentList(): AgentView[] {
    return [...this.agents.values()].sort((x, y) => x.id.localeCompare(y.id));
  }

  agent(id: string): AgentView | undefined {
    return this.agents.get(id);
  }

  /** Every session of every agent (offline ones with their last known data), by creation time. */
  sessions(): readonly ClusterSession[] {
    if (this.sorted) return this.sorted;
    const out: ClusterSession[] = [];
    for (const a of this.agents.values()) {
      for (const entry of a.sessions.values()) {
        out.push({ entry, id: entryId(entry), agent: a.id, agentStatus: a.status, state: a.status === 'online' ? entry.state : '?' });
      }
    }
    // ISO times and ids: plain code-unit order is their order (and far cheaper than localeCompare).
    out.sort((x, y) => ascending(createdAt(x.entry), createdAt(y.entry)) || ascending(x.id, y.id));
    this.sorted = Object.freeze(out);
    return this.sorted;
  }
}

/** Removed sessions whose last event the view keeps, per agent (see upsert). */
const MAX_REMOVED_TOLD = 10_000;

const ascending = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function createdAt(e: SessionEntry): string {
  return e.kind === 'session' ? e.meta.createdAt : '';
}

/**
 * `make` kept per session entry (an agent's event replaces an entry, never changes it) and what
 * else a ClusterSession says of it (agent, its status, state): with 50 menus open on 10,000
 * sessions, a change costs one call, not one per session per menu.
 */
export function perEntry<T>(make: (s: ClusterSession) => T): (s: ClusterSession) => T {
  const made = new WeakMap<SessionEntry, { agent: string; agentStatus: AgentStatus; state: ClusterSession['state']; value: T }>();
  return (s) => {
    const hit = made.get(s.entry);
    if (hit && hit.agent === s.agent && hit.agentStatus === s.agentStatus && hit.state === s.state) return hit.value;
    const value = make(s);
    made.set(s.entry, { agent: s.agent, agentStatus: s.agentStatus, state: s.state, value });
    return value;
  };
}
