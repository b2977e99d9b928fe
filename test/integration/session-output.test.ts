/**
 * Activity for any command, from its pane's output: the real berth-output inside a real session
 * container, fed by tmux's pipe-pane. A shell that printed its prompt shows `working`, then `idle`
 * once quiet for the agent's idleAfterSeconds; typing into it makes it work again; a command that
 * keeps printing stays working. A session whose program reports through Claude Code's hooks keeps
 * what the hooks say, whatever its pane prints.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Cluster, startCluster } from '../helpers/cluster';
import { removeTestContainers } from '../helpers/docker';
import { sessionCli } from '../helpers/session-cli';
import { sleep, until } from '../helpers/wait';
import type { Activity } from '../../common/protocol';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `output-${randomUUID().slice(0, 8)}`;
const tag = runLabel.slice(-6);
const IDLE_AFTER_S = 2;
let cluster: Cluster;
const { json, find, startAndWait } = sessionCli(() => cluster);

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 1, agentConfig: { idleAfterSeconds: IDLE_AFTER_S } });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
  await removeTestContainers(runLabel);
});

const activity = async (id: string): Promise<Activity | null> => (await find(id)).activity ?? null;

/** Runs `argv` in the session's container as its user; resolves with the exit code. */
function inContainer(id: string, argv: string[], input?: string): Promise<number> {
  return new Promise((resolve) => {
    const p = spawn('docker', ['exec', ...(input === undefined ? [] : ['-i']), `berth-${id}`, ...argv], { stdio: ['pipe', 'ignore', 'ignore'] });
    p.stdin?.end(input ?? '');
    p.on('close', (code) => resolve(code ?? -1));
  });
}

async function running(name: string, command: string): Promise<SessionJson> {
  const s = await json<SessionJson>(`create --name ${name}-${tag} --command "${command}"`);
  await startAndWait(s.id);
  return s;
}

test('a shell: working while its pane prints, idle once quiet, working again when typed into', async () => {
  const s = await running('shell', 'bash');
  // Its prompt was output.
  const first = await until('working', () => activity(s.id), (a) => a?.state === 'working' || a?.state === 'idle', 15_000);
  if (first?.state === 'working') expect(first.detail).toBe('output');
  const idle = await until('idle', () => activity(s.id), (a) => a?.state === 'idle', 15_000);
  expect(idle?.detail).toBe('no output');

  // Typed into (what an attached operator does): its echo and output are output.
  expect(await inContainer(s.id, ['tmux', 'send-keys', '-t', 'claude', 'echo typed-in', 'Enter'])).toBe(0);
  const again = await until('working again', () => activity(s.id), (a) => a?.state === 'working', 10_000, 50);
  expect(again?.detail).toBe('output');
  expect(Date.parse(again?.since ?? '')).toBeGreaterThan(Date.parse(idle?.since ?? ''));
  await until('idle again', () => activity(s.id), (a) => a?.state === 'idle', 15_000);
}, 90_000);

test('a command that keeps printing stays working past the idle threshold', async () => {
  const s = await running('ticker', "bash -c 'while :; do date; sleep 0.3; done'");
  await until('working', () => activity(s.id), (a) => a?.state === 'working', 15_000);
  const since = (await activity(s.id))?.since;
  // Three times the threshold: still the same working spell.
  for (let i = 0; i < 3; i++) {
    await sleep(IDLE_AFTER_S * 1000);
    expect(await activity(s.id)).toEqual(expect.objectContaining({ state: 'working', since }));
  }
}, 90_000);

test("once Claude Code's hooks report, output changes nothing: the hook's activity stays", async () => {
  const s = await running('hooked', "bash -c 'while :; do date; sleep 0.3; done'");
  await until('working from output', () => activity(s.id), (a) => a?.state === 'working', 15_000);
  const payload = JSON.stringify({ session_id: 'x', cwd: '/home/claude', hook_event_name: 'Notification', notification_type: 'permission_prompt', message: 'Claude needs your permission to use Bash' });
  expect(await inContainer(s.id, ['/usr/local/bin/berth-hook'], payload)).toBe(0);
  await until('permission', () => activity(s.id), (a) => a?.state === 'permission', 10_000, 50);
  // The pane goes on printing for twice the idle threshold: the hook's word stands.
  await sleep(IDLE_AFTER_S * 2000);
  expect(await activity(s.id)).toEqual(expect.objectContaining({ state: 'permission' }));
}, 90_000);
