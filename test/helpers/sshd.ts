/**
 * A real OpenSSH sshd on 127.0.0.1 as a bastion for tests: its own host key, config and
 * authorized keys in a temp folder; public-key logins as the user running the tests; TCP
 * forwarding to the targets it permits and nothing else (no shell, command, pty, agent, X11,
 * tunnel or listening forward). Runs as root (sshd needs it to log a user in). Its log (stderr,
 * DEBUG1: every forward is a line) is kept across restarts.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports';
import { alive } from './procs';
import { sleep, until } from './wait';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';

export interface Bastion {
  /** Where it listens on 127.0.0.1 (the same across restarts). */
  port: number;
  /** The user logins are for: the one running the tests. */
  user: string;
  /** SHA256:… of its host key (the same across restarts). */
  fingerprint: string;
  /** Its log lines so far, every run. */
  logs: string[];
  /** The connections sshd has open now, logged in or not (one process each); 0 when it is not running. */
  connections(): number;
  /** Replaces the authorized_keys file (sshd reads it at each login). */
  authorize(lines: string[]): Promise<void>;
  /** Starts sshd; resolves once it listens. Throws if it is running. */
  start(): Promise<void>;
  /** SIGKILLs sshd and every connection process it forked: each open connection drops at once. Idempotent. */
  kill(): Promise<void>;
  /** kill(), then removes its folder. */
  dispose(): Promise<void>;
}

/**
 * Makes the bastion's folder, key and config, and starts it. `permitOpen`: the only "host:port"
 * forwards allowed. `commands`: lets logins run commands too (a plain sshd for a direct path in
 * benchmarks, e.g. `tar | ssh | tar`), still without a pty, agent, X11 or tunnel.
 */
export async function startBastion(o: { permitOpen: string[]; commands?: boolean }): Promise<Bastion> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-bastion-'));
  const port = await freePort();
  const user = os.userInfo().username;
  const hostKey = path.join(dir, 'host_key');
  const authorizedKeys = path.join(dir, 'authorized_keys');
  const configFile = path.join(dir, 'sshd_config');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bastion', '-f', hostKey]);
  const printed = (await run('ssh-keygen', ['-l', '-f', `${hostKey}.pub`])).stdout;
  const fingerprint = /SHA256:\S+/.exec(printed)?.[0] ?? '';
  await fs.writeFile(authorizedKeys, '', { mode: 0o600 });
  await fs.writeFile(
    configFile,
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${hostKey}`,
      'PidFile none',
      `AuthorizedKeysFile ${authorizedKeys}`,
      // The temp folder's parents (/tmp is world-writable) would fail sshd's ownership checks.
      'StrictModes no',
      'UsePAM no',
      `AllowUsers ${user}`,
      'PermitRootLogin prohibit-password',
      'AuthenticationMethods publickey',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      // Forwarding from the client through the bastion (direct-tcpip) to the permitted targets only.
      'AllowTcpForwarding local',
      `PermitOpen ${o.permitOpen.length > 0 ? o.permitOpen.join(' ') : 'none'}`,
      'PermitListen none',
      'AllowAgentForwarding no',
      'AllowStreamLocalForwarding no',
      'X11Forwarding no',
      'PermitTunnel no',
      'PermitTTY no',
      'PermitUserRC no',
      ...(o.commands ? [] : ['ForceCommand /bin/false']),
      'UseDNS no',
      'LogLevel DEBUG1',
      '',
    ].join('\n'),
  );
  // sshd refuses to start without its privilege separation folder (Debian's package makes it).
  await fs.mkdir('/run/sshd', { recursive: true, mode: 0o755 });

  const logs: string[] = [];
  let proc: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const bastion: Bastion = {
    port,
    user,
    fingerprint,
    logs,
    connections() {
      const pid = proc?.pid;
      return pid && running(proc!) ? childrenOf(new Set([pid])).filter(alive).length : 0;
    },
    async authorize(lines) {
      await fs.writeFile(authorizedKeys, lines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
    },
    async start() {
      if (proc && running(proc)) throw new Error('bastion sshd is running already');
      const p = spawn(SSHD, ['-D', '-e', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      proc = p;
      exited = new Promise<void>((r) => p.once('exit', () => r()));
      let partial = '';
      p.stderr?.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop() ?? '';
        logs.push(...lines.filter(Boolean));
      });
      const from = logs.length;
      const listening = `Server listening on 127.0.0.1 port ${port}`;
      await until(
        'bastion sshd listening',
        async () => ({ up: logs.slice(from).some((l) => l.includes(listening)), exit: p.exitCode, log: logs.slice(-5) }),
        (s) => s.up || s.exit !== null,
        10_000,
        50,
      ).then((s) => {
        if (!s.up) throw new Error(`bastion sshd exited ${s.exit}; log: ${s.log.join('\n')}`);
      });
    },
    async kill() {
      const p = proc;
      if (!p?.pid || !running(p)) return;
      const tree = await stopTree(p.pid);
      for (const pid of tree) signal(pid, 'SIGKILL');
      await exited;
      await until('bastion processes gone', async () => tree.filter(alive), (left) => left.length === 0, 10_000, 50);
    },
    async dispose() {
      await bastion.kill();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
  await bastion.start();
  return bastion;
}

function running(p: ChildProcess): boolean {
  return p.exitCode === null && p.signalCode === null;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone meanwhile
  }
}

/**
 * SIGSTOPs `root` and every process below it, walking again until a walk finds no new one while
 * all it found are stopped: nothing in the tree can fork after that. Returns the tree's pids.
 * Bounded: 50 walks.
 */
async function stopTree(root: number): Promise<number[]> {
  const tree = new Set<number>([root]);
  signal(root, 'SIGSTOP');
  for (let walk = 0; walk < 50; walk++) {
    await until('bastion processes stopped', async () => [...tree].filter((pid) => alive(pid) && stateOf(pid) !== 'T'), (l) => l.length === 0, 5_000, 10);
    const found = childrenOf(tree).filter((pid) => !tree.has(pid));
    if (found.length === 0) return [...tree];
    for (const pid of found) {
      tree.add(pid);
      signal(pid, 'SIGSTOP');
    }
    await sleep(0);
  }
  throw new Error('bastion sshd kept forking: 50 walks of its process tree');
}

/** Pids whose parent is in `parents`. */
function childrenOf(parents: Set<number>): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = statFields(Number(name));
    if (stat && parents.has(stat.ppid)) out.push(Number(name));
  }
  return out;
}

function stateOf(pid: number): string | null {
  return statFields(pid)?.state ?? null;
}

/** The state letter and parent pid from /proc/PID/stat, or null once the process is gone. */
function statFields(pid: number): { state: string; ppid: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state ?? '', ppid: Number(ppid) };
  } catch {
    return null;
  }
}
