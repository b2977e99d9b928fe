/**
 * Shell benchmark (measurements, not tests): `npm run bench:shell [-- --quick]`.
 *
 * The operator's whole path, `ssh -tt … attach REF` (OpenSSH → shell → agent → tmux), against
 * what an operator does without berth: OpenSSH to an sshd this bench starts on loopback, running
 * `docker exec -it … tmux attach-session -t claude` on the same session. The two paths take turns
 * (interleaved blocks), so a slower spell of the machine falls on both.
 *
 *  1. attach to a running session: spawn of ssh → the bash prompt on screen, both paths;
 *  2. keystroke echo round trip, in blocks of keys; a block's median is its value. A third path,
 *     the floor, is the direct one with a bare Node relay process (relay.ts) where each of
 *     berth's two Node processes stands: before sshd on TCP (the shell) and before Docker's API
 *     socket (the agent). berth against the floor is what berth's own work costs; the floor
 *     against the direct path is what two Node processes in the path cost;
 *  3. bulk output: `cat` of a text file of random base64 in the pane, Enter → an end marker on the
 *     operator's terminal, in MB/s, one client attached at a time;
 *  4. Enter → first screen of a stopped session: berth starts the container on attach; the direct
 *     path runs `docker run -d` of the session image with the same settings, waits for tmux
 *     (`tmux has-session`, bounded) and attaches with `docker exec -it`;
 *  5. the shell process's memory with 50 operators in the menu (ssh2 clients in this process);
 *  6. a change at an agent (a rename through its own RPC) → shown in all 50 menus;
 *  7. Claude Code's hook (the image's berth-hook) fired in a session's container → the session's
 *     row shows the new activity in all 50 menus (each menu's output replayed on a screen model).
 *
 * Both OpenSSH clients run the same way: `ssh -tt` under util-linux `script -qfc` (a pty of
 * 100×30 on their stdin, set with stty), so both put their terminal in raw mode and ask for a pty.
 * `--quick`: fewer keys, runs and rounds and a 10 MB file (well under 40 s). Progress on stderr;
 * then a markdown table, and the report (lib.ts printReport) as the last line on stdout. Exit 0
 * unless something broke (a missed target is reported). Loopback only; every wait and loop is
 * bounded; everything made here (ssh clients, sshd, cluster, containers of this run's label, temp
 * dirs) is removed at the end, also after a failure.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Client } from 'ssh2';
import { Cluster, startCluster } from '../helpers/cluster';
import { Figure, log, met, printReport, quantile, ratios, round, runBench, settle, sleep, startRelay, Term, visible, wallOffset, withTimeout } from './lib';
import { freePort } from '../helpers/ports';
import { removeTestContainers, testLabelArgs } from '../helpers/docker';
import { HookLoop, OpenMenu, openMenus, PAYLOADS, Word } from './shell-menus';

const run = promisify(execFile);

// ---- parameters ----

const QUICK = process.argv.includes('--quick');
const KEYSTROKES = QUICK ? 60 : 300;
const BLOCK = 10;
const WARMUP_KEYS = 10;
const BLOCK_WARMUP_KEYS = 2;
const KEY_TIMEOUT_MS = 5000;
const ATTACH_RUNS = QUICK ? 3 : 10;
const BULK_BLOCKS = QUICK ? 1 : 3;
const BULK_MB = QUICK ? 10 : 50;
/** At least this many MB/s, or the run is called broken. */
const BULK_FLOOR_MBS = 0.5;
const COLD_RUNS = QUICK ? 2 : 5;
const OPERATORS = 50;
const RSS_SAMPLES = QUICK ? 5 : 20;
const PROPAGATION_RUNS = QUICK ? 3 : 10;
const HOOK_ROUNDS = QUICK ? 3 : 10;
const HOOK_WARMUP = QUICK ? 1 : 2;
const HOOK_TIMEOUT_MS = 5000;
/** Between hook rounds: past the agent's least gap between two reads of one session's reports (100 ms), with jitter. */
const HOOK_GAP_MS = 250;
const HOOK_JITTER_MS = 100;
const COLS = 100;
const ROWS = 30;
const SSHD = '/usr/sbin/sshd';
const DOCKER_SOCKET = '/var/run/docker.sock';
const OVERALL_LIMIT_MS = (QUICK ? 3 : 10) * 60_000;
/** Letters that neither escape sequences (stripped anyway) nor tmux's default status line draw. */
const KEYS = 'ijkqswxz';
const PROMPT = /claude@\S+\$/;
/** The bulk file, in the session's home (on the host's disk). */
const BULK_FILE = '/home/claude/.bench-bulk.txt';
/** Typed after the cat: its echo shows `$((40+2))`, only running it prints the marker. */
const BULK_END = 'END-42';
const BULK_COMMAND = `cat ${BULK_FILE}; echo END-$((40+2))`;
const TARGETS = {
  /** Of berth to the direct path, and the same ratio of berth to the floor. */
  echo: { of: 'ratio', op: '<=', value: 1.15 },
  attach: { of: 'value', op: '<=', value: 300 },
  bulk: { of: 'ratio', op: '>=', value: 0.8 },
  cold: { of: 'value', op: '<=', value: 1500 },
  rss50: { of: 'value', op: '<=', value: 300 },
  change50: { of: 'value', op: '<=', value: 200 },
  hook50: { of: 'value', op: '<=', value: 200 },
} as const;

/** A terminal over a client process's pty (stdin in, stdout and stderr out). */
function childTerm(name: string, child: ChildProcess): Term {
  return new Term(
    name,
    (str) => {
      if (alive(child)) child.stdin?.write(str);
    },
    (cb) => {
      child.stdout?.on('data', cb);
      child.stderr?.on('data', cb);
    },
    KEY_TIMEOUT_MS,
  );
}

// ---- processes ----

interface State {
  cluster: Cluster | null;
  children: ChildProcess[];
  clients: Client[];
  dir: string;
  runLabel: string;
  madeRunSshd: boolean;
  done: boolean;
}

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

async function endChild(child: ChildProcess, what: string): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await withTimeout(exited, 5000, what).catch(async () => {
    child.kill('SIGKILL');
    await withTimeout(exited, 2000, what).catch(() => log(`could not end ${what} (pid ${child.pid})`));
  });
}

async function cleanupAll(s: State): Promise<void> {
  if (s.done) return;
  s.done = true;
  for (const c of s.clients) c.end();
  for (const child of s.children) await endChild(child, `child process ${child.spawnfile}`);
  if (s.cluster) {
    await withTimeout(s.cluster.dispose(), 60_000, 'cluster dispose').catch((err: unknown) => {
      log(`cluster dispose: ${String(err)}`);
      for (const p of [s.cluster?.shell.proc, ...(s.cluster?.agents ?? []).map((a) => a.proc)]) if (p && alive(p)) p.kill('SIGKILL');
    });
  }
  const removed = await withTimeout(removeTestContainers(s.runLabel), 60_000, 'remove containers').catch((err: unknown) => {
    log(`could not remove containers labelled ${s.runLabel}: ${String(err)}`);
    return -1;
  });
  if (removed > 0) log(`removed ${removed} container(s) of this run`);
  if (s.dir) await fs.rm(s.dir, { recursive: true, force: true }).catch(() => undefined);
  if (s.madeRunSshd) await fs.rmdir('/run/sshd').catch(() => undefined);
}

/** Debian's OpenSSH server, installed when missing (we run as root); its privilege-separation dir. */
async function ensureSshd(s: State): Promise<void> {
  if (!existsSync(SSHD)) {
    log(`${SSHD} missing: running apt-get install -y openssh-server (the package's service is not started here)`);
    const apt = (...args: string[]) => run('apt-get', args, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 * 1024 * 1024, timeout: 240_000 });
    await apt('install', '-y', 'openssh-server').catch(async () => {
      log('install failed: running apt-get update, then the install again');
      await apt('update');
      await apt('install', '-y', 'openssh-server');
    });
    if (!existsSync(SSHD)) throw new Error(`${SSHD} still missing after apt-get install`);
  }
  if (!existsSync('/run/sshd')) {
    log('creating /run/sshd (sshd needs it; removed again at the end)');
    await fs.mkdir('/run/sshd', { mode: 0o755 });
    s.madeRunSshd = true;
  }
}

/** Starts `sshd -D -f CONFIG -e` on a free loopback port with its own host key and one bench key. */
async function startSshd(s: State): Promise<{ port: number; key: string; knownHosts: string }> {
  const hostKey = path.join(s.dir, 'ssh_host_ed25519_key');
  const key = path.join(s.dir, 'bench_key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-host', '-f', hostKey]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench', '-f', key]);
  const authorized = path.join(s.dir, 'authorized_keys');
  await fs.writeFile(authorized, await fs.readFile(`${key}.pub`), { mode: 0o600 });
  const port = await freePort();
  const config = path.join(s.dir, 'sshd_config');
  await fs.writeFile(
    config,
    [
      `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, `AuthorizedKeysFile ${authorized}`, 'PubkeyAuthentication yes',
      'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password', 'UsePAM no',
      `PidFile ${path.join(s.dir, 'sshd.pid')}`, 'StrictModes no', 'PrintMotd no', 'PrintLastLog no', 'LogLevel INFO', '',
    ].join('\n'),
  );
  const sshd = spawn(SSHD, ['-D', '-f', config, '-e'], { stdio: ['ignore', 'ignore', 'pipe'] });
  s.children.push(sshd);
  let err = '';
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      sshd.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.length > 20_000) err = err.slice(-10_000);
        if (/Server listening on 127\.0\.0\.1 port/.test(err)) resolve();
      });
      sshd.on('exit', (code) => reject(new Error(`sshd exited ${code}: ${err.trim()}`)));
    }),
    10_000,
    'sshd listening',
  );
  log(`sshd (pid ${sshd.pid}) listening on 127.0.0.1:${port}`);
  return { port, key, knownHosts: path.join(s.dir, 'known_hosts') };
}

/** The same client options on both paths. */
const sshOpts = (knownHosts: string): string[] =>
  ['-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=accept-new', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'LogLevel=ERROR'];

type PathName = 'berth' | 'direct';
/** berth: `ssh -tt … attach <session>` to the shell; direct: `ssh -tt … root@ docker exec -it … tmux attach` to our sshd. */
type Paths = Record<PathName, string>;
const PATHS: PathName[] = ['berth', 'direct'];

interface TermClient {
  child: ChildProcess;
  term: Term;
  exited: Promise<void>;
}

/** Runs `cmd` (constants, ports, ids and our temp paths only) under `script` with a 100×30 pty. */
function spawnTerm(s: State, name: string, cmd: string): TermClient {
  const child = spawn('script', ['-qfc', `stty cols ${COLS} rows ${ROWS}; exec ${cmd}`, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, TERM: 'xterm-256color' },
  });
  s.children.push(child);
  child.stdin?.on('error', () => undefined);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, term: childTerm(name, child), exited };
}

/** Ctrl-b d (tmux's detach, as an operator leaves), then a bounded wait for the client to exit. */
async function detach(s: State, t: TermClient): Promise<boolean> {
  t.term.write('\x02d');
  const ok = await withTimeout(t.exited, 5000, `${t.term.name} exit after Ctrl-b d`).then(() => true, () => false);
  if (!ok) await endChild(t.child, `${t.term.name} client`);
  s.children = s.children.filter((c) => c !== t.child);
  return ok;
}

/** A client on `cmd`, once the bash prompt is on its screen; resolves with it and the ms that took. */
async function attachTerm(s: State, name: string, cmd: string, timeoutMs = 15_000): Promise<{ t: TermClient; ms: number }> {
  const t0 = performance.now();
  const t = spawnTerm(s, name, cmd);
  const gone = t.exited.then(() => {
    throw new Error(`${name}: the client exited before the bash prompt; its output: ${JSON.stringify(visible(t.term.output).slice(-300))}`);
  });
  try {
    await Promise.race([t.term.waitVisible((x) => PROMPT.test(x), timeoutMs, 'the bash prompt'), gone]);
  } catch (err) {
    await endChild(t.child, `${name} client`);
    throw err;
  }
  gone.catch(() => undefined);
  return { t, ms: performance.now() - t0 };
}

const benchStart = performance.now();
/** A phase's progress line, with the seconds since the bench started. */
const phase = (msg: string): void => log(`${msg} (at ${round((performance.now() - benchStart) / 1000, 1)} s)`);

const ms0 = (x: number | undefined): string => (x === undefined ? '-' : `${round(x, 0)} ms`);

// ---- the measurements ----

type PerPath = Record<PathName, number[]>;

/** Attach to the running session: one value per run and path. */
async function benchAttach(s: State, p: Paths): Promise<PerPath> {
  const times: PerPath = { berth: [], direct: [] };
  let detachFailures = 0;
  for (let i = -1; i < ATTACH_RUNS; i++) {
    for (const name of PATHS) {
      const { t, ms } = await attachTerm(s, name, p[name]);
      if (i >= 0) times[name].push(ms);
      if (!(await detach(s, t))) detachFailures++;
      await sleep(QUICK ? 150 : 300);
    }
    log(`attach ${i >= 0 ? `${i + 1}/${ATTACH_RUNS}` : 'warm-up'}: berth ${ms0(times.berth[i])}, direct ${ms0(times.direct[i])}`);
  }
  if (detachFailures > 0) log(`${detachFailures} client(s) did not exit after Ctrl-b d (ended with a signal)`);
  return times;
}

/**
 * The echo's third path, the floor: the direct path with a bare Node relay process (relay.ts)
 * where each of berth's two Node processes stands, one on the TCP path before sshd (the shell's
 * place) and one on the Docker API socket (the agent's place).
 */
type EchoPath = PathName | 'floor';
const ECHO_PATHS: EchoPath[] = ['berth', 'direct', 'floor'];
type PerEchoPath = Record<EchoPath, number[]>;

/** Keystroke echo: each block's median, per path; the clients take turns, a block each. */
async function benchEcho(s: State, p: Record<EchoPath, string>): Promise<{ blocks: PerEchoPath; keys: PerEchoPath }> {
  const clients: TermClient[] = [];
  for (const name of ECHO_PATHS) clients.push((await attachTerm(s, name, p[name])).t);
  const terms = clients.map((c) => c.term);
  await settle(terms, 100, 3000);
  let k = 0;
  const nextKey = (): string => KEYS[k++ % KEYS.length] ?? 'x';
  const type = async (t: Term, n: number, into: number[] | null): Promise<void> => {
    for (let i = 0; i < n; i++) {
      into?.push(await t.keystroke(nextKey()));
      // The other clients' redraws of the same key arrive before the next one.
      await settle(terms, 3, 500);
    }
  };
  const clearLine = async (t: Term): Promise<void> => {
    t.write('\x15');
    await sleep(5);
    await settle(terms);
  };
  for (const t of terms) {
    await type(t, WARMUP_KEYS, null);
    await clearLine(t);
  }
  const keys: PerEchoPath = { berth: [], direct: [], floor: [] };
  const blocks: PerEchoPath = { berth: [], direct: [], floor: [] };
  const count = Math.ceil(KEYSTROKES / BLOCK);
  for (let blk = 0; blk < count; blk++) {
    // Each path goes first, second and third in turn.
    for (let i = 0; i < terms.length; i++) {
      const t = terms[(blk + i) % terms.length] as Term;
      const name = t.name as EchoPath;
      await type(t, BLOCK_WARMUP_KEYS, null);
      const block: number[] = [];
      await type(t, Math.min(BLOCK, KEYSTROKES - blk * BLOCK), block);
      keys[name].push(...block);
      blocks[name].push(quantile(block, 0.5));
      await clearLine(t);
    }
    if ((blk + 1) % 5 === 0 || blk === count - 1) {
      const med = (x: EchoPath): number => round(quantile(keys[x], 0.5));
      log(`echo block ${blk + 1}/${count}: medians so far berth ${med('berth')} ms, direct ${med('direct')} ms, floor ${med('floor')} ms`);
    }
  }
  for (const t of clients) await detach(s, t);
  return { blocks, keys };
}

/** Resolves with performance.now() at the first output of `child` from now on that shows `marker`. */
function watchFor(child: ChildProcess, marker: string, timeoutMs: number, what: string): Promise<number> {
  let tail = '';
  let onData = (_d: Buffer): void => undefined;
  const seen = new Promise<number>((resolve) => {
    onData = (d: Buffer): void => {
      // latin1: one character a byte, cheap; the marker is ASCII. The tail keeps a marker (or an
      // escape sequence inside it) cut between two reads.
      const text = tail + d.toString('latin1');
      if (visible(text).includes(marker)) resolve(performance.now());
      tail = text.slice(-64);
    };
    child.stdout?.on('data', onData);
  });
  return withTimeout(seen, timeoutMs, what).finally(() => child.stdout?.off('data', onData));
}

/**
 * Bulk output: the file is made once in the container; each run attaches one client, clears the
 * pane's history and screen, types the command, and times Enter → the end marker on its
 * terminal. Blocks alternate which path goes first.
 */
async function benchBulk(s: State, p: Paths, container: string): Promise<{ mbs: PerPath; sizeMb: number }> {
  const randomBytes = Math.floor((BULK_MB * 1024 * 1024 * 3 * 76) / (4 * 77));
  const made = await run('docker', ['exec', container, 'sh', '-c', `head -c ${randomBytes} /dev/urandom | base64 > ${BULK_FILE} && stat -c %s ${BULK_FILE}`], { timeout: 60_000 });
  const size = Number(made.stdout.trim());
  if (!Number.isFinite(size) || size <= 0) throw new Error(`bulk file not made: ${made.stdout} ${made.stderr}`);
  const sizeMb = size / (1024 * 1024);
  log(`bulk file ${round(sizeMb, 1)} MB of base64 (76 columns) in the session's home`);
  const timeoutMs = Math.max(30_000, (sizeMb / BULK_FLOOR_MBS) * 1000);
  const mbs: PerPath = { berth: [], direct: [] };
  const once = async (name: PathName): Promise<number> => {
    await run('docker', ['exec', container, 'tmux', 'clear-history', '-t', 'claude']);
    const { t } = await attachTerm(s, name, p[name]);
    try {
      const from = t.term.output.length;
      t.term.write('clear\r');
      await t.term.waitVisible((x) => PROMPT.test(x), 5000, 'the prompt after clear', from);
      await settle([t.term], 150, 2000);
      const typed = t.term.output.length;
      t.term.write(BULK_COMMAND);
      await t.term.waitVisible((x) => x.includes('echo END-$((40+2))'), 5000, 'the typed command', typed);
      await settle([t.term], 150, 2000);
      const seen = watchFor(t.child, BULK_END, timeoutMs, `${name}: ${BULK_END} after the cat`);
      const t0 = performance.now();
      t.term.write('\r');
      const dt = (await seen) - t0;
      await settle([t.term], 200, 10_000);
      return sizeMb / (dt / 1000);
    } finally {
      await detach(s, t);
    }
  };
  for (let blk = 0; blk < BULK_BLOCKS; blk++) {
    const order: PathName[] = blk % 2 === 0 ? ['berth', 'direct'] : ['direct', 'berth'];
    for (const name of order) mbs[name].push(await once(name));
    log(`bulk block ${blk + 1}/${BULK_BLOCKS}: berth ${round(mbs.berth[blk] ?? 0, 1)} MB/s, direct ${round(mbs.direct[blk] ?? 0, 1)} MB/s`);
  }
  await run('docker', ['exec', container, 'sh', '-c', `rm -f ${BULK_FILE}; tmux clear-history -t claude`]);
  return { mbs, sizeMb };
}

/** What `docker inspect` says of a session container, the parts a `docker run` repeats. */
interface Inspected {
  Config: { Image: string; Cmd: string[] | null; Env: string[] | null; User: string; WorkingDir: string; Hostname: string };
  HostConfig: {
    NetworkMode: string;
    Memory: number;
    NanoCpus: number;
    PidsLimit: number | null;
    CapDrop: string[] | null;
    SecurityOpt: string[] | null;
    IpcMode: string;
    CgroupnsMode?: string;
    ReadonlyRootfs: boolean;
    Tmpfs: Record<string, string> | null;
    Init: boolean | null;
  };
}

/** A word for sh, single-quoted. */
const shq = (w: string): string => `'${w.replace(/'/g, `'\\''`)}'`;

/**
 * The direct path's script (run by root through our sshd, with the container's name as $1): the
 * `docker run -d` berth's agent would do for this session, with the run's labels instead of
 * berth's (so the agent never takes it for its own), a home and status folder of its own and no
 * published port; then a bounded wait for tmux, then the attach.
 */
async function coldScript(s: State, container: string): Promise<string> {
  const [info] = JSON.parse((await run('docker', ['inspect', container])).stdout) as Inspected[];
  if (!info) throw new Error(`docker inspect ${container} gave nothing`);
  const c = info.Config;
  const h = info.HostConfig;
  const home = path.join(s.dir, 'cold-home');
  const status = path.join(s.dir, 'cold-status');
  const [uid = '', gid = uid] = c.User.split(':');
  for (const d of [home, status]) {
    await fs.mkdir(d, { recursive: true });
    await fs.chown(d, Number(uid), Number(gid));
  }
  const args = [
    '-d', ...testLabelArgs(s.runLabel), '--user', c.User, '--workdir', c.WorkingDir, '--hostname', c.Hostname,
    ...(c.Env ?? []).flatMap((e) => ['-e', e]),
    '-v', `${home}:/home/claude`, '--mount', `type=bind,source=${status},target=/run/berth/status`,
    '--network', h.NetworkMode,
    ...(h.Memory > 0 ? ['--memory', `${h.Memory}b`] : []),
    ...(h.NanoCpus > 0 ? ['--cpus', String(h.NanoCpus / 1e9)] : []),
    ...(h.PidsLimit ? ['--pids-limit', String(h.PidsLimit)] : []),
    ...(h.CapDrop ?? []).flatMap((cap) => ['--cap-drop', cap]),
    ...(h.SecurityOpt ?? []).flatMap((o) => ['--security-opt', o]),
    '--ipc', h.IpcMode || 'private',
    ...(h.CgroupnsMode ? ['--cgroupns', h.CgroupnsMode] : []),
    ...(h.ReadonlyRootfs ? ['--read-only'] : []),
    ...Object.entries(h.Tmpfs ?? {}).flatMap(([dir, opts]) => ['--tmpfs', opts ? `${dir}:${opts}` : dir]),
    ...(h.Init ? ['--init'] : []),
    '--restart', 'no', c.Image, ...(c.Cmd ?? []),
  ];
  const script = [
    'set -u',
    `c=$(docker run --name "$1" ${args.map(shq).join(' ')}) || exit 1`,
    'i=0',
    'until docker exec "$c" tmux has-session -t claude 2>/dev/null; do',
    '  i=$((i+1)); if [ "$i" -gt 100 ]; then echo "tmux not up" >&2; exit 1; fi; sleep 0.05',
    'done',
    'exec docker exec -it -e TERM=xterm-256color -e LANG=C.UTF-8 "$c" tmux attach-session -t claude',
    '',
  ].join('\n');
  const file = path.join(s.dir, 'cold.sh');
  await fs.writeFile(file, script, { mode: 0o700 });
  return file;
}

/** Enter → first screen of a stopped session, both paths, one value per run. */
async function benchCold(s: State, cluster: Cluster, sessionId: string, berthCmd: string, directCmd: (name: string) => string): Promise<PerPath> {
  const times: PerPath = { berth: [], direct: [] };
  const kill = async (): Promise<void> => {
    const r = await cluster.ssh('alice', ['kill', sessionId, '--yes', '--json'], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`kill failed: ${r.err}`);
  };
  for (let i = QUICK ? 0 : -1; i < COLD_RUNS; i++) {
    await kill();
    await sleep(200);
    const ours = await attachTerm(s, 'berth', berthCmd, 30_000);
    if (i >= 0) times.berth.push(ours.ms);
    await detach(s, ours.t);
    const name = `${s.runLabel}-cold-${i + 1}`;
    await sleep(200);
    try {
      const direct = await attachTerm(s, 'direct', directCmd(name), 30_000);
      if (i >= 0) times.direct.push(direct.ms);
      await detach(s, direct.t);
    } finally {
      await run('docker', ['rm', '-f', name]).catch((err: unknown) => log(`docker rm -f ${name}: ${String(err)}`));
    }
    log(`cold ${i >= 0 ? `${i + 1}/${COLD_RUNS}` : 'warm-up'}: berth ${ms0(times.berth[i])}, direct ${ms0(times.direct[i])}`);
  }
  await kill();
  return times;
}

/** The shell process's resident set (VmRSS) in MB. */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return round(Number(m[1]) / 1024, 1);
}

/**
 * A change made at an agent (a rename through its own RPC, not through the shell) until every
 * open menu shows it: the agent's event, the shell's view, 50 redraws and 50 SSH writes. Per run
 * the slowest menu, and every menu's time.
 */
async function benchPropagation(cluster: Cluster, menus: OpenMenu[]): Promise<{ worst: number[]; each: number[] }> {
  const client = await cluster.agents[0]!.connect();
  try {
    const first = 'z'.repeat(10);
    const s = await client.call('create', { name: first }, 'bench');
    const id = s.kind === 'session' ? s.meta.id : '';
    await Promise.all(menus.map((m) => m.waitFor(first, 15_000, performance.now())));
    const worst: number[] = [];
    const each: number[] = [];
    for (let i = 0; i < PROPAGATION_RUNS; i++) {
      // Every letter differs from the last name's, so the menu redraws the whole name.
      const name = String.fromCharCode(97 + (i % 20)).repeat(10);
      const t0 = performance.now();
      const seen = menus.map((m) => m.waitFor(name, 15_000, t0));
      await client.call('edit', { session: id, name }, 'bench');
      const times = await Promise.all(seen);
      each.push(...times);
      worst.push(Math.max(...times));
      await sleep(100);
    }
    await client.call('delete', { session: id }, 'bench');
    return { worst, each };
  } finally {
    client.close();
  }
}

/**
 * The real berth-hook fired in the session's container, alternating payloads so that the activity
 * flips between permission and working; t0 is the container's clock just before berth-hook, the
 * end is when the last of the menus shows the new word on the session's row.
 */
async function benchHook(s: State, menus: OpenMenu[], session: { id: string; name: string; container: string }): Promise<{ worst: number[]; each: number[]; hook: number[] }> {
  const loop = new HookLoop(session.container);
  s.children.push(loop.proc);
  const id8 = session.id.slice(0, 8);
  const cell = (word: Word) => (row: string): boolean => row.includes(` ${word} `);
  const worst: number[] = [];
  const each: number[] = [];
  const hook: number[] = [];
  let word: Word = 'permission';
  try {
    for (let i = -HOOK_WARMUP; i < HOOK_ROUNDS; i++) {
      const already = menus.filter((m) => cell(word)(m.row(id8, session.name))).length;
      if (already > 0) throw new Error(`${already} menu(s) show ${word} on ${session.name}'s row before the hook that reports it`);
      const offset = wallOffset();
      const shown = Promise.all(menus.map((m) => m.waitRow(id8, session.name, cell(word), HOOK_TIMEOUT_MS)));
      const [fired, ats] = await Promise.all([loop.fire(PAYLOADS[word], HOOK_TIMEOUT_MS), shown]);
      const times = ats.map((at) => offset + at - fired.t0);
      if (i >= 0) {
        each.push(...times);
        worst.push(Math.max(...times));
        hook.push(fired.hookDone - fired.t0);
      }
      log(`hook ${i >= 0 ? `${i + 1}/${HOOK_ROUNDS}` : 'warm-up'} ${word}: all ${menus.length} menus after ${round(Math.max(...times), 1)} ms (first ${round(Math.min(...times), 1)} ms)`);
      word = word === 'permission' ? 'working' : 'permission';
      await sleep(HOOK_GAP_MS + Math.random() * HOOK_JITTER_MS);
    }
  } finally {
    await endChild(loop.proc, 'the hook loop');
  }
  return { worst, each, hook };
}

interface MenuResults {
  idleMb: number;
  samples: number[];
  afterMb: number;
  connectSeconds: number;
  change: { worst: number[]; each: number[] };
  hook: { worst: number[]; each: number[]; hook: number[] };
}

/** 50 operators open the menu: the shell's memory, then the change and hook figures on those menus. */
async function benchMenus(s: State, cluster: Cluster, session: { id: string; name: string; container: string }): Promise<MenuResults> {
  const pid = cluster.shell.proc.pid;
  if (!pid) throw new Error('no shell pid');
  await sleep(QUICK ? 500 : 2000);
  const idleMb = rssMb(pid);
  const key = readFileSync(path.join(cluster.dir, 'key_alice'));
  const t0 = performance.now();
  const menus = await openMenus(s.clients, cluster.shell.port, 'alice', key, OPERATORS);
  const connectSeconds = round((performance.now() - t0) / 1000, 1);
  log(`${OPERATORS} operators in the menu after ${connectSeconds} s`);
  // RSS moves with the garbage collector (every agent's stats event redraws every menu): sample it.
  await sleep(QUICK ? 300 : 1000);
  const samples: number[] = [];
  for (let i = 0; i < RSS_SAMPLES; i++) {
    samples.push(rssMb(pid));
    await sleep(150);
  }
  log(`shell RSS with ${OPERATORS} menus: median ${round(quantile(samples, 0.5), 1)} MB (idle ${idleMb} MB)`);
  log(`agent change → ${OPERATORS} open menus`);
  const change = await benchPropagation(cluster, menus);
  log(`hook in the container → ${OPERATORS} open menus`);
  const hook = await benchHook(s, menus, session);
  for (const c of s.clients.splice(0)) c.end();
  await sleep(QUICK ? 1000 : 3000);
  const afterMb = rssMb(pid);
  return { idleMb, samples, afterMb, connectSeconds, change, hook };
}

// ---- the report ----

/** Creates and starts a session running bash; its id and container. */
async function startSession(cluster: Cluster, name: string): Promise<{ id: string; name: string; container: string }> {
  const created = await cluster.ssh('alice', ['create', '--name', name, '--json'], { timeoutMs: 60_000 });
  if (created.code !== 0) throw new Error(`create failed: ${created.err}`);
  const id = (JSON.parse(created.out) as { id: string }).id;
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) throw new Error(`unexpected session id ${JSON.stringify(id)}`);
  const restarted = await cluster.ssh('alice', ['restart', id, '--json'], { timeoutMs: 60_000 });
  if (restarted.code !== 0) throw new Error(`restart failed: ${restarted.err}`);
  const container = (JSON.parse(restarted.out) as { container: { id: string; running: boolean } | null }).container;
  if (!container?.running || !/^[0-9a-f]{12,64}$/.test(container.id)) throw new Error(`restart gave no running container: ${restarted.out}`);
  log(`session ${name} (${id.slice(0, 8)}) running in container ${container.id.slice(0, 12)}`);
  return { id, name, container: container.id };
}

const fmt = (x: number, unit: string): string => {
  const digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2;
  return `${round(x, digits)}${unit ? ` ${unit}` : ''}`;
};

/** "median (min–max)" of a figure's values. */
function spread(v: number[], unit: string): string {
  const med = fmt(quantile(v, 0.5), unit);
  return v.length > 1 ? `${med} (${fmt(Math.min(...v), '')}–${fmt(Math.max(...v), '')})` : med;
}

function tableRow(f: Figure): string {
  const r = ratios(f);
  const t = f.target;
  const mark = met(f);
  const target = t ? `${t.of === 'ratio' ? 'ratio' : 'median'} ${t.op === '<=' ? '≤' : '≥'} ${t.value}${t.of === 'value' ? ` ${f.unit}` : ''} ${mark ? '✓' : '✗'}` : '—';
  return `| ${f.label} (n=${f.values.length}) | ${spread(f.values, f.unit)} | ${f.direct ? spread(f.direct.values, f.unit) : '—'} | ${r.length ? spread(r, '') : '—'} | ${target} |`;
}

// ---- the run ----

async function main(): Promise<void> {
  const runLabel = `bench-shell-${randomUUID().slice(0, 8)}`;
  const s: State = { cluster: null, children: [], clients: [], dir: '', runLabel, madeRunSshd: false, done: false };
  const watchdog = setTimeout(() => {
    log(`overall time limit (${OVERALL_LIMIT_MS / 60_000} min) reached; cleaning up`);
    void cleanupAll(s).finally(() => process.exit(1));
  }, OVERALL_LIMIT_MS).unref();
  process.once('SIGINT', () => {
    log('interrupted; cleaning up');
    void cleanupAll(s).finally(() => process.exit(130));
  });
  const started = performance.now();
  try {
    s.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-shell-bench-'));
    await ensureSshd(s);
    const sshd = await startSshd(s);
    log(`starting a cluster (1 agent, shell; run label ${runLabel})${QUICK ? ' — quick' : ''}`);
    // Info, as a host runs them: debug lines would be work on the measured path.
    s.cluster = await startCluster({ runLabel, agents: 1, shellConfig: { log: { level: 'info' } }, agentConfig: { log: { level: 'info' } } });
    const cluster = s.cluster;
    await cluster.agentsOnline();
    const sess = await startSession(cluster, 'bench-shell');
    // A second session for the cold start; the direct path repeats how its container was made.
    const cold = await startSession(cluster, 'bench-cold');
    const directCold = await coldScript(s, cold.container);
    // Constants, ports, ids Docker/berth gave us and our temp paths only.
    const berthAttach = (id: string): string => ['ssh', '-tt', ...cluster.sshArgs('alice', ['-o', 'LogLevel=ERROR']), 'attach', id].join(' ');
    const sshTo = (port: number): string[] => ['ssh', '-tt', '-p', String(port), '-i', sshd.key, ...sshOpts(sshd.knownHosts), '-o', 'ConnectTimeout=10', 'root@127.0.0.1'];
    const directSsh = sshTo(sshd.port);
    const directAttach = ['docker', 'exec', '-it', '-e', 'TERM=xterm-256color', '-e', 'LANG=C.UTF-8', sess.container, 'tmux', 'attach-session', '-t', 'claude'];
    const paths: Paths = {
      berth: berthAttach(sess.id),
      direct: [...directSsh, ...directAttach].join(' '),
    };
    // The floor: a bare Node process where the shell stands (before sshd) and where the agent
    // stands (before Docker's API socket); the same sshd, client and docker CLI.
    const floorPort = await freePort();
    const floorSocket = path.join(s.dir, 'docker-relay.sock');
    s.children.push(await startRelay(`tcp:${floorPort}`, `tcp:${sshd.port}`));
    s.children.push(await startRelay(`unix:${floorSocket}`, `unix:${DOCKER_SOCKET}`));
    const floor = [...sshTo(floorPort), 'env', `DOCKER_HOST=unix://${floorSocket}`, ...directAttach].join(' ');

    phase('1/7 attach latency to the running session (first, on a quiet session)');
    const attach = await benchAttach(s, paths);
    phase('2/7 keystroke echo');
    const echo = await benchEcho(s, { ...paths, floor });
    phase(`3/7 bulk output, ${BULK_BLOCKS} block(s) of ${BULK_MB} MB`);
    const bulk = await benchBulk(s, paths, sess.container);
    const clients = await run('docker', ['exec', sess.container, 'tmux', 'list-clients', '-F', 'x']).then(
      (r) => r.stdout.split('\n').filter((l) => l.trim() === 'x').length,
      () => -1,
    );
    log(`tmux clients left attached after every client detached: ${clients}`);
    phase(`4/7 Enter → first screen of a stopped session, ${COLD_RUNS} runs`);
    const coldTimes = await benchCold(s, cluster, cold.id, berthAttach(cold.id), (name) => [...directSsh, 'sh', directCold, name].join(' '));
    phase(`5–7/7 ${OPERATORS} operators in the menu: memory, an agent change, a hook`);
    const menus = await benchMenus(s, cluster, sess);

    const direct = (label: string, values: number[]) => ({ label, values });
    const blocks = echo.blocks.berth.length;
    const figures: Figure[] = [
      {
        key: 'shell.attach', label: 'attach to a running session, spawn of ssh → bash prompt', unit: 'ms', values: attach.berth,
        direct: direct('sshd + `docker exec -it … tmux attach`', attach.direct), target: TARGETS.attach,
        note: `${ATTACH_RUNS} runs after a warm-up, paths alternating; the direct path is mostly sshd's key exchange and login`,
      },
      {
        key: 'shell.echo', label: 'keystroke echo through `ssh -tt … attach` → shell → agent → tmux', unit: 'ms', values: echo.blocks.berth,
        direct: direct('`ssh -tt` to sshd → `docker exec -it … tmux attach`', echo.blocks.direct), target: TARGETS.echo,
        note: `${blocks} interleaved blocks of ${BLOCK} keys, a block's median each (all keys: berth ${round(quantile(echo.keys.berth, 0.5))} ms, direct ${round(quantile(echo.keys.direct, 0.5))} ms)`,
      },
      {
        key: 'shell.echo.floor', label: 'keystroke echo through berth, against the floor: the direct path with a bare Node relay process where each of berth\'s two stands', unit: 'ms', values: echo.blocks.berth,
        direct: direct('`ssh -tt` → relay → sshd → `docker exec -it` → relay → Docker\'s socket → tmux', echo.blocks.floor), target: TARGETS.echo,
        note: 'the same blocks; the ratio is what berth\'s own work (SSH in the shell and at the agent, the Docker stream at the agent, the terminal filter) adds to a round trip beyond being two Node processes',
      },
      {
        key: 'shell.echo.relays', label: 'keystroke echo through the floor, against the direct path: what two bare Node processes on the path cost', unit: 'ms', values: echo.blocks.floor,
        direct: direct('`ssh -tt` to sshd → `docker exec -it … tmux attach`', echo.blocks.direct),
        note: 'the same blocks; relay.ts is read → write and nothing else',
      },
      {
        key: 'shell.bulk', label: `\`cat\` of ${round(bulk.sizeMb, 1)} MB of text in the pane, Enter → end marker`, unit: 'MB/s', values: bulk.mbs.berth,
        direct: direct('the same through sshd + `docker exec -it … tmux attach`', bulk.mbs.direct), target: TARGETS.bulk,
        note: `${BULK_BLOCKS} interleaved block(s), one client attached at a time, pane history cleared before each run`,
      },
      {
        key: 'shell.cold', label: 'Enter → first screen of a stopped session (container start on attach)', unit: 'ms', values: coldTimes.berth,
        direct: direct('sshd + `docker run -d` of the session image, wait for tmux, `docker exec -it … tmux attach`', coldTimes.direct), target: TARGETS.cold,
        note: `${COLD_RUNS} runs${QUICK ? '' : ' after a warm-up'}, paths alternating; berth's session killed through the CLI before each, each direct container removed after`,
      },
      {
        key: 'shell.rss50', label: `shell RSS with ${OPERATORS} operators in the menu (120×40)`, unit: 'MB', values: menus.samples, target: TARGETS.rss50,
        note: `${RSS_SAMPLES} samples 150 ms apart (largest ${Math.max(...menus.samples)} MB); idle ${menus.idleMb} MB, ${menus.afterMb} MB after they left`,
      },
      {
        key: 'shell.change50', label: `a change at an agent (rename through its RPC) → shown in all ${OPERATORS} menus`, unit: 'ms', values: menus.change.worst, target: TARGETS.change50,
        note: `the slowest menu of each run; any one menu: median ${round(quantile(menus.change.each, 0.5), 1)} ms`,
      },
      {
        key: 'shell.hook50', label: `berth-hook in the container → the row's new activity in all ${OPERATORS} menus`, unit: 'ms', values: menus.hook.worst, target: TARGETS.hook50,
        note: `t0 from the container's clock; the slowest menu of each round (any one menu: median ${round(quantile(menus.hook.each, 0.5), 1)} ms; berth-hook itself ${round(quantile(menus.hook.hook, 0.5), 1)} ms)`,
      },
    ];
    const seconds = round((performance.now() - started) / 1000, 1);
    const load = os.loadavg().map((x) => round(x, 1));
    const notes = [
      `Both OpenSSH clients run as \`ssh -tt\` under \`script -qfc\` (pty ${COLS}×${ROWS}); the direct path's sshd is Debian's, started by the bench on 127.0.0.1.`,
      `The ${OPERATORS} menus are ssh2 clients in the bench process, each replayed on a screen model to read the session's row; they logged in within ${menus.connectSeconds} s.`,
      `tmux clients left attached after every bench client detached: ${clients}.`,
      `Measured on ${os.cpus().length} CPUs, load average ${load.join(' / ')} (1/5/15 min), Node ${process.version}.`,
    ];
    const out = [
      '',
      '| metric | berth | direct | berth / direct | target |',
      '|---|---|---|---|---|',
      ...figures.map(tableRow),
      '',
      'Values: median (min–max) over blocks or runs. ' + figures.map((f) => `${f.key}: ${f.note ?? ''}.`).join(' '),
      '',
      ...notes,
      'Menu redraw (2,000 sessions on 10 agents) is measured by `npm run bench:menu`.',
      '',
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    const setup =
      `1 agent, ${OPERATORS} operators; echo ${KEYSTROKES} keys in ${blocks} blocks, attach ${ATTACH_RUNS} runs, bulk ${BULK_BLOCKS}×${BULK_MB} MB, ` +
      `cold ${COLD_RUNS} runs, change ${PROPAGATION_RUNS} runs, hook ${HOOK_ROUNDS} rounds${QUICK ? ' (quick)' : ''}`;
    printReport({ bench: 'shell', setup, figures, notes, seconds });
  } finally {
    log('cleaning up');
    await cleanupAll(s);
    clearTimeout(watchdog);
    log(`done in ${round((performance.now() - started) / 1000, 1)} s`);
  }
}

runBench(main, log);
