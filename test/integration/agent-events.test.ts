/**
 * berth-events from a real agent: the opening snapshot (hello, one `session` each, `synced`),
 * then every change, including containers stopped or killed behind berth's back, in time.
 */
import { randomUUID } from 'node:crypto';
import { AgentClient, EventLog, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { docker } from '../helpers/docker';
import { AgentEvent, BERTH_VERSION, PROTOCOL_VERSION, SessionView, entryId } from '../../common/protocol';

const runLabel = `events-${randomUUID().slice(0, 8)}`;
let agent: AgentProcess;
let client: AgentClient;
let other: AgentClient;
let log: EventLog;

const sessionEvent =
  (id: string, state?: string) =>
  (e: AgentEvent): boolean =>
    e.type === 'session' && entryId(e.session) === id && (state === undefined || e.session.state === state);

const removedEvent =
  (id: string) =>
  (e: AgentEvent): boolean =>
    e.type === 'session-removed' && e.id === id;

async function subscribe(c: AgentClient): Promise<EventLog> {
  const l = await c.events();
  await l.waitFor((e) => e.type === 'synced', 10_000);
  return l;
}

/**
 * Waits for an event (from index `from`) at most `withinMs` after `since` (a Date.now() value)
 * and returns how long after `since` it had arrived (0 if it was already there).
 */
async function arrivesWithin(l: EventLog, pred: (e: AgentEvent) => boolean, from: number, since: number, withinMs: number): Promise<number> {
  const left = Math.max(1, withinMs - (Date.now() - since));
  await l.waitFor(pred, left, from);
  return Date.now() - since;
}

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel });
  client = await agent.connect();
  other = await agent.connect();
});

afterAll(async () => {
  await agent?.dispose();
});

describe('berth-events', () => {
  let running: SessionView;
  let stopped: SessionView;

  test('opens with hello, one session event per existing session, then synced with the count', async () => {
    stopped = view(await client.call('create', { name: 'pre-stopped' }));
    running = view(await client.call('create', { name: 'pre-running' }));
    await client.call('restart', { session: running.meta.id });

    log = await subscribe(client);
    const synced = log.events.findIndex((e) => e.type === 'synced');
    const [hello, ...rest] = log.events.slice(0, synced + 1);
    expect(hello).toMatchObject({ type: 'hello', agent: agent.id, protocol: PROTOCOL_VERSION, version: BERTH_VERSION, publishAddress: '127.0.0.1' });
    expect(hello?.type === 'hello' && hello.capacity.cpus).toBeGreaterThan(0);
    const snapshot = rest.slice(0, -1);
    expect(snapshot.every((e) => e.type === 'session')).toBe(true);
    const byId = new Map(snapshot.map((e) => (e.type === 'session' ? [entryId(e.session), e.session] : ['', null])));
    expect([...byId.keys()].sort()).toEqual([stopped.meta.id, running.meta.id].sort());
    expect(byId.get(stopped.meta.id)).toMatchObject({ state: '-', meta: stopped.meta });
    expect(byId.get(running.meta.id)).toMatchObject({ state: 'R', container: { running: true } });
    expect(rest[rest.length - 1]).toEqual({ type: 'synced', count: 2 });
  });

  test('create sends a session event', async () => {
    const from = log.events.length;
    const s = view(await client.call('create', { name: 'fresh', dns: 'fresh-one' }));
    const e = await log.waitFor(sessionEvent(s.meta.id), 2000, from);
    expect(e.type === 'session' && e.session).toMatchObject({ kind: 'session', state: '-', meta: s.meta });
  });

  test('restart: an event with state R arrives within 1000 ms of the reply', async () => {
    const from = log.events.length;
    await client.call('restart', { session: stopped.meta.id });
    const replied = Date.now();
    const ms = await arrivesWithin(log, sessionEvent(stopped.meta.id, 'R'), from, replied, 1000);
    expect(ms).toBeLessThanOrEqual(1000);
    console.log(`restart → state R event ${ms} ms after the reply`);
  });

  test('a container stopped outside berth (docker stop) shows state - within 1 s', async () => {
    const from = log.events.length;
    await docker('stop', '-t', '5', `berth-${running.meta.id}`);
    const stoppedAt = Date.now();
    const ms = await arrivesWithin(log, sessionEvent(running.meta.id, '-'), from, stoppedAt, 1000);
    console.log(`docker stop → state - event ${ms} ms after docker stop returned`);
    const e = log.events.slice(from).find(sessionEvent(running.meta.id, '-'));
    expect(e?.type === 'session' && e.session.container?.running).toBe(false);
    expect(view(await client.call('get', { session: running.meta.id })).state).toBe('-');
  });

  test('a container killed outside berth (docker kill): list shows state - and pushes it to subscribers', async () => {
    const fromStart = log.events.length;
    await client.call('restart', { session: running.meta.id });
    await arrivesWithin(log, sessionEvent(running.meta.id, 'R'), fromStart, Date.now(), 1000);
    const from = log.events.length;
    await docker('kill', `berth-${running.meta.id}`);
    const listed = (await client.call('list', {})).sessions.find((e) => entryId(e) === running.meta.id);
    expect(listed).toMatchObject({ state: '-', container: { running: false } });
    await log.waitFor(sessionEvent(running.meta.id, '-'), 1000, from);
  });

  test('delete sends session-removed', async () => {
    const from = log.events.length;
    await client.call('delete', { session: running.meta.id });
    await log.waitFor(removedEvent(running.meta.id), 2000, from);
    // Nothing about the deleted session follows its removal.
    await new Promise((r) => setTimeout(r, 300));
    const after = log.events.slice(from);
    const removedAt = after.findIndex(removedEvent(running.meta.id));
    expect(after.slice(removedAt + 1).filter(sessionEvent(running.meta.id))).toEqual([]);
  });

  test('two subscribers on separate connections both get every change', async () => {
    const second = await subscribe(other);
    const count = second.events.find((e) => e.type === 'synced');
    const { sessions } = await client.call('list', {});
    expect(count).toEqual({ type: 'synced', count: sessions.length });

    const from1 = log.events.length;
    const from2 = second.events.length;
    const s = view(await other.call('create', { name: 'shared' }));
    await Promise.all([log.waitFor(sessionEvent(s.meta.id), 2000, from1), second.waitFor(sessionEvent(s.meta.id), 2000, from2)]);
    await client.call('edit', { session: s.meta.id, name: 'shared-renamed' });
    const renamed = (e: AgentEvent): boolean => sessionEvent(s.meta.id)(e) && e.type === 'session' && view(e.session).meta.name === 'shared-renamed';
    await Promise.all([log.waitFor(renamed, 2000, from1), second.waitFor(renamed, 2000, from2)]);
    await client.call('delete', { session: s.meta.id });
    await Promise.all([log.waitFor(removedEvent(s.meta.id), 2000, from1), second.waitFor(removedEvent(s.meta.id), 2000, from2)]);

    // Closing one subscriber leaves the other fed.
    second.close();
    const from = log.events.length;
    const t = view(await client.call('create', { name: 'after-close' }));
    await log.waitFor(sessionEvent(t.meta.id), 2000, from);
  });
});
