/**
 * Moving a session to another agent, this agent's half of it (as source or as target). The shell
 * drives both halves (shell/move.ts) and pipes the folder's tar stream from one to the other.
 *
 * The protocol, in order:
 *   1. source `out-begin`: takes the session's lock (op `move`), writes moving.json {to, token},
 *      then stops the container.
 *   2. target `in-begin`: checks the id, port and DNS name, holds them, makes the staging folder
 *      .incoming/<uuid>.<token>/. A refusal here: the shell cancels at the source.
 *   3. source `out-export` piped into target `in-import`; source `out-sums` gives what was sent.
 *   4. target `in-commit`: the bytes and sha256 received equal the source's, session.json parses
 *      with the same id, home/ is there; then ONE RENAME to .incoming/<uuid>.<token>.committed.
 *      That rename is the commit point: before it the source owns the session, after it the target.
 *   5. source `out-finish`: removes its copy (one rename to trash, see SessionStore.remove).
 *   6. target `in-confirm`: renames the committed folder to <root>/<uuid> and lists it, started if
 *      it ran at the source.
 *
 * Invariant: a session is listed by an agent only as <root>/<uuid>; the source's folder is removed
 * only after the target's commit rename, and the target's folder is renamed into <root> only
 * after the source's is gone (or the shell saw it gone). So at every instant the whole session is
 * at the source, or committed at the target, or both (source marked moving, target not listing
 * it): never on none, never listed twice. An uncommitted staging folder is never needed: the
 * target removes it at its start, and on `in-abort`. A source restarted with moving.json takes the
 * lock again (so the menu shows L) and waits for the shell: the target's status of the token says
 * `out-finish` (committed) or `out-cancel` (not).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BerthError, messageOf } from '../common/errors';
import { Logger } from '../common/logging';
import { Protocol } from '../common/names';
import { MovePending, MoveStatus, MoveSums, SessionMeta, sessionMetaSchema } from '../common/protocol';
import { SessionCatalog } from './catalog';
import { ContainerTracker } from './containers';
import { ContainerRuntime } from './docker/runtime';
import { SessionFeed } from './feed';
import { SessionSteps, okMeta } from './session-steps';
import { Release, SessionLocks } from './store/locks';
import { IncomingFolders, MOVED_IN_FILE, MOVING_FILE, exportTar, importTar, movedInSchema, movingSchema, readRecord, writeRecord } from './store/move-folders';
import { SESSION_FILE, SessionStore } from './store/session-store';
import { fsyncDir } from '../common/atomic-file';
import { removeTree, treeBytes } from './store/trees';
import type { JobBoard } from './jobs';
import { isRunning } from './view';
import { Readable, Writable } from 'node:stream';

export interface MoveParts {
  store: SessionStore;
  locks: SessionLocks;
  catalog: SessionCatalog;
  containers: ContainerTracker;
  runtime: ContainerRuntime;
  steps: SessionSteps;
  feed: SessionFeed;
  refresh(id: string): Promise<void>;
  forgetStatus(id: string): void;
  /** The port for a session coming in, exactly `port` or PORT_UNAVAILABLE (see resolveAndClaim). */
  claim(port: number, protocol: Protocol, id: string): Promise<number>;
  releaseClaim(port: number, protocol: Protocol, id: string): Promise<void>;
  stopTimeoutSec: number;
  /** Where the export's progress goes (the jobs the shells follow). */
  jobs: JobBoard;
  log: Logger;
}

export class SessionMoves {
  private readonly incoming: IncomingFolders;
  /** Sessions leaving, by id: the lock this agent holds for them, and the last complete export. */
  private readonly out = new Map<string, { token: string; release: Release; sums: MoveSums | null }>();
  /** Moves coming in, by token: what they hold, and what the import received. */
  private readonly inbound = new Map<string, { meta: SessionMeta; sums: MoveSums | null }>();

  constructor(private readonly p: MoveParts) {
    this.incoming = new IncomingFolders(p.store.root);
  }

  /**
   * At the agent's start: removes uncommitted staging folders, holds the port and name of committed
   * ones, and takes the lock again of each session marked as moving out. Never throws.
   */
  async recover(): Promise<void> {
    for (const f of await this.incoming.list()) {
      if (!f.committed) {
        await removeTree(f.path, 60_000).catch((err: unknown) => this.p.log.warn('remove move staging', { folder: f.path, err: messageOf(err) }));
        continue;
      }
      const meta = await readRecord(path.join(f.path, SESSION_FILE), sessionMetaSchema);
      if (meta) this.p.catalog.hold(meta);
      this.p.log.info('move committed here, waiting for confirm', { session: f.id, token: f.token });
    }
    for (const id of await this.p.store.listIds()) {
      const dir = this.p.store.dir(id);
      const m = await readRecord(path.join(dir, MOVING_FILE), movingSchema);
      if (!m) continue;
      try {
        // One agent per root: a lock here is of a process that is gone.
        await this.p.locks.remove(dir);
        this.out.set(id, { token: m.token, release: await this.p.locks.acquire(dir, m.operator, 'move'), sums: null });
        this.p.log.warn('session was moving out; waiting for the shell to resolve it', { session: id, to: m.to, token: m.token });
      } catch (err) {
        this.p.log.error('relock moving session', { session: id, err: messageOf(err) });
      }
    }
  }

  /** Source, step 1. Idempotent for the same token. Throws NOT_FOUND, LOCKED, CONFLICT. */
  async outBegin(id: string, token: string, to: string, operator: string): Promise<{ meta: SessionMeta; running: boolean }> {
    const meta = okMeta(await this.p.steps.load(id));
    const dir = this.p.store.dir(id);
    const marked = await readRecord(path.join(dir, MOVING_FILE), movingSchema);
    if (marked) {
      if (marked.token !== token) throw new BerthError('CONFLICT', `session is already moving to ${marked.to}`);
      return { meta, running: marked.running };
    }
    const release = await this.p.locks.acquire(dir, operator, 'move');
    this.p.feed.notify(id);
    try {
      await this.p.refresh(id);
      const running = isRunning(this.p.containers.get(id));
      await writeRecord(path.join(dir, MOVING_FILE), { to, token, running, operator });
      await this.p.steps.closeAttaches(id, null);
      for (const c of await this.p.runtime.listSession(id)) await this.p.runtime.stopAndRemove(c.id, this.p.stopTimeoutSec);
      this.p.containers.delete(id);
      this.out.set(id, { token, release, sums: null });
      this.p.feed.notify(id);
      this.p.log.info('moving session out', { session: id, to, token, operator });
      return { meta, running };
    } catch (err) {
      await fs.rm(path.join(dir, MOVING_FILE), { force: true });
      await release();
      this.p.feed.notify(id);
      throw err;
    }
  }

  /**
   * Source, step 3: writes the folder's tar stream to `out` (not ended), as a job (op `move`, its
   * target the agent it goes to) whose bytes the shells see in `ops` and the menu's status line.
   * Throws CONFLICT for another token.
   */
  async outExport(id: string, token: string, out: Writable): Promise<void> {
    const o = this.mustOut(id, token);
    o.sums = null;
    const dir = this.p.store.dir(id);
    const marked = await readRecord(path.join(dir, MOVING_FILE), movingSchema);
    const job = this.p.jobs.begin({ opId: token, op: 'move', operator: marked?.operator ?? 'unknown', session: id, target: { id, name: marked?.to ?? '?' }, phase: 'measuring' });
    try {
      const total = await treeBytes(dir);
      job.progress({ phase: 'copying', bytesDone: 0, bytesTotal: total });
      // tar's stream carries headers beside the files: never more than the total is said.
      o.sums = await exportTar(dir, out, (bytes) => job.progress({ bytesDone: total === null ? bytes : Math.min(bytes, total) }));
      job.end();
    } catch (err) {
      job.end(err);
      throw err;
    }
  }

  /** Source: what the last complete export sent. Throws CONFLICT when none completed. */
  outSums(id: string, token: string): MoveSums {
    const o = this.mustOut(id, token);
    if (!o.sums) throw new BerthError('CONFLICT', 'no complete export of this move');
    return o.sums;
  }

  /** Source, step 5 (after the target's commit): removes the session here. Idempotent. */
  async outFinish(id: string, token: string): Promise<void> {
    const dir = this.p.store.dir(id);
    const marked = await readRecord(path.join(dir, MOVING_FILE), movingSchema);
    if (!marked) {
      if ((await this.p.store.read(id)) === null) return;
      throw new BerthError('CONFLICT', 'session is not moving');
    }
    if (marked.token !== token) throw new BerthError('CONFLICT', 'session is moving under another token');
    const held = this.p.catalog.get(id);
    this.p.forgetStatus(id);
    await this.p.store.remove(id);
    await this.out.get(id)?.release();
    this.out.delete(id);
    this.p.catalog.delete(id);
    if (held?.kind === 'ok') await this.p.releaseClaim(held.meta.port, held.meta.protocol, id);
    this.p.feed.notify(id);
    this.p.log.info('moved session out', { session: id, to: marked.to, token });
  }

  /** Source, when the target never committed: back to how it was (started again if it ran). Idempotent. */
  async outCancel(id: string, token: string): Promise<void> {
    const dir = this.p.store.dir(id);
    const marked = await readRecord(path.join(dir, MOVING_FILE), movingSchema);
    if (!marked || marked.token !== token) return;
    await fs.rm(path.join(dir, MOVING_FILE), { force: true });
    await fsyncDir(dir);
    await this.out.get(id)?.release();
    this.out.delete(id);
    this.p.feed.notify(id);
    this.p.log.info('move cancelled', { session: id, token });
    if (!marked.running) return;
    try {
      await this.p.steps.withLock(id, marked.operator, 'restart', async (s) => this.p.steps.startContainer(okMeta(s)));
    } catch (err) {
      this.p.log.warn('start session again after a cancelled move', { session: id, err: messageOf(err) });
    }
  }

  /** Target, step 2. Idempotent for the same token. Throws CONFLICT, NAME_TAKEN, PORT_UNAVAILABLE. */
  async inBegin(meta: SessionMeta, token: string, from: string, running: boolean): Promise<void> {
    if (this.inbound.has(token)) return;
    await this.p.catalog.reserve(async () => {
      if (this.p.catalog.get(meta.id) || (await this.p.store.read(meta.id))) throw new BerthError('CONFLICT', `session ${meta.id} is already here`);
      this.p.catalog.assertDnsFree(meta.dns, null);
      if (meta.port > 0) await this.p.claim(meta.port, meta.protocol, meta.id);
      this.p.catalog.hold(meta);
      try {
        await this.incoming.ensure();
        const staging = this.incoming.staging(meta.id, token);
        await fs.mkdir(staging, { mode: 0o700 });
        await writeRecord(path.join(staging, MOVED_IN_FILE), { from, token, running });
      } catch (err) {
        this.p.catalog.unhold(meta.id);
        await this.p.releaseClaim(meta.port, meta.protocol, meta.id);
        throw err;
      }
    });
    this.inbound.set(token, { meta, sums: null });
    this.p.log.info('moving session in', { session: meta.id, from, token, port: meta.port });
  }

  /** Target, step 3: unpacks `input` into the staging folder; resolves with what was received. */
  async inImport(id: string, token: string, input: Readable): Promise<MoveSums> {
    this.checkIn(id, token);
    const i = this.inbound.get(token)!;
    i.sums = null;
    i.sums = await importTar(this.incoming.staging(id, token), input);
    return i.sums;
  }

  /** Target, step 4: verifies and commits (the commit point). Idempotent once committed. */
  async inCommit(id: string, token: string, sent: MoveSums): Promise<void> {
    const committed = this.incoming.committed(id, token);
    if (await exists(committed)) return;
    const i = this.inbound.get(token);
    if (!i || i.meta.id !== id) throw new BerthError('CONFLICT', 'no such move begun here');
    if (!i.sums || i.sums.bytes !== sent.bytes || i.sums.sha256 !== sent.sha256) {
      throw new BerthError('CONFLICT', `received ${i.sums ? `${i.sums.bytes} bytes, ${i.sums.sha256.slice(0, 12)}` : 'nothing complete'}; sent ${sent.bytes} bytes, ${sent.sha256.slice(0, 12)}`);
    }
    const staging = this.incoming.staging(id, token);
    const meta = await readRecord(path.join(staging, SESSION_FILE), sessionMetaSchema);
    if (!meta || meta.id !== id) throw new BerthError('CONFLICT', 'received session.json does not parse or names another session');
    if (!(await fs.lstat(path.join(staging, 'home')).then((s) => s.isDirectory(), () => false))) throw new BerthError('CONFLICT', 'received no home folder');
    await fs.rename(staging, committed);
    await fsyncDir(this.incoming.dir);
    this.p.log.info('move committed', { session: id, token, bytes: sent.bytes });
  }

  /** Target, step 6: lists the session (and starts it if it ran at the source). Idempotent. */
  async inConfirm(id: string, token: string, operator: string): Promise<void> {
    const committed = this.incoming.committed(id, token);
    if (!(await exists(committed))) {
      if (await this.p.store.read(id)) return;
      throw new BerthError('NOT_FOUND', 'no committed move of this session here');
    }
    const rec = await readRecord(path.join(committed, MOVED_IN_FILE), movedInSchema);
    await this.p.catalog.reserve(async () => {
      const final = this.p.store.dir(id);
      if (await exists(final)) throw new BerthError('CONFLICT', `session folder ${id} already exists`);
      await fs.rename(committed, final);
      await fsyncDir(this.p.store.root);
      await fs.rm(path.join(final, MOVED_IN_FILE), { force: true });
      this.p.catalog.unhold(id);
    });
    this.inbound.delete(token);
    await this.p.steps.load(id);
    this.p.feed.notify(id);
    this.p.log.info('moved session in', { session: id, from: rec?.from, token });
    if (!rec?.running) return;
    try {
      await this.p.steps.withLock(id, operator, 'restart', async (s) => this.p.steps.startContainer(okMeta(s)));
    } catch (err) {
      this.p.log.warn('start moved session', { session: id, err: messageOf(err) });
    }
  }

  /** Target: drops an uncommitted move. Idempotent; CONFLICT once committed. */
  async inAbort(id: string, token: string): Promise<void> {
    if (await exists(this.incoming.committed(id, token))) throw new BerthError('CONFLICT', 'move is committed here');
    await removeTree(this.incoming.staging(id, token), 60_000);
    const i = this.inbound.get(token);
    this.inbound.delete(token);
    if (i) {
      this.p.catalog.unhold(id);
      await this.p.releaseClaim(i.meta.port, i.meta.protocol, id);
    }
  }

  /** Target: where the move `token` of session `id` stands here. */
  async inStatus(id: string, token: string): Promise<MoveStatus> {
    if (await exists(this.incoming.committed(id, token))) return 'committed';
    if (await exists(this.incoming.staging(id, token))) return 'staged';
    return (await this.p.store.read(id)) ? 'confirmed' : 'none';
  }

  /** The moves half-done here, both ways. */
  async pending(): Promise<MovePending> {
    const outgoing: MovePending['outgoing'] = [];
    for (const id of await this.p.store.listIds()) {
      const m = await readRecord(path.join(this.p.store.dir(id), MOVING_FILE), movingSchema);
      if (m) outgoing.push({ session: id, to: m.to, token: m.token });
    }
    const incoming: MovePending['incoming'] = [];
    for (const f of await this.incoming.list()) {
      const rec = await readRecord(path.join(f.path, MOVED_IN_FILE), movedInSchema);
      incoming.push({ session: f.id, from: rec?.from ?? '', token: f.token, committed: f.committed });
    }
    return { outgoing, incoming };
  }

  /** Throws CONFLICT unless session `id` is moving out here under `token`. */
  checkOut(id: string, token: string): void {
    this.mustOut(id, token);
  }

  /** Throws CONFLICT unless the move `token` of session `id` was begun here and is not committed. */
  checkIn(id: string, token: string): void {
    const i = this.inbound.get(token);
    if (!i || i.meta.id !== id) throw new BerthError('CONFLICT', 'no such move begun here');
  }

  private mustOut(id: string, token: string): { token: string; release: Release; sums: MoveSums | null } {
    const o = this.out.get(id);
    if (!o || o.token !== token) throw new BerthError('CONFLICT', 'session is not moving under this token');
    return o;
  }
}

function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}
