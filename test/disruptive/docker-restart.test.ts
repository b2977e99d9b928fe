/**
 * The Docker engine goes away under a running agent and comes back. Disruptive: it stops the
 * machine's dockerd, so it runs alone, after everything else (npm run test:disruptive).
 *
 * While Docker is down, ops that need it answer RUNTIME_UNAVAILABLE quickly (never INTERNAL,
 * never a hang), `create` still works and the agent stays up; once Docker is back the agent sees
 * it again on its own: listing, restarting, and the event stream (its Docker event watch
 * reconnected).
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AgentEvent, RpcReply, SessionEntry } from '../../common/protocol';
import { AgentClient, Attach, EventLog, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { docker, dockerAnswers, removeTestContainers, startDockerd, stopDockerd, testContainers } from '../helpers/docker';

const runLabel = `dockerd-${randomUUID().slice(0, 8)}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let agent: AgentProcess | undefined;
let client: AgentClient | undefined;
let events: EventLog | undefined;

/** Rejects if `p` takes longer than `ms`: an answer must come, whatever it is. */
async function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

function errorCode(r: RpcReply): string {
  return r.ok ? 'ok' : r.error.code;
}

/** Waits for a `session` event of `id` in `state` (from index `from`); the error lists what came. */
async function waitForState(log: EventLog, id: string, state: string, from: number, what: string): Promise<void> {
  await log.waitFor(sessionEvent(id, state), 10_000, from).catch(() => {
    const seen = log.events
      .slice(from)
      .map((e) => (e.type === 'session' && e.session.kind === 'session' ? `${e.session.meta.name}:${e.session.state}` : e.type));
    throw new Error(`${what}: no session event with state ${state} in 10 s; events since: ${seen.join(' ') || 'none'}`);
  });
}

const sessionEvent = (id: string, state: string) => (e: AgentEvent) =>
  e.type === 'session' && e.session.kind === 'session' && e.session.meta.id === id && e.session.state === state;

afterAll(async () => {
  try {
    // Whatever happened above, leave the engine answering.
    if (!(await dockerAnswers())) await startDockerd();
  } finally {
    events?.close();
    client?.close();
    await agent?.stop();
    await removeTestContainers(runLabel).catch(() => undefined);
    if (agent) await fs.rm(agent.dir, { recursive: true, force: true });
  }
}, 90_000);

test('the agent rides out a Docker engine restart', async () => {
  agent = await startAgentProcess({ runLabel });
  client = await agent.connect();
  const c = client;
  const old = view(await c.call('create', { name: 'before-outage' })).meta.id;
  expect(view(await c.call('restart', { session: old })).state).toBe('R');
  events = await c.events();
  await events.waitFor((e) => e.type === 'synced');

  try {
    await stopDockerd();
    expect(await dockerAnswers()).toBe(false);

    // Ops that need Docker: a clear RUNTIME_UNAVAILABLE, each within 10 s.
    expect(errorCode(await within('list', 10_000, c.request('list', {})))).toBe('RUNTIME_UNAVAILABLE');
    expect(errorCode(await within('restart', 10_000, c.request('restart', { session: old })))).toBe('RUNTIME_UNAVAILABLE');
    const a: Attach = await within('attach', 10_000, c.attach({ session: old, operator: 'alice' }));
    const reply = await a.ready;
    expect(reply.ok ? 'ok' : reply.error.code).toBe('RUNTIME_UNAVAILABLE');

    // Creating needs no Docker.
    const made = view(await within('create', 10_000, c.call('create', { name: 'during-outage' })));
    expect(made.state).toBe('-');
    expect(agent.proc.exitCode).toBeNull();
    expect(agent.proc.signalCode).toBeNull();
    expect(made.lock).toBeNull();
    expect(existsSync(path.join(agent.root, made.meta.id, 'session.json'))).toBe(true);
    // The failed restart released its lock.
    expect(existsSync(path.join(agent.root, old, 'session.lock'))).toBe(false);
  } finally {
    await startDockerd();
  }

  // Back within 15 s, on its own.
  const end = Date.now() + 15_000;
  let listed: RpcReply = await within('list', 10_000, c.request('list', {}));
  while (!listed.ok && Date.now() < end) {
    await sleep(250);
    listed = await within('list', 10_000, c.request('list', {}));
  }
  expect(errorCode(listed)).toBe('ok');
  const sessions = (listed.ok ? (listed.result as { sessions: SessionEntry[] }).sessions : []).map(view);
  expect(sessions.map((s) => s.meta.name).sort()).toEqual(['before-outage', 'during-outage']);
  // Stopping dockerd stopped the container.
  expect(sessions.find((s) => s.meta.id === old)?.state).toBe('-');

  const from = events.events.length;
  expect(view(await within('restart', 20_000, c.call('restart', { session: old }))).state).toBe('R');
  await waitForState(events, old, 'R', from, 'after restart');

  // Only Docker's event stream tells the agent about a container stopped behind its back:
  // seeing it proves the watch reconnected after the restart.
  const [container] = (await testContainers(runLabel)).filter((x) => x.session === old);
  expect(container?.state).toBe('running');
  const fromKill = events.events.length;
  await docker('kill', container?.id ?? 'none');
  await waitForState(events, old, '-', fromKill, 'after docker kill');
  expect(await dockerAnswers()).toBe(true);
}, 180_000);
