/**
 * Docker is the truth: labelled containers that no session folder owns are removed once they
 * have stood so for a grace period, and containers a crash left paused (mid-clone) are unpaused.
 */
import { Logger } from '../common/logging';
import { ContainerRuntime } from './docker/runtime';
import { SessionLocks } from './store/locks';
import { SessionStore } from './store/session-store';

export class Reconciler {
  /** Orphan container id → when it was first seen without a session. */
  private readonly orphanSeen = new Map<string, number>();

  constructor(
    private readonly o: {
      runtime: ContainerRuntime;
      store: SessionStore;
      locks: SessionLocks;
      now: () => number;
      graceMs: number;
      logger: Logger;
    },
  ) {}

  /** One pass. Throws RUNTIME_UNAVAILABLE when Docker is down; safe to call again at any time. */
  async run(): Promise<void> {
    const all = await this.o.runtime.list();
    const ids = new Set(await this.o.store.listIds());
    const now = this.o.now();
    const orphans = new Set<string>();
    for (const c of all) {
      if (c.sessionId && ids.has(c.sessionId)) {
        const lock = c.state === 'paused' ? await this.o.locks.inspect(this.o.store.dir(c.sessionId)) : null;
        // Paused with no live lock: a clone that died mid-copy left it so.
        if (c.state === 'paused' && (!lock || lock.stale)) {
          this.o.logger.warn('unpaused container left paused', { session: c.sessionId });
          await this.o.runtime.unpause(c.id);
        }
        continue;
      }
      orphans.add(c.id);
      const first = this.orphanSeen.get(c.id) ?? now;
      this.orphanSeen.set(c.id, first);
      if (now - first >= this.o.graceMs) {
        this.o.logger.warn('removing orphan container', { container: c.id, session: c.sessionId });
        await this.o.runtime.stopAndRemove(c.id, 1);
        this.orphanSeen.delete(c.id);
      }
    }
    for (const id of [...this.orphanSeen.keys()]) if (!orphans.has(id)) this.orphanSeen.delete(id);
  }
}
