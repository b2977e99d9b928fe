/**
 * Session locks under the operations, on the fake runtime. A lock is stale when its holder stopped
 * refreshing its mtime, which SessionLocks compares with the (injected) clock: so these tests run
 * the clock with real time, use the smallest stale time the config allows (2 s), and wait for it.
 */
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import { SessionLocks } from '../../agent/store/locks';
import { silentLogger } from '../../common/logging';
import { Harness, asView, startHarness } from '../helpers/sessions-harness';
import { until } from '../helpers/wait';

const STALE_MS = 2000;
let h: Harness;

beforeEach(async () => {
  h = await startHarness({ realTime: true, lockStaleMs: STALE_MS });
});
afterEach(() => h.dispose());

async function createSession(name: string): Promise<string> {
  return asView(await h.sessions.create({ name, protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
}

/** What a holder that died leaves on disk: proper-lockfile's folder and the owner record, no longer refreshed. */
async function leaveDeadLock(id: string): Promise<void> {
  const dir = path.join(h.root, id);
  await fs.mkdir(path.join(dir, 'session.lock'));
  const owner = { operator: 'ghost', op: 'restart', since: new Date().toISOString(), pid: 999_999, agentInstance: 'dead-agent' };
  await fs.writeFile(path.join(dir, 'session.lock.owner.json'), JSON.stringify(owner));
}

const starts = (id: string): number => h.fake.callsOn(id, ['start']).length;

test('an operation gets through a lock whose holder stopped refreshing once it is stale, and is refused before', async () => {
  const deadHeld = await createSession('dead-holder');
  const liveHeld = await createSession('live-holder');
  await leaveDeadLock(deadHeld);
  // Another agent instance on this root, alive: it refreshes its lock every second.
  const other = new SessionLocks({ staleMs: STALE_MS, instance: 'other-agent', now: () => Date.now(), logger: silentLogger });
  const takenAt = Date.now();
  const release = await other.acquire(path.join(h.root, liveHeld), 'bob', 'edit');

  await expect(h.sessions.restart(deadHeld, 'alice')).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringContaining('locked by ghost (restart)') });
  await expect(h.sessions.restart(liveHeld, 'alice')).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringContaining('locked by bob (edit)') });
  expect(asView(await h.sessions.get(deadHeld)).lock).toMatchObject({ operator: 'ghost', stale: false });

  await until('the dead holder\'s lock stale', async () => asView(await h.sessions.get(deadHeld)).lock, (l) => l?.stale === true, STALE_MS + 3000, 50);
  const view = asView(await h.sessions.restart(deadHeld, 'alice'));
  expect(view).toMatchObject({ state: 'R', lock: null });
  expect(starts(deadHeld)).toBe(1);
  expect(existsSync(path.join(h.root, deadHeld, 'session.lock'))).toBe(false);
  expect(existsSync(path.join(h.root, deadHeld, 'session.lock.owner.json'))).toBe(false);

  // Longer than the stale time since the live holder took its lock: it kept it fresh, so still refused.
  await until('past the stale time', async () => Date.now() - takenAt, (ms) => ms > STALE_MS + 200, STALE_MS + 1000, 50);
  await expect(h.sessions.restart(liveHeld, 'alice')).rejects.toMatchObject({ code: 'LOCKED' });
  expect(asView(await h.sessions.get(liveHeld)).lock).toMatchObject({ operator: 'bob', stale: false });
  expect(starts(liveHeld)).toBe(0);

  await release();
  expect(asView(await h.sessions.restart(liveHeld, 'alice'))).toMatchObject({ state: 'R', lock: null });
  expect(starts(liveHeld)).toBe(1);
});

test('a held lock shows the session as L and refuses edits, and override clears it', async () => {
  const id = await createSession('held');
  await leaveDeadLock(id);
  // Stopped and locked: `L`, by the lock's holder.
  expect(asView(await h.sessions.get(id))).toMatchObject({ state: 'L', lock: { operator: 'ghost', op: 'restart' } });
  await expect(h.sessions.edit({ session: id, name: 'renamed' }, 'alice')).rejects.toMatchObject({ code: 'LOCKED' });
  expect(asView(await h.sessions.override(id, 'carol', 'holder is gone'))).toMatchObject({ state: '-', lock: null });
  expect(asView(await h.sessions.edit({ session: id, name: 'renamed' }, 'alice')).meta.name).toBe('renamed');
  await expect(h.sessions.override(id, 'carol', undefined)).rejects.toMatchObject({ code: 'CONFLICT' });
});

test('an attach to a session a dead clone left paused waits for the lock to go stale, then unpauses it', async () => {
  const id = await createSession('left-paused');
  expect(asView(await h.sessions.restart(id, 'alice')).state).toBe('R');
  const cid = h.containerOf(id);
  // A clone paused it, then died holding the lock.
  await h.fake.pause(cid);
  await leaveDeadLock(id);

  await expect(h.sessions.openAttach(id, 'alice', false, 80, 24)).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringMatching(/paused for a clone/) });
  expect(h.fake.container(cid)?.state).toBe('paused');
  expect(h.fake.callsOn(cid, ['attach', 'unpause'])).toEqual([]);

  // Its holder has not refreshed it for longer than the stale time.
  const old = new Date(Date.now() - 2 * STALE_MS);
  await fs.utimes(path.join(h.root, id, 'session.lock'), old, old);
  const a = await h.sessions.openAttach(id, 'alice', false, 80, 24);
  expect(h.fake.callsOn(cid, ['unpause', 'attach'])).toEqual(['unpause', 'attach']);
  expect(h.fake.container(cid)?.state).toBe('running');
  expect(asView(a.entry)).toMatchObject({ state: 'C', attached: ['alice'] });
  await a.close();
  expect(h.fake.attaches.map((x) => x.closedByAgent)).toEqual([true]);
});

test("taking a session's lock pushes its entry with the lock, and the release pushes it without", async () => {
  const id = await createSession('pushed');
  const from = h.events.length;
  const start = h.fake.hold('start');
  const restarting = h.sessions.restart(id, 'alice');
  await start.reached;
  // The restart holds the lock while Docker starts the container: subscribers see who and why.
  const locked = asView(await h.waitForEntry(id, (e) => e.lock !== null, from));
  expect(locked).toMatchObject({ state: 'L', lock: { operator: 'alice', op: 'restart', stale: false } });
  const at = h.events.length;
  start.release();
  await restarting;
  expect(asView(await h.waitForEntry(id, (e) => e.lock === null && e.state === 'R', at))).toMatchObject({ lock: null });
});
