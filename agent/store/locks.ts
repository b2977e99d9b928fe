/**
 * Session locks: <root>/<uuid>/session.lock (in the agent's folder, out of the container's reach), taken with proper-lockfile while an operation mutates
 * a session, with an owner record beside it (session.lock.owner.json) saying who, which op and
 * since when; an owner record without a lock means nothing.
 * A lock is stale when its holder stopped refreshing it (the holder died) or it is older than
 * 24 h; a stale lock is cleared by the next operation. `override` removes any lock.
 */
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import lockfile from 'proper-lockfile';
import { BerthError, messageOf, wrapError } from '../../common/errors';
import { LockInfo, LockOwner, lockOwnerSchema } from '../../common/protocol';
import { parseJson } from '../../common/json';
import { Logger } from '../../common/logging';
import { readUntrustedFile } from './untrusted-files';
import { LOCK_DIR, LOCK_OWNER_FILE, SESSION_FILE } from './session-store';

export const MAX_LOCK_AGE_MS = 24 * 60 * 60 * 1000;
const MAX_OWNER_BYTES = 4096;
/** Owner records written before their lock is taken: `.session.lock.owner.<random>.pending`. */
const PENDING_PREFIX = '.session.lock.owner.';
const PENDING_SUFFIX = '.pending';

export interface LockOptions {
  staleMs: number;
  /** Identifies this agent process in owner records. */
  instance: string;
  now: () => number;
  logger: Logger;
}

export type Release = () => Promise<void>;

export class SessionLocks {
  constructor(private readonly opts: LockOptions) {}

  /**
   * Takes the lock of the session in `dir` for `op`. Clears a stale lock first. Throws LOCKED
   * (naming the holder) when a live lock is there. The returned release is idempotent.
   */
  async acquire(dir: string, operator: string, op: string): Promise<Release> {
    const current = await this.inspect(dir);
    if (current && current.stale) {
      this.opts.logger.warn('cleared stale lock', { dir, holder: current.operator, op: current.op, since: current.since });
      await this.remove(dir);
    } else if (current) {
      throw lockedError(current);
    }
    const owner: LockOwner = {
      operator,
      op,
      since: new Date(this.opts.now()).toISOString(),
      pid: process.pid,
      agentInstance: this.opts.instance,
    };
    // The owner record is written before the lock is taken and renamed into place after, so a
    // holder killed in between still leaves a record saying who it was (see inspect).
    const pending = path.join(dir, `${PENDING_PREFIX}${randomUUID().slice(0, 8)}${PENDING_SUFFIX}`);
    try {
      await fs.writeFile(pending, JSON.stringify(owner), { flag: 'wx', mode: 0o644 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BerthError('NOT_FOUND', 'session not found');
      throw wrapError('write lock owner', err);
    }
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(path.join(dir, SESSION_FILE), {
        lockfilePath: path.join(dir, LOCK_DIR),
        realpath: false,
        stale: this.opts.staleMs,
        update: Math.max(1000, Math.floor(this.opts.staleMs / 3)),
        retries: 0,
        onCompromised: (err) => this.opts.logger.warn('lock compromised', { dir, err: messageOf(err) }),
      });
    } catch (err) {
      await fs.rm(pending, { force: true });
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') {
        const holder = await this.inspect(dir);
        throw holder ? lockedError(holder) : new BerthError('LOCKED', 'session is locked by another operation');
      }
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BerthError('NOT_FOUND', 'session not found');
      throw wrapError('take session lock', err);
    }
    try {
      await this.placeOwner(dir, pending, owner);
    } catch (err) {
      await fs.rm(pending, { force: true });
      await release().catch(() => undefined);
      throw wrapError('write lock owner', err);
    }
    await this.removePending(dir);
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      await fs.rm(path.join(dir, LOCK_OWNER_FILE), { force: true }).catch(() => undefined);
      await release().catch((err: unknown) => this.opts.logger.warn('release lock', { dir, err: messageOf(err) }));
    };
  }

  /**
   * Renames this attempt's owner record into place. An attempt that took the lock just before this
   * one (and has released it since) removed every pending record it found, this one's too: then the
   * record is written again, which is safe, as this attempt holds the lock now.
   */
  private async placeOwner(dir: string, pending: string, owner: LockOwner): Promise<void> {
    try {
      await fs.rename(pending, path.join(dir, LOCK_OWNER_FILE));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const again = path.join(dir, `${PENDING_PREFIX}${randomUUID().slice(0, 8)}${PENDING_SUFFIX}`);
    await fs.writeFile(again, JSON.stringify(owner), { flag: 'wx', mode: 0o644 });
    await fs.rename(again, path.join(dir, LOCK_OWNER_FILE));
  }

  /** Who holds the lock of the session in `dir`, or null. Never throws for a bad owner record. */
  async inspect(dir: string): Promise<LockInfo | null> {
    // Called for every session on `list`: almost always absent, so no exception and no thread-pool
    // round trip for the common answer.
    const st = statSync(path.join(dir, LOCK_DIR), { throwIfNoEntry: false });
    if (!st) return null;
    const mtimeMs = st.mtimeMs;
    const owner = (await this.readOwner(path.join(dir, LOCK_OWNER_FILE))) ?? (await this.newestPending(dir));
    const now = this.opts.now();
    const since = owner ? Date.parse(owner.since) : mtimeMs;
    const stale = now - mtimeMs > this.opts.staleMs || now - since > MAX_LOCK_AGE_MS;
    return {
      operator: owner?.operator ?? 'unknown',
      op: owner?.op ?? 'unknown',
      since: new Date(since).toISOString(),
      stale,
    };
  }

  /** Removes the lock of the session in `dir`, whoever holds it. Idempotent. */
  async remove(dir: string): Promise<void> {
    await fs.rm(path.join(dir, LOCK_DIR), { recursive: true, force: true });
    await fs.rm(path.join(dir, LOCK_OWNER_FILE), { force: true });
    await this.removePending(dir);
  }

  private async readOwner(file: string): Promise<LockOwner | null> {
    const text = await readUntrustedFile(file, MAX_OWNER_BYTES).then((b) => b.toString('utf8'), () => '');
    const r = parseJson(text, lockOwnerSchema);
    return r.ok ? r.value : null;
  }

  private async pendingNames(dir: string): Promise<string[]> {
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    return names.filter((n) => n.startsWith(PENDING_PREFIX) && n.endsWith(PENDING_SUFFIX));
  }

  /** The latest owner record of a holder that took the lock but died before renaming its record. */
  private async newestPending(dir: string): Promise<LockOwner | null> {
    let newest: LockOwner | null = null;
    for (const n of await this.pendingNames(dir)) {
      const o = await this.readOwner(path.join(dir, n));
      if (o && (!newest || o.since > newest.since)) newest = o;
    }
    return newest;
  }

  /** Owner records of attempts that never took the lock (killed first, or refused). */
  private async removePending(dir: string): Promise<void> {
    for (const n of await this.pendingNames(dir)) await fs.rm(path.join(dir, n), { force: true });
  }
}

function lockedError(l: LockInfo): BerthError {
  return new BerthError('LOCKED', `session is locked by ${l.operator} (${l.op}) since ${l.since}`);
}
