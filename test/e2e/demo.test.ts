/**
 * `npm run demo` as a newcomer uses it: started in the background, reached with the ssh line it
 * prints, a session created and attached, Ctrl-C, started again: the session is still there.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/agent-process';
import { until } from '../helpers/cluster';
import { docker, removeTestContainers, testLabels } from '../helpers/docker';
import { freePort } from '../helpers/ports';
import { Tmux } from '../helpers/tmux';

const execFileP = promisify(execFile);
const runLabel = `e2e-demo-${randomUUID().slice(0, 8)}`;
const tmux = new Tmux(`berth-${runLabel}`);
let dir = '';
/** A key in the demo's environment, as a user would export theirs. */
const KEY_MARKER = `sk-ant-demo-${randomUUID()}`;
let dnsPort = 0;
let demo: ChildProcess | null = null;
/** Everything the current demo printed. */
let printed = '';

/** Starts `npm run demo` in its own process group; resolves with the ssh line it prints. */
async function startDemo(): Promise<string[]> {
  const p = spawn('npm', ['run', 'demo'], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ANTHROPIC_API_KEY: KEY_MARKER, BERTH_DEMO_DIR: dir, BERTH_DEMO_PORT: '0', BERTH_DEMO_DNS_PORT: String(dnsPort), BERTH_DEMO_USER: 'demo', BERTH_DEMO_LABEL: Object.entries(testLabels(runLabel)).map(([k, v]) => `${k}=${v}`).join(',') },
  });
  demo = p;
  let out = '';
  printed = '';
  p.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  p.stdout?.on('data', (d: Buffer) => (printed += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ssh line from the demo in 120 s; output:\n${out.slice(-2000)}`)), 120_000);
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('ssh '));
      if (line) {
        clearTimeout(timer);
        resolve(line.trim().split(/\s+/));
      }
    });
    p.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited ${code} before printing the ssh line; output:\n${out.slice(-2000)}`));
    });
  });
}

/**
 * Ctrl-C, as a person at the terminal would (the whole process group: npm too, which exits by the
 * signal). Resolves once every process of the demo is gone; throws if that takes over 20 s.
 */
async function stopDemo(): Promise<void> {
  const p = demo;
  if (!p?.pid) return;
  const group = p.pid;
  const gone = (): boolean => {
    try {
      process.kill(-group, 0);
      return false;
    } catch {
      return true;
    }
  };
  if (gone()) return;
  process.kill(-group, 'SIGINT');
  try {
    await until('the demo stops', async () => gone(), (g) => g, 20_000);
  } catch (err) {
    process.kill(-group, 'SIGKILL');
    throw err;
  }
}

function run(argv: string[], extra: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const [cmd = 'ssh', ...args] = argv;
    const p = spawn(cmd, [...args, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-demo-'));
  dnsPort = await freePort();
});

afterAll(async () => {
  tmux.kill();
  await stopDemo().catch(() => undefined);
  await removeTestContainers(runLabel);
  await fs.rm(dir, { recursive: true, force: true });
});

test('the demo runs, keeps its sessions across Ctrl-C, and finds them again', async () => {
  const ssh = await startDemo();
  expect(ssh[0]).toBe('ssh');
  const online = async (): Promise<number> =>
    (JSON.parse((await run(ssh, ['agents', '--json'])).out || '[]') as Array<{ status: string }>).filter((a) => a.status === 'online').length;
  await until('both demo agents online', online, (n) => n === 2, 20_000);

  // The whole path: a key in the environment, a session on a repository, attach: Claude Code.
  expect(printed).toContain('credentials for every session: ANTHROPIC_API_KEY');
  const project = path.join(dir, 'repos', 'hello.git');
  expect(printed).toContain(`create --name try --repo ${project}`);
  const created = await run(ssh, ['create', '--name', 'kept', '--agent', 'agent-2', '--port', '-1', '--repo', project, '--json']);
  expect(created.code).toBe(0);
  const id = (JSON.parse(created.out) as { id: string }).id;
  const [cmd, ...args] = ssh;
  tmux.start('op', [cmd ?? 'ssh', '-t', ...args, 'attach', 'kept']);
  // Claude Code's own screen: offline, its question whether to trust the project's folder.
  await tmux.waitFor('op', (s) => /trust this folder|Claude Code/.test(s), "Claude Code's screen", 60_000);
  const home = path.join(dir, 'agent-2', 'sessions', id, 'home');
  expect(await fs.readFile(path.join(home, 'hello', 'README.md'), 'utf8')).toContain('# hello');
  const exec = (argv: string[]): Promise<string> => docker('exec', `berth-${id}`, ...argv);
  expect(await exec(['git', '-C', '/home/claude/hello', 'branch', '--show-current'])).toBe('berth/kept');
  expect(await exec(['tmux', 'display', '-p', '-t', 'claude', '#{pane_current_path}'])).toBe('/home/claude/hello');
  expect(await exec(['printenv', 'ANTHROPIC_API_KEY'])).toBe(KEY_MARKER);
  // The key is in the session, and nowhere berth keeps or shows things.
  const shown = [
    await fs.readFile(path.join(dir, 'agent-2', 'sessions', id, 'session.json'), 'utf8'),
    (await run(ssh, ['list', '--json'])).out,
    await fs.readFile(path.join(dir, 'demo.log'), 'utf8'),
    printed,
    await docker('inspect', '-f', '{{json .Config.Labels}}', `berth-${id}`),
  ];
  for (const text of shown) expect(text).not.toContain(KEY_MARKER);
  tmux.keys('op', 'C-b', 'd');

  await stopDemo();
  expect(printed).toContain('berth demo stopping (SIGINT); sessions stay as they are');
  // The container and the folder stay as they are.
  expect(await docker('inspect', '-f', '{{.State.Running}}', `berth-${id}`)).toBe('true');
  // agent-2 publishes on its own loopback address: the demo's two agents never hand out one
  // address and port twice.
  const published = await docker('inspect', '-f', '{{json .HostConfig.PortBindings}}', `berth-${id}`);
  expect(published).toContain('"HostIp":"127.0.0.2"');

  // An operator edit of shell.json between runs is kept.
  const shellJson = path.join(dir, 'shell.json');
  const edited = JSON.parse(await fs.readFile(shellJson, 'utf8')) as { operators: unknown[] };
  await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'guest', '-f', path.join(dir, 'guest_key')]);
  const guest = { name: 'guest', role: 'viewer', keys: [(await fs.readFile(path.join(dir, 'guest_key.pub'), 'utf8')).trim()] };
  edited.operators.push(guest);
  await fs.writeFile(shellJson, JSON.stringify(edited, null, 2));

  const again = await startDemo();
  expect((JSON.parse(await fs.readFile(shellJson, 'utf8')) as { operators: unknown[] }).operators).toContainEqual(guest);
  const online2 = async (): Promise<number> =>
    (JSON.parse((await run(again, ['agents', '--json'])).out || '[]') as Array<{ status: string }>).filter((a) => a.status === 'online').length;
  await until('both demo agents online again', online2, (n) => n === 2, 20_000);
  const list = JSON.parse((await run(again, ['list', '--json'])).out) as Array<{ id: string; name: string; state: string }>;
  expect(list.find((s) => s.id === id)).toMatchObject({ name: 'kept', state: 'running' });
  await stopDemo();
  expect(printed).toContain('berth demo stopping (SIGINT)');
}, 240_000);
