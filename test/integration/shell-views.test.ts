/**
 * Seeing sessions without attaching, end to end (the real OpenSSH client, a real shell, agent and
 * sessions). `watch --json` prints every session, `synced`, then a line as soon as a session
 * changes, here when its program reports (a hook report written into its status folder, as
 * berth-hook does), and ends when the client leaves. `preview REF [--lines N]` prints the last
 * lines of a session's screen, read by tmux inside the container, inert; a viewer may look; a
 * stopped session is refused plainly.
 */
import { execFileSync, spawn } from 'node:child_process';
import os from 'node:os';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { rawChars } from '../helpers/raw-text';
import { sessionCli } from '../helpers/session-cli';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `views-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
let repos = '';
const { cli, json, startAndWait, killAndWait } = sessionCli(() => cluster);

beforeAll(async () => {
  repos = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-views-repos-'));
  const work = path.join(repos, 'work');
  const git = (args: string[]): void => void execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@berth.invalid', '-c', 'init.defaultBranch=main', ...args]);
  git(['init', '--quiet', work]);
  await fs.writeFile(path.join(work, 'README.md'), 'hi\n');
  git(['-C', work, 'add', 'README.md']);
  git(['-C', work, 'commit', '--quiet', '-m', 'the first commit']);
  git(['clone', '--quiet', '--bare', work, path.join(repos, 'proj.git')]);
  cluster = await startCluster({ runLabel, agents: 1, agentConfig: { repos: { allowLocal: [repos] } } });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
  if (repos) await fs.rm(repos, { recursive: true, force: true });
});

test('watch --json streams each change as one line, until the client leaves', async () => {
  const s = await json<SessionJson>('create --name watched');
  await startAndWait(s.id);
  const client = spawn('ssh', [...cluster.sshArgs('vic'), 'watch', '--json', '--name', 'watched'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<{ type: string; session?: SessionJson; id?: string }> = [];
  let buffered = '';
  client.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const p of parts) if (p) lines.push(JSON.parse(p) as { type: string });
  });
  const exited = new Promise<number | null>((r) => client.on('exit', (code) => r(code)));
  try {
    await until('the start', async () => lines.map((l) => l.type).join(','), (t) => t === 'session,synced', 15_000, 50);
    expect(lines[0]?.session).toMatchObject({ id: s.id, name: 'watched', state: 'running' });

    // What berth-hook does inside the container, done from the host into the status folder.
    const dir = path.join(cluster.agents[0]!.root, s.id, 'status');
    const report = { hook_event_name: 'Notification', notification_type: 'permission_prompt', message: 'Claude needs your permission to use Bash', session_id: 'x', cwd: '/home/claude' };
    await fs.writeFile(path.join(dir, '.event.tmp'), JSON.stringify(report));
    await fs.rename(path.join(dir, '.event.tmp'), path.join(dir, 'event.json'));
    const changed = await until('the change', async () => lines.find((l) => l.session?.activity?.state === 'permission'), (l) => l !== undefined, 10_000, 20);
    expect(changed?.session?.activity).toMatchObject({ state: 'permission', detail: 'Claude needs your permission to use Bash' });

    // Another session's change is not this watch's (its filter), and deleting this one is a line.
    await json<SessionJson>('create --name other');
    const r = await cluster.ssh('alice', [`delete ${s.id} --yes`]);
    expect(r.code).toBe(0);
    await until('the removal', async () => lines.find((l) => l.type === 'removed'), (l) => l !== undefined, 10_000, 20);
    expect(lines.filter((l) => l.session?.name === 'other')).toEqual([]);
  } finally {
    client.kill('SIGTERM');
  }
  await exited;
  // The shell carries on.
  expect((await cluster.ssh('vic', ['list'])).code).toBe(0);
}, 90_000);

test('the last lines of a running session, for a viewer too; inert; a stopped one is refused', async () => {
  // Counts to 120, then prints an escape sequence that would clear a terminal, then waits.
  const command = "bash -c 'for i in $(seq 1 120); do echo line-$i; done; printf \"x\\033[2Jy\\n\"; exec bash'";
  const s = await json<SessionJson>(`create --name shown --command "${command}"`);
  await startAndWait(s.id);
  const r = await until('the pane', () => cli('preview shown --lines 5', 'vic'), (x) => x.code === 0 && x.out.includes('line-120'), 20_000, 200);
  const [head, ...lines] = r.out.trimEnd().split('\n');
  expect(head).toMatch(/^== shown on agent-1/);
  expect(lines.length).toBeLessThanOrEqual(5);
  expect(lines).toContain('line-120');
  expect(lines).not.toContain('line-100');
  expect(rawChars(r.out.replace(/\n/g, ''))).toEqual([]);
  const j = await json<{ id: string; lines: string[] }>('preview shown --lines 200');
  expect(j.id).toBe(s.id);
  expect(j.lines).toContain('line-1');
  expect((await cli('preview shown --lines 0')).err).toContain('--lines must be 1-500');
  await killAndWait(s.id);
  const stopped = await cli('preview shown');
  expect({ code: stopped.code, err: stopped.err }).toEqual({ code: 1, err: 'error: CONFLICT: session is not running\n' });
}, 90_000);

test("a project's git state, computed in the container by the real berth-hook, shows in list --json and the preview's head", async () => {
  const s = await json<SessionJson>(`create --name glance --repo ${path.join(repos, 'proj.git')}`);
  await startAndWait(s.id);
  // The checkout is made at the first start; then two files change in it, and Claude Code's Stop
  // hook runs in the project's folder.
  const inProject = (args: string[], input?: string): string =>
    execFileSync('docker', ['exec', '-i', '-w', '/home/claude/proj', `berth-${s.id}`, ...args], { input, timeout: 20_000 }).toString();
  await until('the checkout', async () => { try { return inProject(['git', 'branch', '--show-current']).trim(); } catch { return ''; } }, (b) => b === 'berth/glance', 20_000, 200);
  inProject(['sh', '-c', 'echo more >> README.md && echo new > notes.txt']);
  inProject(['/usr/local/bin/berth-hook'], JSON.stringify({ hook_event_name: 'Stop', session_id: 'x', cwd: '/home/claude/proj', stop_hook_active: false }));
  // The hook writes the git state, then the event: each shows when its own rename is read.
  const listed = await until('the git state and the event', async () => (await json<SessionJson[]>('list')).find((x) => x.id === s.id), (x) => x?.git != null && x.activity?.state === 'done', 10_000, 100);
  expect(listed?.git).toEqual({ branch: 'berth/glance', ahead: null, behind: null, changed: 2, subject: 'the first commit' });
  expect(listed?.activity?.state).toBe('done');
  const shown = await cli('preview glance --lines 3');
  expect(shown.out.split('\n')[0]).toBe('== glance on agent-1 · done · berth/glance, 2 changed, last: the first commit');
}, 90_000);
