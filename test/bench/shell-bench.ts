/**
 * Shell benchmark (measurements, not tests): `npm run bench:shell`.
 *
 *  1. keystroke echo round trip through `ssh -tt … attach REF` (OpenSSH → shell → agent → tmux)
 *     against what an operator would do without berth: OpenSSH to an sshd this bench starts on
 *     loopback, running `docker exec -it … tmux attach-session -t claude`; the same session,
 *     interleaved in blocks;
 *  2. attach latency to a running session (spawn of ssh → the bash prompt on screen), both paths;
 *  3. the shell process's memory with 50 operators in the menu (ssh2 clients in this process).
 *
 * Both OpenSSH clients run the same way: `ssh -tt` under util-linux `script -qfc` (a pty of
 * 100×30 on their stdin, set with stty), so both put their terminal in raw mode and ask for a pty.
 * Progress on stderr; then a markdown table and one JSON line on stdout. Exit 0 unless something
 * broke (a missed target is reported). Loopback only; every wait is bounded; everything made here
 * (ssh clients, sshd, cluster, containers of this run's label, temp dirs) is removed at the end.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Client } from 'ssh2';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { log, quantile, round, runBench, settle, sleep, Stats, stats, Term, visible, withTimeout } from './lib';
import { freePort } from '../helpers/ports';
import { removeTestContainers } from '../helpers/docker';

const run = promisify(execFile);

// ---- parameters ----

const KEYSTROKES = 300;
const BLOCK = 10;
const WARMUP_KEYS = 10;
const BLOCK_WARMUP_KEYS = 2;
const KEY_TIMEOUT_MS = 5000;
const ATTACH_RUNS = 10;
const OPERATORS = 50;
const PROPAGATION_RUNS = 10;
const COLS = 100;
const ROWS = 30;
const SSHD = '/usr/sbin/sshd';
const OVERALL_LIMIT_MS = 10 * 60_000;
/** Letters that neither escape sequences (stripped anyway) nor tmux's default status line draw. */
const KEYS = 'ijkqswxz';
const PROMPT = /claude@\S+\$/;
const MENU_TITLE = 'alice (admin)';
const TARGETS = { echoRatio: 1.3, attachMs: 300, memoryMb: 300, propagationMs: 200 };

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

/** berth: `ssh -tt … attach <session>` to the shell; direct: `ssh -tt … root@ docker exec -it … tmux attach` to our sshd. */
type Paths = Record<'berth' | 'direct', string>;

/** Runs `cmd` (constants, ports, ids and our temp paths only) under `script` with a 100×30 pty. */
function spawnTerm(s: State, name: string, cmd: string): { child: ChildProcess; term: Term; exited: Promise<void> } {
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
async function detach(s: State, t: { child: ChildProcess; term: Term; exited: Promise<void> }): Promise<boolean> {
  t.term.write('\x02d');
  const ok = await withTimeout(t.exited, 5000, `${t.term.name} exit after Ctrl-b d`).then(() => true, () => false);
  if (!ok) await endChild(t.child, `${t.term.name} client`);
  s.children = s.children.filter((c) => c !== t.child);
  return ok;
}

// ---- the measurements ----

async function benchAttach(s: State, p: Paths) {
  const times: Record<'berth' | 'direct', number[]> = { berth: [], direct: [] };
  let detachFailures = 0;
  for (let i = -1; i < ATTACH_RUNS; i++) {
    for (const name of ['berth', 'direct'] as const) {
      const t0 = performance.now();
      const t = spawnTerm(s, name, p[name]);
      await t.term.waitVisible((x) => PROMPT.test(x), 15_000, 'the bash prompt');
      const dt = performance.now() - t0;
      if (i >= 0) times[name].push(dt);
      if (!(await detach(s, t))) detachFailures++;
      await sleep(300);
    }
    const last = (k: 'berth' | 'direct'): string => (i >= 0 ? `${round(times[k][i] ?? 0, 0)} ms` : 'warm-up');
    log(`attach ${i + 1}/${ATTACH_RUNS}: berth ${last('berth')}, direct ${last('direct')}`);
  }
  return { berth: stats(times.berth), direct: stats(times.direct), detachFailures };
}

async function benchEcho(s: State, p: Paths) {
  const b = spawnTerm(s, 'berth', p.berth);
  await b.term.waitVisible((x) => PROMPT.test(x), 15_000, 'the bash prompt');
  const d = spawnTerm(s, 'direct', p.direct);
  await d.term.waitVisible((x) => PROMPT.test(x), 15_000, 'the bash prompt');
  const both = [b.term, d.term];
  await settle(both, 100, 3000);
  let k = 0;
  const nextKey = (): string => KEYS[k++ % KEYS.length] ?? 'x';
  const type = async (t: Term, n: number, into: number[] | null): Promise<void> => {
    for (let i = 0; i < n; i++) {
      into?.push(await t.keystroke(nextKey()));
      // The other client's redraw of the same key arrives before the next one.
      await settle(both, 3, 500);
    }
  };
  const clearLine = async (t: Term): Promise<void> => {
    t.write('\x15');
    await sleep(5);
    await settle(both);
  };
  for (const t of both) {
    await type(t, WARMUP_KEYS, null);
    await clearLine(t);
  }
  const times: Record<string, number[]> = { berth: [], direct: [] };
  const blocks = Math.ceil(KEYSTROKES / BLOCK);
  for (let blk = 0; blk < blocks; blk++) {
    for (const t of both) {
      await type(t, BLOCK_WARMUP_KEYS, null);
      await type(t, Math.min(BLOCK, KEYSTROKES - blk * BLOCK), times[t.name] ?? null);
      await clearLine(t);
    }
    if ((blk + 1) % 5 === 0 || blk === blocks - 1) {
      const med = (x: string): number => round(quantile(times[x] ?? [], 0.5));
      log(`echo block ${blk + 1}/${blocks}: medians berth ${med('berth')} ms, direct ${med('direct')} ms`);
    }
  }
  for (const t of [b, d]) await detach(s, t);
  const berth = stats(times.berth ?? []);
  const direct = stats(times.direct ?? []);
  return { berth, direct, ratio: round(berth.median / direct.median) };
}

/** The shell process's resident set (VmRSS) in MB. */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return round(Number(m[1]) / 1024, 1);
}

/** One operator in the menu: ssh2 client, pty 120×40, shell request; resolves once the title shows. */
/** An operator's open menu: waits for text to appear on it from now on. */
interface OpenMenu {
  /** Resolves with the ms from `t0` until `text` shows in the menu's output after this call. */
  waitFor(text: string, timeoutMs: number, t0: number): Promise<number>;
}

function openMenu(s: State, port: number, privateKey: Buffer): Promise<OpenMenu> {
  const conn = new Client();
  s.clients.push(conn);
  return withTimeout(
    new Promise<OpenMenu>((resolve, reject) => {
      conn.on('error', reject);
      conn.on('ready', () => {
        conn.shell({ rows: 40, cols: 120, term: 'xterm-256color' }, (err, stream) => {
          if (err) return reject(err);
          let out = '';
          const waiters = new Set<() => void>();
          stream.on('data', (d: Buffer) => {
            out += d.toString('utf8');
            if (out.length > 200_000) out = out.slice(-50_000);
            for (const w of [...waiters]) w();
          });
          const menu: OpenMenu = {
            waitFor(text, timeoutMs, t0) {
              const from = out.length;
              return withTimeout(
                new Promise<number>((done) => {
                  const check = (): void => {
                    if (!visible(out.slice(Math.max(0, from - 4))).includes(text)) return;
                    waiters.delete(check);
                    done(performance.now() - t0);
                  };
                  waiters.add(check);
                }),
                timeoutMs,
                `"${text}" in a menu`,
              );
            },
          };
          let titled = false;
          waiters.add(() => {
            if (!titled && visible(out).includes(MENU_TITLE)) {
              titled = true;
              resolve(menu);
            }
          });
          stream.on('close', () => reject(new Error(`menu channel closed before the title; got ${JSON.stringify(out.slice(-200))}`)));
        });
      });
      conn.connect({ host: '127.0.0.1', port, username: 'alice', privateKey, hostVerifier: () => true, readyTimeout: 20_000 });
    }),
    30_000,
    'menu title',
  );
}

/**
 * A change made at an agent (a rename through its own RPC, not through the shell) until every
 * open menu shows it: the agent's event, the shell's view, 50 redraws and 50 SSH writes.
 */
async function benchPropagation(cluster: Cluster, menus: OpenMenu[]) {
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
    return { lastMenu: stats(worst), anyMenu: stats(each) };
  } finally {
    client.close();
  }
}

async function benchMemory(s: State, cluster: Cluster) {
  const pid = cluster.shell.proc.pid;
  if (!pid) throw new Error('no shell pid');
  await sleep(2000);
  const beforeMb = rssMb(pid);
  const key = readFileSync(path.join(cluster.dir, 'key_alice'));
  const t0 = performance.now();
  let next = 0;
  const menus: OpenMenu[] = [];
  const worker = async (): Promise<void> => {
    while (next < OPERATORS) {
      next++;
      menus.push(await openMenu(s, cluster.shell.port, key));
    }
  };
  await Promise.all(Array.from({ length: 10 }, worker));
  const connectSeconds = round((performance.now() - t0) / 1000, 1);
  log(`${OPERATORS} operators in the menu after ${connectSeconds} s`);
  // RSS moves with the garbage collector (every agent's stats event redraws every menu): sample it.
  await sleep(1000);
  const samples: number[] = [];
  for (let i = 0; i < 20; i++) {
    samples.push(rssMb(pid));
    await sleep(150);
  }
  const withMb = round(quantile(samples, 0.5), 1);
  const withMaxMb = Math.max(...samples);
  log(`agent change → ${OPERATORS} open menus`);
  const propagation = await benchPropagation(cluster, menus);
  for (const c of s.clients.splice(0)) c.end();
  await sleep(3000);
  const afterMb = rssMb(pid);
  return { beforeMb, withMb, withMaxMb, perOperatorMb: round((withMb - beforeMb) / OPERATORS, 2), afterMb, connectSeconds, propagation };
}

// ---- the run ----

async function main(): Promise<void> {
  const runLabel = `bench-shell-${randomUUID().slice(0, 8)}`;
  const s: State = { cluster: null, children: [], clients: [], dir: '', runLabel, madeRunSshd: false, done: false };
  const watchdog = setTimeout(() => {
    log(`overall time limit (${OVERALL_LIMIT_MS / 60_000} min) reached; cleaning up`);
    void cleanupAll(s).finally(() => process.exit(1));
  }, OVERALL_LIMIT_MS).unref();
  const started = performance.now();
  try {
    s.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-shell-bench-'));
    await ensureSshd(s);
    const sshd = await startSshd(s);
    log(`starting a cluster (1 agent, shell; run label ${runLabel})`);
    s.cluster = await startCluster({ runLabel, agents: 1, shellConfig: { log: { level: 'info' } } });
    const cluster = s.cluster;
    const agents = async (): Promise<string> => (await cluster.ssh('alice', ['agents', '--json'])).out;
    await until('the agent online', agents, (out) => out.includes('"status":"online"'), 20_000);
    const created = await cluster.ssh('alice', ['create', '--name', 'bench-shell', '--json']);
    if (created.code !== 0) throw new Error(`create failed: ${created.err}`);
    const id = (JSON.parse(created.out) as { id: string }).id;
    const restarted = await cluster.ssh('alice', ['restart', id, '--json'], { timeoutMs: 60_000 });
    if (restarted.code !== 0) throw new Error(`restart failed: ${restarted.err}`);
    const container = (JSON.parse(restarted.out) as { container: { id: string; running: boolean } | null }).container;
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) throw new Error(`unexpected session id ${JSON.stringify(id)}`);
    if (!container?.running || !/^[0-9a-f]{12,64}$/.test(container.id)) throw new Error(`restart gave no running container: ${restarted.out}`);
    log(`session ${id} running in container ${container.id.slice(0, 12)}`);
    // Constants, ports, ids Docker/berth gave us and our temp paths only.
    const paths: Paths = {
      berth: ['ssh', '-tt', ...cluster.sshArgs('alice', ['-o', 'LogLevel=ERROR']), 'attach', id].join(' '),
      direct: [
        'ssh', '-tt', '-p', String(sshd.port), '-i', sshd.key, ...sshOpts(sshd.knownHosts), '-o', 'ConnectTimeout=10', 'root@127.0.0.1',
        'docker', 'exec', '-it', '-e', 'TERM=xterm-256color', '-e', 'LANG=C.UTF-8', container.id, 'tmux', 'attach-session', '-t', 'claude',
      ].join(' '),
    };

    log('2/3 attach latency to the running session (run first, on a quiet session)');
    const attach = await benchAttach(s, paths);
    log('1/3 keystroke echo');
    const echo = await benchEcho(s, paths);
    const clients = await run('docker', ['exec', container.id, 'tmux', 'list-clients', '-F', 'x']).then(
      (r) => r.stdout.split('\n').filter((l) => l.trim() === 'x').length,
      () => -1,
    );
    log(`tmux clients left attached after every client detached: ${clients}`);
    log(`3/3 shell memory with ${OPERATORS} operators in the menu`);
    const mem = await benchMemory(s, cluster);

    const mark = (ok: boolean): string => (ok ? '✓' : '✗');
    const ms = (x: Stats): string => `median ${x.median} ms, p90 ${x.p90} ms`;
    const rows: Array<[string, string, string]> = [
      [`keystroke echo, berth: \`ssh -tt … attach\` → shell → agent → tmux (n=${echo.berth.n})`, ms(echo.berth), '—'],
      [`keystroke echo, direct: \`ssh -tt root@sshd docker exec -it … tmux attach\` (n=${echo.direct.n})`, ms(echo.direct), '—'],
      ['echo berth / direct (medians)', `${echo.ratio}× (p90s ${round(echo.berth.p90 / echo.direct.p90)}×)`, `< ${TARGETS.echoRatio} ${mark(echo.ratio < TARGETS.echoRatio)}`],
      [`attach to a running session, spawn of ssh → bash prompt, berth (n=${attach.berth.n})`, ms(attach.berth), `< ${TARGETS.attachMs} ms: median ${mark(attach.berth.median < TARGETS.attachMs)}, p90 ${mark(attach.berth.p90 < TARGETS.attachMs)}`],
      [`… the same, direct OpenSSH + docker exec (n=${attach.direct.n})`, ms(attach.direct), '—'],
      ['shell RSS, no operator connected', `${mem.beforeMb} MB`, '—'],
      [`shell RSS, ${OPERATORS} operators in the menu (120×40)`, `${mem.withMb} MB (+${round(mem.withMb - mem.beforeMb, 1)} MB, ${mem.perOperatorMb} MB per operator; largest of 20 samples ${mem.withMaxMb} MB)`, `< ${TARGETS.memoryMb} MB ${mark(mem.withMaxMb < TARGETS.memoryMb)}`],
      [`shell RSS 3 s after the ${OPERATORS} left`, `${mem.afterMb} MB`, '—'],
      [
        `a change at an agent → shown in all ${OPERATORS} open menus (n=${mem.propagation.lastMenu.n})`,
        `median ${mem.propagation.lastMenu.median} ms, p90 ${mem.propagation.lastMenu.p90} ms (any one menu: median ${mem.propagation.anyMenu.median} ms)`,
        `< ${TARGETS.propagationMs} ms ${mark(mem.propagation.lastMenu.p90 < TARGETS.propagationMs)}`,
      ],
    ];
    const load = os.loadavg().map((x) => round(x, 1));
    const out = [
      '', '| metric | value | target |', '|---|---|---|', ...rows.map(([m, v, t]) => `| ${m} | ${v} | ${t} |`), '',
      'Menu redraw (2,000 sessions on 10 agents) is measured by `npm run bench:menu`.',
      `Both OpenSSH clients run as \`ssh -tt\` under \`script -qfc\` (pty ${COLS}×${ROWS}). Measured on ${os.cpus().length} CPUs, load average ${load.join(' / ')} (1/5/15 min), Node ${process.version}.`,
      '',
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    const json = {
      bench: 'shell', at: new Date().toISOString(), node: process.version, cpus: os.cpus().length, loadavg: load,
      echo: { ...echo, targetRatio: TARGETS.echoRatio, met: echo.ratio < TARGETS.echoRatio },
      attach: { ...attach, targetMs: TARGETS.attachMs, met: attach.berth.median < TARGETS.attachMs },
      memory: { ...mem, operators: OPERATORS, targetMb: TARGETS.memoryMb, met: mem.withMaxMb < TARGETS.memoryMb },
      tmuxClientsLeft: clients, totalSeconds: round((performance.now() - started) / 1000, 1),
    };
    process.stdout.write(`${JSON.stringify(json)}\n`);
  } finally {
    log('cleaning up');
    await cleanupAll(s);
    clearTimeout(watchdog);
    log(`done in ${round((performance.now() - started) / 1000, 1)} s`);
  }
}

runBench(main, log);
