/**
 * A partition between the shell and one agent, on hosts of their own: the shell and each agent in
 * a network namespace of its own (test/helpers/netns.ts), the operators' OpenSSH clients in
 * terminals (tmux) on this side. Every packet between the shell and agent-1 is dropped for 10 s
 * (silence, as a real partition gives: no reset), then let through again.
 *
 * While it lasts (within 5 s of the cut): the menu shows agent-1's sessions as `?` and still
 * answers keys, `list` answers at once, ops on agent-1 fail AGENT_OFFLINE, ops on agent-2 carry
 * on, and the operator attached to a session on agent-1 is told the attach ended. Within 5 s of
 * the heal: the view is exact again (every session once, none lost, the running one running) and
 * an attach to the same session shows the screen it had.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { TestNet, startNet } from '../helpers/netns';
import { sessionCli } from '../helpers/session-cli';
import { Tmux } from '../helpers/tmux';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `fpart-${randomUUID().slice(0, 8)}`;
const tmux = new Tmux(`berth-${runLabel}`);
let net: TestNet;
let cluster: Cluster;
const { cli, json, list, startAndWait } = sessionCli(() => cluster);
const PROMPT = /claude@[a-z0-9-]+:~\$/;
const PARTITION_MS = 10_000;
/** What the issue asks of both the cut and the heal. */
const WITHIN_MS = 5_000;

const running = (l: SessionJson[], id: string): boolean => ['running', 'connected'].includes(l.find((s) => s.id === id)?.state ?? '');
const row = (screen: string, name: string): string => screen.split('\n').find((l) => l.includes(` ${name} `)) ?? '';

beforeAll(async () => {
  net = await startNet(['shell', 'host-1', 'host-2']);
  const on = (name: string) => ({ wrap: net.host(name).wrap, address: net.host(name).address });
  cluster = await startCluster({ runLabel, agents: 2, shellHost: on('shell'), agentHosts: [on('host-1'), on('host-2')] });
  await cluster.agentsOnline();
}, 90_000);

afterAll(async () => {
  tmux.kill();
  await cluster?.dispose();
  await net?.dispose();
});

test('cut for 10 s, then healed: ? at once, AGENT_OFFLINE there, the rest carries on; exact again after', async () => {
  const web = await json<SessionJson>('create --name web --agent agent-1');
  const api = await json<SessionJson>('create --name api --agent agent-2');
  await startAndWait(web.id);
  await startAndWait(api.id);

  // alice watches the menu; bob works in web, on agent-1.
  tmux.start('alice', ['ssh', ...cluster.sshArgs('alice', ['-t'])], 120, 30);
  await tmux.waitFor('alice', (s) => s.includes('agents 2/2 online') && row(s, 'web') !== '', 'the menu with both agents');
  tmux.start('bob', ['ssh', ...cluster.sshArgs('bob', ['-t']), 'attach', 'web'], 100, 30);
  await tmux.waitFor('bob', (s) => PROMPT.test(s), 'bob in web');
  tmux.type('bob', 'echo before-$((6*7))');
  tmux.keys('bob', 'Enter');
  await tmux.waitFor('bob', (s) => s.includes('before-42'), 'bob’s command ran');
  const before = (await list()).map((s) => s.id).sort();

  const cut = performance.now();
  await net.partition('shell', 'host-1');

  // Nothing waits on the silent agent: list answers from the view, at once, while the link still believes.
  const t = performance.now();
  expect((await cli('list')).code).toBe(0);
  expect(performance.now() - t).toBeLessThan(WITHIN_MS);

  const menu = await tmux.waitFor('alice', (s) => s.includes('agents 1/2 online') && / \? /.test(row(s, 'web')), 'web shown ? in the menu', WITHIN_MS + 1_000);
  const seenMs = performance.now() - cut;
  console.log(`partition: the menu showed ? ${Math.round(seenMs)} ms after the cut`);
  expect(seenMs).toBeLessThan(WITHIN_MS);
  expect(row(menu, 'api')).not.toMatch(/ \? /);
  // The menu still answers keys: its help page opens and closes.
  tmux.keys('alice', '?');
  await tmux.waitFor('alice', (s) => s.includes('any key closes'), 'the help page', WITHIN_MS);
  tmux.keys('alice', 'Escape');
  await tmux.waitFor('alice', (s) => !s.includes('any key closes') && s.includes('agents 1/2 online'), 'the menu again', WITHIN_MS);

  // bob was told; he is not left staring at a frozen screen.
  await tmux.waitFor('bob', (s) => s.includes('berth: agent agent-1 went offline') && s.includes('attach again once the agent is back'), 'bob told the attach ended', WITHIN_MS);

  // Ops on agent-1 are refused as offline; ops on agent-2 carry on.
  const refused = await cli('restart web', 'bob');
  expect({ code: refused.code, err: refused.err }).toEqual({ code: 1, err: expect.stringContaining('error: AGENT_OFFLINE: agent agent-1') });
  expect((await cli('create --name web2 --agent agent-1', 'bob')).err).toContain('AGENT_OFFLINE');
  const during = JSON.parse((await cli('create --name during --agent agent-2 --json', 'bob')).out) as SessionJson;
  expect((await cli('kill api', 'bob')).code).toBe(0);
  expect((await cli('restart api', 'bob')).code).toBe(0);

  const wait = PARTITION_MS - (performance.now() - cut);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const healed = performance.now();
  await net.heal('shell', 'host-1');

  // Exact again: both agents, every session once, none lost, web still running on agent-1.
  const after = await until(
    'the view exact again',
    () => list(),
    (l) => running(l, web.id) && running(l, api.id),
    WITHIN_MS + 5_000,
    100,
  );
  const exactMs = performance.now() - healed;
  console.log(`partition: the view was exact ${Math.round(exactMs)} ms after the heal`);
  expect(exactMs).toBeLessThan(WITHIN_MS);
  expect(after.map((s) => s.id).sort()).toEqual([...before, during.id].sort());
  expect(new Set(after.map((s) => s.id)).size).toBe(after.length);
  expect(after.find((s) => s.id === web.id)?.agent).toBe('agent-1');
  await tmux.waitFor('alice', (s) => s.includes('agents 2/2 online') && !/ \? /.test(row(s, 'web')), 'the menu whole again', WITHIN_MS);

  // bob attaches again: the same screen, his command still on it; the session kept running.
  tmux.start('bob2', ['ssh', ...cluster.sshArgs('bob', ['-t']), 'attach', 'web'], 100, 30);
  await tmux.waitFor('bob2', (s) => s.includes('before-42') && PROMPT.test(s), 'the same screen after the heal');
  tmux.type('bob2', 'echo after-$((6*7))');
  tmux.keys('bob2', 'Enter');
  await tmux.waitFor('bob2', (s) => s.includes('after-42'), 'typing works again');
  // Ops on agent-1 work again.
  expect((await cli('kill web --yes', 'bob')).code).toBe(0);
  await tmux.waitFor('bob2', () => tmux.dead('bob2'), 'the attach ended with the session');
});
