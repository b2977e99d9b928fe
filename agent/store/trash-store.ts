/**
 * The agent's trash on disk: deleted sessions, whole, until they are purged.
 *
 *     <root>/.trash/                     the agent's, 0700, made by the first delete; never a session (not a uuid)
 *     <root>/.trash/<uuid>/              a trashed session's folder, as it was, plus
 *     <root>/.trash/<uuid>/deleted.json  when, by whom, and when it is purged
 *     <root>/.trash/.purging-<uuid>/     a purge under way (a crash leaves it: swept at start)
 *
 * Every change is one rename on the root's file system, so a crash at any point leaves a session
 * live or whole in the trash, never half:
 *
 * - put: deleted.json is written into the live folder first (where it means nothing: the live
 *   folder is the truth), then the folder is renamed into the trash, record and all;
 * - take back: the folder is renamed back, then its record removed;
 * - purge: the folder is renamed to `.purging-<uuid>` (out of the trash at once), then removed.
 *
 * `recover` (at start) removes what a crash left: records and their temp files in live folders,
 * and purges under way; it gives a trashed folder that lost its record (a hand edit) a new one.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BerthError, messageOf, wrapError } from '../../common/errors';
import { UUID_RE } from '../../common/names';
import { parseJson } from '../../common/json';
import { DeletedRecord, SessionMeta, deletedRecordSchema, sessionMetaSchema } from '../../common/protocol';
import { fsyncDir, writeFileAtomic } from '../../common/atomic-file';
import { removeTree } from './trees';
import { readUntrustedFile } from './untrusted-files';
import { MAX_SESSION_FILE_BYTES, SESSION_FILE } from './session-store';

export const TRASH_DIR = '.trash';
export const DELETED_FILE = 'deleted.json';
const PURGING = '.purging-';
const MAX_RECORD_BYTES = 4096;
const DEFAULT_TREE_TIMEOUT_MS = 30 * 60 * 1000;

/** A trashed session: its record, and its metadata (null when its session.json cannot be read). */
export interface Trashed {
  id: string;
  record: DeletedRecord;
  meta: SessionMeta | null;
}

export interface RecoverReport {
  /** Live sessions whose delete a crash cut short before the rename: they stay live. */
  kept: string[];
  /** Purges a crash cut short, finished now. */
  purged: string[];
  /** Trashed folders that had no readable record and were given one. */
  relabelled: string[];
  /** What could not be cleaned now (tried again at the next start or purge). */
  left: Array<{ name: string; reason: string }>;
}

export class TrashStore {
  readonly root: string;
  readonly dir: string;
  private readonly treeTimeoutMs: number;

  constructor(o: { root: string; treeTimeoutMs?: number }) {
    this.root = path.resolve(o.root);
    this.dir = path.join(this.root, TRASH_DIR);
    this.treeTimeoutMs = o.treeTimeoutMs ?? DEFAULT_TREE_TIMEOUT_MS;
  }

  /** A trashed session's folder. Throws BAD_REQUEST for anything but a uuid. */
  folder(id: string): string {
    if (!UUID_RE.test(id)) throw new BerthError('BAD_REQUEST', `session: not a session id: ${JSON.stringify(id).slice(0, 80)}`);
    return path.join(this.dir, id);
  }

  private live(id: string): string {
    return path.join(this.root, id);
  }

  /**
   * Cleans what a crash left (see the file's comment). A trashed folder with no readable record
   * gets `fallback`. Never throws for a leftover; throws only when the root cannot be read.
   */
  async recover(fallback: DeletedRecord): Promise<RecoverReport> {
    const report: RecoverReport = { kept: [], purged: [], relabelled: [], left: [] };
    for (const e of await fs.readdir(this.root, { withFileTypes: true })) {
      if (!e.isDirectory() || !UUID_RE.test(e.name)) continue;
      const names = await fs.readdir(this.live(e.name)).catch(() => [] as string[]);
      const stray = names.filter((n) => n === DELETED_FILE || (n.startsWith(`.${DELETED_FILE}.`) && n.endsWith('.tmp')));
      for (const n of stray) await fs.rm(path.join(this.live(e.name), n), { force: true });
      if (stray.includes(DELETED_FILE)) report.kept.push(e.name);
    }
    // Made by the first delete: none yet, nothing to clean.
    for (const e of await fs.readdir(this.dir, { withFileTypes: true }).catch(() => [])) {
      if (e.name.startsWith(PURGING)) {
        try {
          await removeTree(path.join(this.dir, e.name), this.treeTimeoutMs);
          report.purged.push(e.name.slice(PURGING.length));
        } catch (err) {
          report.left.push({ name: e.name, reason: messageOf(err) });
        }
      } else if (e.isDirectory() && UUID_RE.test(e.name) && !(await this.readRecord(e.name))) {
        await this.writeRecord(path.join(this.dir, e.name), fallback).then(
          () => report.relabelled.push(e.name),
          (err: unknown) => report.left.push({ name: e.name, reason: messageOf(err) }),
        );
      }
    }
    return report;
  }

  /**
   * Moves a live session's folder into the trash with `record`. Call it with nothing else at work
   * on the session (its lock held, its container gone). Throws NOT_FOUND when the folder is gone,
   * CONFLICT when the trash already holds that id.
   */
  async put(id: string, record: DeletedRecord): Promise<void> {
    const to = this.folder(id);
    const from = this.live(id);
    if (await exists(to)) throw new BerthError('CONFLICT', `session ${id} is already in the trash`);
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    try {
      await this.writeRecord(from, record);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BerthError('NOT_FOUND', `session ${id} not found`);
      throw wrapError('write deleted.json', err);
    }
    try {
      await fs.rename(from, to);
    } catch (err) {
      await fs.rm(path.join(from, DELETED_FILE), { force: true });
      throw wrapError('move session folder to the trash', err);
    }
    await fsyncDir(this.root);
    await fsyncDir(this.dir);
  }

  /** Every trashed session, oldest deletion first. */
  async list(): Promise<Trashed[]> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    const all = await Promise.all(names.filter((n) => UUID_RE.test(n)).map((n) => this.read(n)));
    return all.filter((t): t is Trashed => t !== null).sort((a, b) => a.record.deletedAt.localeCompare(b.record.deletedAt) || a.id.localeCompare(b.id));
  }

  /** One trashed session, or null when the trash has none of that id (or no record for it). */
  async read(id: string): Promise<Trashed | null> {
    const record = await this.readRecord(id);
    if (!record) return null;
    const text = await readUntrustedFile(path.join(this.folder(id), SESSION_FILE), MAX_SESSION_FILE_BYTES).then(
      (b) => b.toString('utf8'),
      () => '',
    );
    const r = parseJson(text, sessionMetaSchema);
    return { id, record, meta: r.ok && r.value.id === id ? r.value : null };
  }

  /**
   * Renames a trashed session's folder back to the root, first writing `meta` over its
   * session.json when given. Call it under the catalog's reservation, having checked its port and
   * names. Throws NOT_FOUND when it is not in the trash, CONFLICT when a live folder has its id.
   */
  async takeBack(id: string, meta?: SessionMeta): Promise<void> {
    const from = this.folder(id);
    const to = this.live(id);
    if (!(await exists(from))) throw new BerthError('NOT_FOUND', `session ${id} is not in the trash`);
    if (await exists(to)) throw new BerthError('CONFLICT', `a session folder ${id} exists already`);
    if (meta) await writeFileAtomic(path.join(from, SESSION_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    try {
      await fs.rename(from, to);
    } catch (err) {
      throw wrapError('move session folder out of the trash', err);
    }
    await fsyncDir(this.dir);
    await fsyncDir(this.root);
    // A live folder's record means nothing; a crash before this line leaves it for `recover`.
    await fs.rm(path.join(to, DELETED_FILE), { force: true });
  }

  /** Removes a trashed session for good: out of the trash at once, then its files. Idempotent. */
  async purge(id: string): Promise<void> {
    const from = this.folder(id);
    const doomed = path.join(this.dir, `${PURGING}${id}`);
    try {
      await fs.rename(from, doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw wrapError('purge trashed session', err);
      if (!(await exists(doomed))) return;
    }
    await fsyncDir(this.dir);
    await removeTree(doomed, this.treeTimeoutMs);
  }

  /**
   * Purges every trashed session whose purge time is at or before `now` (and finishes purges that
   * failed before); returns their ids. Never throws: failures are returned.
   */
  async purgeDue(now: number): Promise<{ purged: string[]; failed: Array<{ id: string; reason: string }> }> {
    const out = { purged: [] as string[], failed: [] as Array<{ id: string; reason: string }> };
    for (const n of await fs.readdir(this.dir).catch(() => [] as string[])) {
      if (!n.startsWith(PURGING)) continue;
      await removeTree(path.join(this.dir, n), this.treeTimeoutMs).catch((err: unknown) => out.failed.push({ id: n.slice(PURGING.length), reason: messageOf(err) }));
    }
    for (const t of await this.list()) {
      if (Date.parse(t.record.purgeAt) > now) continue;
      try {
        await this.purge(t.id);
        out.purged.push(t.id);
      } catch (err) {
        out.failed.push({ id: t.id, reason: messageOf(err) });
      }
    }
    return out;
  }

  private async readRecord(id: string): Promise<DeletedRecord | null> {
    const text = await readUntrustedFile(path.join(this.folder(id), DELETED_FILE), MAX_RECORD_BYTES).then(
      (b) => b.toString('utf8'),
      () => '',
    );
    const r = parseJson(text, deletedRecordSchema);
    return r.ok ? r.value : null;
  }

  private writeRecord(dir: string, record: DeletedRecord): Promise<void> {
    return writeFileAtomic(path.join(dir, DELETED_FILE), `${JSON.stringify(record, null, 2)}\n`, 0o600);
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}
