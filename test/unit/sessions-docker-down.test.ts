/**
 * Docker going away and coming back, on the fake runtime: operations that need Docker answer
 * RUNTIME_UNAVAILABLE at once and leave everything as it was, `create` still works, and the
 * agent picks Docker up again on its own (its watch hears the engine come back).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { SessionEntry } from '../../common/protocol';
import { Harness, asView, startHarness } from '../helpers/sessions-harness';
import { until, within } from '../helpers/wait';

/** What "at once" means here: the fake answers in no time, so anything slower is the agent waiting. */
const QUICK_MS = 500;
let h: Harness;

afterEach(() => h.dispose());

async function createSession(name: string): Promise<string> {
  return asView(await h.sessions.create({ name, protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
}

async function runningSession(name: string): Promise<string> {
  const id = await createSession(name);
  expect(asView(await h.sessions.restart(id, 'alice')).state).toBe('R');
  return id;
}

/** Runs `op`, which must fail with RUNTIME_UNAVAILABLE within QUICK_MS. */
async function refusedQuickly(what: string, op: () => Promise<unknown>): Promise<void> {
  const t = Date.now();
  await expect(within(what, 5000, op())).rejects.toMatchObject({ code: 'RUNTIME_UNAVAILABLE' });
  const ms = Date.now() - t;
  expect({ what, quick: ms < QUICK_MS }).toEqual({ what, quick: true });
}

const lockLeft = (id: string): boolean => existsSync(path.join(h.root, id, 'session.lock'));
const sorted = (entries: SessionEntry[]): string[] => entries.map((e) => `${asView(e).meta.name}:${e.state}`).sort();

test('with Docker down, Docker-bound operations are refused at once, nothing is lost, and the agent recovers', async () => {
  h = await startHarness();
  const running = await runningSession('running');
  const stopped = await createSession('stopped');
  const cid = h.containerOf(running);

  h.fake.setDown(true);
  await until('the agent hears Docker go', async () => h.sessions.dockerUp, (up) => !up, 2000, 5);
  await refusedQuickly('list', () => h.sessions.list());
  await refusedQuickly('get', () => h.sessions.get(running));
  await refusedQuickly('restart', () => h.sessions.restart(stopped, 'alice'));
  await refusedQuickly('kill', () => h.sessions.kill(running, 'alice'));
  await refusedQuickly('delete', () => h.sessions.delete(running, 'alice'));
  await refusedQuickly('attach', () => h.sessions.openAttach(running, 'alice', false, 80, 24));
  await refusedQuickly('attach that would start', () => h.sessions.openAttach(stopped, 'alice', false, 80, 24));
  await refusedQuickly('clone of a running session', () => h.sessions.clone({ session: running }, 'alice'));
  await refusedQuickly('reconcile', () => h.sessions.reconcile());

  // What needs no Docker still works; the host's ports are checked as ever (1001 is taken here).
  h.probe.busy.add('tcp/1001');
  const made = asView(await within('create', 2000, h.sessions.create({ name: 'during', protocol: 'tcp', port: -1, dns: 'during' }, 'bob')));
  expect(made).toMatchObject({ state: '-', lock: null, container: null, meta: { port: 1002, dns: 'during' } });
  expect(existsSync(path.join(h.root, made.meta.id, 'session.json'))).toBe(true);
  expect(asView(await h.sessions.edit({ session: stopped, name: 'renamed' }, 'alice')).meta.name).toBe('renamed');

  // Nothing was half done: every folder is there, no lock or staging left, the container untouched.
  expect((await fs.readdir(h.root)).filter((n) => !n.startsWith('.')).sort()).toEqual([running, stopped, made.meta.id].sort());
  for (const id of [running, stopped, made.meta.id]) expect(lockLeft(id)).toBe(false);
  expect(h.fake.container(cid)?.state).toBe('running');
  // Of the calls that change a container, only the clone's pause was tried (and refused).
  expect(h.fake.calls.filter((c) => ['start', 'stopAndRemove', 'pause', 'unpause', 'attach'].includes(c.method)).map((c) => c.method)).toEqual(['start', 'pause']);

  // The container stopped while Docker was away (no event: the stream was down).
  h.fake.die(cid, { event: false });
  const from = h.events.length;
  h.fake.setDown(false);
  await until('the agent hears Docker come back', async () => h.sessions.dockerUp, (up) => up, 2000, 5);
  // It looked again on its own and told subscribers.
  await h.waitForEntry(running, (e) => e.state === '-', from);
  expect(sorted(await h.sessions.list())).toEqual(['during:-', 'renamed:-', 'running:-']);
  expect(asView(await h.sessions.restart(running, 'alice'))).toMatchObject({ state: 'R', lock: null });
  expect(asView(await h.sessions.restart(stopped, 'alice')).state).toBe('R');
  const a = await h.sessions.openAttach(running, 'alice', false, 80, 24);
  expect(asView(a.entry).state).toBe('C');
  await a.close();
});

test('an agent that starts with Docker down serves at once, then adopts what Docker has when it returns', async () => {
  const t = Date.now();
  h = await startHarness({ down: true, orphanGraceMs: 60_000 });
  expect(Date.now() - t).toBeLessThan(QUICK_MS + 500);
  expect(h.sessions.dockerUp).toBe(false);

  const id = await createSession('made-while-down');
  await refusedQuickly('list', () => h.sessions.list());
  // Docker had these all along: this session's container, and one no session owns.
  const adopted = h.fake.addContainer({ sessionId: id });
  const orphan = h.fake.addContainer({ sessionId: randomUUID() });

  const from = h.events.length;
  h.fake.setDown(false);
  await until('the agent hears Docker come back', async () => h.sessions.dockerUp, (up) => up, 2000, 5);
  expect(asView(await h.waitForEntry(id, (e) => e.state === 'R', from)).container).toMatchObject({ id: adopted, running: true });
  // The reconciler ran on the way back (a listing of everything), but the orphan's grace has just begun.
  await until('a reconcile after coming back', async () => h.fake.calls.filter((c) => c.method === 'list').length, (n) => n >= 2, 2000, 5);
  expect(h.fake.container(orphan)?.state).toBe('running');
  expect(h.fake.calls.filter((c) => c.method === 'stopAndRemove')).toEqual([]);
  expect(asView(await h.sessions.get(id))).toMatchObject({ state: 'R', container: { id: adopted } });
});

test('Docker going away in the middle of a restart leaves the session stopped and unlocked', async () => {
  h = await startHarness();
  const id = await createSession('web');
  const start = h.fake.hold('start');
  const restarting = h.sessions.restart(id, 'alice');
  await within('the restart reaching Docker', 2000, start.reached);
  expect(asView(await h.sessions.get(id))).toMatchObject({ state: 'L', lock: { operator: 'alice', op: 'restart' } });
  h.fake.setDown(true);
  start.release();
  await expect(within('restart', 2000, restarting)).rejects.toMatchObject({ code: 'RUNTIME_UNAVAILABLE' });
  expect(lockLeft(id)).toBe(false);
  expect(h.fake.containersOf(id)).toEqual([]);

  h.fake.setDown(false);
  await until('the agent hears Docker come back', async () => h.sessions.dockerUp, (up) => up, 2000, 5);
  expect(asView(await h.sessions.restart(id, 'alice')).state).toBe('R');
  expect(h.fake.containersOf(id)).toHaveLength(1);
});
