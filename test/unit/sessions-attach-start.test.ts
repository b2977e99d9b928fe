/**
 * Pair work from a stopped session: two operators attach at once. The first starts the container
 * under the session's lock; the second (and a read-only viewer) waits for that start instead of
 * being refused as locked. Other holders of the lock still refuse an attach at once. A refusal
 * whose lock is gone or stale by the time the attach looks at it is tried again.
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

test('an attach refused as locked by a start that ends just then tries again instead of failing LOCKED', async () => {
  const id = asView(await h.sessions.create({ name: 'race', protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
  // Another operator's attach is starting the session: it holds the lock.
  const release = await h.locks.acquire(path.join(h.root, id), 'alice', 'attach');
  // Made certain: that start ends (its lock released) right after bob is refused, before he looks at the lock.
  const spies = refusedThen(async () => release());
  try {
    const bob = await h.sessions.openAttach(id, 'bob', false, 80, 24);
    expect(spies.refusals()).toBe(1);
    expect(asView(await h.sessions.get(id)).attached).toEqual(['bob']);
    await bob.close();
  } finally {
    spies.restore();
  }
});

test('an attach refused by a lock that turns stale meanwhile (its holder died) clears it and starts the session', async () => {
  const id = asView(await h.sessions.create({ name: 'stale', protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
  await h.locks.acquire(path.join(h.root, id), 'dead', 'attach');
  // Right after bob is refused, the holder's lock turns stale (it stopped refreshing it: it died).
  let dead = false;
  const spies = refusedThen(async () => void (dead = true));
  const inspect = h.locks.inspect.bind(h.locks);
  const stale = jest.spyOn(h.locks, 'inspect').mockImplementation(async (dir) => {
    const got = await inspect(dir);
    return dead && got ? { ...got, stale: true } : got;
  });
  try {
    const bob = await h.sessions.openAttach(id, 'bob', false, 80, 24);
    expect(spies.refusals()).toBe(1);
    expect(h.fake.callsOn(id, ['start'])).toHaveLength(1);
    await bob.close();
  } finally {
    stale.mockRestore();
    spies.restore();
  }
});

/** Runs `then` once, right after the first time the session's lock refuses an attempt (LOCKED). */
function refusedThen(then: () => Promise<void>): { refusals(): number; restore(): void } {
  const acquire = h.locks.acquire.bind(h.locks);
  let refusals = 0;
  const spy = jest.spyOn(h.locks, 'acquire').mockImplementation(async (...args) => {
    try {
      return await acquire(...args);
    } catch (err) {
      if ((err as { code?: string }).code === 'LOCKED' && ++refusals === 1) await then();
      throw err;
    }
  });
  return { refusals: () => refusals, restore: () => spy.mockRestore() };
}
