/**
 * The Docker engine goes away under a running agent and comes back. The test owns the engine it
 * stops: a private dockerd (own socket, data and exec roots, no bridge, no iptables) that the
 * agent is pointed at, so the machine's engine is never touched. It still runs apart from the
 * main suite (npm run test:disruptive): a second engine starting costs the others CPU.
 *
 * While Docker is down, ops that need it answer RUNTIME_UNAVAILABLE quickly (never INTERNAL,
 * never a hang), `create` still works and the agent stays up; once Docker is back the agent sees
 * it again on its own: listing, restarting, and the event stream (its Docker event watch
 * reconnected).
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AgentEvent, RpcReply, SessionEntry, SessionView } from '../../common/protocol';
import { AgentClient, Attach, EventLog, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { dockerAnswers, testContainers } from '../helpers/docker';
import { PrivateEngine, startPrivateEngine } from '../helpers/private-engine';
import { until, within } from '../helpers/wait';

const runLabel = `dockerd-${randomUUID().slice(0, 8)}`;

let engine: PrivateEngine | undefined;
let agent: AgentProcess | undefined;
let client: AgentClient | undefined;
let events: EventLog | undefined;

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

/** Lists until the agent answers again (each try answered within 10 s, all of it within 15 s). */
async function listWhenBack(c: AgentClient): Promise<SessionView[]> {
  const listed = await until(
    'list once docker is back',
    () => within('list', 10_000, c.request('list', {})),
    (r) => r.ok,
    15_000,
    250,
  ).catch((err: Error) => {
    throw new Error(`the agent did not see docker back: ${err.message}`);
  });
  return (listed.ok ? (listed.result as { sessions: SessionEntry[] }).sessions : []).map(view);
}

const sessionEvent = (id: string, state: string) => (e: AgentEvent) =>
  e.type === 'session' && e.session.kind === 'session' && e.session.meta.id === id && e.session.state === state;

/** The machine engine's bridge: a private engine must never take it away. */
const MACHINE_BRIDGE = '/sys/class/net/docker0';
const machineBridgeBefore = existsSync(MACHINE_BRIDGE);

afterAll(async () => {
  events?.close();
  client?.close();
  await agent?.stop();
  if (agent) await fs.rm(agent.dir, { recursive: true, force: true });
  await engine?.remove();
}, 90_000);

test('the agent rides out a Docker engine restart', async () => {
  engine = await startPrivateEngine();
  const e = engine;
  agent = await startAgentProcess({ runLabel, config: { dockerSocket: e.socket } });
  client = await agent.connect();
  const c = client;
  const old = view(await c.call('create', { name: 'before-outage' })).meta.id;
  expect(view(await c.call('restart', { session: old })).state).toBe('R');
  events = await c.events();
  await events.waitFor((e) => e.type === 'synced');

  try {
    await e.stop();
    expect(await e.answers()).toBe(false);

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
    await e.start();
  }

  // Back within 15 s, on its own.
  const sessions = await listWhenBack(c);
  expect(sessions.map((s) => s.meta.name).sort()).toEqual(['before-outage', 'during-outage']);
  // Stopping dockerd stopped the container.
  expect(sessions.find((s) => s.meta.id === old)?.state).toBe('-');

  const from = events.events.length;
  expect(view(await within('restart', 20_000, c.call('restart', { session: old }))).state).toBe('R');
  await waitForState(events, old, 'R', from, 'after restart');

  // Only Docker's event stream tells the agent about a container stopped behind its back:
  // seeing it proves the watch reconnected after the restart.
  const [container] = (await testContainers(runLabel, e.socket)).filter((x) => x.session === old);
  expect(container?.state).toBe('running');
  const fromKill = events.events.length;
  await e.docker('kill', container?.id ?? 'none');
  await waitForState(events, old, '-', fromKill, 'after docker kill');
  // The machine's own engine never saw any of it.
  expect(await testContainers(runLabel)).toEqual([]);
}, 180_000);

test('the agent rides out a crash of the engine (SIGKILL of dockerd) and agrees with it afterwards', async () => {
  const e = engine as PrivateEngine;
  const c = client as AgentClient;
  const log = events as EventLog;
  const id = view(await c.call('create', { name: 'through-crash' })).meta.id;
  expect(view(await c.call('restart', { session: id })).state).toBe('R');

  await e.kill();
  expect(await e.answers()).toBe(false);
  expect(errorCode(await within('list', 10_000, c.request('list', {})))).toBe('RUNTIME_UNAVAILABLE');
  expect(agent?.proc.exitCode).toBeNull();

  const from = log.events.length;
  await e.start();
  const sessions = await listWhenBack(c);
  // Whatever the restarted engine did with the container, the agent says the same, and pushed it.
  const inDocker = (await testContainers(runLabel, e.socket)).find((x) => x.session === id);
  const expected = inDocker?.state === 'running' ? 'R' : '-';
  expect(sessions.find((s) => s.meta.id === id)?.state).toBe(expected);
  console.log(`after the engine crash, docker shows the container ${inDocker?.state ?? 'gone'}`);
  if (expected === '-') await waitForState(log, id, '-', from, 'after the engine crash');

  // And it works as before: a restart runs the session again and the event says so.
  const fromRestart = log.events.length;
  expect(view(await within('restart', 20_000, c.call('restart', { session: id }))).state).toBe('R');
  await waitForState(log, id, 'R', fromRestart, 'restart after the engine crash');
}, 180_000);

test('the machine\'s own engine was never touched', async () => {
  expect(existsSync(MACHINE_BRIDGE)).toBe(machineBridgeBefore);
  expect(await dockerAnswers()).toBe(true);
  await (engine as PrivateEngine).remove();
  expect(existsSync(engine?.dir ?? '/')).toBe(false);
  expect(existsSync(MACHINE_BRIDGE)).toBe(machineBridgeBefore);
});
