/**
 * The agent's trash over the fake runtime: delete moves a session there (container gone, port
 * released, a `trash` event), restore brings it back stopped with its home, refuses a taken port
 * (naming its holder) unless told to come back without one, and a taken name; the purge follows
 * the clock.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TrashEntry } from '../../common/protocol';
import { Harness, asView, startHarness } from '../helpers/sessions-harness';

const HOUR = 3_600_000;
let h: Harness;
let told: TrashEntry[][];

beforeEach(async () => {
  h = await startHarness({ trashMs: HOUR });
  told = [];
  h.sessions.on('trash', (t: TrashEntry[]) => told.push(t));
});
afterEach(() => h.dispose());

async function create(name: string, port = 0, dns = ''): Promise<string> {
  return asView(await h.sessions.create({ name, protocol: 'tcp', port, dns }, 'alice')).meta.id;
}

test('delete moves it to the trash: no container, gone from list, port free, told', async () => {
  const id = await create('web', 1501, 'web');
  await fs.writeFile(path.join(h.root, id, 'home', 'marker'), 'kept');
  await h.sessions.restart(id, 'alice');
  const trashed = await h.sessions.delete(id, 'bob');
  expect(trashed).toMatchObject({ id, name: 'web', port: 1501, dns: 'web', deletedBy: 'bob' });
  expect(Date.parse(trashed?.purgeAt ?? '') - Date.parse(trashed?.deletedAt ?? '')).toBe(HOUR);
  expect(h.fake.containersOf(id)).toEqual([]);
  expect((await h.sessions.list()).map((e) => (e.kind === 'session' ? e.meta.id : e.id))).toEqual([]);
  expect(told.at(-1)?.map((t) => t.id)).toEqual([id]);
  expect(h.sessions.trash.list().map((t) => t.id)).toEqual([id]);
  // Its port is free for another.
  const other = await create('other', 1501);
  expect(asView(await h.sessions.get(other)).meta.port).toBe(1501);

  // Restore: refused while the port is taken, naming it and its holder; nothing changes.
  await expect(h.sessions.restore(id, 'bob', false)).rejects.toMatchObject({
    code: 'PORT_UNAVAILABLE',
    message: expect.stringContaining('port 1501/tcp is taken by session other'),
  });
  expect(h.sessions.trash.list().map((t) => t.id)).toEqual([id]);
  // Without its port it comes back, stopped, with its home and no lock.
  const back = asView(await h.sessions.restore(id, 'bob', true));
  expect(back.meta).toMatchObject({ name: 'web', port: 0, dns: 'web' });
  expect(back.state).toBe('-');
  expect(back.lock).toBeNull();
  expect(await fs.readFile(path.join(h.root, id, 'home', 'marker'), 'utf8')).toBe('kept');
  expect(told.at(-1)).toEqual([]);
  await h.sessions.restart(id, 'bob');
});

test('restore with its port when it is free; refused when a live session took its name or DNS name', async () => {
  const id = await create('web', 1502, 'web');
  await h.sessions.delete(id, 'alice');
  const same = await create('web');
  await expect(h.sessions.restore(id, 'alice', false)).rejects.toMatchObject({ code: 'NAME_TAKEN', message: expect.stringContaining('name: "web"') });
  await h.sessions.delete(same, 'alice');
  const dns = await create('x', 0, 'web');
  await expect(h.sessions.restore(id, 'alice', false)).rejects.toMatchObject({ code: 'NAME_TAKEN', message: expect.stringContaining('dns: "web"') });
  await h.sessions.delete(dns, 'alice');
  expect(asView(await h.sessions.restore(id, 'alice', false)).meta.port).toBe(1502);
  await expect(h.sessions.restore(id, 'alice', false)).rejects.toMatchObject({ code: 'NOT_FOUND' });
});

test('purge follows the clock: nothing before the window ends, the folder gone after', async () => {
  const id = await create('web');
  await h.sessions.delete(id, 'alice');
  h.clock.advance(HOUR - 1);
  await h.sessions.trash.purgeDue();
  expect(h.sessions.trash.list().map((t) => t.id)).toEqual([id]);
  h.clock.advance(1);
  await h.sessions.trash.purgeDue();
  expect(h.sessions.trash.list()).toEqual([]);
  expect(told.at(-1)).toEqual([]);
  expect(await fs.readdir(path.join(h.root, '.trash'))).toEqual([]);
  await expect(h.sessions.restore(id, 'alice', false)).rejects.toMatchObject({ code: 'NOT_FOUND' });
});

test('a broken session is deleted for good', async () => {
  const id = await create('web');
  await fs.writeFile(path.join(h.root, id, 'session.json'), '{');
  expect(await h.sessions.delete(id, 'alice')).toBeNull();
  expect(h.sessions.trash.list()).toEqual([]);
  await expect(fs.lstat(path.join(h.root, id))).rejects.toMatchObject({ code: 'ENOENT' });
});
