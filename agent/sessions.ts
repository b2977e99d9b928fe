/**
 * The session operations of one agent. Docker is the truth for containers (one label-filtered
 * listing, then its event stream); session.json is the truth for metadata; locks guard every
 * mutation. Emits `session` (a full entry) and `removed` (an id) whenever something changes.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { BerthError, messageOf } from '../common/errors';
import { Logger } from '../common/logging';
import { KeyedQueue, Mutex } from '../common/mutex';
import { HostStats, Limits, RpcParams, SessionEntry, SessionMeta, SESSION_FILE_VERSION } from '../common/protocol';
import { AttachRegistry } from './attaches';
import { ContainerTracker } from './containers';
import { AttachHandle, ContainerRuntime, RuntimeEvent } from './docker/runtime';
import { PortProbe, resolvePort } from './ports/ports';
import { assertDnsFree, portTableOf } from './registry';
import { SessionLocks } from './store/locks';
import { SessionStore, StoredSession } from './store/session-store';
import { Reconciler } from './reconcile';
import { buildEntry, cloneName, containerSpec, hostStats, isRunning } from './view';

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

export interface OpenAttach {
  handle: AttachHandle;
  entry: SessionEntry;
  /** Ends this attach and forgets it. Idempotent. */
  close(): Promise<void>;
}

export class Sessions extends EventEmitter {
  private readonly o: SessionsOptions;
  private readonly log: Logger;
  private readonly stored = new Map<string, StoredSession>();
  private readonly containers: ContainerTracker;
  private readonly attaches = new AttachRegistry();
  private readonly reconciler: Reconciler;
  private readonly registry = new Mutex();
  private readonly notices = new KeyedQueue();
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
    const swept = await this.o.store.init();
    if (swept.length > 0) this.log.info('swept crash leftovers', { folders: swept });
    for (const id of await this.o.store.listIds()) {
      const s = await this.o.store.read(id);
      if (s) this.stored.set(id, s);
      if (s?.kind === 'broken') this.log.warn('broken session', { session: id, reason: s.reason });
    }
    try {
      await this.refreshContainers();
      await this.reconcile();
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

  /** Every session, with fresh container states from one label-filtered listing. */
  async list(): Promise<SessionEntry[]> {
    const ids = await this.o.store.listIds();
    const present = new Set(ids);
    for (const id of [...this.stored.keys()]) if (!present.has(id)) this.stored.delete(id);
    await Promise.all(
      ids.map(async (id) => {
        const s = await this.o.store.read(id);
        if (s) this.stored.set(id, s);
        else this.stored.delete(id);
      }),
    );
    await this.refreshContainers();
    const entries = await Promise.all(ids.map((id) => this.entry(id)));
    return entries.filter((e): e is SessionEntry => e !== null);
  }

  /** One session, read fresh from disk and Docker. Throws NOT_FOUND. */
  async get(id: string): Promise<SessionEntry> {
    await this.load(id);
    await this.refreshSession(id);
    return this.mustEntry(id);
  }

  /** Creates the folder and metadata; no container yet. Throws PORT_UNAVAILABLE, NAME_TAKEN, CONFLICT. */
  async create(p: RpcParams<'create'>, operator: string): Promise<SessionEntry> {
    const meta = await this.registry.run(async () => {
      if (this.o.maxSessions !== null && this.stored.size >= this.o.maxSessions) {
        throw new BerthError('CONFLICT', `agent is full: ${this.o.maxSessions} sessions`);
      }
      assertDnsFree(this.metas(), p.dns, null);
      const port = await resolvePort(p.port, p.protocol, portTableOf(this.metas(), null), this.o.probe);
      const m: SessionMeta = {
        version: SESSION_FILE_VERSION,
        id: randomUUID(),
        name: p.name,
        protocol: p.protocol,
        port,
        dns: p.dns,
        createdAt: this.nowIso(),
        lastAccessedAt: null,
        createdBy: operator,
        ...(p.limits ? { limits: p.limits } : {}),
      };
      await this.o.store.create(m);
      this.stored.set(m.id, { kind: 'ok', meta: m });
      return m;
    });
    this.log.info('created session', { session: meta.id, name: meta.name, operator, port: meta.port });
    this.notify(meta.id);
    return this.mustEntry(meta.id);
  }

  /** Changes name, protocol, port or DNS; a running container keeps its flags until restart. */
  async edit(p: RpcParams<'edit'>, operator: string): Promise<SessionEntry> {
    await this.withLock(p.session, operator, 'edit', async (s) => {
      const meta = okMeta(s);
      await this.registry.run(async () => {
        const protocol = p.protocol ?? meta.protocol;
        const dns = p.dns ?? meta.dns;
        assertDnsFree(this.metas(), dns, meta.id);
        let port = meta.port;
        const wanted = p.port ?? meta.port;
        if (wanted !== meta.port || protocol !== meta.protocol) {
          port = await resolvePort(wanted, protocol, portTableOf(this.metas(), meta.id), this.o.probe);
        }
        const next: SessionMeta = { ...meta, name: p.name ?? meta.name, protocol, port, dns };
        await this.o.store.write(next);
        this.stored.set(meta.id, { kind: 'ok', meta: next });
      });
    });
    this.log.info('edited session', { session: p.session, operator });
    return this.mustEntry(p.session);
  }

  /** Copies a session's home to a new session (port 0, no DNS); a running source is paused meanwhile. */
  async clone(p: RpcParams<'clone'>, operator: string): Promise<SessionEntry> {
    const id = await this.withLock(p.session, operator, 'clone', async (s) => {
      const src = okMeta(s);
      const meta: SessionMeta = {
        ...src,
        id: randomUUID(),
        name: p.name ?? cloneName(src.name),
        port: 0,
        dns: '',
        createdAt: this.nowIso(),
        lastAccessedAt: null,
        createdBy: operator,
      };
      await this.registry.run(async () => {
        if (this.o.maxSessions !== null && this.stored.size >= this.o.maxSessions) {
          throw new BerthError('CONFLICT', `agent is full: ${this.o.maxSessions} sessions`);
        }
      });
      const c = this.containers.get(src.id);
      const pause = c && c.state === 'running';
      if (pause) await this.o.runtime.pause(c.id);
      try {
        await this.o.store.clone(src.id, meta);
      } finally {
        if (pause) await this.o.runtime.unpause(c.id);
      }
      this.stored.set(meta.id, { kind: 'ok', meta });
      return meta.id;
    });
    this.log.info('cloned session', { session: p.session, clone: id, operator });
    this.notify(id);
    return this.mustEntry(id);
  }

  /** Starts a stopped session detached. Throws CONFLICT if it is already running. */
  async restart(id: string, operator: string): Promise<SessionEntry> {
    await this.withLock(id, operator, 'restart', async (s) => {
      await this.refreshSession(id);
      if (isRunning(this.containers.get(id))) throw new BerthError('CONFLICT', 'session is already running');
      await this.startContainer(okMeta(s));
    });
    this.log.info('restarted session', { session: id, operator });
    return this.mustEntry(id);
  }

  /** Stops and removes the container; the folder stays. Throws CONFLICT if there is no container. */
  async kill(id: string, operator: string): Promise<SessionEntry> {
    await this.withLock(id, operator, 'kill', async () => {
      await this.refreshSession(id);
      const c = this.containers.get(id);
      if (!c) throw new BerthError('CONFLICT', 'session is not running');
      await this.closeAttaches(id, null);
      await this.o.runtime.stopAndRemove(c.id, this.o.stopTimeoutSec ?? 10);
      this.containers.delete(id);
    }, { allowBroken: true });
    this.log.info('killed session', { session: id, operator });
    return this.mustEntry(id);
  }

  /** Ends the calling operator's own attaches to the session; the container keeps running. */
  async background(id: string, operator: string): Promise<number> {
    await this.load(id);
    const n = await this.closeAttaches(id, operator);
    this.log.info('backgrounded session', { session: id, operator, detached: n });
    return n;
  }

  /** Stops and removes the container, then the folder, lock, port and metadata. */
  async delete(id: string, operator: string): Promise<void> {
    await this.withLock(id, operator, 'delete', async () => {
      await this.closeAttaches(id, null);
      for (const c of await this.o.runtime.listSession(id)) await this.o.runtime.stopAndRemove(c.id, this.o.stopTimeoutSec ?? 10);
      this.containers.delete(id);
      await this.registry.run(async () => {
        await this.o.store.remove(id);
        this.stored.delete(id);
      });
    }, { allowBroken: true });
    this.log.info('deleted session', { session: id, operator });
    this.notify(id);
  }

  /** Removes a session's lock, whoever holds it; touches nothing else. Throws CONFLICT if unlocked. */
  async override(id: string, operator: string, reason: string | undefined): Promise<SessionEntry> {
    await this.load(id);
    const dir = this.o.store.dir(id);
    const lock = await this.o.locks.inspect(dir);
    if (!lock) throw new BerthError('CONFLICT', 'session is not locked');
    await this.o.locks.remove(dir);
    this.log.warn('overrode lock', { session: id, operator, reason: reason ?? '', holder: lock.operator, op: lock.op, since: lock.since });
    this.notify(id);
    return this.mustEntry(id);
  }

  /**
   * Attaches an operator to the session's tmux, starting the container first if it is stopped.
   * Many may attach at once; each close ends only its own tmux client.
   */
  async openAttach(id: string, operator: string, readOnly: boolean, cols: number, rows: number): Promise<OpenAttach> {
    const s = await this.load(id);
    const meta = okMeta(s);
    await this.refreshSession(id);
    if (!isRunning(this.containers.get(id))) {
      if (readOnly) throw new BerthError('CONFLICT', 'session is not running (a read-only attach does not start it)');
      await this.withLock(id, operator, 'attach', async () => {
        await this.refreshSession(id);
        if (!isRunning(this.containers.get(id))) await this.startContainer(meta);
      });
    }
    const c = this.containers.get(id);
    if (!c) throw new BerthError('CONFLICT', 'session stopped while attaching');
    if (c.state === 'paused') {
      const lock = await this.o.locks.inspect(this.o.store.dir(id));
      if (lock && !lock.stale) throw new BerthError('LOCKED', 'session is paused for a clone; try again in a moment');
      // The clone that paused it is gone (its lock is stale or removed): let the session run again.
      this.log.warn('unpaused container left paused', { session: id });
      await this.o.runtime.unpause(c.id);
      await this.refreshSession(id);
    }
    const handle = await this.o.runtime.attach(c.id, { readOnly, cols, rows, user: this.o.user });
    const attachId = this.attaches.add(id, operator, readOnly, handle);
    await this.touch(meta.id);
    this.log.info('attached', { session: id, operator, readOnly });
    this.notify(id);
    const close = async (): Promise<void> => {
      if (!this.attaches.remove(id, attachId)) return;
      await handle.close();
      this.log.info('detached', { session: id, operator });
      this.notify(id);
    };
    return { handle, entry: await this.mustEntry(id), close };
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

  /** One reconciler pass (orphans, paused leftovers). Throws RUNTIME_UNAVAILABLE when Docker is down. */
  reconcile(): Promise<void> {
    return this.reconciler.run();
  }

  // ---- internals ----

  private async withLock<T>(
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
  private async load(id: string): Promise<StoredSession> {
    const s = await this.o.store.read(id);
    if (!s) {
      if (this.stored.delete(id)) this.notify(id);
      throw new BerthError('NOT_FOUND', `session ${id} not found`);
    }
    this.stored.set(id, s);
    return s;
  }

  private async startContainer(meta: SessionMeta): Promise<void> {
    const summary = await this.o.runtime.start(containerSpec(meta, this.o.store.dir(meta.id), this.o));
    this.containers.set(summary);
    this.log.info('started container', { session: meta.id, container: summary.id.slice(0, 12) });
  }

  private async touch(id: string): Promise<void> {
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

  private async closeAttaches(id: string, operator: string | null): Promise<number> {
    const n = await this.attaches.close(id, operator);
    if (n > 0) this.notify(id);
    return n;
  }

  private async refreshContainers(): Promise<void> {
    for (const id of await this.containers.refreshAll()) this.notify(id);
  }

  private refreshSession(id: string): Promise<void> {
    return this.containers.refresh(id);
  }

  private onRuntimeEvent(e: RuntimeEvent): void {
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

  private onRuntimeUp(): void {
    const wasUp = this.containers.up;
    this.refreshContainers()
      .then(() => {
        if (!wasUp) this.log.info('docker is back');
        return this.reconcile();
      })
      .catch((err: unknown) => this.log.debug('refresh after reconnect failed', { err: messageOf(err) }));
  }

  private metas(): SessionMeta[] {
    return [...this.stored.values()].flatMap((s) => (s.kind === 'ok' ? [s.meta] : []));
  }

  private async entry(id: string): Promise<SessionEntry | null> {
    const s = this.stored.get(id);
    if (!s) return null;
    const lock = await this.o.locks.inspect(this.o.store.dir(id));
    const attached = this.attaches.operators(id);
    return buildEntry(this.o.agent, s, this.containers.get(id) ?? null, attached, lock);
  }

  private async mustEntry(id: string): Promise<SessionEntry> {
    const e = await this.entry(id);
    if (!e) throw new BerthError('NOT_FOUND', `session ${id} not found`);
    return e;
  }

  /** Pushes the session's current entry (or its removal) to listeners, in order per session. */
  private notify(id: string): void {
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

  private nowIso(): string {
    return new Date(this.o.clock.now()).toISOString();
  }
}

function okMeta(s: StoredSession): SessionMeta {
  if (s.kind === 'broken') throw new BerthError('CONFLICT', `session is broken: ${s.reason}`);
  return s.meta;
}
