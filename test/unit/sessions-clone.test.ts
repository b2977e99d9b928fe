/**
 * Clone on the fake runtime: a running source is paused for exactly the copy and unpaused after
 * it, whether the copy works or fails; a stopped source is never paused.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { SessionStore } from '../../agent/store/session-store';
import { BerthError } from '../../common/errors';
import { UUID_RE } from '../../common/names';
import { SessionMeta } from '../../common/protocol';
import { FakeState } from '../helpers/fake-runtime';
import { Harness, asView, startHarness } from '../helpers/sessions-harness';
import { within } from '../helpers/wait';

/** The real store, whose copy a test can make fail, and which tells the test when it copies. */
class WatchedStore extends SessionStore {
  failCopy = false;
  onCopy: () => void = () => undefined;

  override async clone(srcId: string, meta: SessionMeta): Promise<void> {
    this.onCopy();
    if (this.failCopy) throw new BerthError('INTERNAL', 'copy session folder: cp: error writing: No space left on device');
    await super.clone(srcId, meta);
  }
}

let h: Harness;
let store: WatchedStore;

beforeEach(async () => {
  h = await startHarness({ store: (root) => (store = new WatchedStore({ root })) });
});
afterEach(() => h.dispose());

async function createSession(name: string, running: boolean): Promise<string> {
  const id = asView(await h.sessions.create({ name, protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
  await fs.mkdir(path.join(h.root, id, 'home', 'work'));
  await fs.writeFile(path.join(h.root, id, 'home', 'work', 'notes.txt'), `home of ${name}`);
  if (running) expect(asView(await h.sessions.restart(id, 'alice')).state).toBe('R');
  return id;
}

/** Session folders in the root other than `except`, and any staging or trash leftovers. */
async function othersIn(except: string): Promise<string[]> {
  return (await fs.readdir(h.root)).filter((n) => n !== except && n !== '.agent.pid' && n !== '.berth-layout');
}

test('a clone of a running source pauses it for the copy and unpauses it after', async () => {
  const src = await createSession('src', true);
  const cid = h.containerOf(src);
  const duringCopy: Array<FakeState | undefined> = [];
  store.onCopy = () => duringCopy.push(h.fake.container(cid)?.state);

  const unpause = h.fake.hold('unpause');
  const cloning = h.sessions.clone({ session: src }, 'bob');
  await within('the clone unpausing its source', 3000, unpause.reached);

  // Held just before the unpause: the copy is whole, the source still paused and locked by the clone.
  const [copyId = ''] = await othersIn(src);
  expect(copyId).toMatch(UUID_RE);
  expect(await fs.readFile(path.join(h.root, copyId, 'home', 'work', 'notes.txt'), 'utf8')).toBe('home of src');
  expect(h.fake.container(cid)?.state).toBe('paused');
  expect(asView(await h.sessions.get(src)).lock).toMatchObject({ operator: 'bob', op: 'clone', stale: false });
  // An attach meanwhile is told to wait for the clone, and never reaches the paused container.
  await expect(h.sessions.openAttach(src, 'carol', false, 80, 24)).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringMatching(/paused/) });
  expect(h.fake.callsOn(cid, ['attach'])).toEqual([]);

  unpause.release();
  const copy = asView(await within('clone', 3000, cloning));
  expect(duringCopy).toEqual(['paused']);
  expect(h.fake.callsOn(cid, ['pause', 'unpause'])).toEqual(['pause', 'unpause']);
  expect(h.fake.container(cid)?.state).toBe('running');
  expect(copy.meta).toMatchObject({ id: copyId, name: 'src-copy', port: 0, dns: '', createdBy: 'bob' });
  expect(copy.state).toBe('-');
  // The clone has no container of its own, and the source is as before, unlocked.
  expect(h.fake.containersOf(copyId)).toEqual([]);
  expect(asView(await h.sessions.get(src))).toMatchObject({ state: 'R', lock: null });
});

test('a clone whose copy fails still unpauses the source and leaves nothing behind', async () => {
  const src = await createSession('src', true);
  const cid = h.containerOf(src);
  const duringCopy: Array<FakeState | undefined> = [];
  store.onCopy = () => duringCopy.push(h.fake.container(cid)?.state);
  store.failCopy = true;

  await expect(h.sessions.clone({ session: src }, 'bob')).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringMatching(/No space left/) });
  expect(duringCopy).toEqual(['paused']);
  expect(h.fake.callsOn(cid, ['pause', 'unpause'])).toEqual(['pause', 'unpause']);
  expect(h.fake.container(cid)?.state).toBe('running');
  expect(await othersIn(src)).toEqual([]);
  const listed = (await h.sessions.list()).map(asView);
  expect(listed.map((s) => [s.meta.name, s.state, s.lock])).toEqual([['src', 'R', null]]);

  // And the next clone works.
  store.failCopy = false;
  const copy = asView(await h.sessions.clone({ session: src, name: 'second' }, 'bob'));
  expect(existsSync(path.join(h.root, copy.meta.id, 'home', 'work', 'notes.txt'))).toBe(true);
  expect(h.fake.callsOn(cid, ['pause', 'unpause'])).toEqual(['pause', 'unpause', 'pause', 'unpause']);
});

test('a clone of a stopped source never pauses it', async () => {
  const never = await createSession('never-started', false);
  const died = await createSession('died', true);
  const cid = h.containerOf(died);
  const from = h.events.length;
  h.fake.die(cid);
  await h.waitForEntry(died, (e) => e.state === '-', from);

  const copies = [asView(await h.sessions.clone({ session: never }, 'bob')), asView(await h.sessions.clone({ session: died }, 'bob'))];
  expect(copies.map((c) => c.meta.name)).toEqual(['never-started-copy', 'died-copy']);
  for (const c of copies) expect(await fs.readFile(path.join(h.root, c.meta.id, 'home', 'work', 'notes.txt'), 'utf8')).toMatch(/^home of /);
  expect(h.fake.calls.filter((c) => c.method === 'pause' || c.method === 'unpause')).toEqual([]);
  // The dead container is left as it was: clone starts nothing and removes nothing.
  expect(h.fake.container(cid)?.state).toBe('exited');
  expect(h.fake.calls.filter((c) => c.method === 'start').map((c) => c.target)).toEqual([died]);
});
