/**
 * A Docker engine of the test's own, for tests that stop or kill the engine under an agent: its
 * own socket, data root, exec root and pid file, no bridge and no iptables rules, so the machine's
 * engine (and every other test using it) is never touched. It runs in a network namespace of its
 * own too: a dockerd started with `--bridge none` deletes the host's docker0, which would cut the
 * machine's engine off. The session image is copied in with `docker save | docker load`.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, promises as fs, openSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SESSION_IMAGE, dockerAnswers, dockerAt, removeTestContainers } from './docker';
import { alive, processesMentioning } from './procs';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface PrivateEngine {
  /** Everything of this engine lives under here. */
  dir: string;
  /** Its API socket (an agent's `dockerSocket`). */
  socket: string;
  /** The docker CLI against this engine. */
  docker(...args: string[]): Promise<string>;
  answers(): Promise<boolean>;
  /** Starts dockerd (if not running) and waits until it answers; the error carries its log. */
  start(): Promise<void>;
  /** Stops dockerd (SIGTERM) and waits until it and its containerd are gone. */
  stop(): Promise<void>;
  /**
   * A crash of the engine: SIGKILL to dockerd and the containerd it runs, at once. The
   * containers' shims live on, as they would on a real host.
   */
  kill(): Promise<void>;
  /** Removes the test's containers, stops the engine, unmounts and deletes everything it had. */
  remove(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

export async function startPrivateEngine(opts: { image?: string } = {}): Promise<PrivateEngine> {
  // Short: containerd's socket lives under the exec root, and a socket path has at most 107 bytes.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bdk-'));
  const socket = path.join(dir, 'docker.sock');
  const logFile = path.join(dir, 'dockerd.log');
  const pidFile = path.join(dir, 'dockerd.pid');
  const configFile = path.join(dir, 'daemon.json');
  await fs.writeFile(configFile, '{}\n');
  let proc: ChildProcess | null = null;

  const logTail = (): string => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const engine: PrivateEngine = {
    dir,
    socket,
    docker: (...args) => dockerAt(socket, ...args),
    answers: () => dockerAnswers(socket),

    async start() {
      if (proc?.pid && alive(proc.pid)) return;
      const spawned: { error: Error | null } = { error: null };
      const log = openSync(logFile, 'a');
      try {
        // unshare execs dockerd (same pid) in a new network namespace; detached: its own process group.
        proc = spawn(
          'unshare',
          [
            '--net',
            '--',
            'dockerd',
            '--host', `unix://${socket}`,
            '--data-root', path.join(dir, 'data'),
            '--exec-root', path.join(dir, 'exec'),
            '--pidfile', pidFile,
            '--config-file', configFile,
            '--bridge', 'none',
            '--iptables=false',
            '--ip-forward=false',
            '--ip-masq=false',
          ],
          { detached: true, stdio: ['ignore', log, log], env: { ...process.env, PATH: `/usr/bin:/usr/sbin:${process.env.PATH ?? ''}` } },
        );
      } finally {
        closeSync(log);
      }
      proc.on('error', (err) => (spawned.error = err));
      const end = Date.now() + START_TIMEOUT_MS;
      while (!(await engine.answers())) {
        if (spawned.error) throw new Error(`dockerd could not be started: ${spawned.error.message}`);
        if (proc.exitCode !== null || proc.signalCode !== null) {
          throw new Error(`dockerd exited (${proc.exitCode ?? proc.signalCode}) before answering; its log:\n${logTail()}`);
        }
        if (Date.now() > end) throw new Error(`dockerd did not answer within ${START_TIMEOUT_MS} ms; its log:\n${logTail()}`);
        await sleep(200);
      }
    },

    async kill() {
      const pid = proc?.pid;
      if (!pid || !alive(pid)) return;
      const engineProcs = (): number[] => [pid, ...processesMentioning(dir).filter((p) => commandName(p) === 'containerd')].filter(alive);
      signalAll(engineProcs(), 'SIGKILL');
      const end = Date.now() + STOP_TIMEOUT_MS;
      while (engineProcs().length > 0) {
        if (Date.now() > end) throw new Error(`dockerd or containerd (${engineProcs().join(', ')}) still there ${STOP_TIMEOUT_MS} ms after SIGKILL`);
        await sleep(50);
      }
      // PID 1 on these machines reaps orphans late: the dead containerd may stay a zombie, which the
      // next dockerd takes for a running one and waits on until it gives up. A host's init reaps at
      // once; do its part by removing the dead process's pid file.
      await fs.rm(path.join(dir, 'exec', 'containerd', 'containerd.pid'), { force: true });
    },

    async stop() {
      const pid = proc?.pid;
      if (pid && alive(pid)) process.kill(pid, 'SIGTERM');
      else signalAll(processesMentioning(dir), 'SIGTERM'); // a containerd that a killed dockerd left
      const end = Date.now() + STOP_TIMEOUT_MS;
      // dockerd is gone, and so is the containerd it supervised (its command line names our dir).
      while ((pid !== undefined && alive(pid)) || processesMentioning(dir).length > 0) {
        if (Date.now() > end) {
          signalAll(processesMentioning(dir), 'SIGKILL');
          throw new Error(`dockerd (pid ${pid ?? '-'}) did not stop within ${STOP_TIMEOUT_MS} ms; its log:\n${logTail()}`);
        }
        await sleep(100);
      }
    },

    async remove() {
      try {
        if (await engine.answers()) await removeTestContainers(undefined, socket);
      } finally {
        await engine.stop().catch(() => undefined);
        // Whatever a killed engine left mounted under its folder, deepest first.
        const mounts = readFileSync('/proc/mounts', 'utf8')
          .split('\n')
          .map((l) => l.split(' ')[1] ?? '')
          .filter((m) => m.startsWith(`${dir}/`))
          .sort((a, b) => b.length - a.length);
        for (const m of mounts) {
          await new Promise((r) => spawn('umount', ['-l', m], { stdio: 'ignore' }).on('exit', r).on('error', r));
        }
        await fs.rm(dir, { recursive: true, force: true });
      }
    },
  };

  try {
    await engine.start();
    await loadImage(socket, opts.image ?? SESSION_IMAGE);
  } catch (err) {
    await engine.remove();
    throw err;
  }
  return engine;
}

function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone meanwhile
    }
  }
}

/** docker save from the machine's engine, piped into docker load of the engine at `socket`. */
async function loadImage(socket: string, image: string): Promise<void> {
  const save = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'pipe'] });
  const load = spawn('docker', ['-H', `unix://${socket}`, 'load', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  save.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  load.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  save.stdout?.pipe(load.stdin as NodeJS.WritableStream);
  const code = (p: ChildProcess): Promise<number | null> => new Promise((r) => p.once('exit', (c) => r(c)).once('error', () => r(-1)));
  const [a, b] = await Promise.all([code(save), code(load)]);
  if (a !== 0 || b !== 0) throw new Error(`copying image ${image} into the private engine failed (save ${a}, load ${b}): ${err.trim()}`);
}
