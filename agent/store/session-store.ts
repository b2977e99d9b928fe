/**
 * Session directories under the agent's root: <root>/<uuid>/ with session.json inside.
 * Creating, cloning and deleting go through a staging name and one rename, so a crash at any
 * point leaves the whole session or none of it; `sweep` removes what a crash left half-done.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BerthError, messageOf, wrapError } from '../../common/errors';
import { UUID_RE } from '../../common/names';
import { parseJson } from '../../common/json';
import { SessionMeta, sessionMetaSchema } from '../../common/protocol';
import { fsyncDir, writeFileAtomic } from '../../common/atomic-file';
import { copyEntries } from './copy';

export const SESSION_FILE = 'session.json';
export const LOCK_DIR = 'session.lock';
/** The lock's owner record, beside the lock: writing inside proper-lockfile's folder would change
 * its mtime, which proper-lockfile reads as a compromised lock. */
export const LOCK_OWNER_FILE = 'session.lock.owner.json';
/** Temporary files of atomic writes of the records above (see writeFileAtomic). */
const RECORD_TMP_RE = /^\.session\.(json|lock\.owner\.json)\.[0-9a-f]{8}\.tmp$/;
const STAGING = '.staging-';

/** True for the agent's own records in a session folder (never part of the home that a clone copies). */
function isSessionRecord(name: string): boolean {
  return name === SESSION_FILE || name === LOCK_DIR || name === LOCK_OWNER_FILE || RECORD_TMP_RE.test(name);
}
const TRASH = '.trash-';

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
  /** Owner of new session homes (the containers' user); unset: leave as created. */
  owner?: { uid: number; gid: number };
}

export class SessionStore {
  readonly root: string;
  private readonly owner?: { uid: number; gid: number };
  /** Last read of each session.json, keyed by its (inode, size, mtime): an unchanged file is not parsed again. */
  private readonly cache = new Map<string, { stamp: string; result: StoredSession }>();
  /** Staging and trash folders that an operation of this process is still working in: never swept. */
  private readonly busy = new Set<string>();

  constructor(opts: StoreOptions) {
    this.root = path.resolve(opts.root);
    this.owner = opts.owner;
  }

  /** The folder of a session. Throws BAD_REQUEST for anything but a uuid, so `../x` never reaches the disk. */
  dir(id: string): string {
    if (!UUID_RE.test(id)) throw new BerthError('BAD_REQUEST', `session: not a session id: ${JSON.stringify(id).slice(0, 80)}`);
    return path.join(this.root, id);
  }

  /** Creates the root. Idempotent. */
  async init(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true });
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
        // A copy that is being killed may still add an entry or two: rm retries on ENOTEMPTY.
        await fs.rm(path.join(this.root, name), { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
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
      const st = await fs.stat(file);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      this.cache.delete(id);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        const exists = await fs.stat(dir).then(() => true, () => false);
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
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      return { kind: 'broken', id, reason: `session.json unreadable: ${messageOf(err)}` };
    }
    const r = parseJson(text, sessionMetaSchema);
    if (!r.ok) return { kind: 'broken', id, reason: `session.json: ${r.problem}` };
    if (r.value.id !== id) return { kind: 'broken', id, reason: `session.json: id ${r.value.id} does not match its folder` };
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

  /** Creates a new session folder with its metadata, all at once. Throws CONFLICT if it exists. */
  async create(meta: SessionMeta): Promise<void> {
    const final = this.dir(meta.id);
    await this.inStaging(`${STAGING}${meta.id}`, 'create session folder', async (staging) => {
      await fs.mkdir(staging, { mode: 0o755 });
      await this.finishStaging(staging, meta, final);
    });
  }

  /** Copies a session's home (not its lock or metadata) to a new session, all at once. */
  async clone(srcId: string, meta: SessionMeta): Promise<void> {
    const src = this.dir(srcId);
    const final = this.dir(meta.id);
    await this.inStaging(`${STAGING}${meta.id}`, 'copy session folder', async (staging) => {
      await fs.mkdir(staging, { mode: 0o755 });
      // The home only: the source's metadata and lock are its own (and change under the copy).
      const names = (await fs.readdir(src)).filter((n) => !isSessionRecord(n));
      await copyEntries(src, names, staging);
      await this.finishStaging(staging, meta, final);
    });
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
      await fs.rm(trash, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 }).catch(() => undefined);
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
      await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
      throw wrapError(what, err);
    } finally {
      this.busy.delete(name);
    }
  }

  private async finishStaging(staging: string, meta: SessionMeta, final: string): Promise<void> {
    await writeFileAtomic(path.join(staging, SESSION_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    // The home belongs to the container's user; session.json stays the agent's.
    if (this.owner) await fs.chown(staging, this.owner.uid, this.owner.gid);
    const exists = await fs.stat(final).then(() => true, () => false);
    if (exists) throw new BerthError('CONFLICT', `session folder ${meta.id} already exists`);
    await fs.rename(staging, final);
    await fsyncDir(this.root);
  }
}
