/**
 * The Docker engine restarted under a running cluster: a shell, two agents, an operator attached
 * and another in the menu. The engine is one of the test's own (test/helpers/private-engine.ts),
 * so the machine's engine is never touched; both agents use it, as two hosts' agents would each
 * use theirs.
 *
 * While it is down: the shell still lists every session, ops that need the engine are refused as
 * RUNTIME_UNAVAILABLE (never a hang or INTERNAL), creating still works, and the attached operator
 * is told the attach ended. Once it is back: every session is listed once and shows stopped (the
 * engine stopped their containers), a restart runs each again, and what their homes held, written
 * from inside the containers, is all there.
 */
import { randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { PrivateEngine, startPrivateEngine } from '../helpers/private-engine';
import { sessionCli } from '../helpers/session-cli';
import { Tmux } from '../helpers/tmux';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `fengine-${randomUUID().slice(0, 8)}`;
const tmux = new Tmux(`berth-${runLabel}`);
let engine: PrivateEngine;
let cluster: Cluster;
const { cli, json, list } = sessionCli(() => cluster);
const PROMPT = /claude@[a-z0-9-]+:~\$/;

/** Runs a shell line in a session's container, as its user, through the private engine. */
const inSession = (id: string, line: string): Promise<string> => engine.docker('exec', `berth-${id}`, 'sh', '-c', line);

const stateOf = (l: SessionJson[], id: string): string | undefined => l.find((s) => s.id === id)?.state;

beforeAll(async () => {
  engine = await startPrivateEngine();
  cluster = await startCluster({ runLabel, agents: 2, agentConfig: { dockerSocket: engine.socket } });
  await cluster.agentsOnline();
}, 180_000);

afterAll(async () => {
  tmux.kill();
  await cluster?.dispose();
  await engine?.remove();
}, 90_000);

test('the engine restarted: refused clearly meanwhile, then every session stopped, restartable, its home whole', async () => {
  const sessions = [
    await json<SessionJson>('create --name web --agent agent-1'),
    await json<SessionJson>('create --name api --agent agent-2'),
    await json<SessionJson>('create --name idle --agent agent-1'),
  ];
  const [web, api] = sessions;
  for (const s of [web!, api!]) {
    expect((await cli(`restart ${s.id}`)).code).toBe(0);
    await until('running', () => list(), (l) => stateOf(l, s.id) === 'running', 30_000, 200);
    // 4 MB of the session's own, and its checksum, written from inside.
    await inSession(s.id, 'head -c 4194304 /dev/urandom > ~/work.bin && sha256sum ~/work.bin > ~/work.sum');
  }
  const sums = await Promise.all([web!, api!].map((s) => inSession(s.id, 'cat ~/work.sum')));

  tmux.start('alice', ['ssh', ...cluster.sshArgs('alice', ['-t']), 'attach', 'web'], 100, 30);
  await tmux.waitFor('alice', (s) => PROMPT.test(s), 'alice in web');
  tmux.start('vic', ['ssh', ...cluster.sshArgs('vic', ['-t'])], 120, 30);
  await tmux.waitFor('vic', (s) => s.includes('agents 2/2 online') && s.includes(' api '), 'vic’s menu');

  await engine.stop();
  let during: SessionJson | undefined;
  try {
    // The shell answers from its view; ops that need the engine say why they cannot.
    const listed = await list();
    expect(sessions.every((s) => listed.some((x) => x.id === s.id))).toBe(true);
    const refused = await cli(`restart ${sessions[2]!.id}`, 'bob');
    expect({ code: refused.code, err: refused.err }).toEqual({ code: 1, err: expect.stringMatching(/^error: RUNTIME_UNAVAILABLE: /) });
    tmux.start('bob', ['ssh', ...cluster.sshArgs('bob', ['-t']), 'attach', 'api'], 100, 30);
    await tmux.waitFor('bob', () => tmux.dead('bob') && tmux.history('bob').includes('error: RUNTIME_UNAVAILABLE: '), 'bob’s attach refused, saying why');
    during = JSON.parse((await cli('create --name during --agent agent-2 --json', 'bob')).out) as SessionJson;
    expect(during.state).toBe('stopped');
    // alice's attach ended with the container; she is back at her own terminal, not frozen.
    await tmux.waitFor('alice', () => tmux.dead('alice'), 'alice’s attach ended');
  } finally {
    await engine.start();
  }

  // Back: every session once, all stopped (the engine stopped them), none lost.
  const all = [...sessions, during!];
  const back = await until('every session stopped, once', () => list(), (l) => all.every((s) => stateOf(l, s.id) === 'stopped'), 30_000, 250);
  expect(back.filter((s) => all.some((x) => x.id === s.id))).toHaveLength(all.length);
  await tmux.waitFor('vic', (s) => s.includes('agents 2/2 online') && / web .* - /.test(s), 'vic’s menu shows web stopped');

  // A restart runs each again; their homes are whole.
  for (const s of all) {
    const r = await cli(`restart ${s.id}`);
    expect({ name: s.name, code: r.code, err: r.err }).toEqual({ name: s.name, code: 0, err: '' });
  }
  await until('all running again', () => list(), (l) => all.every((s) => stateOf(l, s.id) === 'running'), 30_000, 250);
  for (const [i, s] of [web!, api!].entries()) {
    expect(await inSession(s.id, 'cd ~ && sha256sum -c work.sum')).toContain('work.bin: OK');
    expect(await inSession(s.id, 'cat ~/work.sum')).toBe(sums[i]);
  }
  tmux.start('alice2', ['ssh', ...cluster.sshArgs('alice', ['-t']), 'attach', 'web'], 100, 30);
  await tmux.waitFor('alice2', (s) => PROMPT.test(s), 'alice in web again');
}, 180_000);
