/**
 * Session folders under the agent's root, laid out so that nothing berth trusts is in the
 * container's reach:
 *
 *     <root>/<uuid>/               the agent's, 0700, never mounted
 *     <root>/<uuid>/session.json   metadata
 *     <root>/<uuid>/session.lock   lock (and session.lock.owner.json beside it)
 *     <root>/<uuid>/home/          the session's home, mounted, owned by its user
 *     <root>/<uuid>/status/        where its program reports its status (mounted at
 *                                  /run/berth/status, owned by its user; read as untrusted)
 *
 * Creating, cloning and deleting go through a staging name and one rename, so a crash at any
 * point leaves the whole session or none of it; `sweep` removes what a crash left half-done.
 * Whole-tree work on homes (copy, remove, chown) runs in child processes (see trees.ts).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BerthError, messageOf, wrapError } from '../../common/errors';
import { UUID_RE } from '../../common/names';
import { parseJson } from '../../common/json';
import { SessionMeta, sessionMetaSchema } from '../../common/protocol';
import { fsyncDir, writeFileAtomic } from '../../common/atomic-file';
import { CopyProgress, chownTree, copyEntriesWithProgress, removeTree } from './trees';
import { readUntrustedFile, UntrustedFileError } from './untrusted-files';
import { migrateLayout, MigrationReport } from './migrate';

export const SESSION_FILE = 'session.json';
export const HOME_DIR = 'home';
/** Beside the home: where the session's program reports its status (see agent/activity). */
export const STATUS_DIR = 'status';
export const LOCK_DIR = 'session.lock';
/** The lock's owner record, beside the lock: writing inside proper-lockfile's folder would change
 * its mtime, which proper-lockfile reads as a compromised lock. */
export const LOCK_OWNER_FILE = 'session.lock.owner.json';
/** session.json is small; anything bigger is not one. */
export const MAX_SESSION_FILE_BYTES = 64 * 1024;
const STAGING = '.staging-';
const TRASH = '.trash-';
/** Copies, removals and chowns of one home that take longer than this are stopped (and fail). */
const DEFAULT_TREE_TIMEOUT_MS = 30 * 60 * 1000;

export type StoredSession =
  | { kind: 'ok'; meta: SessionMeta }
  | { kind: 'broken'; id: string; reason: string };

export interface SweepResult {
  /** Leftover folders removed. */
  swept: string[];
  /** Leftover folders that could not be removed this time, with why: the next sweep tries again. */
  left: Array<{ name: string; reason: string }>;
}

export interface StoreOptions {
  root: string;
  /** Owner of session homes (the containers' user); unset: leave them as created. */
  owner?: { uid: number; gid: number };
  /** Bound on copying, removing or chowning one home. */
  treeTimeoutMs?: number;
}

export type Owner = { uid: number; gid: number };

export class SessionStore {
  readonly root: string;
  private readonly owner?: Owner;
  private readonly treeTimeoutMs: number;
  /** Last read of each session.json, keyed by its (inode, size, mtime): an unchanged file is not parsed again. */
  private readonly cache = new Map<string, { stamp: string; result: StoredSession }>();
  /** Staging and trash folders that an operation of this process is still working in: never swept. */
  private readonly busy = new Set<string>();

  constructor(opts: StoreOptions) {
    this.root = path.resolve(opts.root);
    this.owner = opts.owner;
    this.treeTimeoutMs = opts.treeTimeoutMs ?? DEFAULT_TREE_TIMEOUT_MS;
  }

  /** The folder of a session (the agent's). Throws BAD_REQUEST for anything but a uuid, so `../x` never reaches the disk. */
  dir(id: string): string {
    if (!UUID_RE.test(id)) throw new BerthError('BAD_REQUEST', `session: not a session id: ${JSON.stringify(id).slice(0, 80)}`);
    return path.join(this.root, id);
  }

  /** The session's home: what its container mounts, and all of what it can write. */
  home(id: string): string {
    return path.join(this.dir(id), HOME_DIR);
  }

  /** Where the session's program reports its status (mounted writable at /run/berth/status). */
  statusDir(id: string): string {
    return path.join(this.dir(id), STATUS_DIR);
  }

  /**
   * Makes the status folder (owned by the containers' user, 0700) if it is not there; returns it.
   * The session's folder is the agent's, so the status folder cannot have been put there by a
   * session: a thing of that name that is no folder is refused.
   */
  async ensureStatusDir(id: string): Promise<string> {
    const dir = this.statusDir(id);
    await fs.mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    const st = await fs.lstat(dir);
    if (!st.isDirectory()) throw new BerthError('INTERNAL', `session ${id}: ${STATUS_DIR} is not a folder`);
    if (this.owner && (st.uid !== this.owner.uid || st.gid !== this.owner.gid)) await fs.chown(dir, this.owner.uid, this.owner.gid);
    return dir;
  }

  /**
   * Creates the root, and moves sessions of the older layout (records inside the home) to this
   * one; a migration that a crash interrupted is finished. Idempotent.
   */
  async init(): Promise<MigrationReport> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o711 });
    return migrateLayout(this.root);
  }

  /**
   * Removes the staging and trash folders that a crash left behind. Never throws: a folder that
   * cannot be removed now (a dying copy still writing into it, a permission problem) is reported
   * in `left` and stays for the next sweep. Folders of this process's own operations are skipped.
   */
  async sweep(): Promise<SweepResult> {
    const result: SweepResult = { swept: [], left: [] };
    let names: string[];
    try {
      names = await fs.readdir(this.root);
    } catch (err) {
      result.left.push({ name: '.', reason: messageOf(err) });
      return result;
    }
    for (const name of names) {
      if (!(name.startsWith(STAGING) || name.startsWith(TRASH)) || this.busy.has(name)) continue;
      try {
        await removeTree(path.join(this.root, name), this.treeTimeoutMs);
        result.swept.push(name);
      } catch (err) {
        result.left.push({ name, reason: messageOf(err) });
      }
    }
    return result;
  }

  /** Ids of every session folder (valid or broken), sorted. */
  async listIds(): Promise<string[]> {
    const entries = await fs.readdir(this.root, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && UUID_RE.test(e.name)).map((e) => e.name).sort();
  }

  /**
   * Reads and checks one session.json (every call looks at the disk; an unchanged file is answered
   * from the last parse). Null when the folder does not exist. Never throws for bad content.
   */
  async read(id: string): Promise<StoredSession | null> {
    const dir = this.dir(id);
    const file = path.join(dir, SESSION_FILE);
    let stamp: string;
    try {
      const st = await fs.lstat(file);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      this.cache.delete(id);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        const exists = await fs.lstat(dir).then((st) => st.isDirectory(), () => false);
        return exists ? { kind: 'broken', id, reason: 'session.json is missing' } : null;
      }
      return { kind: 'broken', id, reason: `session.json unreadable: ${messageOf(err)}` };
    }
    const hit = this.cache.get(id);
    if (hit && hit.stamp === stamp) return hit.result;
    const result = await this.parse(id, file);
    this.cache.set(id, { stamp, result });
    return result;
  }

  private async parse(id: string, file: string): Promise<StoredSession> {
    let text: string;
    try {
      text = (await readUntrustedFile(file, MAX_SESSION_FILE_BYTES)).toString('utf8');
    } catch (err) {
      const why = err instanceof UntrustedFileError ? err.message : messageOf(err);
      return { kind: 'broken', id, reason: `session.json unreadable: ${why}` };
    }
    const r = parseJson(text, sessionMetaSchema);
    if (!r.ok) return { kind: 'broken', id, reason: `session.json: ${r.problem}` };
    if (r.value.id !== id) return { kind: 'broken', id, reason: `session.json: id ${r.value.id} does not match its folder` };
    const home = await fs.lstat(path.join(this.dir(id), HOME_DIR)).catch(() => null);
    if (!home?.isDirectory()) return { kind: 'broken', id, reason: 'home folder is missing' };
    return { kind: 'ok', meta: r.value };
  }

  /** Rewrites an existing session's metadata atomically. Throws NOT_FOUND if the folder is gone. */
  async write(meta: SessionMeta): Promise<void> {
    const dir = this.dir(meta.id);
    try {
      await writeFileAtomic(path.join(dir, SESSION_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BerthError('NOT_FOUND', `session ${meta.id} not found`);
      throw wrapError('write session.json', err);
    }
  }

  /** Creates a new session folder with its metadata and an empty home, all at once. Throws CONFLICT if it exists. */
  async create(meta: SessionMeta): Promise<void> {
    const final = this.dir(meta.id);
    await this.inStaging(`${STAGING}${meta.id}`, 'create session folder', async (staging) => {
      await this.makeFolders(staging);
      await this.finishStaging(staging, meta, final);
    });
  }

  /**
   * Copies a session's home (never its metadata or lock) to a new session, all at once; tells
   * `progress` how far the copy got as it goes (then `finishing` while it is put in place).
   */
  async clone(srcId: string, meta: SessionMeta, progress: (p: CopyProgress | { phase: 'finishing' }) => void = () => undefined): Promise<void> {
    const src = this.home(srcId);
    const final = this.dir(meta.id);
    await this.inStaging(`${STAGING}${meta.id}`, 'copy session folder', async (staging) => {
      const home = await this.makeFolders(staging);
      await copyEntriesWithProgress(src, await fs.readdir(src), home, this.treeTimeoutMs, progress);
      progress({ phase: 'finishing' });
      // A source not yet handed to the current user (see claimHome): the copy is, at once.
      const from = (await fs.lstat(src)).uid;
      if (this.owner && from !== this.owner.uid && from !== 0) await chownTree(home, from, this.owner, this.treeTimeoutMs);
      await this.finishStaging(staging, meta, final);
    });
  }

  /**
   * Makes sure the home belongs to the containers' user: after a change of that user (or the
   * move from the older layout) its files are handed over, links never followed. Call it while
   * no container of the session runs.
   */
  async claimHome(id: string): Promise<void> {
    if (!this.owner) return;
    const home = this.home(id);
    const st = await fs.lstat(home).catch(() => null);
    if (!st?.isDirectory()) throw new BerthError('CONFLICT', `session ${id}: home folder is missing`);
    if (st.uid === this.owner.uid && st.gid === this.owner.gid && (st.mode & 0o777) === 0o700) return;
    try {
      // Files root made in a home are not handed over: only the old user's.
      if (st.uid !== this.owner.uid && st.uid !== 0) await chownTree(home, st.uid, this.owner, this.treeTimeoutMs);
      await fs.lchown(home, this.owner.uid, this.owner.gid);
      await fs.chmod(home, 0o700);
    } catch (err) {
      throw wrapError(`hand session ${id}'s home to uid ${this.owner.uid}`, err);
    }
  }

  /** Removes a session folder: one rename takes it out of sight, then the rest is deleted. Idempotent. */
  async remove(id: string): Promise<void> {
    const dir = this.dir(id);
    const name = `${TRASH}${id}`;
    const trash = path.join(this.root, name);
    this.cache.delete(id);
    this.busy.add(name);
    try {
      try {
        await fs.rename(dir, trash);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw wrapError('remove session folder', err);
      }
      await fsyncDir(this.root);
      // The session is gone from here on; what cannot be deleted now, a later sweep deletes.
      await removeTree(trash, this.treeTimeoutMs).catch(() => undefined);
    } finally {
      this.busy.delete(name);
    }
  }

  /** Runs `fn` on a staging folder that no sweep touches meanwhile, and removes it if `fn` fails. */
  private async inStaging(name: string, what: string, fn: (staging: string) => Promise<void>): Promise<void> {
    const staging = path.join(this.root, name);
    this.busy.add(name);
    try {
      await fn(staging);
    } catch (err) {
      await removeTree(staging, this.treeTimeoutMs).catch(() => undefined);
      throw wrapError(what, err);
    } finally {
      this.busy.delete(name);
    }
  }

  /** The agent's folder (0700) with an empty home (0700, the containers' user's) in it; returns the home. */
  private async makeFolders(staging: string): Promise<string> {
    await fs.mkdir(staging, { mode: 0o700 });
    const home = path.join(staging, HOME_DIR);
    await fs.mkdir(home, { mode: 0o700 });
    if (this.owner) await fs.lchown(home, this.owner.uid, this.owner.gid);
    return home;
  }

  private async finishStaging(staging: string, meta: SessionMeta, final: string): Promise<void> {
    await writeFileAtomic(path.join(staging, SESSION_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    const exists = await fs.lstat(final).then(() => true, () => false);
    if (exists) throw new BerthError('CONFLICT', `session folder ${meta.id} already exists`);
    await fs.rename(staging, final);
    await fsyncDir(this.root);
  }
}
