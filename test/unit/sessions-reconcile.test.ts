/**
 * The reconciler on the fake runtime, with the fake clock driving its grace period: labelled
 * containers with no session folder go only after the grace, one whose folder comes back stays,
 * other agents' containers are never touched, and a container left paused with no live lock is
 * unpaused.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SessionLocks } from '../../agent/store/locks';
import { silentLogger } from '../../common/logging';
import { Harness, asView, startHarness } from '../helpers/sessions-harness';
import { until } from '../helpers/wait';

const GRACE_MS = 60_000;
let h: Harness;

/** Where a test moves a session folder out of the root for a while. */
const awayOf = (): string => `${h.root}-away`;

afterEach(async () => {
  await fs.rm(awayOf(), { recursive: true, force: true });
  await h.dispose();
});

async function runningSession(name: string): Promise<string> {
  const id = asView(await h.sessions.create({ name, protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
  expect(asView(await h.sessions.restart(id, 'alice')).state).toBe('R');
  return id;
}

const removals = (): string[] => h.fake.calls.filter((c) => c.method === 'stopAndRemove').map((c) => c.target);

describe('orphans', () => {
  beforeEach(async () => {
    h = await startHarness({ orphanGraceMs: GRACE_MS });
  });

  test('a labelled container with no session folder is removed only once the grace period has passed', async () => {
    const live = await runningSession('live');
    const liveContainer = h.containerOf(live);
    const orphan = h.fake.addContainer({ sessionId: randomUUID() });
    const stoppedOrphan = h.fake.addContainer({ sessionId: randomUUID(), state: 'exited' });
    // Another agent's, and this agent's name on another root: not ours, whatever their age.
    const otherAgent = h.fake.addContainer({ sessionId: randomUUID(), agent: 'other-agent' });
    const otherRoot = h.fake.addContainer({ sessionId: randomUUID(), root: `${h.root}-elsewhere` });

    await h.sessions.reconcile();
    h.clock.advance(GRACE_MS - 1);
    await h.sessions.reconcile();
    expect(removals()).toEqual([]);
    expect(h.fake.container(orphan)?.state).toBe('running');

    h.clock.advance(1);
    await h.sessions.reconcile();
    expect(removals().sort()).toEqual([orphan, stoppedOrphan].sort());
    expect(h.fake.container(orphan)).toBeUndefined();
    expect(h.fake.container(stoppedOrphan)).toBeUndefined();
    for (const kept of [liveContainer, otherAgent, otherRoot]) expect(h.fake.container(kept)?.state).toBe('running');

    // Later rounds have nothing more to do.
    h.clock.advance(10 * GRACE_MS);
    await h.sessions.reconcile();
    expect(removals()).toHaveLength(2);
    expect(asView(await h.sessions.get(live)).state).toBe('R');
  });

  test('a container whose folder comes back within the grace period is kept, and a new absence starts a new grace', async () => {
    const id = await runningSession('roaming');
    const cid = h.containerOf(id);
    const home = path.join(h.root, id);
    const away = awayOf();

    await fs.rename(home, away);
    await h.sessions.reconcile();
    h.clock.advance(GRACE_MS - 1000);
    await fs.rename(away, home);
    await h.sessions.reconcile();
    // Past the grace counted from the first sighting: kept, since the folder is back.
    h.clock.advance(2000);
    await h.sessions.reconcile();
    expect(removals()).toEqual([]);

    // Gone again: the grace counts from now, not from the first absence.
    await fs.rename(home, away);
    await h.sessions.reconcile();
    h.clock.advance(GRACE_MS - 1);
    await h.sessions.reconcile();
    expect(h.fake.container(cid)?.state).toBe('running');
    h.clock.advance(1);
    await h.sessions.reconcile();
    expect(removals()).toEqual([cid]);
    expect(h.fake.container(cid)).toBeUndefined();
  });
});

test('the periodic reconciler removes an orphan on its own once the grace has passed', async () => {
  h = await startHarness({ orphanGraceMs: GRACE_MS, reconcileIntervalMs: 20 });
  const orphan = h.fake.addContainer({ sessionId: randomUUID() });
  const rounds = (): number => h.fake.calls.filter((c) => c.method === 'list').length;
  const start = rounds();
  await until('a few reconciler rounds', async () => rounds() - start, (n) => n >= 3, 3000, 10);
  expect(h.fake.container(orphan)?.state).toBe('running');
  h.clock.advance(GRACE_MS);
  await until('the orphan removed', async () => h.fake.container(orphan), (c) => c === undefined, 3000, 10);
  expect(removals()).toEqual([orphan]);
});

test('a container left paused with no live lock is unpaused; one paused under a live lock is not', async () => {
  h = await startHarness({ orphanGraceMs: GRACE_MS, lockStaleMs: 10_000 });
  const make = async (name: string): Promise<string> => asView(await h.sessions.create({ name, protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
  const [noLock, liveLock, staleLock] = [await make('no-lock'), await make('live-lock'), await make('stale-lock')];
  const paused = {
    noLock: h.fake.addContainer({ sessionId: noLock, state: 'paused' }),
    liveLock: h.fake.addContainer({ sessionId: liveLock, state: 'paused' }),
    staleLock: h.fake.addContainer({ sessionId: staleLock, state: 'paused' }),
  };
  // A clone under way (another agent instance holds the lock and keeps it fresh)…
  const other = new SessionLocks({ staleMs: 10_000, instance: 'other-agent', now: () => Date.now(), logger: silentLogger });
  const release = await other.acquire(path.join(h.root, liveLock), 'bob', 'clone');
  // …and one whose holder died a minute ago (its lock has not been refreshed since).
  const dead = path.join(h.root, staleLock);
  await fs.mkdir(path.join(dead, 'session.lock'));
  const since = new Date(Date.now() - 60_000);
  await fs.writeFile(
    path.join(dead, 'session.lock.owner.json'),
    JSON.stringify({ operator: 'ghost', op: 'clone', since: since.toISOString(), pid: 999_999, agentInstance: 'dead-agent' }),
  );
  await fs.utimes(path.join(dead, 'session.lock'), since, since);

  await h.sessions.reconcile();
  expect(h.fake.callsOn(paused.noLock, ['unpause'])).toEqual(['unpause']);
  expect(h.fake.callsOn(paused.staleLock, ['unpause'])).toEqual(['unpause']);
  expect(h.fake.callsOn(paused.liveLock, ['unpause'])).toEqual([]);
  expect(h.fake.container(paused.noLock)?.state).toBe('running');
  expect(h.fake.container(paused.staleLock)?.state).toBe('running');
  expect(h.fake.container(paused.liveLock)?.state).toBe('paused');
  // The reconciler only unpauses: it neither clears the stale lock nor removes anything.
  expect(asView(await h.sessions.get(staleLock)).lock).toMatchObject({ operator: 'ghost', stale: true });
  expect(removals()).toEqual([]);

  // Once the clone is done with its lock, the next round lets the session run again.
  await release();
  await h.sessions.reconcile();
  expect(h.fake.container(paused.liveLock)?.state).toBe('running');
  const listed = (await h.sessions.list()).map((e) => `${asView(e).meta.name}:${e.state}`).sort();
  expect(listed).toEqual(['live-lock:R', 'no-lock:R', 'stale-lock:R']);
});
