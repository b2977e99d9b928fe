import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SessionLocks, MAX_LOCK_AGE_MS } from '../../agent/store/locks';
import { silentLogger } from '../../common/logging';

let dir: string;
let now = Date.now();
const locks = (instance = 'me') => new SessionLocks({ staleMs: 2000, instance, now: () => now, logger: silentLogger });

beforeEach(async () => {
  now = Date.now();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-lock-'));
  await fs.writeFile(path.join(dir, 'session.json'), '{}');
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

describe('SessionLocks', () => {
  it('records who holds a lock, for what and since when', async () => {
    const l = locks();
    const release = await l.acquire(dir, 'alice', 'clone');
    expect(await l.inspect(dir)).toEqual({ operator: 'alice', op: 'clone', since: new Date(now).toISOString(), stale: false });
    await release();
    await release();
    expect(await l.inspect(dir)).toBeNull();
  });

  it('names a holder killed between taking the lock and renaming its record, and tidies records of attempts that never locked', async () => {
    const owner = (operator: string, since: number) =>
      JSON.stringify({ operator, op: 'delete', since: new Date(since).toISOString(), pid: 1, agentInstance: 'dead' });
    // An attempt killed before it took the lock, then a holder killed right after taking it.
    await fs.writeFile(path.join(dir, '.session.lock.owner.0000aaaa.pending'), owner('early', now - 5000));
    await fs.writeFile(path.join(dir, '.session.lock.owner.1111bbbb.pending'), owner('holder', now - 100));
    await fs.mkdir(path.join(dir, 'session.lock'));
    const l = locks();
    expect(await l.inspect(dir)).toMatchObject({ operator: 'holder', op: 'delete', stale: false });
    // The next holder leaves only its own record; release leaves nothing.
    await fs.rm(path.join(dir, 'session.lock'), { recursive: true });
    const release = await l.acquire(dir, 'alice', 'edit');
    expect((await fs.readdir(dir)).sort()).toEqual(['session.json', 'session.lock', 'session.lock.owner.json']);
    await release();
    expect(await fs.readdir(dir)).toEqual(['session.json']);
  });

  it('writes its owner record again when an attempt just before it tidied its pending record away', async () => {
    // The interleaving a concurrent pair can hit: this attempt wrote its pending record, the one
    // before it (holding the lock, then releasing it) removed every pending record, then this one
    // took the lock. Made certain here: the record goes just before its rename.
    const rename = fs.rename.bind(fs);
    const spy = jest.spyOn(fs, 'rename').mockImplementationOnce(async (from, to) => {
      await fs.rm(from);
      return rename(from, to);
    });
    try {
      const l = locks();
      const release = await l.acquire(dir, 'alice', 'edit');
      expect(spy).toHaveBeenCalledTimes(2);
      expect(await l.inspect(dir)).toEqual({ operator: 'alice', op: 'edit', since: new Date(now).toISOString(), stale: false });
      expect((await fs.readdir(dir)).sort()).toEqual(['session.json', 'session.lock', 'session.lock.owner.json']);
      await expect(locks('other').acquire(dir, 'bob', 'delete')).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringContaining('alice') });
      await release();
      expect(await fs.readdir(dir)).toEqual(['session.json']);
    } finally {
      spy.mockRestore();
    }
  });

  it('refuses a second holder with LOCKED naming the first', async () => {
    const l = locks();
    const release = await l.acquire(dir, 'alice', 'clone');
    await expect(l.acquire(dir, 'bob', 'kill')).rejects.toMatchObject({
      code: 'LOCKED',
      message: expect.stringContaining('locked by alice (clone)'),
    });
    await release();
  });

  it('treats a lock nobody refreshes as stale and clears it on the next operation', async () => {
    await fs.mkdir(path.join(dir, 'session.lock'));
    const owner = { operator: 'ghost', op: 'delete', since: new Date(now - 60_000).toISOString(), pid: 1, agentInstance: 'dead' };
    await fs.writeFile(path.join(dir, 'session.lock.owner.json'), JSON.stringify(owner));
    const old = new Date(now - 60_000);
    await fs.utimes(path.join(dir, 'session.lock'), old, old);
    const l = locks();
    expect(await l.inspect(dir)).toMatchObject({ operator: 'ghost', stale: true });
    const release = await l.acquire(dir, 'alice', 'kill');
    expect(await l.inspect(dir)).toMatchObject({ operator: 'alice', stale: false });
    await release();
  });

  it('treats a lock older than 24 h as stale even while refreshed', async () => {
    const l = locks();
    const release = await l.acquire(dir, 'alice', 'clone');
    now += MAX_LOCK_AGE_MS + 1000;
    // The holder keeps refreshing (mtime is recent), but the owner record is a day old.
    await fs.utimes(path.join(dir, 'session.lock'), new Date(now), new Date(now));
    expect(await l.inspect(dir)).toMatchObject({ operator: 'alice', stale: true });
    await release();
  });

  it('shows a lock without an owner record as held by unknown', async () => {
    await fs.mkdir(path.join(dir, 'session.lock'));
    expect(await locks().inspect(dir)).toMatchObject({ operator: 'unknown', op: 'unknown', stale: false });
  });

  it('keeps a lock held past several refreshes, and releases it cleanly', async () => {
    const l = new SessionLocks({ staleMs: 3000, instance: 'me', now: () => Date.now(), logger: silentLogger });
    const release = await l.acquire(dir, 'alice', 'clone');
    await new Promise((r) => setTimeout(r, 2500));
    expect(await l.inspect(dir)).toMatchObject({ operator: 'alice', stale: false });
    await release();
    expect(await l.inspect(dir)).toBeNull();
    expect((await fs.readdir(dir)).sort()).toEqual(['session.json']);
  });

  it('ignores an owner record without a lock', async () => {
    await fs.writeFile(path.join(dir, 'session.lock.owner.json'), '{}');
    expect(await locks().inspect(dir)).toBeNull();
  });

  it('override removes any lock', async () => {
    const l = locks();
    await l.acquire(dir, 'alice', 'clone');
    await l.remove(dir);
    expect(await l.inspect(dir)).toBeNull();
  });
});
