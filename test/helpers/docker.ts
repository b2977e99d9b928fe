/** Docker facts and cleanup for tests, through the docker CLI (argument arrays only). */
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const TEST_LABEL = 'berth.test';
export const SESSION_IMAGE = process.env.BERTH_TEST_IMAGE ?? 'berth-session:latest';

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Removes every container carrying the test label (any value, or the given one). */
export async function removeTestContainers(value?: string): Promise<number> {
  const filter = value ? `label=${TEST_LABEL}=${value}` : `label=${TEST_LABEL}`;
  const ids = (await docker('ps', '-aq', '--filter', filter)).split('\n').filter(Boolean);
  if (ids.length > 0) await docker('rm', '-f', ...ids);
  return ids.length;
}

/** Containers of one test run, as `docker ps` sees them. */
export async function testContainers(value: string): Promise<Array<{ id: string; session: string; state: string }>> {
  const out = await docker('ps', '-a', '--filter', `label=${TEST_LABEL}=${value}`, '--format', '{{.ID}} {{.Label "berth.session"}} {{.State}}');
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id = '', session = '', state = ''] = l.split(' ');
      return { id, session, state };
    });
}

export async function dockerAnswers(): Promise<boolean> {
  return docker('version', '--format', '{{.Server.Version}}').then(
    () => true,
    () => false,
  );
}

/** How many tmux clients are attached inside a session container (as the containers' user). */
export async function tmuxClientCount(container: string, user = '1000:1000'): Promise<number> {
  const out = await docker('exec', '-u', user, container, 'tmux', 'list-clients', '-F', 'client');
  return out.split('\n').filter((l) => l.trim() === 'client').length;
}

// ---- stopping and starting the engine (test/disruptive only) ----

interface DockerdProcess {
  exe: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** The command line of the last dockerd stopDockerd() ended, to start it again the same way. */
let lastDockerd: DockerdProcess | null = null;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function systemdManagesDocker(): Promise<boolean> {
  return run('systemctl', ['is-active', '--quiet', 'docker']).then(
    () => true,
    () => false,
  );
}

/** True while the process exists and is not a zombie (whoever is its parent may not reap it soon). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function readProc(pid: number): DockerdProcess {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  const env: NodeJS.ProcessEnv = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  let exe = argv[0] ?? 'dockerd';
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // keep argv[0]
  }
  let cwd = '/';
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    // keep /
  }
  return { exe, argv, env, cwd };
}

/** Waits (bounded) until the engine answers `docker version`. */
export async function waitForDocker(timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await dockerAnswers())) {
    if (Date.now() > end) throw new Error(`docker engine did not answer within ${timeoutMs} ms`);
    await sleep(250);
  }
}

/**
 * Stops the Docker engine: through systemd when it manages docker, else SIGTERM to the dockerd
 * process (its command line is remembered for startDockerd) and a bounded wait until it is gone.
 */
export async function stopDockerd(timeoutMs = 60_000): Promise<void> {
  if (await systemdManagesDocker()) {
    // docker.socket would start the engine again on the next client call.
    await run('systemctl', ['stop', 'docker.socket', 'docker.service']);
    return;
  }
  const pids = (await run('pidof', ['dockerd']).then((r) => r.stdout, () => ''))
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  if (pids.length === 0) return;
  lastDockerd = readProc(pids[0] as number);
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  const end = Date.now() + timeoutMs;
  while (pids.some(alive)) {
    if (Date.now() > end) throw new Error(`dockerd (pid ${pids.join(', ')}) did not exit within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Starts the engine again (systemd, or the remembered command line, detached) and waits until it answers. */
export async function startDockerd(timeoutMs = 60_000): Promise<void> {
  if (await dockerAnswers()) return;
  const systemd = await run('systemctl', ['is-enabled', '--quiet', 'docker']).then(
    () => true,
    () => false,
  );
  if (systemd && !lastDockerd) {
    await run('systemctl', ['start', 'docker.socket', 'docker.service']);
  } else {
    const d = lastDockerd ?? { exe: 'dockerd', argv: ['dockerd'], env: process.env, cwd: '/' };
    const log = openSync(path.join(os.tmpdir(), 'berth-test-dockerd.log'), 'a');
    try {
      const child = spawn(d.exe, d.argv.slice(1), { argv0: d.argv[0], detached: true, stdio: ['ignore', log, log], env: d.env, cwd: d.cwd });
      child.on('error', () => undefined);
      child.unref();
    } finally {
      closeSync(log);
    }
  }
  await waitForDocker(timeoutMs);
}

/** Stops and starts the Docker engine; resolves once it answers again. */
export async function restartDockerd(): Promise<void> {
  await stopDockerd();
  await startDockerd();
}
