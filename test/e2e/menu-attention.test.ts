/**
 * The menu puts attention first, as an operator sees it: the real OpenSSH client in a terminal
 * (tmux), a real shell, agent and sessions. A session's program reports through its status folder
 * (what berth-hook does inside the container, done here from the host); the menu moves its row to
 * the top, counts it in the title, rings the terminal's bell, and Tab selects it; X dismisses a
 * `done` until it changes. Which row is selected is read back through X's answer, which names it.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Cluster, startCluster } from '../helpers/cluster';
import { sessionCli } from '../helpers/session-cli';
import { Tmux } from '../helpers/tmux';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `e2e-attention-${randomUUID().slice(0, 8)}`;
const socket = `berth-${runLabel}`;
const tmux = new Tmux(socket);
let cluster: Cluster;
const { json, startAndWait } = sessionCli(() => cluster);
const ids: Record<string, string> = {};

/** The session names in the table, top to bottom. */
const rowNames = (screen: string): string[] =>
  screen
    .split('\n')
    .map((l) => / (first|second|third) +agent-1 /.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
const row = (screen: string, name: string): string => screen.split('\n').find((l) => l.includes(` ${name} `)) ?? '';

/** Whether tmux saw a bell (BEL) in the operator's terminal since it started. */
const bellSeen = (): boolean => execFileSync('tmux', ['-L', socket, 'display-message', '-p', '-t', 'alice', '#{window_bell_flag}'], { encoding: 'utf8' }).trim() === '1';

/** Writes a hook report into the session's status folder, as berth-hook does: a temp name, then a rename. */
async function report(name: string, event: Record<string, unknown>): Promise<void> {
  const dir = path.join(cluster.agents[0]!.root, ids[name]!, 'status');
  await fs.writeFile(path.join(dir, '.event.tmp'), JSON.stringify({ session_id: 'x', cwd: '/home/claude', ...event }));
  await fs.rename(path.join(dir, '.event.tmp'), path.join(dir, 'event.json'));
}

/** Presses X and returns what the status line says about it (it names the selected session). */
async function selectedSays(expected: string): Promise<void> {
  tmux.type('alice', 'x');
  await tmux.waitFor('alice', (s) => s.includes(expected), `"${expected}"`);
}

beforeAll(async () => {
  // A command that prints nothing: every activity in this file is one the test reports.
  cluster = await startCluster({ runLabel, agents: 1, agentConfig: { command: 'sleep infinity' } });
  await cluster.agentsOnline();
  for (const name of ['first', 'second', 'third']) ids[name] = (await json<SessionJson>(`create --name ${name}`)).id;
  // A session's status folder is made at its start.
  await startAndWait(ids.third!);
  tmux.start('alice', ['ssh', ...cluster.sshArgs('alice', ['-t'])], 140, 30);
  await tmux.waitFor('alice', (s) => s.includes('alice (admin)') && rowNames(s).length === 3 && / R /.test(row(s, 'third')), 'the menu');
}, 90_000);

afterAll(async () => {
  tmux.kill();
  await cluster?.dispose();
});

test('a session asking permission goes to the top, counts in the title, rings, and Tab selects it', async () => {
  let s = tmux.screen('alice');
  expect(rowNames(s)).toEqual(['first', 'second', 'third']);
  expect(s).toContain('sort: attention');
  expect(s).not.toContain('need');
  expect(bellSeen()).toBe(false);
  await selectedSays('first has no activity to dismiss');

  await report('third', { hook_event_name: 'Notification', notification_type: 'permission_prompt', message: 'Claude needs your permission to use Bash' });
  s = await tmux.waitFor('alice', (x) => x.includes('1 needs you'), 'the count in the title');
  expect(rowNames(s)).toEqual(['third', 'first', 'second']);
  expect(row(s, 'third')).toContain(' permission ');
  expect(bellSeen()).toBe(true);
  // The selection stayed on its session, though its row moved down.
  await selectedSays('first has no activity to dismiss');

  tmux.keys('alice', 'Tab');
  await selectedSays('third is permission: only done or waiting can be dismissed');
}, 60_000);

test('X dismisses a done until it changes: the row sorts as if it had none', async () => {
  await report('third', { hook_event_name: 'Stop', stop_hook_active: false });
  let s = await tmux.waitFor('alice', (x) => row(x, 'third').includes(' done ') && !x.includes('need'), 'third done');
  expect(rowNames(s)).toEqual(['third', 'first', 'second']);
  await selectedSays('dismissed third until its activity changes');
  s = await tmux.waitFor('alice', (x) => rowNames(x).join(',') === 'first,second,third', 'third back in creation order');
  expect(row(s, 'third')).toContain(' done ');

  tmux.keys('alice', 'Tab');
  await tmux.waitFor('alice', (x) => x.includes('no session needs you'), 'nothing to jump to');

  // Waiting for input again: a change, so the dismissal ends and it counts again.
  await report('third', { hook_event_name: 'Notification', notification_type: 'idle_prompt', message: 'Claude is waiting for your input' });
  s = await tmux.waitFor('alice', (x) => x.includes('1 needs you'), 'third waiting');
  expect(rowNames(s)).toEqual(['third', 'first', 'second']);
}, 60_000);

test('> cycles the sort and F the agent filter, both named in the title', async () => {
  tmux.type('alice', '>');
  let s = await tmux.waitFor('alice', (x) => x.includes('sort: name'), 'sort by name');
  expect(rowNames(s)).toEqual(['first', 'second', 'third']);
  tmux.type('alice', '>>>');
  s = await tmux.waitFor('alice', (x) => x.includes('sort: attention'), 'back to attention');
  expect(rowNames(s)).toEqual(['third', 'first', 'second']);
  tmux.type('alice', 'f');
  s = await tmux.waitFor('alice', (x) => x.includes('agent: agent-1'), 'agent-1 only');
  expect(rowNames(s)).toEqual(['third', 'first', 'second']);
  tmux.type('alice', 'f');
  await tmux.waitFor('alice', (x) => !x.includes('agent: '), 'all agents again');
}, 60_000);
