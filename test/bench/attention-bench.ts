/**
 * Attention benchmark (measurements, not tests): `npm run bench:attention [-- --quick]`.
 *
 * A Claude Code hook fired inside a real session container until the operator sees the session's
 * new activity in an open menu. Two agent processes and the shell on loopback, one running session
 * on each (`--command bash`: nothing in it reports by itself), the menu through the OpenSSH client
 * in a tmux pane. Each round, a shell loop in one container (one `docker exec` per container,
 * started before the rounds, so no exec's start or end falls inside a round) reads the clock with
 * `date +%s%N` (t0: host and containers share the clock) and pipes a documented hook payload into
 * the image's real berth-hook. The payloads alternate, so the activity flips between permission and
 * working; the rounds alternate between the agents. t1 is the first read of the menu's screen
 * (tmux capture-pane every POLL_MS, through a control-mode client: no process per read) that shows
 * the session's row with the new word. The same event's line from `ssh … watch --json` splits the
 * path: events (berth-hook → agent → shell → CLI) against menu redraw and terminal.
 *
 * Progress on stderr; then a markdown table and one JSON line on stdout. Exit 0 unless something
 * broke (a missed target is reported). Loopback only; every wait and loop is bounded; everything
 * made here (processes, the tmux server, the cluster, containers of this run's label) is removed
 * at the end, also after a failure.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Cluster, startCluster } from '../helpers/cluster';
import { removeTestContainers } from '../helpers/docker';
import { Tmux } from '../helpers/tmux';
import { HookLoop, PAYLOADS, Word } from './shell-menus';
import { log, printReport, round, runBench, sleep, Stats, stats, wallOffset, withTimeout } from './lib';

// ---- parameters ----

const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 10 : 40;
const WARMUP = 3;
const POLL_MS = 5;
const ROUND_TIMEOUT_MS = 5000;
/**
 * Between rounds: past the agent's least gap between two reads of one session's reports (100 ms),
 * with jitter so the rounds do not lock to the phase of any timer on the path.
 */
const GAP_MS = 250;
const JITTER_MS = 100;
const COLS = 160;
const ROWS = 30;
const OVERALL_LIMIT_MS = (QUICK ? 5 : 10) * 60_000;
const TARGET_MS = 200;
const MENU_TITLE = 'alice (admin)';
const MENU = 'alice';

// ---- processes ----

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

/** Calls `cb` with each complete line of `stream` and performance.now() at the chunk it ended in. */
function onLines(stream: NodeJS.ReadableStream | null, cb: (line: string, at: number) => void): void {
  let buf = '';
  stream?.on('data', (d: Buffer) => {
    const at = performance.now();
    buf += d.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      cb(buf.slice(0, nl).replace(/\r$/, ''), at);
      buf = buf.slice(nl + 1);
    }
    if (buf.length > 1_000_000) buf = '';
  });
}

/**
 * A tmux control-mode client (`tmux -C`), attached to a session of its own so it never sizes the
 * menu's window: commands go in on stdin and each answer comes back between %begin and %end, so a
 * read of the pane is a write and a read, not a process.
 */
class TmuxControl {
  readonly proc: ChildProcess;
  private block: string[] | null = null;
  private readonly waiting: Array<{ resolve(lines: string[]): void; reject(err: Error): void }> = [];
  /** Resolves with the answer to the attach itself, the first one tmux sends. */
  readonly ready: Promise<string[]>;

  constructor(socket: string, session: string) {
    this.proc = spawn('tmux', ['-u', '-L', socket, '-C', 'attach-session', '-t', session], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdin?.on('error', () => undefined);
    this.ready = new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    onLines(this.proc.stdout, (line) => this.onLine(line));
    this.proc.on('exit', (code) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`tmux control client exited ${code}`));
    });
  }

  /** Runs one tmux command; resolves with its output lines, rejects on tmux's error or the client's exit. */
  command(cmd: string): Promise<string[]> {
    if (!alive(this.proc)) return Promise.reject(new Error('tmux control client is gone'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.proc.stdin?.write(`${cmd}\n`);
    });
  }

  private onLine(line: string): void {
    if (this.block === null) {
      // Outside an answer: a notification, not ours to read.
      if (/^%begin \d+ \d+ \d+$/.test(line)) this.block = [];
      return;
    }
    const end = /^%(end|error) \d+ \d+ \d+$/.exec(line);
    if (!end) {
      this.block.push(line);
      return;
    }
    const lines = this.block;
    this.block = null;
    const w = this.waiting.shift();
    if (end[1] === 'end') w?.resolve(lines);
    else w?.reject(new Error(`tmux: ${lines.join(' ')}`));
  }
}

/** `ssh … watch --json` (no pty): each session line, stamped on arrival. */
class WatchStream {
  readonly proc: ChildProcess;
  readonly synced: Promise<void>;
  private readonly waiters = new Set<(id: string, state: string | null, at: number) => void>();
  private tail = '';

  constructor(args: string[]) {
    // stdin stays open: the watch lasts until the channel closes.
    this.proc = spawn('ssh', [...args, 'watch', '--json'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdin?.on('error', () => undefined);
    this.proc.stderr?.on('data', (d: Buffer) => (this.tail = (this.tail + d.toString()).slice(-500)));
    let synced: () => void = () => undefined;
    this.synced = new Promise((r) => (synced = r));
    onLines(this.proc.stdout, (line, at) => {
      let m: { type?: string; session?: { id: string; activity: { state: string } | null } };
      try {
        m = JSON.parse(line) as typeof m;
      } catch {
        return log(`watch --json gave a line that is not JSON: ${JSON.stringify(line.slice(0, 200))}`);
      }
      if (m.type === 'synced') synced();
      if (m.type !== 'session' || !m.session) return;
      for (const w of [...this.waiters]) w(m.session.id, m.session.activity?.state ?? null, at);
    });
  }

  /** Resolves with performance.now() at the first line from now on that shows session `id` with activity `state`. */
  next(id: string, state: Word): Promise<number> {
    const seen = new Promise<number>((resolve) => {
      const w = (sid: string, st: string | null, at: number): void => {
        if (sid !== id || st !== state) return;
        this.waiters.delete(w);
        resolve(at);
      };
      this.waiters.add(w);
    });
    return withTimeout(seen, ROUND_TIMEOUT_MS, `watch --json line with ${state}; its stderr: ${JSON.stringify(this.tail)}`);
  }
}

interface State {
  runLabel: string;
  cluster: Cluster | null;
  tmux: Tmux | null;
  /** The tmux server's socket file, which kill-server leaves behind. */
  tmuxSocket: string;
  children: ChildProcess[];
  done: boolean;
}

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
  for (const child of s.children) await endChild(child, `child process ${child.spawnfile}`);
  s.tmux?.kill();
  if (s.tmuxSocket) await fs.rm(s.tmuxSocket, { force: true }).catch(() => undefined);
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
}

// ---- the menu's screen ----

/** The menu's row of session `name` (names here are unlike any other text on the screen). */
const rowOf = (screen: string[], name: string): string => screen.find((l) => l.includes(` ${name} `)) ?? '';

/** What reading the screen cost and how often it was read, over every round. */
const reads = { costs: [] as number[], gaps: [] as number[] };

/** Reads the menu's screen every POLL_MS until `pred` holds (bounded); resolves with performance.now() after that read. */
async function pollScreen(ctl: TmuxControl, pred: (screen: string[]) => boolean, what: string, timeoutMs: number, record = true): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let next = performance.now();
  let last = 0;
  for (;;) {
    const before = performance.now();
    const screen = await withTimeout(ctl.command(`capture-pane -p -t ${MENU}`), 2000, 'capture-pane');
    const at = performance.now();
    if (record) {
      reads.costs.push(at - before);
      if (last > 0) reads.gaps.push(at - last);
    }
    last = at;
    if (pred(screen)) return at;
    if (at > deadline) throw new Error(`${what} not on the menu within ${timeoutMs} ms; screen:\n${screen.join('\n')}`);
    next += POLL_MS;
    await sleep(Math.max(0, next - performance.now()));
  }
}

// ---- the measurement ----

interface Target {
  agent: string;
  id: string;
  name: string;
  loop: HookLoop;
  /** The activity its row shows now. */
  word: Word | null;
}

interface Round {
  agent: string;
  /** t0 → the row with the new word on the menu's screen. */
  menu: number;
  /** t0 → the watch --json line with it. */
  watch: number;
  /** t0 → berth-hook exited and the next `date` read the clock. */
  hook: number;
}

async function oneRound(ctl: TmuxControl, watch: WatchStream, t: Target): Promise<Round> {
  const word: Word = t.word === 'permission' ? 'working' : 'permission';
  const offset = wallOffset();
  const shows = (screen: string[]): boolean => rowOf(screen, t.name).includes(` ${word} `);
  const watched = watch.next(t.id, word);
  // The first read is under way before the payload goes, so the first change it can see is this one.
  const shown = pollScreen(ctl, shows, `${t.name} ${word}`, ROUND_TIMEOUT_MS);
  const fired = t.loop.fire(PAYLOADS[word], ROUND_TIMEOUT_MS);
  const [hook, shownAt, watchedAt] = await Promise.all([fired, shown, watched]);
  t.word = word;
  return { agent: t.agent, menu: offset + shownAt - hook.t0, watch: offset + watchedAt - hook.t0, hook: hook.hookDone - hook.t0 };
}

/** Creates and starts a session on `agent` running bash; its id and container. */
async function startSession(cluster: Cluster, agent: string, name: string): Promise<{ id: string; container: string }> {
  const created = await cluster.ssh('alice', ['create', '--name', name, '--agent', agent, '--command', 'bash', '--json'], { timeoutMs: 60_000 });
  if (created.code !== 0) throw new Error(`create on ${agent} failed: ${created.err}`);
  const id = (JSON.parse(created.out) as { id: string }).id;
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) throw new Error(`unexpected session id ${JSON.stringify(id)}`);
  const restarted = await cluster.ssh('alice', ['restart', id, '--json'], { timeoutMs: 60_000 });
  if (restarted.code !== 0) throw new Error(`restart on ${agent} failed: ${restarted.err}`);
  const container = (JSON.parse(restarted.out) as { container: { id: string; running: boolean } | null }).container;
  if (!container?.running || !/^[0-9a-f]{12,64}$/.test(container.id)) throw new Error(`restart gave no running container: ${restarted.out}`);
  log(`session ${name} (${id.slice(0, 8)}) on ${agent} running in container ${container.id.slice(0, 12)}`);
  return { id, container: container.id };
}

const ms = (x: Stats): string => `${x.min} / **${x.median}** / ${x.p90} / ${x.max}`;

async function main(): Promise<void> {
  const runLabel = `bench-attention-${randomUUID().slice(0, 8)}`;
  const s: State = { runLabel, cluster: null, tmux: null, tmuxSocket: '', children: [], done: false };
  const watchdog = setTimeout(() => {
    log(`overall time limit (${OVERALL_LIMIT_MS / 60_000} min) reached; cleaning up`);
    void cleanupAll(s).finally(() => process.exit(1));
  }, OVERALL_LIMIT_MS).unref();
  // Ctrl-C cleans up too.
  process.once('SIGINT', () => {
    log('interrupted; cleaning up');
    void cleanupAll(s).finally(() => process.exit(130));
  });
  const started = performance.now();
  try {
    log(`starting a cluster (2 agents, shell; run label ${runLabel})`);
    // Info, as a host runs them: debug lines would be work on the measured path.
    s.cluster = await startCluster({ runLabel, agents: 2, shellConfig: { log: { level: 'info' } }, agentConfig: { log: { level: 'info' } } });
    const cluster = s.cluster;
    await cluster.agentsOnline();
    const targets: Target[] = [];
    for (const a of cluster.agents) {
      const name = `attn-${a.id}`;
      const { id, container } = await startSession(cluster, a.id, name);
      const loop = new HookLoop(container);
      s.children.push(loop.proc);
      targets.push({ agent: a.id, id, name, loop, word: null });
    }

    // The operator's menu, and a control client on a session of its own to read it.
    const socket = `berth-${runLabel}`;
    s.tmux = new Tmux(socket);
    s.tmux.start(MENU, ['ssh', ...cluster.sshArgs('alice', ['-t', '-o', 'LogLevel=ERROR'])], COLS, ROWS);
    s.tmuxSocket = execFileSync('tmux', ['-L', socket, 'display-message', '-p', '#{socket_path}'], { encoding: 'utf8' }).trim();
    s.tmux.start('reader', ['sleep', 'infinity'], 80, 24);
    const ctl = new TmuxControl(socket, 'reader');
    s.children.push(ctl.proc);
    await withTimeout(ctl.ready, 5000, 'tmux control client');
    const bothRunning = (screen: string[]): boolean =>
      screen.some((l) => l.includes(MENU_TITLE)) && targets.every((t) => / R /.test(rowOf(screen, t.name)));
    await pollScreen(ctl, bothRunning, 'the menu with both sessions running', 20_000, false);
    log('menu open with both sessions');

    const watch = new WatchStream(cluster.sshArgs('alice', ['-o', 'LogLevel=ERROR']));
    s.children.push(watch.proc);
    await withTimeout(watch.synced, 20_000, 'watch --json synced');

    const rounds: Round[] = [];
    for (let i = -WARMUP; i < ROUNDS; i++) {
      const t = targets[(i + WARMUP) % targets.length]!;
      const r = await oneRound(ctl, watch, t);
      if (i >= 0) rounds.push(r);
      const what = i >= 0 ? `round ${i + 1}/${ROUNDS}` : `warm-up ${i + WARMUP + 1}/${WARMUP}`;
      log(`${what} ${t.agent} ${t.word}: menu ${round(r.menu, 1)} ms, watch line ${round(r.watch, 1)} ms, berth-hook ${round(r.hook, 1)} ms`);
      await sleep(GAP_MS + Math.random() * JITTER_MS);
    }

    const pick = (f: (r: Round) => number, agent?: string): Stats => stats(rounds.filter((r) => !agent || r.agent === agent).map(f));
    const overall = pick((r) => r.menu);
    const met = overall.median <= TARGET_MS;
    const rows: Array<[string, string, string]> = [
      ...targets.map((t): [string, string, string] => [`hook in a container on ${t.agent} → row shows it in the menu (n=${pick((r) => r.menu, t.agent).n})`, ms(pick((r) => r.menu, t.agent)), '—']),
      [`… both agents (n=${overall.n})`, ms(overall), `≤ ${TARGET_MS} ms median ${met ? '✓' : '✗'}`],
      ...targets.map((t): [string, string, string] => [`hook → \`ssh … watch --json\` line, ${t.agent}`, ms(pick((r) => r.watch, t.agent)), '—']),
      ['hook → `watch --json` line, both agents (events path)', ms(pick((r) => r.watch)), '—'],
      ['menu − watch line, per round (menu redraw + SSH + terminal)', ms(pick((r) => r.menu - r.watch)), '—'],
      ['berth-hook itself: t0 → it exited (its rename is before; one more `date`, ~1 ms, after)', ms(pick((r) => r.hook)), '—'],
    ];
    const load = os.loadavg().map((x) => round(x, 1));
    const gaps = stats(reads.gaps);
    const costs = stats(reads.costs);
    const out = [
      '',
      `| metric (ms: min / median / p90 / max) | value | target |`,
      '|---|---|---|',
      ...rows.map(([m, v, tg]) => `| ${m} | ${v} | ${tg} |`),
      '',
      `Resolution: the menu's screen read every ${POLL_MS} ms (tmux capture-pane through a control-mode client; median ${gaps.median} ms, p90 ${gaps.p90} ms between reads, a read ${costs.median} ms). ` +
        `${ROUNDS} rounds after ${WARMUP} warm-up, alternating agents and permission/working, ${GAP_MS}–${GAP_MS + JITTER_MS} ms apart; menu ${COLS}×${ROWS}.`,
      `Measured on ${os.cpus().length} CPUs, load average ${load.join(' / ')} (1/5/15 min), Node ${process.version}.`,
      '',
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    printReport({
      bench: 'attention',
      setup: `2 agents, one operator's menu over OpenSSH read every ${POLL_MS} ms; ${ROUNDS} rounds`,
      figures: [
        { key: 'attention.menu', label: 'hook in a container → the row shows it in the menu', unit: 'ms', values: rounds.map((r) => r.menu), target: { of: 'value', op: '<=', value: TARGET_MS }, note: 'one value per round' },
        { key: 'attention.watch', label: '… hook → the `watch --json` line (the events path)', unit: 'ms', values: rounds.map((r) => r.watch) },
        { key: 'attention.hook', label: '… berth-hook itself', unit: 'ms', values: rounds.map((r) => r.hook) },
      ],
      seconds: (performance.now() - started) / 1000,
    });
  } finally {
    log('cleaning up');
    await cleanupAll(s);
    clearTimeout(watchdog);
    log(`done in ${round((performance.now() - started) / 1000, 1)} s`);
  }
}

runBench(main, log);
