/**
 * Docker's events as the agent gets them, on the fake runtime: a `die` that the listing does not
 * show yet (Docker 20.10) is trusted at once and not undone by the settled listing; a late event
 * of an old container leaves its successor alone; a session's events come out in order.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LockInfo } from '../../common/protocol';
import { SessionLocks } from '../../agent/store/locks';
import { Harness, asView, changes, startHarness } from '../helpers/sessions-harness';
import { sleep, until } from '../helpers/wait';

let h: Harness;

beforeEach(async () => {
  h = await startHarness();
});
afterEach(() => h.dispose());

async function runningSession(name: string): Promise<string> {
  const id = asView(await h.sessions.create({ name, protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
  expect(asView(await h.sessions.restart(id, 'alice')).state).toBe('R');
  return id;
}

/** How many times the agent listed this session's containers. */
const listings = (id: string): number => h.fake.callsOn(id, ['listSession']).length;

/**
 * Waits until the agent has looked again after each of `events` events (each event: one listing
 * at once and one ~300 ms later to settle), then lets the last look's results land.
 */
async function settled(id: string, before: number, events: number): Promise<void> {
  await until('settle listings', async () => listings(id) - before, (n) => n >= 2 * events, 3000, 10);
  await sleep(30);
}

test('a die that the listing does not show yet is trusted at once, and the settled listing keeps it', async () => {
  const id = await runningSession('web');
  const cid = h.containerOf(id);
  const attach = await h.sessions.openAttach(id, 'alice', false, 80, 24);
  expect(asView(attach.entry)).toMatchObject({ state: 'C', attached: ['alice'] });

  const from = h.events.length;
  const before = listings(id);
  h.fake.die(cid, { staleListings: 1 });
  const stopped = asView(await h.waitForEntry(id, (e) => e.state === '-', from));
  // The agent's listing after the event still said running: the event alone made it stopped.
  expect(h.fake.container(cid)?.staleListings).toBe(0);
  expect(listings(id)).toBeGreaterThan(before);
  expect(stopped).toMatchObject({ attached: [], container: { id: cid, running: false } });
  // Its attach was ended by the agent (the HUP of its tmux client), not left to time out.
  expect(h.fake.attaches.map((a) => a.closedByAgent)).toEqual([true]);
  expect(h.fake.callsOn(cid, ['attach.close'])).toEqual(['attach.close']);

  await settled(id, before, 1);
  // Nothing said running again after the die, and a fresh look agrees.
  expect(h.statesOf(id, from)).not.toContain('R');
  expect(h.statesOf(id, from)).not.toContain('C');
  expect(asView(await h.sessions.get(id))).toMatchObject({ state: '-', container: { id: cid, running: false, status: expect.stringMatching(/^Exited/) } });
  // Closing the attach afterwards is harmless and closes nothing twice.
  await attach.close();
  expect(h.fake.callsOn(cid, ['attach.close'])).toEqual(['attach.close']);
});

test('the late events of a killed container leave its successor running', async () => {
  const id = await runningSession('web');
  const first = h.containerOf(id);
  // Docker's event stream lags behind its API: the old container's events arrive after the new one started.
  h.fake.holdEvents();
  expect(asView(await h.sessions.kill(id, 'alice')).state).toBe('-');
  expect(asView(await h.sessions.restart(id, 'alice')).state).toBe('R');
  const second = h.containerOf(id);
  expect(second).not.toBe(first);

  const from = h.events.length;
  const before = listings(id);
  const flushed = h.fake.flushEvents();
  // kill, die, stop, destroy of the first; create, start of the second.
  expect(flushed).toBe(6);
  await settled(id, before, flushed);
  expect(h.statesOf(id, from).length).toBeGreaterThan(0);
  expect(changes(h.statesOf(id, from))).toEqual(['R']);
  expect(asView(await h.sessions.get(id))).toMatchObject({ state: 'R', container: { id: second, running: true } });
});

test("a session's events come out in the order of its changes", async () => {
  const id = asView(await h.sessions.create({ name: 'web', protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
  const steps: Array<[string, () => Promise<unknown>]> = [
    ['R', () => h.sessions.restart(id, 'alice')],
    ['-', async () => h.fake.die(h.containerOf(id))],
    ['R', () => h.sessions.restart(id, 'alice')],
    ['C', () => h.sessions.openAttach(id, 'alice', false, 80, 24)],
    ['R', () => h.sessions.background(id, 'alice')],
    ['-', () => h.sessions.kill(id, 'alice')],
  ];
  for (const [state, step] of steps) {
    const from = h.events.length;
    await step();
    await h.waitForEntry(id, (e) => e.state === state, from);
  }
  // Past the last settle look (300 ms after the last event).
  await sleep(400);
  const seen = changes(h.statesOf(id));
  // `L` shows while an op holds the lock of a session that is not running (a restart before its
  // container runs, a kill after it stopped): each comes just before the state the op leaves.
  expect(seen.filter((s) => s !== 'L')).toEqual(['-', 'R', '-', 'R', 'C', 'R', '-']);
  seen.forEach((s, i) => {
    if (s === 'L') expect(['R', '-']).toContain(seen[i + 1]);
  });
  expect(asView(await h.sessions.get(id)).state).toBe('-');
});

test('a burst of events for one session ends with what Docker says last', async () => {
  const id = await runningSession('web');
  const cid = h.containerOf(id);
  // Listings answer slowly, so the agent's looks after each event overlap.
  h.fake.delay('listSession', 15);
  h.fake.holdEvents();
  h.fake.die(cid);
  const next = await h.sessions.restart(id, 'alice');
  expect(asView(next).state).toBe('R');
  const later = h.containerOf(id);
  h.fake.die(later);
  const from = h.events.length;
  const before = listings(id);
  const flushed = h.fake.flushEvents();
  await settled(id, before, flushed);
  const states = h.statesOf(id, from);
  expect(states.length).toBeGreaterThan(0);
  expect(states[states.length - 1]).toBe('-');
  expect(asView(await h.sessions.get(id))).toMatchObject({ state: '-', container: { id: later, running: false } });
});

/** Real locks whose read of a held lock is slow (a busy disk): an entry built while locked takes longer. */
class SlowHeldLockReads extends SessionLocks {
  override async inspect(dir: string): Promise<LockInfo | null> {
    const info = await super.inspect(dir);
    if (info) await sleep(60);
    return info;
  }
}

test("a session's events keep their order when an earlier one takes longer to build", async () => {
  await h.dispose();
  h = await startHarness({ locks: (o) => new SlowHeldLockReads(o) });
  const id = await runningSession('web');
  const from = h.events.length;
  // Docker's events of the stop reach the agent while the kill still holds the lock (a slow `L`
  // entry); the kill's own entry after the release is quick (`-`): it must still come out last.
  expect(asView(await h.sessions.kill(id, 'alice')).state).toBe('-');
  await until('the events of the kill', async () => h.statesOf(id, from), (s) => s.includes('L') && s.length >= 2, 3000, 10);
  await sleep(400);
  const seen = changes(h.statesOf(id, from));
  expect(seen[seen.length - 1]).toBe('-');
  expect(seen.slice(seen.indexOf('L'))).toEqual(['L', '-']);
  expect(asView(await h.sessions.get(id))).toMatchObject({ state: '-', lock: null });
});

test('a session.json found broken by an op is pushed to subscribers, though the op is refused', async () => {
  const id = asView(await h.sessions.create({ name: 'soon-broken', protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
  await h.sessions.get(id);
  const from = h.events.length;
  await fs.writeFile(path.join(h.root, id, 'session.json'), '{"version": 1');
  await expect(h.sessions.restart(id, 'alice')).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('broken') });
  const e = await h.waitForEntry(id, (x) => x.kind === 'broken', from, 2000);
  expect(e).toMatchObject({ kind: 'broken', reason: expect.stringContaining('session.json') });
  // Reading it again unchanged pushes nothing more.
  const after = h.events.length;
  await expect(h.sessions.restart(id, 'alice')).rejects.toMatchObject({ code: 'CONFLICT' });
  await sleep(100);
  expect(h.events.length).toBe(after);
});
