import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SessionStore } from '../../agent/store/session-store';
import { SessionMeta } from '../../common/protocol';
import { BerthError } from '../../common/errors';

const run = promisify(execFile);

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
    expect(await store.read(a.id)).toMatchObject({ kind: 'broken', reason: 'session.json: not valid JSON (at character 1)' });
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

  it('makes each session folder the agent\'s and its home private', async () => {
    const a = meta();
    await store.create(a);
    expect((await fs.stat(store.dir(a.id))).mode & 0o777).toBe(0o700);
    expect((await fs.stat(store.home(a.id))).mode & 0o777).toBe(0o700);
    expect(store.home(a.id)).toBe(path.join(root, a.id, 'home'));
  });

  it('marks a session broken, without reading through it, when session.json is a link, a FIFO or huge', async () => {
    const [a, b, c] = [meta(), meta(), meta()];
    for (const m of [a, b, c]) await store.create(m);
    const secret = path.join(root, 'secret.json');
    await fs.writeFile(secret, JSON.stringify(a));
    await fs.rm(path.join(root, a.id, 'session.json'));
    await fs.symlink(secret, path.join(root, a.id, 'session.json'));
    await fs.rm(path.join(root, b.id, 'session.json'));
    await run('mkfifo', [path.join(root, b.id, 'session.json')]);
    await fs.writeFile(path.join(root, c.id, 'session.json'), Buffer.alloc(1024 * 1024, 0x20));
    expect(await store.read(a.id)).toEqual({ kind: 'broken', id: a.id, reason: 'session.json unreadable: symlink' });
    expect(await store.read(b.id)).toEqual({ kind: 'broken', id: b.id, reason: 'session.json unreadable: not a regular file' });
    expect(await store.read(c.id)).toMatchObject({ kind: 'broken', reason: expect.stringContaining('too large') });
  });

  it('marks a session whose home is gone broken', async () => {
    const a = meta();
    await store.create(a);
    await fs.rm(store.home(a.id), { recursive: true });
    expect(await store.read(a.id)).toEqual({ kind: 'broken', id: a.id, reason: 'home folder is missing' });
  });

  it('hands a home to a new containers\' user, links never followed, root\'s files left alone', async () => {
    expect(process.getuid?.()).toBe(0); // chown needs root (CI runs as root)
    const owned = new SessionStore({ root, owner: { uid: 61001, gid: 61001 } });
    const a = meta();
    await owned.create(a);
    const home = owned.home(a.id);
    expect((await fs.lstat(home)).uid).toBe(61001);
    const outside = path.join(root, 'outside');
    await fs.writeFile(outside, 'x');
    await fs.mkdir(path.join(home, 'd'));
    await fs.writeFile(path.join(home, 'd', 'f'), 'x');
    await fs.symlink(outside, path.join(home, 'link'));
    await fs.writeFile(path.join(home, 'roots'), 'x');
    // As if the home came from an agent whose containers ran as uid 1234.
    for (const p of [home, path.join(home, 'd'), path.join(home, 'd', 'f'), path.join(home, 'link')]) await fs.lchown(p, 1234, 1234);
    await fs.chmod(home, 0o755);
    await owned.claimHome(a.id);
    for (const p of [home, path.join(home, 'd'), path.join(home, 'd', 'f'), path.join(home, 'link')]) {
      expect((await fs.lstat(p)).uid).toBe(61001);
    }
    expect((await fs.lstat(home)).mode & 0o777).toBe(0o700);
    expect((await fs.lstat(path.join(home, 'roots'))).uid).toBe(0);
    expect((await fs.lstat(outside)).uid).toBe(0);
  });

  it('rewrites metadata atomically, leaving no temp files', async () => {
    const a = meta();
    await store.create(a);
    await store.write({ ...a, name: 'renamed' });
    expect(await store.read(a.id)).toMatchObject({ meta: { name: 'renamed' } });
    expect((await fs.readdir(path.join(root, a.id))).sort()).toEqual(['home', 'session.json']);
  });

  it('clones the home but not the lock, with new metadata', async () => {
    const a = meta();
    await store.create(a);
    await fs.mkdir(path.join(store.home(a.id), 'work'));
    await fs.writeFile(path.join(store.home(a.id), 'work', 'notes.txt'), 'hello');
    await fs.mkdir(path.join(root, a.id, 'session.lock'));
    const b = meta({ name: 'copy' });
    await store.clone(a.id, b);
    expect(await fs.readFile(path.join(store.home(b.id), 'work', 'notes.txt'), 'utf8')).toBe('hello');
    expect((await fs.readdir(path.join(root, b.id))).sort()).toEqual(['home', 'session.json']);
    expect(await fs.readdir(store.home(b.id))).toEqual(['work']);
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
    const { swept, left } = await store.sweep();
    expect(swept).toHaveLength(2);
    expect(left).toEqual([]);
    expect(await fs.readdir(root)).toEqual([keep.id]);
  });

  it('never fails while a dying copy still writes into a leftover, and removes it once the writer is gone', async () => {
    const name = `.staging-${randomUUID()}`;
    const dir = path.join(root, name);
    await fs.mkdir(path.join(dir, 'big'), { recursive: true });
    // A writer that keeps adding files, as the copy of a killed agent would: one process (no
    // children that could outlive it), bounded in count.
    const script =
      'const fs = require("fs"); const d = process.argv[1];' +
      'for (let i = 0; i < 200000; i++) { try { fs.mkdirSync(d, { recursive: true }); fs.writeFileSync(d + "/f" + i, ""); } catch {} }';
    const writer = spawn(process.execPath, ['-e', script, path.join(dir, 'big')], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const first = await store.sweep();
      // Either the sweep won the race or it says what it left; it never throws.
      expect(first.swept.length + first.left.length).toBe(1);
      for (const l of first.left) expect(l.name).toBe(name);
    } finally {
      writer.kill('SIGKILL');
      await new Promise((r) => writer.once('exit', r));
    }
    const second = await store.sweep();
    expect(second.left).toEqual([]);
    expect(await fs.readdir(root)).toEqual([]);
  });
});

describe('clone', () => {
  it('copies the home, links as links and FIFOs as FIFOs, but never the source\'s records', async () => {
    const src = meta({ name: 'src' });
    await store.create(src);
    const dir = store.dir(src.id);
    const home = store.home(src.id);
    await fs.mkdir(path.join(home, 'project'));
    await fs.writeFile(path.join(home, 'project', 'a.txt'), 'hello');
    await fs.writeFile(path.join(home, '.bashrc'), 'export X=1\n');
    await fs.symlink('/etc/shadow', path.join(home, 'secret'));
    await run('mkfifo', [path.join(home, 'pipe')]);
    // What an atomic rewrite of session.json leaves for a moment.
    await fs.writeFile(path.join(dir, '.session.json.0123abcd.tmp'), '{}');
    await fs.mkdir(path.join(dir, 'session.lock'));
    const copy = meta({ name: 'copy' });
    await store.clone(src.id, copy);
    expect((await fs.readdir(store.dir(copy.id))).sort()).toEqual(['home', 'session.json']);
    expect((await fs.readdir(store.home(copy.id))).sort()).toEqual(['.bashrc', 'pipe', 'project', 'secret']);
    expect(await fs.readFile(path.join(store.home(copy.id), 'project', 'a.txt'), 'utf8')).toBe('hello');
    expect(await fs.readlink(path.join(store.home(copy.id), 'secret'))).toBe('/etc/shadow');
    expect((await fs.lstat(path.join(store.home(copy.id), 'pipe'))).isFIFO()).toBe(true);
    expect(await store.read(copy.id)).toEqual({ kind: 'ok', meta: copy });
  });

  it('clones an empty home', async () => {
    const src = meta();
    await store.create(src);
    const copy = meta();
    await store.clone(src.id, copy);
    expect(await fs.readdir(store.home(copy.id))).toEqual([]);
  });
});
