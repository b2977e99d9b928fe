/**
 * What listeners (the events subscribers) are told: a session's full entry whenever anything of
 * it changed, or its removal. Entries are built from the catalog, the containers, the live
 * attaches and the lock; the pushes of one session go out in order.
 */
import { BerthError, messageOf } from '../common/errors';
import { Logger } from '../common/logging';
import { KeyedQueue } from '../common/mutex';
import { Activity, GitGlance, SessionEntry } from '../common/protocol';
import { LiveAttaches } from './attaches';
import { SessionCatalog } from './catalog';
import { ContainerTracker } from './containers';
import { SessionLocks } from './store/locks';
import { SessionStore } from './store/session-store';
import { buildEntry } from './view';

export interface FeedParts {
  agent: string;
  /** The agent's command, for sessions that name none. */
  defaultCommand: string;
  /** What the session's program last reported, and its project's git state. */
  activity(id: string): Activity | null;
  git(id: string): GitGlance | null;
  catalog: SessionCatalog;
  containers: ContainerTracker;
  attaches: LiveAttaches;
  locks: SessionLocks;
  store: SessionStore;
  logger: Logger;
  /** Where entries and removals go. */
  push(change: { kind: 'session'; entry: SessionEntry } | { kind: 'removed'; id: string }): void;
}

export class SessionFeed {
  private readonly queue = new KeyedQueue();

  constructor(private readonly o: FeedParts) {}

  /** The session's entry as of now, or null if the catalog does not know it. */
  async entry(id: string): Promise<SessionEntry | null> {
    const s = this.o.catalog.get(id);
    if (!s) return null;
    const lock = await this.o.locks.inspect(this.o.store.dir(id));
    return buildEntry(this.o.agent, s, this.o.containers.get(id) ?? null, this.o.attaches.operators(id), lock, this.o.defaultCommand, this.o.activity(id), this.o.git(id));
  }

  /** The entry; throws NOT_FOUND if the session is gone. */
  async mustEntry(id: string): Promise<SessionEntry> {
    const e = await this.entry(id);
    if (!e) throw new BerthError('NOT_FOUND', `session ${id} not found`);
    return e;
  }

  /** Every known session's entry (for a new subscriber). */
  async snapshot(): Promise<SessionEntry[]> {
    const entries = await Promise.all(this.o.catalog.ids().map((id) => this.entry(id)));
    return entries.filter((e): e is SessionEntry => e !== null);
  }

  /** Pushes the session's current entry (or its removal), after its earlier pushes. */
  notify(id: string): void {
    this.queue.push(id, async () => {
      try {
        const entry = await this.entry(id);
        this.o.push(entry ? { kind: 'session', entry } : { kind: 'removed', id });
      } catch (err) {
        this.o.logger.debug('notify failed', { session: id, err: messageOf(err) });
      }
    });
  }
}
