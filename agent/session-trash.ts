/**
 * Delete with an undo window: `delete` moves a session to the agent's trash (store/trash-store.ts)
 * for `trashMs`, `restore` brings it back stopped, and one timer, set to the next purge time,
 * purges what is due. A trashed session holds no port (its claim is released at delete) and is
 * not in the catalog; its DNS name stays reserved by the shell, which learns the trash from the
 * `trash` event this pushes at every change.
 */
import { BerthError, messageOf } from '../common/errors';
import { Logger } from '../common/logging';
import { Mutex } from '../common/mutex';
import { Protocol } from '../common/names';
import { DeletedRecord, MAX_TRASH_EVENT_ENTRIES, SessionEntry, SessionMeta, TrashEntry } from '../common/protocol';
import { SessionCatalog } from './catalog';
import { ContainerTracker } from './containers';
import { StatusWatch } from './activity/status-watch';
import { SessionFeed } from './feed';
import { PortTable } from './ports/ports';
import { SessionSteps } from './session-steps';
import { ContainerSettings, SessionsDeps } from './sessions-options';
import { Trashed, TrashStore } from './store/trash-store';

/** The longest a timer waits before it looks again (setTimeout's own limit is about 24.8 days). */
const MAX_TIMER_MS = 24 * 60 * 60 * 1000;
/** After a purge that failed, the next try waits at least this long. */
const RETRY_MS = 60_000;

export interface TrashParts {
  d: SessionsDeps;
  settings: ContainerSettings;
  steps: SessionSteps;
  catalog: SessionCatalog;
  containers: ContainerTracker;
  status: StatusWatch;
  feed: SessionFeed;
  log: Logger;
  /** How long a deleted session stays in the trash; 0: delete for good at once. */
  trashMs: number;
  resolveAndClaim(requested: number, protocol: Protocol, used: PortTable, session: string): Promise<number>;
  releaseClaim(port: number, protocol: Protocol, session: string): Promise<void>;
  /** Told the whole trash after every change. */
  changed(trash: TrashEntry[]): void;
}

export class SessionTrash {
  private readonly store: TrashStore;
  /** Restores and purges, one at a time (a purge never meets a restore of the same session). */
  private readonly mutex = new Mutex();
  private entries: TrashEntry[] = [];
  /** The earliest purge time of anything in the trash (entries without metadata included). */
  private nextPurge: number | null = null;
  private retryAfter = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly p: TrashParts) {
    this.store = new TrashStore({ root: p.d.store.root });
  }

  /** Cleans what a crash left in the trash, reads it, and sets the purge timer. Throws only when the root cannot be read. */
  async start(): Promise<void> {
    const now = this.p.d.clock.now();
    const r = await this.store.recover(this.record('unknown', now));
    const log = this.p.log;
    if (r.kept.length > 0) log.info('delete cut short by a crash; session kept', { sessions: r.kept });
    if (r.purged.length > 0) log.info('purge cut short by a crash; finished', { sessions: r.purged });
    if (r.relabelled.length > 0) log.warn('trashed session had no record; given one', { sessions: r.relabelled });
    for (const l of r.left) log.warn('trash leftover not removed yet', { folder: l.name, err: l.reason });
    await this.refresh();
  }

  /** Clears the purge timer. Idempotent. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The trash as last read, oldest deletion first. */
  list(): TrashEntry[] {
    return this.entries;
  }

  /**
   * Ends attaches, stops and removes the container, then moves the folder to the trash (a broken
   * session, or with `trashMs` 0, is removed for good) and releases its port. Returns its trash
   * entry, or null when it was removed for good. Throws NOT_FOUND, LOCKED.
   */
  async delete(id: string, operator: string): Promise<TrashEntry | null> {
    const { d, steps, catalog } = this.p;
    let trashed: TrashEntry | null = null;
    await steps.withLock(
      id,
      operator,
      'delete',
      async (s) => {
        await steps.closeAttaches(id, null);
        for (const c of await d.runtime.listSession(id)) await d.runtime.stopAndRemove(c.id, this.p.settings.stopTimeoutSec ?? 10);
        this.p.containers.delete(id);
        await catalog.reserve(async () => {
          this.p.status.forget(id);
          if (this.p.trashMs > 0 && s.kind === 'ok') {
            const record = this.record(operator, d.clock.now());
            await this.store.put(id, record);
            trashed = entryOf(s.meta, record);
          } else {
            await d.store.remove(id);
          }
          catalog.delete(id);
          if (s.kind === 'ok') await this.p.releaseClaim(s.meta.port, s.meta.protocol, id);
        });
      },
      { allowBroken: true },
    );
    this.p.log.info(trashed ? 'moved session to the trash' : 'deleted session', { session: id, operator });
    this.p.feed.notify(id);
    if (trashed) await this.refresh();
    return trashed;
  }

  /**
   * Brings a trashed session back, stopped, with its port (taken again; PORT_UNAVAILABLE naming its
   * holder when another has it) or, with `noPort`, without one. Refuses (NAME_TAKEN) when a live
   * session of this agent has its name or DNS name; NOT_FOUND when it is not in the trash.
   */
  async restore(id: string, operator: string, noPort: boolean): Promise<SessionEntry> {
    const { d, catalog } = this.p;
    await this.mutex.run(async () => {
      const t = await this.store.read(id);
      if (!t) throw new BerthError('NOT_FOUND', `session ${id} is not in the trash`);
      const meta = t.meta;
      if (!meta) throw new BerthError('CONFLICT', `session ${id} in the trash has no readable session.json`);
      await catalog.reserve(async () => {
        const same = catalog.metas().find((m) => m.name === meta.name && m.id !== id);
        if (same) throw new BerthError('NAME_TAKEN', `name: "${meta.name}" is used by session ${same.id.slice(0, 8)}; rename it first`);
        catalog.assertDnsFree(meta.dns, id);
        const port = noPort ? 0 : await this.portBack(meta);
        try {
          await d.locks.remove(this.store.folder(id));
          await this.store.takeBack(id, port !== meta.port ? { ...meta, port } : undefined);
        } catch (err) {
          await this.p.releaseClaim(port, meta.protocol, id);
          throw err;
        }
        await this.p.steps.load(id);
      });
    });
    this.p.log.info('restored session', { session: id, operator, noPort });
    await this.refresh();
    return this.p.feed.mustEntry(id);
  }

  /** Purges what is due now (the timer calls it; tests may too). Never throws. */
  async purgeDue(): Promise<void> {
    await this.mutex.run(async () => {
      const r = await this.store.purgeDue(this.p.d.clock.now());
      for (const id of r.purged) this.p.log.info('purged trashed session', { session: id });
      for (const f of r.failed) this.p.log.warn('purge trashed session', { session: f.id, err: f.reason });
      this.retryAfter = r.failed.length > 0 ? this.p.d.clock.now() + RETRY_MS : 0;
    });
    await this.refresh();
  }

  /** The session's own port again, claimed; PORT_UNAVAILABLE says who has it and how to go on. */
  private async portBack(meta: SessionMeta): Promise<number> {
    if (meta.port === 0) return 0;
    try {
      return await this.p.resolveAndClaim(meta.port, meta.protocol, this.p.catalog.portTable(meta.id), meta.id);
    } catch (err) {
      if (err instanceof BerthError && err.code === 'PORT_UNAVAILABLE') {
        throw new BerthError('PORT_UNAVAILABLE', `${err.message}; restore it with --no-port to bring it back without a port`);
      }
      throw err;
    }
  }

  private record(operator: string, now: number): DeletedRecord {
    return { deletedAt: new Date(now).toISOString(), deletedBy: operator, purgeAt: new Date(now + this.p.trashMs).toISOString() };
  }

  /** Reads the trash again, tells it, and sets the timer to the next purge. */
  private async refresh(): Promise<void> {
    let all: Trashed[];
    try {
      all = await this.store.list();
    } catch (err) {
      this.p.log.warn('read trash', { err: messageOf(err) });
      return;
    }
    this.entries = all.flatMap((t) => (t.meta ? [entryOf(t.meta, t.record)] : [])).slice(-MAX_TRASH_EVENT_ENTRIES);
    const times = all.map((t) => Date.parse(t.record.purgeAt));
    this.nextPurge = times.length > 0 ? Math.min(...times) : null;
    this.p.changed(this.entries);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped || this.nextPurge === null) return;
    const at = Math.max(this.nextPurge, this.retryAfter);
    const delay = Math.min(Math.max(0, at - this.p.d.clock.now()), MAX_TIMER_MS);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.purgeDue();
    }, delay);
    this.timer.unref();
  }
}

function entryOf(meta: SessionMeta, record: DeletedRecord): TrashEntry {
  return { id: meta.id, name: meta.name, protocol: meta.protocol, port: meta.port, dns: meta.dns, ...record };
}
