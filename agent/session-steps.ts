/**
 * The steps every session operation shares: loading a session into the catalog, running under
 * its lock, starting its container, recording an access, ending attaches, sweeping crash
 * leftovers. Holds no state of its own beyond which leftovers were already warned about.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BerthError, messageOf } from '../common/errors';
import { Logger } from '../common/logging';
import { SessionMeta } from '../common/protocol';
import { projectDir } from '../common/session-setup';
import { LiveAttaches } from './attaches';
import { SessionCatalog } from './catalog';
import { containerEnv } from './session-env';
import { ContainerTracker } from './containers';
import { StatusWatch } from './activity/status-watch';
import { SessionFeed } from './feed';
import { ContainerSettings, SessionsDeps } from './sessions-options';
import { StoredSession } from './store/session-store';
import { containerSpec } from './view';
import { effectiveLimits, LimitPolicy } from './limits';

export class SessionSteps {
  /** Leftover folders already warned about: each is logged as a warning once, not every round. */
  private readonly unsweptWarned = new Set<string>();

  constructor(
    private readonly d: SessionsDeps,
    private readonly settings: ContainerSettings,
    private readonly parts: { catalog: SessionCatalog; containers: ContainerTracker; attaches: LiveAttaches; feed: SessionFeed; status: StatusWatch; log: Logger },
  ) {}

  get limitPolicy(): LimitPolicy {
    return { defaults: this.settings.limits, max: this.settings.maxLimits ?? {} };
  }

  private get catalog(): SessionCatalog {
    return this.parts.catalog;
  }

  private get feed(): SessionFeed {
    return this.parts.feed;
  }

  private get log(): Logger {
    return this.parts.log;
  }

  /**
   * Runs `fn` on the session under its lock; a broken session only where `allowBroken`. Every
   * taking and every release of a session's lock goes through here, and each pushes the session's
   * entry (its `lock` says who holds it, for which op, since when).
   */
  async withLock<T>(
    id: string,
    operator: string,
    op: string,
    fn: (s: StoredSession) => Promise<T>,
    opts: { allowBroken?: boolean } = {},
  ): Promise<T> {
    const s = await this.load(id);
    if (s.kind === 'broken' && !opts.allowBroken) {
      throw new BerthError('CONFLICT', `session is broken (${s.reason}); only kill and delete work on it`);
    }
    const release = await this.d.locks.acquire(this.d.store.dir(id), operator, op);
    this.feed.notify(id);
    try {
      return await fn(s);
    } finally {
      await release();
      this.feed.notify(id);
    }
  }

  /** Reads one session from disk into the catalog. Throws BAD_REQUEST for a non-uuid, NOT_FOUND if absent. */
  async load(id: string): Promise<StoredSession> {
    const s = await this.d.store.read(id);
    if (!s) {
      if (this.catalog.delete(id)) this.feed.notify(id);
      throw new BerthError('NOT_FOUND', `session ${id} not found`);
    }
    const before = this.catalog.get(id);
    this.catalog.set(id, s);
    // What the disk says now differs from what subscribers were told (an unchanged file reads as
    // the very same object): tell them, even if the op refuses (a session found broken).
    if (before !== s) this.feed.notify(id);
    return s;
  }

  async startContainer(meta: SessionMeta): Promise<void> {
    await this.d.store.claimHome(meta.id);
    const limits = effectiveLimits(meta.limits, this.limitPolicy);
    const env = await containerEnv(this.settings.env ?? {}, meta.env ?? {});
    const mirror = await this.projectMirror(meta);
    const statusDir = await this.d.store.ensureStatusDir(meta.id);
    await this.parts.status.reset(meta.id, statusDir);
    this.parts.status.follow(meta.id, statusDir);
    const summary = await this.d.runtime.start(containerSpec(meta, this.d.store.home(meta.id), this.settings, limits, env, mirror, statusDir));
    this.parts.containers.set(summary);
    this.log.info('started container', { session: meta.id, container: summary.id.slice(0, 12) });
  }

  /**
   * The mirror a session's container needs: only until its project is checked out (the first
   * start), so a session that has its checkout starts without its mirror or its remote. Looks at
   * the home's entry itself (a link there counts as there, and is never followed).
   */
  private async projectMirror(meta: SessionMeta): Promise<string | null> {
    if (!meta.repo || !this.d.repos) return null;
    const checkout = path.join(this.d.store.home(meta.id), projectDir(meta.repo.url));
    const there = await fs.lstat(checkout).then(
      () => true,
      () => false,
    );
    return there ? null : this.d.repos.ensure(meta.repo.url);
  }

  /** Records the last access; a failure is logged, never an error of the attach. */
  async touch(id: string): Promise<void> {
    const s = this.catalog.get(id);
    if (s?.kind !== 'ok') return;
    const next = { ...s.meta, lastAccessedAt: this.nowIso() };
    try {
      await this.d.store.write(next);
      this.catalog.set(id, { kind: 'ok', meta: next });
    } catch (err) {
      this.log.warn('record last access', { session: id, err: messageOf(err) });
    }
  }

  async closeAttaches(id: string, operator: string | null): Promise<number> {
    const n = await this.parts.attaches.close(id, operator);
    if (n > 0) this.feed.notify(id);
    return n;
  }

  nowIso(): string {
    return new Date(this.d.clock.now()).toISOString();
  }

  /**
   * Removes what a crash left in the root. Never fails: what cannot go yet is logged and tried
   * again on the next reconciler round, so a leftover never stops the agent from starting.
   */
  async sweep(): Promise<void> {
    const { swept, left } = await this.d.store.sweep();
    if (swept.length > 0) this.log.info('swept crash leftovers', { folders: swept });
    for (const l of left) {
      const level = this.unsweptWarned.has(l.name) ? 'debug' : 'warn';
      this.unsweptWarned.add(l.name);
      this.log[level]('crash leftover not removed yet; will retry', { folder: l.name, err: l.reason });
    }
    for (const name of swept) this.unsweptWarned.delete(name);
  }
}

/** The metadata of a session that has it; CONFLICT for a broken one. */
export function okMeta(s: StoredSession): SessionMeta {
  if (s.kind === 'broken') throw new BerthError('CONFLICT', `session is broken: ${s.reason}`);
  return s.meta;
}
