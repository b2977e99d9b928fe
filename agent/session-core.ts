/**
 * What every session operation of one agent stands on. Docker is the truth for containers (one
 * label-filtered listing, then its event stream); session.json is the truth for metadata; locks
 * guard every mutation. Emits `session` (a full entry) and `removed` (an id) on every change.
 */
import { EventEmitter } from 'node:events';
import { withDeadline } from '../common/deadline';
import { BerthError, messageOf } from '../common/errors';
import { Logger } from '../common/logging';
import { KeyedQueue, Mutex } from '../common/mutex';
import { HostStats, Limits, SessionEntry, SessionMeta } from '../common/protocol';
import { AttachRegistry } from './attaches';
import { ContainerTracker } from './containers';
import { ContainerRuntime, RuntimeEvent } from './docker/runtime';
import { PortProbe } from './ports/ports';
import { SessionLocks } from './store/locks';
import { SessionStore, StoredSession } from './store/session-store';
import { Reconciler } from './reconcile';
import { buildEntry, containerSpec, hostStats, isRunning } from './view';

/** How long start-up waits for Docker's listing and the first reconcile before serving without them. */
const START_DOCKER_WAIT_MS = 10_000;

export interface Clock {
  now(): number;
}

export interface SessionsOptions {
  agent: string;
  store: SessionStore;
  locks: SessionLocks;
  runtime: ContainerRuntime;
  probe: PortProbe;
  clock: Clock;
  logger: Logger;
  image: string;
  command: string;
  publishAddress: string;
  dnsServers: string[];
  limits: Limits;
  user: { uid: number; gid: number };
  extraLabels: Record<string, string>;
  maxSessions: number | null;
  /** How long a container must stand without a session before it is removed. */
  orphanGraceMs: number;
  /** How often the reconciler looks for orphans (0: only at start). */
  reconcileIntervalMs: number;
  /** Seconds `kill` waits for a container to stop before killing it. */
  stopTimeoutSec?: number;
}

export class SessionCore extends EventEmitter {
  protected readonly o: SessionsOptions;
  protected readonly log: Logger;
  protected readonly stored = new Map<string, StoredSession>();
  protected readonly containers: ContainerTracker;
  protected readonly attaches = new AttachRegistry();
  protected readonly reconciler: Reconciler;
  protected readonly registry = new Mutex();
  protected readonly notices = new KeyedQueue();
  /** Leftover folders already warned about: each is logged as a warning once, not every round. */
  private readonly unsweptWarned = new Set<string>();
  private stopWatch: (() => void) | null = null;
  private reconcileTimer: NodeJS.Timeout | null = null;

  constructor(opts: SessionsOptions) {
    super();
    this.o = opts;
    this.log = opts.logger.child({ component: 'sessions', agent: opts.agent });
    this.containers = new ContainerTracker(opts.runtime);
    this.reconciler = new Reconciler({
      runtime: opts.runtime,
      store: opts.store,
      locks: opts.locks,
      now: () => opts.clock.now(),
      graceMs: opts.orphanGraceMs,
      logger: this.log,
    });
  }

  /** Loads every session, adopts the containers Docker has, sweeps crash leftovers, follows events. */
  async start(): Promise<void> {
    await this.o.store.init();
    await this.sweep();
    for (const id of await this.o.store.listIds()) {
      const s = await this.o.store.read(id);
      if (s) this.stored.set(id, s);
      if (s?.kind === 'broken') this.log.warn('broken session', { session: id, reason: s.reason });
    }
    try {
      // A Docker that hangs (a wedged container can make it) must not keep the agent from serving:
      // past the deadline it starts without, and the event watch catches up once Docker answers.
      await withDeadline(
        (async () => {
          await this.refreshContainers();
          await this.reconcile();
        })(),
        START_DOCKER_WAIT_MS,
        'docker at start',
      );
    } catch (err) {
      this.log.warn('docker unavailable at start', { err: messageOf(err) });
    }
    this.stopWatch = this.o.runtime.watch({
      onEvent: (e) => this.onRuntimeEvent(e),
      onUp: () => this.onRuntimeUp(),
      onDown: (reason) => {
        if (this.containers.up) this.log.warn('docker went away', { reason });
        this.containers.up = false;
      },
    });
    if (this.o.reconcileIntervalMs > 0) {
      this.reconcileTimer = setInterval(() => {
        void this.sweep();
        this.reconcile().catch((err: unknown) => this.log.debug('reconcile skipped', { err: messageOf(err) }));
      }, this.o.reconcileIntervalMs);
      this.reconcileTimer.unref();
    }
    this.log.info('sessions loaded', { sessions: this.stored.size, containers: this.containers.size });
  }

  /** Stops following Docker and ends every attach (their tmux clients are HUP'd). Idempotent. */
  async stop(): Promise<void> {
    this.stopWatch?.();
    this.stopWatch = null;
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    await this.attaches.closeAll();
  }

  /** Host figures for the `stats` op and event. */
  stats(): HostStats {
    return hostStats(this.stored.size, this.containers.runningCount());
  }

  /** Snapshot entries of every known session, from memory (for a new events subscriber). */
  async snapshot(): Promise<SessionEntry[]> {
    const entries = await Promise.all([...this.stored.keys()].map((id) => this.entry(id)));
    return entries.filter((e): e is SessionEntry => e !== null);
  }

  get dockerUp(): boolean {
    return this.containers.up;
  }

  /**
   * Removes what a crash left in the root. Never fails: what cannot go yet is logged and tried
   * again on the next reconciler round, so a leftover never stops the agent from starting.
   */
  async sweep(): Promise<void> {
    const { swept, left } = await this.o.store.sweep();
    if (swept.length > 0) this.log.info('swept crash leftovers', { folders: swept });
    for (const l of left) {
      const level = this.unsweptWarned.has(l.name) ? 'debug' : 'warn';
      this.unsweptWarned.add(l.name);
      this.log[level]('crash leftover not removed yet; will retry', { folder: l.name, err: l.reason });
    }
    for (const name of swept) this.unsweptWarned.delete(name);
  }

  /** One reconciler pass (orphans, paused leftovers). Throws RUNTIME_UNAVAILABLE when Docker is down. */
  reconcile(): Promise<void> {
    return this.reconciler.run();
  }

  // ---- for the operations ----

  protected async withLock<T>(
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
    const release = await this.o.locks.acquire(this.o.store.dir(id), operator, op);
    try {
      return await fn(s);
    } finally {
      await release();
      this.notify(id);
    }
  }

  /** Reads one session from disk into the cache. Throws BAD_REQUEST for a non-uuid, NOT_FOUND if absent. */
  protected async load(id: string): Promise<StoredSession> {
    const s = await this.o.store.read(id);
    if (!s) {
      if (this.stored.delete(id)) this.notify(id);
      throw new BerthError('NOT_FOUND', `session ${id} not found`);
    }
    this.stored.set(id, s);
    return s;
  }

  protected async startContainer(meta: SessionMeta): Promise<void> {
    const summary = await this.o.runtime.start(containerSpec(meta, this.o.store.dir(meta.id), this.o));
    this.containers.set(summary);
    this.log.info('started container', { session: meta.id, container: summary.id.slice(0, 12) });
  }

  protected async touch(id: string): Promise<void> {
    const s = this.stored.get(id);
    if (s?.kind !== 'ok') return;
    const next = { ...s.meta, lastAccessedAt: this.nowIso() };
    try {
      await this.o.store.write(next);
      this.stored.set(id, { kind: 'ok', meta: next });
    } catch (err) {
      this.log.warn('record last access', { session: id, err: messageOf(err) });
    }
  }

  protected async closeAttaches(id: string, operator: string | null): Promise<number> {
    const n = await this.attaches.close(id, operator);
    if (n > 0) this.notify(id);
    return n;
  }

  protected async refreshContainers(): Promise<void> {
    for (const id of await this.containers.refreshAll()) this.notify(id);
  }

  protected refreshSession(id: string): Promise<void> {
    return this.containers.refresh(id);
  }

  protected onRuntimeEvent(e: RuntimeEvent): void {
    const id = e.sessionId;
    const before = this.containers.get(id);
    this.refreshSession(id)
      .then(() => {
        // Docker 20.10 sends events before its listing shows their effect (a `die` still lists as
        // running): trust a `die` at once, and look again shortly for the settled status.
        if (e.action === 'die') this.containers.markExited(id, e.containerId);
        if (e.action !== 'settle') setTimeout(() => this.onRuntimeEvent({ ...e, action: 'settle' }), 300).unref();
        const after = this.containers.get(id);
        if (!isRunning(after)) void this.closeAttaches(id, null);
        if (e.action !== 'settle' || before?.id !== after?.id || before?.state !== after?.state) this.notify(id);
      })
      .catch((err: unknown) => this.log.debug('refresh after event failed', { session: id, err: messageOf(err) }));
  }

  protected onRuntimeUp(): void {
    const wasUp = this.containers.up;
    this.refreshContainers()
      .then(() => {
        if (!wasUp) this.log.info('docker is back');
        return this.reconcile();
      })
      .catch((err: unknown) => this.log.debug('refresh after reconnect failed', { err: messageOf(err) }));
  }

  protected metas(): SessionMeta[] {
    return [...this.stored.values()].flatMap((s) => (s.kind === 'ok' ? [s.meta] : []));
  }

  protected async entry(id: string): Promise<SessionEntry | null> {
    const s = this.stored.get(id);
    if (!s) return null;
    const lock = await this.o.locks.inspect(this.o.store.dir(id));
    const attached = this.attaches.operators(id);
    return buildEntry(this.o.agent, s, this.containers.get(id) ?? null, attached, lock);
  }

  protected async mustEntry(id: string): Promise<SessionEntry> {
    const e = await this.entry(id);
    if (!e) throw new BerthError('NOT_FOUND', `session ${id} not found`);
    return e;
  }

  /** Pushes the session's current entry (or its removal) to listeners, in order per session. */
  protected notify(id: string): void {
    this.notices.push(id, async () => {
      try {
        const e = await this.entry(id);
        if (e) this.emit('session', e);
        else this.emit('removed', id);
      } catch (err) {
        this.log.debug('notify failed', { session: id, err: messageOf(err) });
      }
    });
  }

  protected nowIso(): string {
    return new Date(this.o.clock.now()).toISOString();
  }
}
