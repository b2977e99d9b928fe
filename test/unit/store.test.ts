import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SessionStore } from '../../agent/store/session-store';
import { SessionMeta } from '../../common/protocol';
import { BerthError } from '../../common/errors';

let root: string;
let store: SessionStore;

const meta = (over: Partial<SessionMeta> = {}): SessionMeta => ({
  version: 1,
  id: randomUUID(),
  name: 'web',
  protocol: 'tcp',
  port: 0,
  dns: '',
  createdAt: new Date(0).toISOString(),
  lastAccessedAt: null,
  createdBy: 'alice',
  ...over,
});

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-store-'));
  store = new SessionStore({ root });
});
afterEach(() => fs.rm(root, { recursive: true, force: true }));

describe('SessionStore', () => {
  it('creates a session folder with its metadata and reads it back', async () => {
    const m = meta();
    await store.create(m);
    expect(await store.listIds()).toEqual([m.id]);
    expect(await store.read(m.id)).toEqual({ kind: 'ok', meta: m });
    expect(await fs.readdir(root)).toEqual([m.id]);
  });

  it('never lets a path-like id reach the disk', async () => {
    for (const bad of ['../x', '..', '/etc', 'a/../../b']) {
      expect(() => store.dir(bad)).toThrow(BerthError);
      await expect(store.read(bad)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    }
  });

  it('marks a corrupt or invalid session.json broken, with a reason', async () => {
    const a = meta();
    const b = meta();
    const c = meta();
    await store.create(a);
    await store.create(b);
    await store.create(c);
    await fs.writeFile(path.join(root, a.id, 'session.json'), '{not json');
    await fs.writeFile(path.join(root, b.id, 'session.json'), JSON.stringify({ ...b, port: 'x' }));
    expect(await store.read(a.id)).toMatchObject({ kind: 'broken', reason: expect.stringContaining('not JSON') });
    expect(await store.read(b.id)).toMatchObject({ kind: 'broken', reason: expect.stringContaining('port') });
    expect(await store.read(c.id)).toMatchObject({ kind: 'ok' });
  });

  it('sees a session.json corrupted after an earlier read', async () => {
    const a = meta();
    await store.create(a);
    expect(await store.read(a.id)).toMatchObject({ kind: 'ok' });
    await fs.writeFile(path.join(root, a.id, 'session.json'), 'garbage');
    expect(await store.read(a.id)).toMatchObject({ kind: 'broken' });
    await fs.writeFile(path.join(root, a.id, 'session.json'), JSON.stringify(a));
    expect(await store.read(a.id)).toEqual({ kind: 'ok', meta: a });
  });

  it('flags metadata whose id does not match its folder', async () => {
    const a = meta();
    await store.create(a);
    await fs.writeFile(path.join(root, a.id, 'session.json'), JSON.stringify({ ...a, id: randomUUID() }));
    expect(await store.read(a.id)).toMatchObject({ kind: 'broken', reason: expect.stringContaining('does not match') });
  });

  it('rewrites metadata atomically, leaving no temp files', async () => {
    const a = meta();
    await store.create(a);
    await store.write({ ...a, name: 'renamed' });
    expect(await store.read(a.id)).toMatchObject({ meta: { name: 'renamed' } });
    expect(await fs.readdir(path.join(root, a.id))).toEqual(['session.json']);
  });

  it('clones the home but not the lock, with new metadata', async () => {
    const a = meta();
    await store.create(a);
    await fs.mkdir(path.join(root, a.id, 'work'));
    await fs.writeFile(path.join(root, a.id, 'work', 'notes.txt'), 'hello');
    await fs.mkdir(path.join(root, a.id, 'session.lock'));
    const b = meta({ name: 'copy' });
    await store.clone(a.id, b);
    expect(await fs.readFile(path.join(root, b.id, 'work', 'notes.txt'), 'utf8')).toBe('hello');
    expect((await fs.readdir(path.join(root, b.id))).sort()).toEqual(['session.json', 'work']);
    expect(await store.read(b.id)).toEqual({ kind: 'ok', meta: b });
  });

  it('removes a session entirely and is idempotent', async () => {
    const a = meta();
    await store.create(a);
    await store.remove(a.id);
    await store.remove(a.id);
    expect(await fs.readdir(root)).toEqual([]);
    expect(await store.read(a.id)).toBeNull();
  });

  it('sweeps staging and trash folders a crash left behind', async () => {
    const keep = meta();
    await store.create(keep);
    await fs.mkdir(path.join(root, `.staging-${randomUUID()}`));
    await fs.mkdir(path.join(root, `.trash-${randomUUID()}`));
    const swept = await store.init();
    expect(swept).toHaveLength(2);
    expect(await fs.readdir(root)).toEqual([keep.id]);
  });
});
