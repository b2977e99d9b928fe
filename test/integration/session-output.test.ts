/**
 * Activity for any command, from its pane's output: the real berth-output inside a real session
 * container, fed by tmux's pipe-pane. A shell that printed its prompt shows `working`, then `idle`
 * once quiet for the agent's idleAfterSeconds; typing into it makes it work again; a command that
 * keeps printing stays working. A session whose program reports through Claude Code's hooks keeps
 * what the hooks say, whatever its pane prints.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
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

/**
 * What each part says of the session when an activity is not reached: the agent's own entry
 * (against the shell's), the status folder as berth-output and berth-hook left it, the
 * container's processes (is berth-output there?) and the log lines that name the session.
 */
async function explain(id: string): Promise<string> {
  const agent = cluster.agents[0];
  const parts: string[] = [];
  const note = async (what: string, f: () => Promise<unknown>): Promise<void> => {
    const v = await f().catch((err: unknown) => `failed: ${String(err)}`);
    parts.push(`${what}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  };
  await note("the agent's entry", async () => {
    const c = await agent!.connect();
    try {
      const all = (await c.call('list', {})).sessions as Array<{ meta?: { id: string }; activity?: unknown; state?: string }>;
      const e = all.find((x) => x.meta?.id === id);
      return { state: e?.state, activity: e?.activity ?? null };
    } finally {
      c.close();
    }
  });
  await note('status folder', async () => {
    const dir = path.join(agent!.root, id, 'status');
    const names = await fs.readdir(dir);
    return Promise.all(names.map(async (n) => `${n} ${(await fs.lstat(path.join(dir, n))).mtime.toISOString()}`));
  });
  await note('container processes', async () => (await promisify(execFile)('docker', ['exec', `berth-${id}`, 'ps', '-eo', 'pid,args'])).stdout.trim());
  parts.push(`agent log: ${agent!.logs.filter((l) => l.includes(id) || l.includes('status')).slice(-15).join('\n')}`);
  parts.push(`shell log: ${cluster.shell.logs.filter((l) => l.includes(id)).slice(-10).join('\n')}`);
  // Whether the shell's link to the agent went and came back meanwhile (its view then waits).
  parts.push(`agent link: ${cluster.shell.logs.filter((l) => /"message":"agent (online|offline|connecting)"/.test(l)).slice(-10).join('\n')}`);
  return parts.join('\n');
}

/** until() on the session's activity, with explain() in the error when it is not reached. */
async function activityUntil(id: string, what: string, ok: (a: Activity | null) => boolean, timeoutMs: number, everyMs?: number): Promise<Activity | null> {
  try {
    return await until(what, () => activity(id), ok, timeoutMs, everyMs);
  } catch (err) {
    throw new Error(`${String(err)}\n${await explain(id)}`);
  }
}

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
  const first = await activityUntil(s.id, 'working', (a) => a?.state === 'working' || a?.state === 'idle', 15_000);
  if (first?.state === 'working') expect(first.detail).toBe('output');
  const idle = await activityUntil(s.id, 'idle', (a) => a?.state === 'idle', 15_000);
  expect(idle?.detail).toBe('no output');

  // Typed into (what an attached operator does): its echo and output are output.
  expect(await inContainer(s.id, ['tmux', 'send-keys', '-t', 'claude', 'echo typed-in', 'Enter'])).toBe(0);
  const again = await activityUntil(s.id, 'working again', (a) => a?.state === 'working', 10_000, 50);
  expect(again?.detail).toBe('output');
  expect(Date.parse(again?.since ?? '')).toBeGreaterThan(Date.parse(idle?.since ?? ''));
  await activityUntil(s.id, 'idle again', (a) => a?.state === 'idle', 15_000);
}, 90_000);

test('a command that keeps printing stays working past the idle threshold', async () => {
  const s = await running('ticker', "bash -c 'while :; do date; sleep 0.3; done'");
  await activityUntil(s.id, 'working', (a) => a?.state === 'working', 15_000);
  const since = (await activity(s.id))?.since;
  // Three times the threshold: still the same working spell.
  for (let i = 0; i < 3; i++) {
    await sleep(IDLE_AFTER_S * 1000);
    expect(await activity(s.id)).toEqual(expect.objectContaining({ state: 'working', since }));
  }
}, 90_000);

test("once Claude Code's hooks report, output changes nothing: the hook's activity stays", async () => {
  const s = await running('hooked', "bash -c 'while :; do date; sleep 0.3; done'");
  await activityUntil(s.id, 'working from output', (a) => a?.state === 'working', 15_000);
  const payload = JSON.stringify({ session_id: 'x', cwd: '/home/claude', hook_event_name: 'Notification', notification_type: 'permission_prompt', message: 'Claude needs your permission to use Bash' });
  expect(await inContainer(s.id, ['/usr/local/bin/berth-hook'], payload)).toBe(0);
  await activityUntil(s.id, 'permission', (a) => a?.state === 'permission', 10_000, 50);
  // The pane goes on printing for twice the idle threshold: the hook's word stands.
  await sleep(IDLE_AFTER_S * 2000);
  expect(await activity(s.id)).toEqual(expect.objectContaining({ state: 'permission' }));
}, 90_000);
