/**
 * Scale benchmark (measurements, not tests): berth with many agents and sessions on one host.
 *
 *   node dist/test/bench/scale-bench.js [--quick] [--steps 10,50,100] [--seed store|rpc] [--profile-shell DIR]
 *
 * For each step of N agents (default 10, 50, 100; 100 sessions each, nearly all stopped): N real
 * `berth agent serve` processes and one real `berth shell serve` with all N enrolled, and
 *  1. the shell's start-up: spawn → every agent online and every session listed (`agents --json`
 *     polled over one ssh2 connection);
 *  2. the resident memory of the shell (after that, and with 50 menus open) and of one agent;
 *  3. `list --json` over the exec CLI (ssh2 client, request → channel closed), count checked,
 *     and the text `list` beside it;
 *  4. one operator's menu redrawing the whole table (PageDown / PageUp), key → end of its output;
 *  5. a rename through the CLI (`edit REF --name`) → the new name in all 50 open menus, with the
 *     edit's own reply time and the shell's CPU time per rename; and the shell's CPU use with the
 *     50 menus open and nothing changing;
 * and, once, `list --json` with 2,000 sessions on 10 agents. Agents started for a step stay for
 * the next (the shell is started afresh each step). Ends with a growth table: each figure's
 * median per step and its growth exponent between the first and the last step.
 *
 * `--quick`: one step of 10 agents, fewer repetitions (under 30 s). Progress on stderr; a
 * markdown table, then the report line (lib.ts printReport) as the last line of stdout. Exit 0
 * when it ran (a missed target is reported), 1 when something broke. Loopback only; every wait is
 * bounded, and a watchdog bounds the run; processes, containers (by the run's label), the run's
 * network and temp folders are removed at the end, also after a failure or an interrupt.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { Client } from 'ssh2';
import { SessionEntry } from '../../common/protocol';
import { Figure, ReportTable, log, met, printReport, quantile, round, runBench, sleep, withTimeout } from './lib';
import { CREATE_AGENTS_AT_ONCE, CREATE_POOL, Fleet, SeedMode, pool } from './scale-fleet';
import { ExecResult, MenuClient, connectOperator, exec } from './scale-ssh';

// ---- parameters ----

interface Options {
  quick: boolean;
  steps: number[];
  seed: SeedMode;
  profileDir: string | null;
}

function options(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const stepsText = value('--steps');
  const steps = stepsText ? stepsText.split(',').map((s) => Number(s.trim())) : quick ? [10] : [10, 50, 100];
  if (steps.length === 0 || steps.some((n) => !Number.isInteger(n) || n < 1 || n > 200)) throw new Error(`--steps: whole numbers from 1 to 200, comma-separated (got ${JSON.stringify(stepsText)})`);
  if (steps.some((n, i) => i > 0 && n <= (steps[i - 1] ?? 0))) throw new Error('--steps must grow from one to the next');
  const seed = value('--seed') ?? 'store';
  if (seed !== 'store' && seed !== 'rpc') throw new Error('--seed is store or rpc');
  return { quick, steps, seed, profileDir: value('--profile-shell') ?? null };
}

const OPT = ((): Options => {
  try {
    return options(process.argv.slice(2));
  } catch (err) {
    log(`${err instanceof Error ? err.message : String(err)}\nusage: node dist/test/bench/scale-bench.js [--quick] [--steps 10,50,100] [--seed store|rpc] [--profile-shell DIR]`);
    return process.exit(1);
  }
})();
const QUICK = OPT.quick;
const PER_AGENT = 100;
/** The extra step: `list` with this many sessions on this many agents. */
const LIST_BIG = { agents: 10, perAgent: 200 };
const AGENT_BATCH = 10;
/** A handful of running sessions in the whole cluster (containers cost). */
const RUNNING = QUICK ? 1 : 3;
const LIST_WARMUP = 2;
const LIST_CALLS = QUICK ? 5 : 10;
const REDRAW_WARMUP = 2;
const REDRAW_KEYS = QUICK ? 4 : 10;
/** A redraw is over once the menu printed nothing for this long. */
const REDRAW_QUIET_MS = 60;
const MENUS = 50;
const MENUS_AT_ONCE = 10;
const RENAME_ROUNDS = QUICK ? 3 : 10;
const IDLE_CPU_MS = QUICK ? 1000 : 5000;
/** Between polls of `agents --json` while the shell starts. */
const SYNC_POLL_MS = 50;
const SYNC_TIMEOUT_MS = 180_000;
const MENU_TIMEOUT_MS = 120_000;
const ROUND_TIMEOUT_MS = 120_000;
const OVERALL_LIMIT_MS = QUICK ? 120_000 : 30 * 60_000;
/** Memory kept free when deciding whether the next step's agents fit. */
const MEMORY_MARGIN_MB = 2048;
const TARGETS = { list2000Ms: 150, menu50Ms: 200 };
const MENU_TITLE = 'alice (admin)';
const KEYS = { down: '\x1b[B', pageDown: '\x1b[6~', pageUp: '\x1b[5~' };

// ---- process figures ----

const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Resident memory of `pid` in MB (VmRSS). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** CPU time (user + system) `pid` has used, in ms (clock-tick resolution). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** The median of `n` RSS samples of `pid`, `everyMs` apart (the garbage collector moves it). */
async function sampledRss(pid: number, n: number, everyMs: number): Promise<number> {
  const v: number[] = [];
  for (let i = 0; i < n; i++) {
    v.push(rssMb(pid));
    if (i < n - 1) await sleep(everyMs);
  }
  return round(quantile(v, 0.5), 1);
}

/** MemAvailable from /proc/meminfo, in MB. */
function availableMb(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 1024 : os.freemem() / 1048576;
}

// ---- the measurements ----

interface StepResult {
  agents: number;
  sessions: number;
  startSeconds: number;
  seedSeconds: number;
  onlineMs: number;
  syncedMs: number;
  /** The reply of the last poll that did not see it synced yet (a lower bound of `syncedMs`), and the last poll's own time. */
  syncedAfterMs: number;
  lastPollMs: number;
  listeningMs: number;
  polls: number;
  listMs: number[];
  listTextMs: number[];
  listBytes: number;
  redrawMs: number[];
  menusOpenSeconds: number;
  menu50Ms: number[];
  /** The rename's own exec: request → channel closed. */
  editMs: number[];
  /** The shell's CPU ms per rename round (all its redraws included). */
  changeCpuMs: number[];
  shellRssMb: number;
  shellRssMenusMb: number;
  agentRssMb: number;
  /** The shell's CPU use (% of one core) with the menus open and nothing changing. */
  idleCpuPct: number;
}

interface State {
  fleet: Fleet | null;
  clients: Client[];
  menus: MenuClient[];
  /** The one cleanup, once begun: whoever asks for it next waits for the same. */
  cleaning: Promise<void> | null;
}

/** Ends every operator and the fleet (processes, containers, network, folders). Idempotent; never throws. */
function cleanup(s: State): Promise<void> {
  s.cleaning ??= (async () => {
    for (const m of s.menus.splice(0)) m.close();
    for (const c of s.clients.splice(0)) c.end();
    await s.fleet?.dispose();
  })();
  return s.cleaning;
}

/** Ends this step's operators (menus and connections) and its shell. */
async function endStep(s: State): Promise<void> {
  for (const m of s.menus.splice(0)) m.close();
  for (const c of s.clients.splice(0)) c.end();
  await s.fleet?.stopShell();
}

/** `list --json` parsed, with a check of its exit code. */
function parseList(r: ExecResult): Array<{ id: string; name: string | null; state: string; activity: unknown }> {
  if (r.code !== 0) throw new Error(`list exited ${r.code}: ${r.err.trim().slice(0, 300)}`);
  return JSON.parse(r.out) as Array<{ id: string; name: string | null; state: string; activity: unknown }>;
}

/**
 * Starts the shell and polls `agents --json` until all `agents` are online and list `sessions`
 * sessions in all (synced), timed from the spawn. The poll that first sees it bounds it from
 * above; the reply of the poll before it from below (`syncedAfterMs`). When every agent came
 * online is read from the shell's own log (its links log `agent online`, ms resolution).
 */
async function startAndSync(s: State, fleet: Fleet, agents: number, sessions: number) {
  const shell = await fleet.startShell();
  const conn = await connectOperator(shell.port, fleet.aliceKey, s.clients);
  let polls = 0;
  let last = '';
  let before = shell.listeningAt;
  for (;;) {
    const r = await exec(conn, 'agents --json', 30_000);
    const at = performance.now();
    polls++;
    if (r.code !== 0) throw new Error(`agents --json exited ${r.code}: ${r.err.trim()}`);
    const list = JSON.parse(r.out) as Array<{ id: string; status: string; sessions: number }>;
    const online = list.filter((a) => a.status === 'online');
    const listed = list.reduce((n, a) => n + a.sessions, 0);
    last = `${online.length}/${list.length} online, ${listed} sessions`;
    if (online.length === agents && listed === sessions) {
      // The log lines of the last links may still be in the pipe.
      for (let i = 0; i < 100 && online.some((a) => !shell.onlineWall.has(a.id)); i++) await sleep(20);
      const times = online.map((a) => shell.onlineWall.get(a.id));
      if (times.some((t) => t === undefined)) throw new Error('the shell logged no `agent online` for some agent it lists online');
      const onlineMs = Math.max(...(times as number[])) - shell.spawnedWall;
      return { conn, shell, onlineMs, syncedMs: at - shell.spawnedAt, syncedAfterMs: before - shell.spawnedAt, lastPollMs: r.ms, listeningMs: shell.listeningAt - shell.spawnedAt, polls };
    }
    if (at - shell.spawnedAt > SYNC_TIMEOUT_MS) throw new Error(`shell not synced within ${SYNC_TIMEOUT_MS / 1000} s: ${last}`);
    before = at;
    await sleep(SYNC_POLL_MS);
  }
}

/** `list --json`: warm-ups, then timed calls, each one's count checked. */
async function benchList(conn: Client, expected: number, calls: number) {
  const times: number[] = [];
  let bytes = 0;
  let rows: ReturnType<typeof parseList> = [];
  for (let i = 0; i < LIST_WARMUP + calls; i++) {
    const r = await exec(conn, 'list --json', 60_000);
    rows = parseList(r);
    if (rows.length !== expected) throw new Error(`list --json gave ${rows.length} sessions, expected ${expected}`);
    bytes = Buffer.byteLength(r.out);
    if (i >= LIST_WARMUP) times.push(r.ms);
  }
  return { times, bytes, rows };
}

/** The same listing as a text table (`list`): the rows without the JSON shapes. */
async function benchListText(conn: Client, calls: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < LIST_WARMUP + calls; i++) {
    const r = await exec(conn, 'list', 60_000);
    if (r.code !== 0) throw new Error(`list exited ${r.code}: ${r.err.trim().slice(0, 300)}`);
    if (i >= LIST_WARMUP) times.push(r.ms);
  }
  return times;
}

/**
 * Where the menus' selection and the rename go. In the menu's default order (attention) the
 * sessions with an activity (the running ones) come first, then the others in creation order,
 * as `list` gives them. The selection goes to the first stopped session without one, so no
 * open menu previews a running session (a preview refreshes every second); the rename is of the
 * next such session, a few rows below, on every menu's first page.
 */
function menuPlaces(rows: ReturnType<typeof parseList>) {
  const active = rows.filter((r) => r.activity !== null && r.activity !== undefined).length;
  const quiet = rows.filter((r) => r.activity === null || r.activity === undefined);
  const first = quiet.findIndex((r) => r.state === 'stopped');
  const second = quiet.findIndex((r, i) => i > first && r.state === 'stopped');
  const target = quiet[second];
  if (first < 0 || !target) throw new Error('no two stopped sessions without activity to select and rename');
  return { downs: active + first, target };
}

/** One menu, its selection moved `downs` rows; resolves once it is drawn and quiet. */
async function openMenu(s: State, port: number, key: string, name: string, sessions: number, downs: number): Promise<MenuClient> {
  const conn = await connectOperator(port, key, s.clients);
  const menu = await MenuClient.open(name, conn, MENU_TITLE, MENU_TIMEOUT_MS);
  s.menus.push(menu);
  await menu.waitFor(`sessions ${sessions}`, 0, MENU_TIMEOUT_MS);
  if (downs > 0) menu.write(KEYS.down.repeat(downs));
  await menu.quiet(REDRAW_QUIET_MS, 30_000);
  return menu;
}

/** PageDown and PageUp in turn (each repaints the table's whole page), key → end of output. */
async function benchRedraw(menu: MenuClient): Promise<number[]> {
  const times: number[] = [];
  // An even number of keys in all: the selection ends where it began.
  const total = REDRAW_WARMUP + REDRAW_KEYS + ((REDRAW_WARMUP + REDRAW_KEYS) % 2);
  for (let i = 0; i < total; i++) {
    const ms = await menu.timeKeys(i % 2 === 0 ? KEYS.pageDown : KEYS.pageUp, REDRAW_QUIET_MS, 60_000);
    if (i >= REDRAW_WARMUP && times.length < REDRAW_KEYS) times.push(ms);
  }
  return times;
}

/** Renames through the CLI and times until every menu shows the new name: per round, the slowest menu. */
async function benchRename(conn: Client, menus: MenuClient[], target: string, shellPid: number) {
  const slowest: number[] = [];
  const cpu: number[] = [];
  const edit: number[] = [];
  for (let i = 0; i < RENAME_ROUNDS; i++) {
    // Nine letters, each unlike the last name's: the menu repaints the whole cell (same width as the others).
    const name = String.fromCharCode(97 + (i % 20)).repeat(9);
    const marks = menus.map((m) => m.mark());
    const c0 = cpuMs(shellPid);
    const t0 = performance.now();
    const seen = menus.map((m, k) => m.waitFor(name, marks[k] ?? 0, ROUND_TIMEOUT_MS));
    const edited = exec(conn, `edit ${target} --name ${name}`, ROUND_TIMEOUT_MS);
    const times = await Promise.all(seen);
    const r = await edited;
    if (r.code !== 0) throw new Error(`edit exited ${r.code}: ${r.err.trim()}`);
    slowest.push(Math.max(...times) - t0);
    edit.push(r.ms);
    await Promise.all(menus.map((m) => m.quiet(REDRAW_QUIET_MS, 30_000)));
    cpu.push(cpuMs(shellPid) - c0);
    log(`rename ${i + 1}/${RENAME_ROUNDS}: all ${menus.length} menus after ${round(slowest[i] ?? 0, 0)} ms (first ${round(Math.min(...times) - t0, 0)} ms, edit's reply ${round(r.ms, 0)} ms), shell CPU ${round(cpu[i] ?? 0, 0)} ms`);
    await sleep(100);
  }
  return { slowest, cpu, edit };
}

async function runStep(s: State, fleet: Fleet, n: number): Promise<StepResult> {
  const g = await fleet.growTo(n, AGENT_BATCH, { mode: OPT.seed, perAgent: PER_AGENT });
  await startRunning(fleet);
  const sessions = fleet.sessionsOn(n);
  await fleet.enrol(n);
  log(`step ${n}: shell start-up with ${n} agents, ${sessions} sessions`);
  const sync = await startAndSync(s, fleet, n, sessions);
  const pid = sync.shell.proc.pid ?? 0;
  log(`step ${n}: listening ${round(sync.listeningMs, 0)} ms, all online ${round(sync.onlineMs, 0)} ms, synced ${round(sync.syncedMs, 0)} ms after spawn (${sync.polls} polls)`);
  await sleep(1000);
  const shellRssMb = await sampledRss(pid, 5, 200);
  const agentPid = fleet.agents[0]?.proc.pid ?? 0;
  const agentRssMb = await sampledRss(agentPid, 5, 100);
  log(`step ${n}: shell RSS ${shellRssMb} MB, ${fleet.agents[0]?.id} RSS ${agentRssMb} MB`);

  const list = await benchList(sync.conn, sessions, LIST_CALLS);
  const listText = await benchListText(sync.conn, LIST_CALLS);
  log(`step ${n}: list --json (${round(list.bytes / 1e6, 1)} MB) median ${round(quantile(list.times, 0.5), 1)} ms; list (text) ${round(quantile(listText, 0.5), 1)} ms`);
  const places = menuPlaces(list.rows);

  const m0 = performance.now();
  const first = await openMenu(s, sync.shell.port, fleet.aliceKey, 'menu-1', sessions, places.downs);
  // A preview capture its first draw asked for (row 0 may be a running session) lands meanwhile, and redraws.
  await first.quiet(300, 5000);
  const redrawMs = await benchRedraw(first);
  log(`step ${n}: menu redraw (PageDown/PageUp) median ${round(quantile(redrawMs, 0.5), 1)} ms`);
  const others = Array.from({ length: MENUS - 1 }, (_, i) => i + 2);
  const menus: MenuClient[] = [first];
  await pool(others, MENUS_AT_ONCE, async (k) => {
    menus.push(await openMenu(s, sync.shell.port, fleet.aliceKey, `menu-${k}`, sessions, places.downs));
  });
  const menusOpenSeconds = round((performance.now() - m0) / 1000, 1);
  await Promise.all(menus.map((m) => m.quiet(200, 30_000)));
  log(`step ${n}: ${menus.length} menus open after ${menusOpenSeconds} s`);
  const shellRssMenusMb = await sampledRss(pid, 10, 200);
  const c0 = cpuMs(pid);
  const i0 = performance.now();
  await sleep(IDLE_CPU_MS);
  const idleCpuPct = round(((cpuMs(pid) - c0) / (performance.now() - i0)) * 100, 1);
  log(`step ${n}: shell RSS with ${menus.length} menus ${shellRssMenusMb} MB; idle CPU ${idleCpuPct}%`);
  const rename = await benchRename(sync.conn, menus, places.target.id, pid);
  await endStep(s);
  return {
    agents: n,
    sessions,
    ...g,
    onlineMs: sync.onlineMs,
    syncedMs: sync.syncedMs,
    syncedAfterMs: sync.syncedAfterMs,
    lastPollMs: sync.lastPollMs,
    listeningMs: sync.listeningMs,
    polls: sync.polls,
    listMs: list.times,
    listTextMs: listText,
    listBytes: list.bytes,
    redrawMs,
    menusOpenSeconds,
    menu50Ms: rename.slowest,
    editMs: rename.edit,
    changeCpuMs: rename.cpu,
    shellRssMb,
    shellRssMenusMb,
    agentRssMb,
    idleCpuPct,
  };
}

/** The running sessions: the last session of each of the first RUNNING agents, started through the agent's RPC. */
async function startRunning(fleet: Fleet): Promise<void> {
  const targets = fleet.agents.slice(0, RUNNING);
  await pool(targets, RUNNING, async (a) => {
    const client = await withTimeout(a.connect(), 15_000, `connect to ${a.id}`);
    try {
      const all = (await withTimeout(client.call('list', {}), 30_000, 'list')).sessions as SessionEntry[];
      if (all.some((e) => e.container?.running)) return;
      const last = all.filter((e) => e.kind === 'session').sort((x, y) => (x.kind === 'session' && y.kind === 'session' ? x.meta.name.localeCompare(y.meta.name) : 0)).pop();
      if (!last || last.kind !== 'session') throw new Error(`${a.id} has no session to start`);
      await withTimeout(client.call('restart', { session: last.meta.id }), 60_000, `restart on ${a.id}`);
      log(`started ${last.meta.name} on ${a.id}`);
    } finally {
      client.close();
    }
  });
}

/** `list --json` with LIST_BIG sessions: the first agents topped up through their RPC, a shell with only them. */
async function runListBig(s: State, fleet: Fleet): Promise<{ times: number[]; bytes: number; syncedMs: number }> {
  const { agents, perAgent } = LIST_BIG;
  await fleet.growTo(agents, AGENT_BATCH, { mode: OPT.seed, perAgent: PER_AGENT });
  await fleet.createSessions(fleet.agents.slice(0, agents), perAgent);
  const sessions = fleet.sessionsOn(agents);
  await fleet.enrol(agents);
  const sync = await startAndSync(s, fleet, agents, sessions);
  const list = await benchList(sync.conn, sessions, LIST_CALLS);
  log(`list --json with ${sessions} sessions on ${agents} agents: median ${round(quantile(list.times, 0.5), 1)} ms`);
  await endStep(s);
  return { times: list.times, bytes: list.bytes, syncedMs: sync.syncedMs };
}

// ---- the report ----

const med = (v: number[]): number => quantile(v, 0.5);
const fmt = (x: number, unit: string): string => (unit === 'ms' ? `${round(x, x < 100 ? 1 : 0)} ms` : `${round(x, 1)} ${unit}`);

interface Metric {
  id: string;
  label: string;
  unit: string;
  of(r: StepResult): number[];
  target?: number;
  note?: string;
}

const METRICS: Metric[] = [
  { id: 'synced', label: 'shell start-up: spawn → every agent online and every session listed', unit: 'ms', of: (r) => [r.syncedMs], note: `the reply of the first \`agents --json\` poll (every ${SYNC_POLL_MS} ms, one ssh2 connection) that shows it; the poll before it bounds it from below (see the notes)` },
  { id: 'online', label: 'shell start-up: spawn → every agent online', unit: 'ms', of: (r) => [r.onlineMs], note: 'the last `agent online` line of the shell\'s own log (ms timestamps)' },
  { id: 'list', label: '`list --json` over the exec CLI (ssh2 client, request → channel closed)', unit: 'ms', of: (r) => r.listMs, note: `${LIST_CALLS} calls after ${LIST_WARMUP} warm-ups on one connection; each count checked` },
  { id: 'listText', label: '`list` (text table) over the exec CLI, the same way', unit: 'ms', of: (r) => r.listTextMs, note: `${LIST_CALLS} calls after ${LIST_WARMUP} warm-ups; the same rows without the JSON shapes` },
  { id: 'redraw', label: 'menu redraw of the whole table (PageDown / PageUp), key → last byte of the redraw', unit: 'ms', of: (r) => r.redrawMs, note: `one menu, 120×40; a redraw ends after ${REDRAW_QUIET_MS} ms without output` },
  { id: 'menu50', label: `rename through the CLI → shown in all ${MENUS} open menus (slowest menu per round)`, unit: 'ms', of: (r) => r.menu50Ms, target: TARGETS.menu50Ms, note: `\`edit ID --name\` on a stopped session in view of every menu; ${RENAME_ROUNDS} rounds` },
  { id: 'edit', label: 'the rename itself: `edit ID --name` over the exec CLI, request → channel closed', unit: 'ms', of: (r) => r.editMs, note: 'the same rounds; the agent takes the session lock and rewrites session.json (fsync) meanwhile' },
  { id: 'changeCpu', label: `shell CPU time per rename (its ${MENUS} menu redraws included)`, unit: 'ms', of: (r) => r.changeCpuMs, note: `/proc/PID/stat utime+stime, ${round(1000 / CLK_TCK, 0)} ms ticks` },
  { id: 'shellRss', label: 'shell RSS after start-up', unit: 'MB', of: (r) => [r.shellRssMb] },
  { id: 'shellRssMenus', label: `shell RSS with ${MENUS} menus open`, unit: 'MB', of: (r) => [r.shellRssMenusMb] },
  { id: 'agentRss', label: 'RSS of one agent (agent-1)', unit: 'MB', of: (r) => [r.agentRssMb] },
  { id: 'idleCpu', label: `shell CPU with ${MENUS} menus open and nothing changing`, unit: '%', of: (r) => [r.idleCpuPct], note: `% of one core over ${IDLE_CPU_MS / 1000} s` },
];

/** log(v_last / v_first) / log(N_last / N_first): 1 grows linearly with the fleet, 2 quadratically. */
function exponent(first: number, last: number, n0: number, n1: number): string {
  if (!(first > 0) || !(last > 0) || n1 === n0) return '—';
  return round(Math.log(last / first) / Math.log(n1 / n0), 2).toFixed(2);
}

function report(results: StepResult[], big: { times: number[]; bytes: number; syncedMs: number } | null, notes: string[], seconds: number): void {
  const figures: Figure[] = [];
  if (big) {
    figures.push({
      key: 'scale.list2000',
      label: `\`list --json\` with ${LIST_BIG.agents * LIST_BIG.perAgent} sessions on ${LIST_BIG.agents} agents over the exec CLI`,
      unit: 'ms',
      values: big.times.map((x) => round(x, 2)),
      target: { of: 'value', op: '<=', value: TARGETS.list2000Ms },
      note: `${round(big.bytes / 1e6, 2)} MB of JSON; ${LIST_CALLS} calls after ${LIST_WARMUP} warm-ups`,
    });
  }
  for (const r of results) {
    for (const m of METRICS) {
      figures.push({
        key: `scale.${r.agents}.${m.id}`,
        label: `${m.label}, ${r.agents} agents, ${r.sessions} sessions`,
        unit: m.unit,
        values: m.of(r).map((x) => round(x, 2)),
        ...(m.target !== undefined ? { target: { of: 'value' as const, op: '<=' as const, value: m.target } } : {}),
        ...(m.note ? { note: m.note } : {}),
      });
    }
  }
  const first = results[0];
  const last = results[results.length - 1];
  const growth: ReportTable = {
    title: `Growth with the fleet (medians; ${PER_AGENT} sessions per agent; exponent = log(last/first) / log(N last / N first))`,
    head: ['metric', ...results.map((r) => `${r.agents} agents (${r.sessions} sessions)`), 'growth exponent'],
    rows: METRICS.map((m) => [
      m.id,
      ...results.map((r) => fmt(med(m.of(r)), m.unit)),
      first && last && results.length > 1 ? exponent(med(m.of(first)), med(m.of(last)), first.agents, last.agents) : '—',
    ]),
  };

  const mark = (f: Figure): string => {
    const ok = met(f);
    return ok === null ? '—' : `≤ ${f.target?.value} ${f.unit} ${ok ? '✓' : '✗'}`;
  };
  const lines = ['', '| figure | median | p90 | n | target |', '|---|---|---|---|---|'];
  for (const f of figures) {
    const many = f.values.length > 1;
    lines.push(`| ${f.key}: ${f.label} | ${fmt(med(f.values), f.unit)} | ${many ? fmt(quantile(f.values, 0.9), f.unit) : '—'} | ${f.values.length} | ${mark(f)} |`);
  }
  lines.push('', `**${growth.title}**`, '', `| ${growth.head.join(' | ')} |`, `|${growth.head.map(() => '---').join('|')}|`, ...growth.rows.map((r) => `| ${r.join(' | ')} |`), '');
  for (const n of notes) lines.push(`- ${n}`);
  lines.push('');
  process.stdout.write(`${lines.join('\n')}\n`);
  const load = os.loadavg().map((x) => round(x, 1));
  printReport({
    bench: 'scale',
    setup: `${results.map((r) => r.agents).join(', ')} agents × ${PER_AGENT} sessions (${RUNNING} running), ${MENUS} menus; list with ${LIST_BIG.agents * LIST_BIG.perAgent} sessions on ${LIST_BIG.agents} agents${QUICK ? '; quick' : ''}; ${os.cpus().length} CPUs, load ${load.join('/')}`,
    figures,
    tables: [growth],
    notes,
    seconds: round(seconds, 1),
  });
}

// ---- the run ----

async function main(): Promise<void> {
  const started = performance.now();
  const runLabel = `bench-scale-${randomUUID().slice(0, 8)}`;
  const s: State = { fleet: null, clients: [], menus: [], cleaning: null };
  const watchdog = setTimeout(() => {
    log(`overall time limit (${OVERALL_LIMIT_MS / 60_000} min) reached; cleaning up`);
    void cleanup(s).finally(() => process.exit(1));
  }, OVERALL_LIMIT_MS);
  watchdog.unref();
  const interrupted = (sig: string): void => {
    log(`${sig}: cleaning up`);
    void cleanup(s).finally(() => process.exit(1));
  };
  process.once('SIGINT', () => interrupted('SIGINT'));
  process.once('SIGTERM', () => interrupted('SIGTERM'));

  const notes: string[] = [];
  const results: StepResult[] = [];
  let big: Awaited<ReturnType<typeof runListBig>> | null = null;
  try {
    const shellNodeArgs = OPT.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${OPT.profileDir}`] : [];
    s.fleet = await Fleet.create(runLabel, { shellNodeArgs });
    const fleet = s.fleet;
    log(`run label ${runLabel}; steps ${OPT.steps.join(', ')} agents × ${PER_AGENT} sessions; seeding through the ${OPT.seed === 'store' ? "agents' session store before they start" : "agents' RPC create"}`);
    for (const n of OPT.steps) {
      // Will the agents this step adds fit in memory? Judged by the agents running now.
      const perAgentMb = results.length > 0 ? Math.max(...results.map((r) => r.agentRssMb)) : 100;
      const needMb = (n - fleet.agents.length) * perAgentMb * 1.3 + MEMORY_MARGIN_MB;
      if (needMb > availableMb()) {
        notes.push(`stopped before the ${n}-agent step: it needs about ${round(needMb, 0)} MB (${n - fleet.agents.length} more agents at ~${round(perAgentMb, 0)} MB each, and a margin) and ${round(availableMb(), 0)} MB are available`);
        log(notes[notes.length - 1] ?? '');
        break;
      }
      try {
        results.push(await runStep(s, fleet, n));
      } catch (err) {
        // A step past the first that cannot start its agents is where this machine ends: say so, keep what was measured.
        if (results.length === 0 || fleet.agents.length >= n) throw err;
        notes.push(`stopped at the ${n}-agent step: only ${fleet.agents.length} agents started (${err instanceof Error ? err.message : String(err)})`);
        log(notes[notes.length - 1] ?? '');
        await endStep(s);
        break;
      }
    }
    big = await runListBig(s, fleet);
    notes.push(
      `sessions were made ${OPT.seed === 'store' ? "with each agent's session store before it started (SessionStore.create, the folders and session.json the RPC create writes)" : "through each agent's RPC create"}: ` +
        results.map((r) => `${r.agents} agents: agents started in ${r.startSeconds} s, sessions in ${r.seedSeconds} s`).join('; '),
    );
    const rpc = fleet.lastRpcCreate;
    notes.push(
      `the ${LIST_BIG.agents * LIST_BIG.perAgent}-session list ran last: agents 1-${LIST_BIG.agents} topped up to ${LIST_BIG.perAgent} sessions each through their RPC create` +
        `${rpc ? ` (${rpc.count} creates in ${rpc.seconds} s, ${CREATE_AGENTS_AT_ONCE} agents at once, ${CREATE_POOL} calls in flight each)` : ''}, then a shell with only them (synced ${round(big.syncedMs, 0)} ms after spawn)`,
    );
    notes.push('operators are ssh2 clients in the bench process with TCP_NODELAY on their sockets (as OpenSSH here): without it every exec waits ~44 ms for the shell\'s delayed ACK');
    notes.push(
      ...results.map(
        (r) =>
          `${r.agents} agents: shell listening ${round(r.listeningMs, 0)} ms after spawn, all online ${round(r.onlineMs, 0)} ms, synced between ${round(r.syncedAfterMs, 0)} and ${round(r.syncedMs, 0)} ms ` +
          `(${r.polls} polls of agents --json, the last took ${round(r.lastPollMs, 0)} ms); list --json ${round(r.listBytes / 1e6, 1)} MB; ${MENUS} menus open in ${r.menusOpenSeconds} s`,
      ),
    );
    const a = results[0];
    const b = results[results.length - 1];
    if (a && b && b.sessions > a.sessions) {
      const per = (x: number, y: number): number => round(((y - x) / (b.sessions - a.sessions)) * 1000, 1);
      notes.push(`RSS has a large fixed part, so its growth exponent is small: per 1,000 more sessions the shell grew ${per(a.shellRssMb, b.shellRssMb)} MB after start-up and ${per(a.shellRssMenusMb, b.shellRssMenusMb)} MB with the menus open`);
    }
    notes.push(`agents run with the product's defaults for reconcile cadence and logging (info); containers: ${RUNNING} running in the whole cluster, the rest stopped`);
  } finally {
    log('cleaning up');
    await cleanup(s);
    clearTimeout(watchdog);
  }
  if (results.length === 0) throw new Error('no step completed');
  const seconds = (performance.now() - started) / 1000;
  log(`done in ${round(seconds, 1)} s`);
  report(results, big, notes, seconds);
}

runBench(main, log);

