/**
 * The trash on disk: a delete is one rename (its record written first, in the live folder), a
 * restore one rename back, a purge one rename out then a removal; a crash after any step leaves
 * the session live or whole in the trash, and `recover` cleans what it left. Purge times are
 * compared with a clock the test gives.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SessionStore } from '../../agent/store/session-store';
import { DELETED_FILE, TRASH_DIR, TrashStore } from '../../agent/store/trash-store';
import { DeletedRecord, SessionMeta } from '../../common/protocol';

let root: string;
let store: SessionStore;
let trash: TrashStore;

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const HOUR = 3_600_000;
const record = (deletedAt: number, windowMs = 24 * HOUR): DeletedRecord => ({
  deletedAt: new Date(deletedAt).toISOString(),
  deletedBy: 'alice',
  purgeAt: new Date(deletedAt + windowMs).toISOString(),
});
const FALLBACK = record(T0 + 10 * HOUR);

const meta = (over: Partial<SessionMeta> = {}): SessionMeta => ({
  version: 1,
  id: randomUUID(),
  name: 'web',
  protocol: 'tcp',
  port: 1001,
  dns: 'web',
  createdAt: new Date(0).toISOString(),
  lastAccessedAt: null,
  createdBy: 'alice',
  ...over,
});

/** A live session with a marker file in its home. */
async function live(over: Partial<SessionMeta> = {}): Promise<SessionMeta> {
  const m = meta(over);
  await store.create(m);
  await fs.writeFile(path.join(store.home(m.id), 'marker'), m.id);
  return m;
}

const marker = (dir: string): Promise<string> => fs.readFile(path.join(dir, 'home', 'marker'), 'utf8');

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-trash-'));
  store = new SessionStore({ root });
  await store.init();
  trash = new TrashStore({ root });
  await trash.recover(FALLBACK);
});
afterEach(() => fs.rm(root, { recursive: true, force: true }));

test('put moves the whole folder with its record; the trash is never a session; takeBack brings it back without the record', async () => {
  const m = await live();
  await trash.put(m.id, record(T0));
  expect(await store.listIds()).toEqual([]);
  expect(await store.read(m.id)).toBeNull();
  expect(await marker(trash.folder(m.id))).toBe(m.id);
  expect(await trash.list()).toEqual([{ id: m.id, record: record(T0), meta: m }]);
  // The root's sweep of crash leftovers leaves the trash alone.
  expect((await store.sweep()).swept).toEqual([]);
  expect(await fs.readdir(root)).toEqual(expect.arrayContaining([TRASH_DIR]));

  await trash.takeBack(m.id, { ...m, port: 0 });
  expect(await store.read(m.id)).toEqual({ kind: 'ok', meta: { ...m, port: 0 } });
  expect(await marker(store.dir(m.id))).toBe(m.id);
  expect(await fs.readdir(store.dir(m.id))).not.toContain(DELETED_FILE);
  expect(await trash.list()).toEqual([]);
});

test('put refuses a session that is gone, and takeBack one whose id is live again', async () => {
  await expect(trash.put(randomUUID(), record(T0))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  const m = await live();
  await trash.put(m.id, record(T0));
  await fs.mkdir(store.dir(m.id));
  await expect(trash.takeBack(m.id)).rejects.toMatchObject({ code: 'CONFLICT' });
  await expect(trash.takeBack(randomUUID())).rejects.toMatchObject({ code: 'NOT_FOUND' });
});

describe('a crash at each step leaves the session live or whole in the trash', () => {
  test('delete: the record written, the rename not done → live, record removed at start', async () => {
    const m = await live();
    // What put does before its rename, and a temp file of a record write cut short.
    await fs.writeFile(path.join(store.dir(m.id), DELETED_FILE), JSON.stringify(record(T0)));
    await fs.writeFile(path.join(store.dir(m.id), `.${DELETED_FILE}.abcd1234.tmp`), '{');
    const r = await trash.recover(FALLBACK);
    expect(r.kept).toEqual([m.id]);
    expect(await fs.readdir(store.dir(m.id))).toEqual(expect.not.arrayContaining([DELETED_FILE, `.${DELETED_FILE}.abcd1234.tmp`]));
    expect(await store.read(m.id)).toEqual({ kind: 'ok', meta: m });
    expect(await trash.list()).toEqual([]);
  });

  test('delete: the rename done → whole in the trash', async () => {
    const m = await live();
    await trash.put(m.id, record(T0));
    const r = await trash.recover(FALLBACK);
    expect(r).toEqual({ kept: [], purged: [], relabelled: [], left: [] });
    expect((await trash.list()).map((t) => t.id)).toEqual([m.id]);
    expect(await marker(trash.folder(m.id))).toBe(m.id);
  });

  test('restore: renamed back, record not yet removed → live, record removed at start', async () => {
    const m = await live();
    await trash.put(m.id, record(T0));
    await fs.rename(trash.folder(m.id), store.dir(m.id));
    expect((await trash.recover(FALLBACK)).kept).toEqual([m.id]);
    expect(await store.read(m.id)).toEqual({ kind: 'ok', meta: m });
    expect(await fs.readdir(store.dir(m.id))).not.toContain(DELETED_FILE);
  });

  test('purge: renamed out of the trash, not removed → removed at start', async () => {
    const m = await live();
    await trash.put(m.id, record(T0));
    await fs.rename(trash.folder(m.id), path.join(trash.dir, `.purging-${m.id}`));
    const r = await trash.recover(FALLBACK);
    expect(r.purged).toEqual([m.id]);
    expect(await fs.readdir(trash.dir)).toEqual([]);
  });

  test('a trashed folder that lost its record gets one, so it is listed and purged in time', async () => {
    const m = await live();
    await trash.put(m.id, record(T0));
    await fs.rm(path.join(trash.folder(m.id), DELETED_FILE));
    expect(await trash.list()).toEqual([]);
    expect((await trash.recover(FALLBACK)).relabelled).toEqual([m.id]);
    expect(await trash.list()).toEqual([{ id: m.id, record: FALLBACK, meta: m }]);
  });
});

test('purgeDue removes exactly what is due by the clock given, whole folders and all', async () => {
  const a = await live({ name: 'a' });
  const b = await live({ name: 'b' });
  await trash.put(a.id, record(T0, HOUR));
  await trash.put(b.id, record(T0, 2 * HOUR));

  expect(await trash.purgeDue(T0 + HOUR - 1)).toEqual({ purged: [], failed: [] });
  expect((await trash.list()).map((t) => t.meta?.name).sort()).toEqual(['a', 'b']);
  expect(await trash.purgeDue(T0 + HOUR)).toEqual({ purged: [a.id], failed: [] });
  expect((await trash.list()).map((t) => t.meta?.name)).toEqual(['b']);
  expect(await trash.purgeDue(T0 + 5 * HOUR)).toEqual({ purged: [b.id], failed: [] });
  expect(await fs.readdir(trash.dir)).toEqual([]);
  // Idempotent.
  await trash.purge(a.id);
});
