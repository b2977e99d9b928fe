/**
 * The agent going away and coming back on the same root: containers keep running through a
 * restart, a kill -9 in the middle of a clone or a delete leaves whole sessions (or none), crash
 * leftovers are swept, orphan containers are removed and live ones adopted, and a second agent
 * on the same root is refused.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SessionEntry, SessionView } from '../../common/protocol';
import { AgentClient, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { removeTestContainers, testContainers, tmuxClientCount } from '../helpers/docker';
import { sleep, until } from '../helpers/wait';

const runLabel = `restart-${randomUUID().slice(0, 8)}`;

/** The agent of this file: one process at a time, restarted on the same dir. */
let agent: AgentProcess;
let client: AgentClient;
const oldClients: AgentClient[] = [];

const BIG_FILES = 30;
const BIG_FILE_BYTES = 10 * 1024 * 1024;

/** Starts a fresh agent on the same dir and id as the current one (after it stopped or died). */
async function restartAgent(): Promise<void> {
  agent = await startAgentProcess({ dir: agent.dir, id: agent.id, runLabel });
  oldClients.push(client);
  client = await agent.connect();
}

async function list(): Promise<SessionEntry[]> {
  return (await client.call('list', {})).sessions;
}

async function get(id: string): Promise<SessionView> {
  return view(await client.call('get', { session: id }));
}

async function createRunning(name: string): Promise<string> {
  const id = view(await client.call('create', { name })).meta.id;
  expect(view(await client.call('restart', { session: id })).state).toBe('R');
  return id;
}

/** ~300 MB of real (not sparse) files in a session's home. */
async function fillHome(id: string): Promise<void> {
  const dir = path.join(agent.root, id, 'home', 'big');
  await fs.mkdir(dir);
  const block = Buffer.alloc(BIG_FILE_BYTES, 0x5a);
  for (let i = 0; i < BIG_FILES; i++) await fs.writeFile(path.join(dir, `f${i}`), block);
}

/** True when the session's home has every big file at full size. */
async function homeIsWhole(id: string): Promise<boolean> {
  const dir = path.join(agent.root, id, 'home', 'big');
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  if (names.length !== BIG_FILES) return false;
  const sizes = await Promise.all(names.map(async (n) => (await fs.stat(path.join(dir, n))).size));
  return sizes.every((s) => s === BIG_FILE_BYTES);
}

async function leftovers(): Promise<string[]> {
  return (await fs.readdir(agent.root)).filter((n) => n.startsWith('.staging-') || n.startsWith('.trash-'));
}

/**
 * Sends a request and kill -9s the agent before the reply: 100-300 ms later, or (clone) as soon
 * as the copy is under way, so the kill lands mid-copy however fast the disk is.
 */
async function killDuring(op: 'clone' | 'delete', session: string): Promise<{ replied: boolean; leftBehind: string[] }> {
  let replied = false;
  void client.request(op, { session }, 'alice').then(() => (replied = true));
  const start = Date.now();
  const delayMs = 100 + Math.floor(Math.random() * 200);
  if (op === 'clone') {
    while (!replied && Date.now() - start < 3000 && (await leftovers()).length === 0) await sleep(5);
  } else {
    await sleep(delayMs);
  }
  const at = Date.now() - start;
  await agent.kill9();
  const leftBehind = await leftovers();
  console.log(`kill -9 during ${op} after ${at} ms: replied before the kill: ${replied}; left behind: ${leftBehind.join(', ') || 'nothing'}`);
  return { replied, leftBehind };
}

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel });
  client = await agent.connect();
}, 30_000);

afterAll(async () => {
  for (const c of [...oldClients, client]) c?.close();
  await agent?.stop();
  await removeTestContainers(runLabel);
  if (agent) await fs.rm(agent.dir, { recursive: true, force: true });
});

test('a second agent on the same root refuses to start while the first runs', async () => {
  await expect(startAgentProcess({ dir: agent.dir, id: agent.id, runLabel })).rejects.toThrow(/another agent/);
  expect(agent.proc.exitCode).toBeNull();
  expect(Array.isArray(await list())).toBe(true);
});

test('containers keep running through an agent restart, and are adopted by the next agent', async () => {
  const id = await createRunning('survivor');
  const [before] = (await testContainers(runLabel)).filter((c) => c.session === id);
  expect(before?.state).toBe('running');

  const a = await client.attach({ session: id, operator: 'alice' });
  expect((await a.ready).ok).toBe(true);
  a.write('echo keep-$((5*5))-ok\r');
  await a.waitForText('keep-25-ok', 15_000);

  await agent.stop();
  await a.closed;
  expect((await testContainers(runLabel)).filter((c) => c.session === id)).toEqual([{ id: before?.id, session: id, state: 'running' }]);
  // The stopping agent ended its attach: no tmux client is left behind in the container.
  await until('no tmux client', () => tmuxClientCount(`berth-${id}`), (n) => n === 0, 5000);

  await restartAgent();
  const entry = view((await list()).find((e) => view(e).meta.id === id) as SessionEntry);
  expect(entry.state).toBe('R');
  expect(entry.container?.id.startsWith(before?.id ?? '-')).toBe(true);

  const b = await client.attach({ session: id, operator: 'bob' });
  expect((await b.ready).ok).toBe(true);
  // tmux redraws the screen for the new client: the earlier output is still there.
  await b.waitForText('keep-25-ok', 10_000);
  b.write('echo again-$((6*6))-ok\r');
  await b.waitForText('again-36-ok', 10_000);
  b.close();
  await b.closed;
  await client.call('delete', { session: id });
});

test('attach clients a killed agent left in a container are ended by the next agent', async () => {
  const id = await createRunning('leaked');
  const a = await client.attach({ session: id, operator: 'alice' });
  expect((await a.ready).ok).toBe(true);
  a.write('echo leak-$((7*7))-ok\r');
  await a.waitForText('leak-49-ok', 15_000);
  await agent.kill9();
  // Nobody could HUP it: the read-write tmux client is still attached (the failing case).
  await sleep(1000);
  expect(await tmuxClientCount(`berth-${id}`)).toBe(1);
  await restartAgent();
  // The new agent ends it before serving, and shows nobody attached.
  expect(await tmuxClientCount(`berth-${id}`)).toBe(0);
  expect((await get(id)).attached).toEqual([]);
  expect(agent.logs.join('\n')).toContain('ended attach clients left by an earlier agent');
  // And a new attach works.
  const b = await client.attach({ session: id, operator: 'bob' });
  expect((await b.ready).ok).toBe(true);
  expect(await until('one tmux client', () => tmuxClientCount(`berth-${id}`), (n) => n === 1, 10_000)).toBe(1);
  b.close();
  await b.closed;
  await client.call('delete', { session: id });
});

test('kill -9 during a clone leaves whole sessions only, and the lock clears', async () => {
  const src = view(await client.call('create', { name: 'big-source' })).meta.id;
  await fillHome(src);
  const before = new Set((await list()).map((e) => view(e).meta.id));

  const { replied, leftBehind } = await killDuring('clone', src);
  expect(replied).toBe(false);
  expect(leftBehind.filter((n) => n.startsWith('.staging-'))).toHaveLength(1);
  await restartAgent();

  await until('crash leftovers swept', leftovers, (l) => l.length === 0, 10_000);
  const entries = await list();
  const fresh = entries.filter((e) => !before.has(view(e).meta.id));
  expect(fresh.length).toBeLessThanOrEqual(1);
  for (const e of entries) {
    const v = view(e);
    expect(existsSync(path.join(agent.root, v.meta.id, 'session.json'))).toBe(true);
  }
  for (const e of fresh) {
    expect(await homeIsWhole(view(e).meta.id)).toBe(true);
    expect(view(e).lock).toBeNull();
  }
  expect(await homeIsWhole(src)).toBe(true);

  const source = await get(src);
  if (source.lock) {
    // The dead agent's lock shows, with the op it was taken for; a stale one is cleared by the next op.
    expect(source.state).toBe('L');
    expect(source.lock.op).toBe('clone');
    await until(
      'an edit once the lock is stale',
      () =>
        client.call('edit', { session: src, name: 'big-source-2' }).then(
          () => 'ok',
          (err: { code?: string }) => err.code ?? 'error',
        ),
      (r) => r === 'ok' || r !== 'LOCKED',
      10_000,
    ).then((r) => expect(r).toBe('ok'));
  } else {
    await client.call('edit', { session: src, name: 'big-source-2' });
  }
  const after = await get(src);
  expect(after.lock).toBeNull();
  expect(after.meta.name).toBe('big-source-2');
  expect(after.state).toBe('-');
  // A new clone works.
  const again = view(await client.call('clone', { session: src }));
  expect(await homeIsWhole(again.meta.id)).toBe(true);
  for (const e of await list()) await client.call('delete', { session: view(e).meta.id });
}, 60_000);

test('kill -9 during the delete of a running session leaves it fully there or fully gone', async () => {
  const id = await createRunning('big-doomed');
  await fillHome(id);

  await killDuring('delete', id);
  await restartAgent();

  await until('crash leftovers swept', leftovers, (l) => l.length === 0, 10_000);
  const entry = (await list()).find((e) => view(e).meta.id === id);
  if (entry) {
    const v = view(entry);
    console.log(`after kill -9 the session is still there: state ${v.state}, lock ${JSON.stringify(v.lock)}`);
    expect(existsSync(path.join(agent.root, id, 'session.json'))).toBe(true);
    expect(await homeIsWhole(id)).toBe(true);
    if (v.lock) {
      expect(v.lock.op).toBe('delete');
      expect(view(await client.call('override', { session: id, reason: 'test: holder was killed' }, 'admin')).lock).toBeNull();
    }
    await client.call('delete', { session: id });
  } else {
    console.log('after kill -9 the session is gone');
  }
  // Gone now either way: no folder, and no container once the orphan grace (2 s) has passed.
  expect(existsSync(path.join(agent.root, id))).toBe(false);
  await expect(client.call('get', { session: id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  await until('no container of the deleted session', () => testContainers(runLabel), (cs) => !cs.some((c) => c.session === id), 15_000);
}, 60_000);

test('a container whose session folder is gone is removed; a live session\'s is adopted', async () => {
  const kept = await createRunning('kept');
  const lost = await createRunning('lost');
  const before = await testContainers(runLabel);
  const keptContainer = before.find((c) => c.session === kept);
  expect(keptContainer?.state).toBe('running');
  expect(before.find((c) => c.session === lost)?.state).toBe('running');

  await agent.stop();
  await fs.rm(path.join(agent.root, lost), { recursive: true, force: true });
  await restartAgent();

  const after = await until('orphan container removed', () => testContainers(runLabel), (cs) => !cs.some((c) => c.session === lost), 15_000);
  expect(after.filter((c) => c.session === kept)).toEqual([keptContainer]);
  const v = await get(kept);
  expect(v.state).toBe('R');
  expect(v.container?.id.startsWith(keptContainer?.id ?? '-')).toBe(true);
  expect((await list()).map((e) => view(e).meta.id)).toEqual([kept]);
  // Adopted, not merely left alone: it still runs a few reconciler rounds later.
  await sleep(3000);
  expect((await testContainers(runLabel)).filter((c) => c.session === kept)).toEqual([keptContainer]);
  await client.call('delete', { session: kept });
}, 60_000);

test('kill -9 during the clone of a running source: the source is usable again once the lock is stale', async () => {
  const src = await createRunning('big-running');
  await fillHome(src);
  const { replied } = await killDuring('clone', src);
  expect(replied).toBe(false);
  await restartAgent();
  await until('crash leftovers swept', leftovers, (l) => l.length === 0, 10_000);
  // The dead agent's lock is stale after lockStaleSeconds (3 s): the source must not stay paused.
  const answer = await until(
    'attach to the source works again',
    async () => {
      const a = await client.attach({ session: src, operator: 'alice' });
      const r = await a.ready;
      a.close();
      return r.ok ? 'ok' : `${r.error.code}: ${r.error.message}`;
    },
    (r) => r === 'ok',
    15_000,
  );
  expect(answer).toBe('ok');
  expect((await testContainers(runLabel)).find((c) => c.session === src)?.state).toBe('running');
}, 60_000);
