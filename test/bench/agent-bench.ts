/**
 * Agent benchmark (measurements, not tests): `npm run bench:agent`.
 *
 *  1. create → attach of a stopped session until tmux's first screen (the bash prompt) arrives;
 *  2. `list` with 500 sessions (50 running) against a direct Docker Engine API listing, and the
 *     agent's resident memory meanwhile;
 *  3. keystroke echo round trip through berth-attach (with the ssh2 client the shell uses, and with
 *     OpenSSH's native client) against `docker exec -it … tmux attach` run directly under a pty
 *     (util-linux `script`), interleaved in blocks on the same session; and against the floor,
 *     the same `docker exec` through a bare Node relay process (relay.ts) before Docker's socket,
 *     where the agent stands: what being a Node process in the path costs, apart from the work.
 *
 * They run in the order 1, 3, 2, so the 500 sessions of 2 are not there while 3 measures.
 * `--quick`: 3 attach runs, 60 keys, 100 sessions (10 running).
 * Prints progress on stderr, then a markdown table (metric, value, target) and, last, one JSON
 * line. Exits 0 unless something broke (a missed target is reported, not a failure). Everything
 * runs on loopback and the Docker unix socket; every wait is bounded; everything it made is
 * removed at the end (agent stopped, containers of this run removed, temp dir deleted).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { AttachReply, SUBSYSTEMS, SessionEntry, encodeFrame, entryId } from '../../common/protocol';
import { AgentClient, Attach } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { log, printReport, quantile, round, runBench, settle, sleep, startRelay, Stats, stats, Term, withTimeout } from './lib';
import { removeTestContainers } from '../helpers/docker';

// ---- parameters ----

const QUICK = process.argv.includes('--quick');
const ATTACH_RUNS = QUICK ? 3 : 10;
const LIST_SESSIONS = QUICK ? 100 : 500;
/** Running while `list` and the agent's memory are measured. */
const LIST_RUNNING = QUICK ? 10 : 50;
const LIST_CALLS = QUICK ? 10 : 30;
const LIST_WARMUP = 3;
const KEYSTROKES = QUICK ? 60 : 300;
const BLOCK = 10;
const WARMUP_KEYS = 10;
const BLOCK_WARMUP_KEYS = 2;
const KEY_TIMEOUT_MS = 5000;
const COLS = 100;
const ROWS = 30;
const DOCKER_SOCKET = '/var/run/docker.sock';
const OVERALL_LIMIT_MS = 9 * 60_000;
/** Letters that neither escape sequences (stripped anyway) nor tmux's default status line (host name, clock, date) draw. */
const KEYS = 'ijkqswxz';

/** echoRatio: of berth to the direct path, and the same ratio of berth to the floor. */
const TARGETS = { listMs: 50, echoRatio: 1.2, rssMb: 150 };
/** The direct path of the echo. */
const DOCKER_EXEC = '`docker exec -it … tmux attach` under a pty';

// ---- small helpers ----

async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** One request to the Docker Engine API over its unix socket (no dockerode in test code). */
function dockerApiGet(pathAndQuery: string, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: DOCKER_SOCKET, path: pathAndQuery, method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`docker API ${pathAndQuery}: HTTP ${res.statusCode}: ${body.slice(0, 200)}`));
        else resolve(JSON.parse(body) as unknown);
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`docker API ${pathAndQuery}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

// ---- terminals (the two paths of the echo benchmark) ----

/** Ctrl-U (kill the line bash is editing), then let both screens go quiet. */
async function clearLine(t: Term, all: Term[]): Promise<void> {
  t.write('\x15');
  await sleep(5);
  await settle(all);
}

// ---- the run ----

interface Cleanup {
  agent: AgentProcess | null;
  client: AgentClient | null;
  direct: ChildProcess | null;
  /** Other client processes (the OpenSSH attach). */
  extra: ChildProcess[];
  attaches: Attach[];
  runLabel: string;
  done: boolean;
}

async function cleanupAll(c: Cleanup): Promise<void> {
  if (c.done) return;
  c.done = true;
  for (const a of c.attaches) {
    try {
      a.close();
    } catch {
      /* already closed */
    }
  }
  for (const child of [c.direct, ...c.extra]) {
    if (!child || child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await withTimeout(exited, 5000, 'client process exit').catch(async () => {
      child.kill('SIGKILL');
      await withTimeout(exited, 2000, 'client process exit').catch(() => log(`could not end client process ${child.pid}`));
    });
  }
  c.client?.close();
  if (c.agent) {
    const agent = c.agent;
    await withTimeout(agent.stop(), 20_000, 'stop agent').catch(async (err: unknown) => {
      log(`agent did not stop (${String(err)}); killing it`);
      await withTimeout(agent.kill9(), 5000, 'kill agent').catch(() => undefined);
    });
  }
  const removed = await withTimeout(removeTestContainers(c.runLabel), 60_000, 'remove containers').catch((err: unknown) => {
    log(`could not remove containers labelled ${c.runLabel}: ${String(err)}`);
    return -1;
  });
  if (removed > 0) log(`removed ${removed} container(s) of this run`);
  if (c.agent) await fs.rm(c.agent.dir, { recursive: true, force: true }).catch(() => undefined);
}

/**
 * When the agent logged `message` for `session` (epoch ms), from its JSON log lines; null if the
 * line is not there (the breakdown it feeds is best-effort).
 */
function loggedAt(agent: AgentProcess, message: string, session: string): number | null {
  for (let i = agent.logs.length - 1; i >= 0; i--) {
    const line = agent.logs[i] ?? '';
    if (!line.includes(session) || !line.includes(message)) continue;
    try {
      const rec = JSON.parse(line) as { message?: string; session?: string; timestamp?: string };
      if (rec.message === message && rec.session === session && rec.timestamp) return Date.parse(rec.timestamp);
    } catch {
      /* a line split across chunks */
    }
  }
  return null;
}

/** Opens berth-attach and sends the header; resolves with the attach and the ms from header to reply. */
async function openAttach(
  client: AgentClient,
  session: string,
): Promise<{ attach: Attach; t0: number; wall0: number; reply: AttachReply }> {
  const ch = await withTimeout(client.subsystem(SUBSYSTEMS.attach), 10_000, 'open berth-attach channel');
  const attach = new Attach(ch);
  const wall0 = Date.now();
  const t0 = performance.now();
  ch.write(encodeFrame({ session, operator: 'alice', readOnly: false, cols: COLS, rows: ROWS }));
  const reply = await withTimeout(attach.ready, 30_000, 'attach reply');
  if (!reply.ok) throw new Error(`attach refused: ${reply.error.code}: ${reply.error.message}`);
  return { attach, t0, wall0, reply };
}

function attachTerm(a: Attach): Term {
  return new Term(
    'berth',
    (s) => a.write(s),
    (cb) => a.channel.on('data', cb),
    KEY_TIMEOUT_MS,
  );
}

interface AttachResult {
  /** Header sent → container started (agent log, ms resolution): lock, docker create + start. */
  containerStarted: Stats | null;
  attachReady: Stats;
  attachScreen: Stats;
  /** Each run's header → first prompt, ms. */
  screenMs: number[];
  kill: Stats;
}

interface ListResult {
  list: Stats;
  direct: Stats;
  /** Each call's ms, and the direct listing's right after it. */
  listMs: number[];
  directMs: number[];
  /** The agent's resident memory (MB) after each third of the calls. */
  rssMb: number[];
  createMs: number;
  replyBytes: number;
  running: number;
  samplesMs: number[];
}

interface EchoResult {
  /** Each block's median, per path. */
  blocks: { berth: number[]; openssh: number[]; direct: number[]; floor: number[] };
  /** berth-attach through the ssh2 (JavaScript) client, as the shell will use it. */
  berth: Stats;
  /** berth-attach through OpenSSH's client (native code, like docker's own client). */
  openssh: Stats;
  direct: Stats;
  ratio: number;
  ratioOpenssh: number;
}

/**
 * The same attach subsystem driven by OpenSSH's client: `ssh -s berth-attach`, header on stdin,
 * the agent's one-line answer, then raw terminal bytes. Only our own key file, port and constants
 * reach its argument list.
 */
async function opensshAttach(agent: AgentProcess, session: string, c: Cleanup): Promise<Term> {
  const keyFile = `${agent.dir}/bench_openssh_key`;
  await fs.writeFile(keyFile, agent.shellKey.private, { mode: 0o600 });
  const child = spawn(
    'ssh',
    ['-p', String(agent.port), '-i', keyFile, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=accept-new',
      '-o', `UserKnownHostsFile=${agent.dir}/bench_known_hosts`, '-s', 'shell@127.0.0.1', SUBSYSTEMS.attach],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  c.extra.push(child);
  let answered = false;
  let head = '';
  const listeners: Array<(d: Buffer) => void> = [];
  const term = new Term(
    'openssh',
    (str) => child.stdin?.write(str),
    (cb) => listeners.push(cb),
    KEY_TIMEOUT_MS,
  );
  const answer = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (answered) {
        for (const l of listeners) l(d);
        return;
      }
      head += d.toString('utf8');
      const nl = head.indexOf('\n');
      if (nl === -1) return;
      answered = true;
      const reply = JSON.parse(head.slice(0, nl)) as AttachReply;
      if (!reply.ok) reject(new Error(`openssh attach refused: ${reply.error.code}: ${reply.error.message}`));
      else resolve();
      const rest = Buffer.from(head.slice(nl + 1), 'utf8');
      if (rest.length > 0) for (const l of listeners) l(rest);
    });
    child.on('exit', (code) => reject(new Error(`ssh -s berth-attach exited ${code} before answering`)));
  });
  child.stdin?.write(encodeFrame({ session, operator: 'alice', readOnly: false, cols: COLS, rows: ROWS }));
  await withTimeout(answer, 15_000, 'openssh attach answer');
  return term;
}

async function benchCreateAttach(agent: AgentProcess, client: AgentClient, c: Cleanup): Promise<AttachResult> {
  const started: number[] = [];
  const ready: number[] = [];
  const screen: number[] = [];
  const kill: number[] = [];
  for (let i = 0; i < ATTACH_RUNS; i++) {
    const s = await withTimeout(client.call('create', { name: `bench-attach-${i}` }), 10_000, 'create');
    const id = entryId(s);
    const { attach, t0, wall0 } = await openAttach(client, id);
    c.attaches.push(attach);
    const tReady = performance.now();
    const startedAt = loggedAt(agent, 'started container', id);
    if (startedAt !== null) started.push(startedAt - wall0);
    // The bytes after the reply line: the tmux client drawing; done once the prompt shows.
    const term = attachTerm(attach);
    term.output = attach.output;
    await term.waitVisible((t) => t.includes('$'), 15_000, 'bash prompt ("$") in the first screen');
    const tScreen = performance.now();
    ready.push(tReady - t0);
    screen.push(tScreen - t0);
    attach.close();
    await withTimeout(attach.closed, 10_000, 'attach close');
    const k0 = performance.now();
    await withTimeout(client.call('kill', { session: id }), 30_000, 'kill');
    kill.push(performance.now() - k0);
    log(`create→attach ${i + 1}/${ATTACH_RUNS}: reply ${round(tReady - t0, 0)} ms, prompt ${round(tScreen - t0, 0)} ms`);
  }
  return {
    containerStarted: started.length === ready.length ? stats(started) : null,
    attachReady: stats(ready),
    attachScreen: stats(screen),
    screenMs: screen,
    kill: stats(kill),
  };
}

/** Resident memory of `pid` in MB (VmRSS). */
async function rssMb(pid: number | undefined): Promise<number> {
  const status = await fs.readFile(`/proc/${pid ?? 0}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) / 1024;
}

async function benchList(client: AgentClient, agentId: string, agentPid: number | undefined): Promise<ListResult> {
  const existing = (await withTimeout(client.call('list', {}), 30_000, 'list')).sessions.length;
  const toCreate = Math.max(0, LIST_SESSIONS - existing);
  const c0 = performance.now();
  const made: string[] = [];
  await pool(
    Array.from({ length: toCreate }, (_, i) => i),
    16,
    async (i) => {
      const s = await withTimeout(client.call('create', { name: `bench-list-${i}` }), 30_000, 'create');
      made.push(entryId(s));
    },
  );
  const createMs = performance.now() - c0;
  log(`created ${toCreate} sessions in ${round(createMs / 1000, 1)} s (${existing} existed)`);
  const r0 = performance.now();
  await pool(made.slice(0, LIST_RUNNING), 4, async (id) => {
    await withTimeout(client.call('restart', { session: id }), 60_000, 'restart');
  });
  log(`started ${LIST_RUNNING} containers in ${round((performance.now() - r0) / 1000, 1)} s`);

  const check = (await withTimeout(client.call('list', {}), 30_000, 'list')).sessions as SessionEntry[];
  const running = check.filter((e) => e.container?.running).length;
  if (check.length !== LIST_SESSIONS) throw new Error(`list returned ${check.length} sessions, expected ${LIST_SESSIONS}`);
  if (running < LIST_RUNNING) throw new Error(`list shows ${running} running sessions, expected at least ${LIST_RUNNING}`);
  const replyBytes = Buffer.byteLength(JSON.stringify({ sessions: check }));

  const query = `/v1.41/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: [`berth.agent=${agentId}`] }))}`;
  const listMs: number[] = [];
  const directMs: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < LIST_WARMUP + LIST_CALLS; i++) {
    if (i >= LIST_WARMUP && (i - LIST_WARMUP) % Math.ceil(LIST_CALLS / 3) === 0) rss.push(await rssMb(agentPid));
    const a0 = performance.now();
    const r = await withTimeout(client.call('list', {}), 10_000, 'list');
    const a1 = performance.now();
    const d = await dockerApiGet(query);
    const d1 = performance.now();
    if (r.sessions.length !== LIST_SESSIONS) throw new Error(`list returned ${r.sessions.length} sessions`);
    if (!Array.isArray(d) || d.length < LIST_RUNNING) throw new Error(`docker API listed ${Array.isArray(d) ? d.length : '?'} containers`);
    if (i < LIST_WARMUP) continue;
    listMs.push(a1 - a0);
    directMs.push(d1 - a1);
  }
  return {
    list: stats(listMs),
    direct: stats(directMs),
    listMs,
    directMs,
    rssMb: rss,
    createMs: round(createMs, 0),
    replyBytes,
    running,
    samplesMs: listMs.map((x) => round(x, 1)),
  };
}

/**
 * Docker's own client, `docker exec -it … tmux attach`, under a pty of util-linux `script` sized
 * like the attach; through `dockerSocket` when given. The command string holds constants, the
 * container id Docker gave us and our temp path, nothing else.
 */
function dockerExecTerm(name: string, containerId: string, c: Cleanup, dockerSocket: string | null): { child: ChildProcess; term: Term; stop(): Promise<void> } {
  const host = dockerSocket ? `env DOCKER_HOST=unix://${dockerSocket} ` : '';
  const cmd =
    `stty cols ${COLS} rows ${ROWS}; exec ${host}docker exec -it -e TERM=xterm-256color -e LANG=C.UTF-8 ` +
    `${containerId} tmux attach-session -t claude`;
  const child = spawn('script', ['-qfc', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm-256color' } });
  let childErr = '';
  child.stderr?.on('data', (d: Buffer) => (childErr += d.toString()));
  let stopping = false;
  child.on('exit', (code, sig) => {
    if (!stopping && !c.done) log(`${name} docker exec exited (${code ?? sig}); stderr: ${childErr.trim()}`);
  });
  const term = new Term(
    name,
    (str) => child.stdin?.write(str),
    (cb) => child.stdout?.on('data', cb),
    KEY_TIMEOUT_MS,
  );
  const stop = async (): Promise<void> => {
    stopping = true;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.stdin?.end();
    child.kill('SIGTERM');
    await withTimeout(exited, 5000, `${name} docker exec exit`).catch(() => log(`${name} docker exec still running; ended at cleanup`));
  };
  return { child, term, stop };
}

async function benchEcho(agent: AgentProcess, client: AgentClient, c: Cleanup): Promise<EchoResult> {
  const s = await withTimeout(client.call('create', { name: 'bench-echo' }), 10_000, 'create');
  const id = entryId(s);
  const { attach, reply } = await openAttach(client, id);
  c.attaches.push(attach);
  const berth = attachTerm(attach);
  berth.output = attach.output;
  await berth.waitVisible((t) => t.includes('$'), 15_000, 'bash prompt on the berth attach');
  const containerId = reply.ok ? (reply.session.container?.id ?? '') : '';
  if (!/^[0-9a-f]{64}$/.test(containerId)) throw new Error(`attach reply carries no container id (${JSON.stringify(containerId)})`);

  const directRun = dockerExecTerm('direct', containerId, c, null);
  c.direct = directRun.child;
  // The floor: the same client through a bare Node relay process before Docker's socket, where
  // the agent stands on berth's path.
  const relaySocket = path.join(agent.dir, 'docker-relay.sock');
  c.extra.push(await startRelay(`unix:${relaySocket}`, `unix:${DOCKER_SOCKET}`));
  const floorRun = dockerExecTerm('floor', containerId, c, relaySocket);
  c.extra.push(floorRun.child);
  const direct = directRun.term;
  const floor = floorRun.term;
  await direct.waitVisible((t) => t.includes('$'), 15_000, 'bash prompt on the direct docker exec');
  await floor.waitVisible((t) => t.includes('$'), 15_000, 'bash prompt on the docker exec through the relay');
  const openssh = await opensshAttach(agent, id, c);
  await openssh.waitVisible((t) => t.includes('$'), 15_000, 'bash prompt on the OpenSSH attach');
  const both = [berth, openssh, direct, floor];
  await settle(both, 100, 3000);

  let k = 0;
  const nextKey = (): string => KEYS[k++ % KEYS.length] ?? 'x';
  const type = async (t: Term, n: number, into: number[] | null): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const dt = await t.keystroke(nextKey());
      into?.push(dt);
      // Let the other client's redraw of the same keystroke arrive before the next one.
      await settle(both, 3, 500);
    }
  };

  for (const t of both) {
    await type(t, WARMUP_KEYS, null);
    await clearLine(t, both);
  }
  const times: Record<string, number[]> = { berth: [], openssh: [], direct: [], floor: [] };
  const blockMeds: EchoResult['blocks'] = { berth: [], openssh: [], direct: [], floor: [] };
  const blocks = Math.ceil(KEYSTROKES / BLOCK);
  for (let b = 0; b < blocks; b++) {
    // Each path takes each place in the round in turn.
    for (let i = 0; i < both.length; i++) {
      const t = both[(b + i) % both.length] as Term;
      await type(t, BLOCK_WARMUP_KEYS, null);
      const block: number[] = [];
      await type(t, Math.min(BLOCK, KEYSTROKES - b * BLOCK), block);
      times[t.name]?.push(...block);
      blockMeds[t.name as keyof EchoResult['blocks']].push(quantile(block, 0.5));
      await clearLine(t, both);
    }
    const med = (k: string): number => round(quantile(times[k] ?? [], 0.5));
    log(`echo block ${b + 1}/${blocks}: medians berth ${med('berth')} ms, openssh ${med('openssh')} ms, direct ${med('direct')} ms, floor ${med('floor')} ms`);
  }
  await Promise.all([directRun.stop(), floorRun.stop()]);
  attach.close();
  await withTimeout(attach.closed, 10_000, 'attach close').catch(() => undefined);
  const berthStats = stats(times.berth ?? []);
  const opensshStats = stats(times.openssh ?? []);
  const directStats = stats(times.direct ?? []);
  return {
    blocks: blockMeds,
    berth: berthStats,
    openssh: opensshStats,
    direct: directStats,
    ratio: round(berthStats.median / directStats.median),
    ratioOpenssh: round(opensshStats.median / directStats.median),
  };
}

async function main(): Promise<void> {
  const runLabel = `bench-${randomUUID().slice(0, 8)}`;
  const c: Cleanup = { agent: null, client: null, direct: null, extra: [], attaches: [], runLabel, done: false };
  const watchdog = setTimeout(() => {
    log(`overall time limit (${OVERALL_LIMIT_MS / 60_000} min) reached; cleaning up`);
    void cleanupAll(c).finally(() => process.exit(1));
  }, OVERALL_LIMIT_MS);
  watchdog.unref();
  const started = performance.now();
  try {
    log(`starting agent (run label ${runLabel})`);
    // Product defaults for the reconcile cadence and logging, not the test helper's fast ones.
    c.agent = await startAgentProcess({ runLabel, config: { command: 'bash', orphanGraceSeconds: 120, log: { level: 'info' } } });
    c.client = await withTimeout(c.agent.connect(), 10_000, 'connect to agent');

    log('1/3 create → attach');
    const attach = await benchCreateAttach(c.agent, c.client, c);
    log('3/3 keystroke echo (run before 2, without the 500-session load)');
    const echo = await benchEcho(c.agent, c.client, c);
    log('2/3 list with 500 sessions');
    const list = await benchList(c.client, c.agent.id, c.agent.proc.pid);

    const ratioList = round(list.list.median / list.direct.median);
    const a = attach.attachScreen;
    const ar = attach.attachReady;
    const l = list.list;
    const d = list.direct;
    const eb = echo.berth;
    const ed = echo.direct;
    const ratioEcho = echo.ratio;
    const cs = attach.containerStarted;
    const mark = (ok: boolean): string => (ok ? '✓' : '✗');
    const rows: Array<[string, string, string]> = [
      [`create→attach, header to first prompt (stopped session, n=${a.n})`, `median ${a.median} ms, p90 ${a.p90} ms`, '—'],
      ['… of which header to attach reply (start container, exec tmux attach)', `median ${ar.median} ms, p90 ${ar.p90} ms`, '—'],
      ...(cs ? [['… of which header to container started (agent log)', `median ${cs.median} ms, p90 ${cs.p90} ms`, '—'] as [string, string, string]] : []),
      [
        `\`list\` with ${LIST_SESSIONS} sessions, ${list.running} running (n=${l.n})`,
        `median ${l.median} ms, p90 ${l.p90} ms`,
        `< ${TARGETS.listMs} ms: median ${mark(l.median < TARGETS.listMs)}, p90 ${mark(l.p90 < TARGETS.listMs)}`,
      ],
      ['Docker API label-filtered listing, direct (same moment)', `median ${d.median} ms, p90 ${d.p90} ms`, '—'],
      ['`list` / direct (medians)', `${ratioList}×`, '—'],
      [`keystroke echo via berth-attach, ssh2 client (n=${eb.n})`, `median ${eb.median} ms, p90 ${eb.p90} ms`, '—'],
      [`keystroke echo via berth-attach, OpenSSH client (n=${echo.openssh.n})`, `median ${echo.openssh.median} ms, p90 ${echo.openssh.p90} ms`, '—'],
      [`keystroke echo via \`docker exec -it … tmux attach\` (n=${ed.n})`, `median ${ed.median} ms, p90 ${ed.p90} ms`, '—'],
      ['echo berth (ssh2 client) / direct (medians)', `${ratioEcho}×`, `< ${TARGETS.echoRatio} ${mark(ratioEcho < TARGETS.echoRatio)}`],
      ['echo berth (OpenSSH client) / direct (medians)', `${echo.ratioOpenssh}×`, `< ${TARGETS.echoRatio} ${mark(echo.ratioOpenssh < TARGETS.echoRatio)}`],
      [`agent memory (RSS), ${LIST_SESSIONS} sessions, ${list.running} running`, `${list.rssMb.map((x) => round(x, 0)).join(', ')} MB`, `≤ ${TARGETS.rssMb} MB ${mark(Math.max(...list.rssMb) <= TARGETS.rssMb)}`],
    ];
    const out = [
      '',
      '| metric | value | target |',
      '|---|---|---|',
      ...rows.map(([m, v, t]) => `| ${m} | ${v} | ${t} |`),
      '',
    ];
    const load = os.loadavg().map((x) => round(x, 1));
    out.push(`Measured on ${os.cpus().length} CPUs, load average ${load.join(' / ')} (1/5/15 min), Node ${process.version}.`, '');
    process.stdout.write(`${out.join('\n')}\n`);
    printReport({
      bench: 'agent',
      setup: `one agent; ${ATTACH_RUNS} create→attach runs; ${KEYSTROKES} keys in blocks of ${BLOCK}; ${LIST_SESSIONS} sessions, ${list.running} running, ${LIST_CALLS} list calls`,
      figures: [
        { key: 'agent.attach', label: 'create→attach of a stopped session: attach header to the first prompt', unit: 'ms', values: attach.screenMs },
        {
          key: 'agent.echo',
          label: 'keystroke echo through berth-attach (ssh2 client, as the shell)',
          unit: 'ms',
          values: echo.blocks.berth,
          direct: { label: DOCKER_EXEC, values: echo.blocks.direct },
          target: { of: 'ratio', op: '<=', value: TARGETS.echoRatio },
          note: `each value a block's median of ${BLOCK} keys`,
        },
        {
          key: 'agent.echoOpenssh',
          label: 'keystroke echo through berth-attach (OpenSSH client)',
          unit: 'ms',
          values: echo.blocks.openssh,
          direct: { label: DOCKER_EXEC, values: echo.blocks.direct },
          target: { of: 'ratio', op: '<=', value: TARGETS.echoRatio },
        },
        {
          key: 'agent.echoFloor',
          label: 'keystroke echo through berth-attach (ssh2 client), against the floor: `docker exec -it` through a bare Node relay process before Docker\'s socket, where the agent stands',
          unit: 'ms',
          values: echo.blocks.berth,
          direct: { label: `${DOCKER_EXEC}, through relay.ts`, values: echo.blocks.floor },
          target: { of: 'ratio', op: '<=', value: TARGETS.echoRatio },
          note: 'the same blocks; the ratio is what the agent\'s own work (SSH, the Docker stream) adds beyond being a Node process',
        },
        {
          key: 'agent.echoRelay',
          label: 'keystroke echo through the floor, against `docker exec -it`: what one bare Node process on the path costs',
          unit: 'ms',
          values: echo.blocks.floor,
          direct: { label: DOCKER_EXEC, values: echo.blocks.direct },
        },
        {
          key: 'agent.list',
          label: `\`list\` with ${LIST_SESSIONS} sessions, ${list.running} running`,
          unit: 'ms',
          values: list.listMs,
          direct: { label: "the same label-filtered listing from Docker's API", values: list.directMs },
          target: { of: 'value', op: '<=', value: TARGETS.listMs },
          note: '`list` makes that Docker call once and reads every session’s metadata and lock',
        },
        {
          key: 'agent.rss',
          label: `agent memory (RSS) with ${LIST_SESSIONS} sessions, ${list.running} running`,
          unit: 'MB',
          values: list.rssMb,
          target: { of: 'value', op: '<=', value: TARGETS.rssMb },
          note: 'sampled three times during the list calls',
        },
      ],
      seconds: (performance.now() - started) / 1000,
    });
  } finally {
    log('cleaning up');
    await cleanupAll(c);
    clearTimeout(watchdog);
    log(`done in ${round((performance.now() - started) / 1000, 1)} s`);
  }
}

runBench(main, log);
