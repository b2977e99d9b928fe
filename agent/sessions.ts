/**
 * The session operations of one agent (one method per RPC op, plus attach). Each mutation runs
 * under the session's lock; port and DNS checks under the agent's registry lock.
 */
import { randomUUID } from 'node:crypto';
import { BerthError } from '../common/errors';
import { RpcParams, SessionEntry, SessionMeta, SESSION_FILE_VERSION } from '../common/protocol';
import { AttachHandle } from './docker/runtime';
import { resolvePort } from './ports/ports';
import { assertDnsFree, portTableOf } from './registry';
import { SessionCore } from './session-core';
import { StoredSession } from './store/session-store';
import { cloneName, isRunning } from './view';

export type { Clock, SessionsOptions } from './session-core';

export interface OpenAttach {
  handle: AttachHandle;
  entry: SessionEntry;
  /** Ends this attach and forgets it. Idempotent. */
  close(): Promise<void>;
}

export class Sessions extends SessionCore {
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
      this.assertRoom();
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
      this.assertRoom();
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

  /** Throws CONFLICT when the agent already holds `maxSessions` sessions. */
  private assertRoom(): void {
    if (this.o.maxSessions !== null && this.stored.size >= this.o.maxSessions) {
      throw new BerthError('CONFLICT', `agent is full: ${this.o.maxSessions} sessions`);
    }
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
}

function okMeta(s: StoredSession): SessionMeta {
  if (s.kind === 'broken') throw new BerthError('CONFLICT', `session is broken: ${s.reason}`);
  return s.meta;
}
