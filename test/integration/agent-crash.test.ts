/**
 * kill -9 of the agent at seeded random points: during a large clone of a running session, and
 * during any mutating operation. Every time, the next agent on the same root starts, sweeps what
 * the crash left, shows only whole sessions, and lets the crashed operation's session be used again.
 * The seed is printed; BERTH_TEST_SEED=<seed> replays a run.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SessionView } from '../../common/protocol';
import { AgentClient, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { removeTestContainers, testContainers } from '../helpers/docker';
import { seededRng } from '../helpers/seed';
import { sleep, until } from '../helpers/wait';

const runLabel = `crash-${randomUUID().slice(0, 8)}`;

const CLONE_ROUNDS = 10;
const OP_ROUNDS = 12;
const FILES = 60;
const FILE_BYTES = 5 * 1024 * 1024;

let agent: AgentProcess;
let client: AgentClient;
const clients: AgentClient[] = [];

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel });
  client = await agent.connect();
  clients.push(client);
}, 30_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await agent?.stop();
  await removeTestContainers(runLabel);
  if (agent) await fs.rm(agent.dir, { recursive: true, force: true });
});

/** kill -9 now, then a new agent on the same root, which must start. */
async function crashAndRestart(): Promise<void> {
  await agent.kill9();
  agent = await startAgentProcess({ dir: agent.dir, id: agent.id, runLabel });
  client = await agent.connect();
  clients.push(client);
}

async function views(): Promise<SessionView[]> {
  return (await client.call('list', {})).sessions.map(view);
}

/** Crash leftovers: dot entries of the root but the agent's own pid and layout files and its trash, and purges cut short in the trash. */
const leftovers = async (): Promise<string[]> => [
  ...(await fs.readdir(agent.root)).filter((n) => n.startsWith('.') && n !== '.agent.pid' && n !== '.berth-layout' && n !== '.trash'),
  ...(await fs.readdir(path.join(agent.root, '.trash')).catch(() => [] as string[])).filter((n) => n.startsWith('.')),
];

/** Files of a home that have their full size. */
async function wholeFiles(id: string): Promise<number> {
  const dir = path.join(agent.root, id, 'home', 'big');
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const sizes = await Promise.all(names.map(async (n) => (await fs.stat(path.join(dir, n))).size));
  return sizes.filter((s) => s === FILE_BYTES).length;
}

/** The crash leftovers are swept, and every session the agent shows has its metadata. */
async function expectWholeRoot(): Promise<SessionView[]> {
  await until('crash leftovers swept', leftovers, (l) => l.length === 0, 10_000);
  const all = await views();
  for (const v of all) expect(existsSync(path.join(agent.root, v.meta.id, 'session.json'))).toBe(true);
  return all;
}

/** Takes a dead agent's lock off a session (as an admin would), so the next round need not wait for it to go stale. */
async function clearLock(id: string): Promise<void> {
  const v = view(await client.call('get', { session: id }));
  if (v.lock) await client.call('override', { session: id, reason: 'test: the holder was killed' }, 'admin');
}

test('kill -9 at many points of a large clone of a running session: the agent always starts again', async () => {
  const rng = seededRng('clone kill points');
  const src = view(await client.call('create', { name: 'big-source' })).meta.id;
  const dir = path.join(agent.root, src, 'home', 'big');
  await fs.mkdir(dir);
  const block = Buffer.alloc(FILE_BYTES, 0x5a);
  for (let i = 0; i < FILES; i++) await fs.writeFile(path.join(dir, `f${i}`), block);
  expect(view(await client.call('restart', { session: src })).state).toBe('R');

  // How long one clone takes here, to spread the kill points over it (and a little past it).
  const t0 = Date.now();
  const probe = view(await client.call('clone', { session: src }));
  const cloneMs = Date.now() - t0;
  await client.call('delete', { session: probe.meta.id });
  console.log(`one clone of ${(FILES * FILE_BYTES) / 1048576} MB takes ${cloneMs} ms here`);

  const outcomes: string[] = [];
  for (let round = 0; round < CLONE_ROUNDS; round++) {
    const before = new Set((await views()).map((v) => v.meta.id));
    const delay = rng.int(0, Math.round(cloneMs * 1.2));
    let replied = false;
    void client.request('clone', { session: src }, 'alice').then((r) => (replied = r.ok));
    await sleep(delay);
    await crashAndRestart();

    const all = await expectWholeRoot();
    const fresh = all.filter((v) => !before.has(v.meta.id));
    expect(fresh.length).toBeLessThanOrEqual(1);
    for (const v of fresh) {
      expect(await wholeFiles(v.meta.id)).toBe(FILES);
      expect(v.lock).toBeNull();
    }
    expect(await wholeFiles(src)).toBe(FILES);
    outcomes.push(`${delay} ms: ${fresh.length === 1 ? 'clone made' : 'no clone'}${replied ? ' (replied)' : ''}`);

    // The source comes back to use: unlocked, and running again, not left paused.
    await clearLock(src);
    await until('source running again', async () => (await testContainers(runLabel)).find((c) => c.session === src)?.state, (s) => s === 'running', 10_000);
    const a = await client.attach({ session: src, operator: 'alice' });
    const ready = await a.ready;
    a.close();
    if (!ready.ok) console.log('DEBUG', (await testContainers(runLabel)).map((c) => `${c.id} ${c.session} ${c.state}`).join(' | '), '\n', agent.logs.slice(-25).join('\n'));
    expect(ready.ok ? 'ok' : `${ready.error.code}: ${ready.error.message}`).toBe('ok');
    for (const v of fresh) await client.call('delete', { session: v.meta.id });
  }
  console.log(`kill points: ${outcomes.join('; ')}`);
  await client.call('delete', { session: src });
}, 240_000);

test('kill -9 at a random point of any operation: the agent starts and every session is whole or absent', async () => {
  const rng = seededRng('operation kill points');
  const ops = ['create', 'clone', 'edit', 'delete', 'restart', 'kill'] as const;
  const outcomes: string[] = [];
  for (let round = 0; round < OP_ROUNDS; round++) {
    // A session to work on, with something in its home.
    const target = view(await client.call('create', { name: `round-${round}` })).meta.id;
    await fs.writeFile(path.join(agent.root, target, 'home', 'notes.txt'), 'x'.repeat(1 << 20));
    if (rng.next() < 0.5) await client.call('restart', { session: target });
    const before = new Set((await views()).map((v) => v.meta.id));

    const op = rng.pick(ops);
    const delay = rng.int(0, 300);
    const params: Record<string, unknown> =
      op === 'create' ? { name: `made-${round}` } : op === 'edit' ? { session: target, name: `renamed-${round}` } : { session: target };
    void client.request(op, params, 'alice');
    await sleep(delay);
    await crashAndRestart();

    const all = await expectWholeRoot();
    const ids = new Set(all.map((v) => v.meta.id));
    // Only the operation's own effect can differ: at most one new session, and only `delete` may remove one.
    const added = all.filter((v) => !before.has(v.meta.id));
    expect(added.length).toBeLessThanOrEqual(op === 'create' || op === 'clone' ? 1 : 0);
    for (const id of before) if (id !== target || op !== 'delete') expect(ids.has(id)).toBe(true);
    if (ids.has(target)) {
      const t = all.find((v) => v.meta.id === target) as SessionView;
      expect([`round-${round}`, `renamed-${round}`]).toContain(t.meta.name);
      expect((await fs.readFile(path.join(agent.root, target, 'home', 'notes.txt'))).length).toBe(1 << 20);
      await clearLock(target);
    }
    outcomes.push(`${op} +${delay} ms: ${ids.has(target) ? 'kept' : 'gone'}, ${added.length} added`);

    // Everything is usable again: each session can be deleted, and no container outlives its session.
    for (const v of all) {
      await clearLock(v.meta.id);
      await client.call('delete', { session: v.meta.id });
    }
    await until('no containers left', () => testContainers(runLabel), (cs) => cs.length === 0, 15_000);
  }
  console.log(`rounds: ${outcomes.join('; ')}`);
}, 240_000);
