/** Regressions: bugs found by the integration tests, each pinned by the test that showed it. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AgentClient, EventLog } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { docker } from '../helpers/docker';
import { AgentEvent, entryId } from '../../common/protocol';

const runLabel = `regress-${randomUUID().slice(0, 8)}`;
let agent: AgentProcess;
let client: AgentClient;
let log: EventLog;
const stateOf = (id: string, state: string) => (e: AgentEvent) => e.type === 'session' && entryId(e.session) === id && e.session.state === state;

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel }); // helper defaults: lockStaleSeconds 3
  client = await agent.connect();
  log = await client.events();
  await log.waitFor((e) => e.type === 'synced');
});
afterAll(async () => {
  await agent?.dispose();
});

test('docker kill → a session event with state - within 1 s', async () => {
  const s = await client.call('create', { name: 'killed' });
  const id = entryId(s);
  await client.call('restart', { session: id });
  await new Promise((r) => setTimeout(r, 1500));
  const from = log.events.length;
  await docker('kill', `berth-${id}`);
  await log.waitFor(stateOf(id, '-'), 1000, from);
});

test('the session command exits → a session event with state - (DESIGN: "the session shows stopped")', async () => {
  const s = await client.call('create', { name: 'exits' });
  const id = entryId(s);
  await client.call('restart', { session: id });
  await new Promise((r) => setTimeout(r, 1500));
  const from = log.events.length;
  await docker('exec', `berth-${id}`, 'tmux', 'send-keys', '-t', 'claude', 'exit', 'Enter');
  await log.waitFor(stateOf(id, '-'), 3000, from);
});

test('list shows a session.json corrupted while the agent runs as broken', async () => {
  const s = await client.call('create', { name: 'corrupt-me' });
  const id = entryId(s);
  await fs.writeFile(path.join(agent.root, id, 'session.json'), '{"id": oops not json');
  const { sessions } = await client.call('list', {});
  expect(sessions.find((e) => entryId(e) === id)).toMatchObject({ kind: 'broken' });
});

test('an op that holds the lock past one refresh leaves no lock behind', async () => {
  const s = await client.call('create', { name: 'big-home' });
  const id = entryId(s);
  const many = path.join(agent.root, id, 'home', 'many');
  await fs.mkdir(many);
  for (let i = 0; i < 40000; i++) await fs.writeFile(path.join(many, `f${i}`), 'x');
  await client.call('clone', { session: id }); // cp -a of 40k files: ~2 s, over the 1 s lock refresh
  const after = await client.call('get', { session: id });
  expect({ state: after.state, lock: after.lock }).toEqual({ state: '-', lock: null });
  await expect(client.call('edit', { session: id, name: 'renamed' })).resolves.toMatchObject({ kind: 'session' });
});

test('two agents that share an id by mistake never remove each other\'s containers', async () => {
  const twin = await startAgentProcess({ runLabel, id: agent.id });
  try {
    const twinClient = await twin.connect();
    const mine = await client.call('create', { name: 'mine' });
    const theirs = await twinClient.call('create', { name: 'theirs' });
    await client.call('restart', { session: entryId(mine) });
    await twinClient.call('restart', { session: entryId(theirs) });
    // Orphan grace is 2 s and the reconciler runs every second: give it several rounds.
    await new Promise((r) => setTimeout(r, 4500));
    for (const id of [entryId(mine), entryId(theirs)]) {
      expect(await docker('inspect', '-f', '{{.State.Running}}', `berth-${id}`)).toBe('true');
    }
    expect((await client.call('get', { session: entryId(mine) })).state).toBe('R');
    expect((await twinClient.call('get', { session: entryId(theirs) })).state).toBe('R');
  } finally {
    await twin.dispose();
  }
}, 30_000);
