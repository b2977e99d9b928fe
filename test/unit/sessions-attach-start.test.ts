/**
 * Pair work from a stopped session: two operators attach at once. The first starts the container
 * under the session's lock; the second (and a read-only viewer) waits for that start instead of
 * being refused as locked. Other holders of the lock still refuse an attach at once.
 */
import path from 'node:path';
import { asView, Harness, startHarness } from '../helpers/sessions-harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness({ realTime: true });
});
afterEach(() => h.dispose());

test('a second attach and a viewer wait out the first attach\'s start; the container starts once', async () => {
  const id = asView(await h.sessions.create({ name: 'pair', protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
  const start = h.fake.hold('start');
  const first = h.sessions.openAttach(id, 'alice', false, 80, 24);
  await start.reached;
  const second = h.sessions.openAttach(id, 'bob', false, 80, 24);
  const viewer = h.sessions.openAttach(id, 'vic', true, 80, 24);
  // Both are waiting, not refused: give them a few polling rounds while the start is held.
  await new Promise((r) => setTimeout(r, 400));
  start.release();
  const opened = await Promise.all([first, second, viewer]);
  expect(h.fake.callsOn(id, ['start'])).toHaveLength(1);
  expect(asView(await h.sessions.get(id)).attached.sort()).toEqual(['alice', 'bob', 'vic']);
  for (const a of opened) await a.close();
});

test('an attach is still refused at once while another operation holds the lock', async () => {
  const id = asView(await h.sessions.create({ name: 'busy', protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
  const release = await h.locks.acquire(path.join(h.root, id), 'carol', 'clone');
  await expect(h.sessions.openAttach(id, 'bob', false, 80, 24)).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringContaining('carol (clone)') });
  await expect(h.sessions.openAttach(id, 'vic', true, 80, 24)).rejects.toMatchObject({ code: 'CONFLICT' });
  await release();
});
