/**
 * The session operations of one agent: one method per RPC op, plus attach. Each mutation runs
 * under the session's lock; port and DNS decisions under the catalog's reservation. The parts
 * they stand on each hold one thing: the store (folders on disk), the locks, the catalog
 * (metadata in memory, ports and names), the containers (Docker's picture, kept by the watch),
 * the live attaches, and the feed (what subscribers are told).
 */
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { BerthError, messageOf } from '../common/errors';
import { Logger } from '../common/logging';
import { Protocol } from '../common/names';
import { HostStats, RpcParams, SessionEntry, SessionMeta, SESSION_FILE_VERSION, TrashEntry } from '../common/protocol';
import { LiveAttaches } from './attaches';
import { JobBoard } from './jobs';
import { SharedCaptures } from './activity/shared-captures';
import { StatusWatch } from './activity/status-watch';
import { RepoMirrors } from './repos/mirrors';
import { checkSessionEnv, editedSetup, sessionSetup } from './session-env';
import { OpenAttach, SessionAttacher } from './session-attach';
import { SessionCatalog } from './catalog';
import { ContainerWatch } from './container-watch';
import { ContainerTracker } from './containers';
import { SessionFeed } from './feed';
import { PortTable } from './ports/ports';
import { resolveAndClaim } from './ports/claims';
import { checkRequestedLimits } from './limits';
import { Reconciler } from './reconcile';
import { SessionSteps, okMeta } from './session-steps';
import { SessionTrash } from './session-trash';
import { SessionMoves } from './session-move';
import { cloneSession } from './session-clone';
import { ContainerSettings, SessionsDeps, SessionsPolicy } from './sessions-options';
import { hostStats, isRunning } from './view';

export type { Clock, ContainerSettings, SessionsDeps, SessionsPolicy } from './sessions-options';
export type { OpenAttach } from './session-attach';

/** Events: `session` (a full SessionEntry) and `removed` (an id), on every change; `trash` (every TrashEntry) when the trash changes. */
export class Sessions extends EventEmitter {
  private readonly log: Logger;
  private readonly catalog = new SessionCatalog();
  private readonly attaches = new LiveAttaches();
  private readonly containers: ContainerTracker;
  private readonly feed: SessionFeed;
  private readonly watch: ContainerWatch;
  private readonly steps: SessionSteps;
  private readonly attacher: SessionAttacher;
  /** Long ops (clones) as they run, for the events subscribers. */
  readonly jobs = new JobBoard();
  /** What each session's program reports about itself. */
  private readonly status: StatusWatch;
  private readonly captures = new SharedCaptures();
  /** Deleted sessions until they are purged (see session-trash.ts). */
  readonly trash: SessionTrash;
  /** Moves of sessions to and from other agents (session-move.ts). */
  readonly moves: SessionMoves;

  constructor(
    private readonly d: SessionsDeps,
    private readonly settings: ContainerSettings,
    private readonly policy: SessionsPolicy,
  ) {
    super();
    this.log = d.logger.child({ component: 'sessions', agent: settings.agent });
    this.containers = new ContainerTracker(d.runtime);
    this.status = new StatusWatch({ changed: (id) => this.feed.notify(id), logger: this.log, stuckAfterMs: policy.stuckAfterMs, idleAfterMs: policy.idleAfterMs });
    this.feed = new SessionFeed({
      agent: settings.agent,
      defaultCommand: settings.command,
      activity: (id) => this.status.activity(id),
      git: (id) => this.status.git(id),
      catalog: this.catalog,
      containers: this.containers,
      attaches: this.attaches,
      locks: d.locks,
      store: d.store,
      logger: this.log,
      push: (c) => (c.kind === 'session' ? this.emit('session', c.entry) : this.emit('removed', c.id)),
    });
    this.steps = new SessionSteps(d, settings, { catalog: this.catalog, containers: this.containers, attaches: this.attaches, feed: this.feed, status: this.status, log: this.log });
    this.watch = new ContainerWatch({
      runtime: d.runtime,
      containers: this.containers,
      reconciler: new Reconciler({ runtime: d.runtime, store: d.store, locks: d.locks, now: () => d.clock.now(), graceMs: policy.orphanGraceMs, logger: this.log }),
      logger: this.log,
      intervalMs: policy.reconcileIntervalMs,
      changed: (id) => this.feed.notify(id),
      stopped: (id) => void this.steps.closeAttaches(id, null),
      everyRound: () => void this.sweep(),
    });
    this.moves = new SessionMoves({
      ...{ store: d.store, locks: d.locks, runtime: d.runtime, catalog: this.catalog, containers: this.containers, steps: this.steps, feed: this.feed },
      refresh: (id) => this.watch.refresh(id),
      forgetStatus: (id) => this.status.forget(id),
      claim: (port, protocol, id) => this.resolveAndClaim(port, protocol, this.catalog.portTable(null), id),
      releaseClaim: (port, protocol, id) => this.releaseClaim(port, protocol, id),
      stopTimeoutSec: settings.stopTimeoutSec ?? 10,
      jobs: this.jobs,
      log: this.log,
    });
    this.trash = new SessionTrash({
      ...{ d, settings, steps: this.steps, catalog: this.catalog, containers: this.containers, status: this.status, feed: this.feed, log: this.log },
      trashMs: policy.trashMs ?? 0,
      resolveAndClaim: (...a) => this.resolveAndClaim(...a),
      releaseClaim: (...a) => this.releaseClaim(...a),
      changed: (t: TrashEntry[]) => this.emit('trash', t),
    });
    this.attacher = new SessionAttacher({ d, settings, steps: this.steps, watch: this.watch, containers: this.containers, attaches: this.attaches, feed: this.feed, log: this.log });
  }

  /** Sweeps crash leftovers, loads every session, adopts the containers Docker has, follows events. */
  async start(): Promise<void> {
    const moved = await this.d.store.init();
    if (moved.migrated.length > 0) this.log.info('moved sessions to the current layout', { sessions: moved.migrated });
    for (const u of moved.unreadable) this.log.warn('moved session has no usable metadata', { session: u.id, reason: u.reason });
    await this.sweep();
    await this.trash.start();
    await this.moves.recover();
    for (const id of await this.d.store.listIds()) {
      const s = await this.d.store.read(id);
      if (s) this.catalog.set(id, s);
      // What its program said last (a session never started since has no status folder yet).
      if (s?.kind === 'ok') await this.followStatus(id);
      if (s?.kind === 'broken') this.log.warn('broken session', { session: id, reason: s.reason });
    }
    if (this.d.claims) {
      const own = this.catalog.metas().filter((m) => m.port > 0).map((m) => ({ port: m.port, protocol: m.protocol, session: m.id }));
      for (const c of await this.d.claims.sync(own)) this.log.warn('port claimed by another agent on this host', { conflict: c });
    }
    await this.watch.start();
    await this.attacher.endLeaked();
    this.log.info('sessions loaded', { sessions: this.catalog.size, containers: this.containers.size });
  }

  /**
   * Attaches an operator to the session's tmux, starting the container first if it is stopped.
   * Many may attach at once; each close ends only its own tmux client.
   */
  openAttach(id: string, operator: string, readOnly: boolean, cols: number, rows: number): Promise<OpenAttach> {
    return this.attacher.open(id, operator, readOnly, cols, rows);
  }

  /**
   * The last lines of a running session's pane (one capture serves every caller within a short
   * window: shared-captures.ts). Throws CONFLICT when it is not running.
   */
  async preview(id: string, lines: number): Promise<{ text: string; at: string }> {
    await this.steps.load(id);
    const c = this.containers.get(id);
    if (!c || c.state !== 'running') throw new BerthError('CONFLICT', c?.state === 'paused' ? 'session is paused for a clone' : 'session is not running');
    return this.captures.get(c.id, lines, async (n) => {
      const text = await this.d.runtime.capturePane(c.id, this.settings.user, n);
      return { text, at: new Date(this.d.clock.now()).toISOString() };
    });
  }

  /** Follows the session's status folder, if it has one. */
  private async followStatus(id: string): Promise<void> {
    const dir = this.d.store.statusDir(id);
    const st = await fs.lstat(dir).catch(() => null);
    if (st?.isDirectory()) this.status.follow(id, dir);
  }

  /** Stops following Docker and ends every attach (their tmux clients are HUP'd). Idempotent. */
  async stop(): Promise<void> {
    this.watch.stop();
    this.status.stop();
    this.trash.stop();
    await this.attaches.closeAll();
  }

  /** Removes what a crash left in the root (see SessionSteps.sweep). Never fails. */
  sweep(): Promise<void> {
    return this.steps.sweep();
  }

  /** Host figures for the `stats` op and event. */
  stats(): HostStats {
    return hostStats(this.catalog.size, this.containers.runningCount(), this.d.store.root);
  }

  /** Every known session's entry, from memory (for a new events subscriber). */
  snapshot(): Promise<SessionEntry[]> {
    return this.feed.snapshot();
  }

  get dockerUp(): boolean {
    return this.containers.up;
  }

  /** One reconciler round. Throws RUNTIME_UNAVAILABLE when Docker is down. */
  reconcile(): Promise<void> {
    return this.watch.reconcile();
  }

  /** Every session, with fresh container states from one label-filtered listing. */
  async list(): Promise<SessionEntry[]> {
    const ids = await this.d.store.listIds();
    const present = new Set(ids);
    for (const id of this.catalog.ids()) if (!present.has(id)) this.catalog.delete(id);
    await Promise.all(
      ids.map(async (id) => {
        const s = await this.d.store.read(id);
        if (s) this.catalog.set(id, s);
        else this.catalog.delete(id);
      }),
    );
    await this.watch.refreshAll();
    const entries = await Promise.all(ids.map((id) => this.feed.entry(id)));
    return entries.filter((e): e is SessionEntry => e !== null);
  }

  /** One session, read fresh from disk and Docker. Throws NOT_FOUND. */
  async get(id: string): Promise<SessionEntry> {
    await this.steps.load(id);
    await this.watch.refresh(id);
    return this.feed.mustEntry(id);
  }

  /**
   * Creates the folder and metadata; no container yet. A project's mirror is made (or fetched)
   * first, as a job under `opId`, so a repository that cannot be read fails the create. Throws
   * PORT_UNAVAILABLE, NAME_TAKEN, CONFLICT, BAD_REQUEST, FORBIDDEN.
   */
  async create(p: RpcParams<'create'>, operator: string, opId: string = randomUUID()): Promise<SessionEntry> {
    const setup = sessionSetup(p, this.settings.env ?? {});
    const id = randomUUID();
    if (setup.repo) {
      await mirrorsOf(this.d).check(setup.repo.url);
      // Fetching a repository can take minutes: a job, so the shell waits as long as it reports.
      const job = this.jobs.begin({ opId, op: 'create', operator, session: id, target: { id, name: p.name }, phase: 'fetching' });
      try {
        await mirrorsOf(this.d).prepare(setup.repo.url);
        job.end();
      } catch (err) {
        job.end(err);
        throw err;
      }
    }
    const meta = await this.catalog.reserve(async () => {
      this.assertRoom();
      checkRequestedLimits(p.limits, this.steps.limitPolicy);
      this.catalog.assertDnsFree(p.dns, null);
      const port = await this.resolveAndClaim(p.port, p.protocol, this.catalog.portTable(null), id);
      const m: SessionMeta = {
        version: SESSION_FILE_VERSION,
        id,
        name: p.name,
        protocol: p.protocol,
        port,
        dns: p.dns,
        createdAt: this.steps.nowIso(),
        lastAccessedAt: null,
        createdBy: operator,
        ...(p.limits ? { limits: p.limits } : {}),
        ...setup,
      };
      try {
        await this.d.store.create(m);
      } catch (err) {
        await this.releaseClaim(port, p.protocol, id);
        throw err;
      }
      this.catalog.set(m.id, { kind: 'ok', meta: m });
      return m;
    });
    this.log.info('created session', { session: meta.id, name: meta.name, operator, port: meta.port });
    this.feed.notify(meta.id);
    return this.feed.mustEntry(meta.id);
  }

  /**
   * Changes name, protocol, port, DNS, limits, command or variables; a running container keeps
   * what it started with until its restart.
   */
  async edit(p: RpcParams<'edit'>, operator: string): Promise<SessionEntry> {
    checkRequestedLimits(p.limits, this.steps.limitPolicy);
    if (p.env) checkSessionEnv(this.settings.env ?? {}, p.env);
    await this.steps.withLock(p.session, operator, 'edit', async (s) => {
      const meta = okMeta(s);
      await this.catalog.reserve(async () => {
        const protocol = p.protocol ?? meta.protocol;
        const dns = p.dns ?? meta.dns;
        this.catalog.assertDnsFree(dns, meta.id);
        let port = meta.port;
        const wanted = p.port ?? meta.port;
        const moved = wanted !== meta.port || protocol !== meta.protocol;
        if (moved) port = await this.resolveAndClaim(wanted, protocol, this.catalog.portTable(meta.id), meta.id);
        const limits = p.limits ? { ...meta.limits, ...p.limits } : meta.limits;
        const next = editedSetup({ ...meta, name: p.name ?? meta.name, protocol, port, dns, ...(limits ? { limits } : {}) }, p);
        try {
          await this.d.store.write(next);
        } catch (err) {
          if (moved) await this.releaseClaim(port, protocol, meta.id);
          throw err;
        }
        this.catalog.set(meta.id, { kind: 'ok', meta: next });
        if (moved) await this.releaseClaim(meta.port, meta.protocol, meta.id);
      });
    });
    this.log.info('edited session', { session: p.session, operator, fields: Object.keys(p).filter((k) => k !== 'session') });
    return this.feed.mustEntry(p.session);
  }

  /**
   * Copies a session's home to a new session (port 0, no DNS); a running source is paused
   * meanwhile. Runs as a job under `opId`: its progress is pushed while it copies.
   */
  clone(p: RpcParams<'clone'>, operator: string, opId: string = randomUUID()): Promise<SessionEntry> {
    return cloneSession(
      { jobs: this.jobs, steps: this.steps, containers: this.containers, runtime: this.d.runtime, store: this.d.store, catalog: this.catalog, feed: this.feed, log: this.log, assertRoom: () => this.assertRoom() },
      p,
      operator,
      opId,
    );
  }

  /** Starts a stopped session detached. Throws CONFLICT if it is already running. */
  async restart(id: string, operator: string): Promise<SessionEntry> {
    await this.steps.withLock(id, operator, 'restart', async (s) => {
      await this.watch.refresh(id);
      if (isRunning(this.containers.get(id))) throw new BerthError('CONFLICT', 'session is already running');
      await this.steps.startContainer(okMeta(s));
    });
    this.log.info('restarted session', { session: id, operator });
    return this.feed.mustEntry(id);
  }

  /** Stops and removes the container; the folder stays. Throws CONFLICT if there is no container. */
  async kill(id: string, operator: string): Promise<SessionEntry> {
    await this.steps.withLock(id, operator, 'kill', async () => {
      await this.watch.refresh(id);
      const c = this.containers.get(id);
      if (!c) throw new BerthError('CONFLICT', 'session is not running');
      await this.steps.closeAttaches(id, null);
      await this.d.runtime.stopAndRemove(c.id, this.settings.stopTimeoutSec ?? 10);
      this.containers.delete(id);
    }, { allowBroken: true });
    this.log.info('killed session', { session: id, operator });
    return this.feed.mustEntry(id);
  }

  /** Ends the calling operator's own attaches to the session; the container keeps running. */
  async background(id: string, operator: string): Promise<number> {
    await this.steps.load(id);
    const n = await this.steps.closeAttaches(id, operator);
    this.log.info('backgrounded session', { session: id, operator, detached: n });
    return n;
  }

  /** Stops and removes the container, moves the folder to the trash, releases the port (see SessionTrash.delete). */
  delete(id: string, operator: string): Promise<TrashEntry | null> {
    return this.trash.delete(id, operator);
  }

  /** Brings a trashed session back, stopped (see SessionTrash.restore). */
  restore(id: string, operator: string, noPort: boolean): Promise<SessionEntry> {
    return this.trash.restore(id, operator, noPort);
  }

  /** Removes a session's lock, whoever holds it; touches nothing else. Throws CONFLICT if unlocked. */
  async override(id: string, operator: string, reason: string | undefined): Promise<SessionEntry> {
    await this.steps.load(id);
    const dir = this.d.store.dir(id);
    const lock = await this.d.locks.inspect(dir);
    if (!lock) throw new BerthError('CONFLICT', 'session is not locked');
    await this.d.locks.remove(dir);
    this.log.warn('overrode lock', { session: id, operator, reason: reason ?? '', holder: lock.operator, op: lock.op, since: lock.since });
    this.feed.notify(id);
    return this.feed.mustEntry(id);
  }

  /** A port for the session (see resolveAndClaim), claimed host-wide where agents share a claims folder. */
  private resolveAndClaim(requested: number, protocol: Protocol, used: PortTable, session: string): Promise<number> {
    return resolveAndClaim({ requested, protocol, used, session, probe: this.d.probe, claims: this.d.claims });
  }

  private async releaseClaim(port: number, protocol: Protocol, session: string): Promise<void> {
    if (port <= 0 || !this.d.claims) return;
    await this.d.claims.release(port, protocol, session).catch((err: unknown) => this.log.warn('release port claim', { port, protocol, session, err: messageOf(err) }));
  }

  /** Throws CONFLICT when the agent already holds `maxSessions` sessions. */
  private assertRoom(): void {
    if (this.policy.maxSessions !== null && this.catalog.size >= this.policy.maxSessions) {
      throw new BerthError('CONFLICT', `agent is full: ${this.policy.maxSessions} sessions`);
    }
  }
}

/** The agent's project mirrors; BAD_REQUEST when it keeps none. */
function mirrorsOf(d: SessionsDeps): RepoMirrors {
  if (!d.repos) throw new BerthError('BAD_REQUEST', 'repo: this agent takes no projects');
  return d.repos;
}
