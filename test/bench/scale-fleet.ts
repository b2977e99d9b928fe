/**
 * A fleet for the scale benchmark: many real `berth agent serve` processes started in parallel
 * batches, and one real `berth shell serve` that has them enrolled. Enrolment does what the
 * `berth` commands do, through the same product functions, without a node process per command:
 * the shell's agent key is made as `shell show-key` makes it, each agent trusts it as
 * `agent authorize-shell` would write it, and agents.json is written whole, as `shell add-agent`
 * writes it one entry at a time (the fingerprint each agent printed is pinned).
 *
 * Sessions are made either through an agent's own RPC `create` (a pool of calls in flight) or,
 * before an agent starts, with the agent's own session store (the folders and session.json that
 * `create` writes). Everything lives under one temp folder; every container carries the run's
 * label, and the sessions' network is the run's own (made by the first agent, labelled, removed).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { SESSION_FILE_VERSION, SessionMeta } from '../../common/protocol';
import { ensureKeyFile, generateEd25519 } from '../../common/ssh-keys';
import { DEFAULT_SESSION_USER, trustedKeysPath } from '../../agent/config';
import { authorizeKey } from '../../agent/rpc/keys';
import { SessionStore } from '../../agent/store/session-store';
import { writeAgentsFile } from '../../shell/agents/enrolled';
import { shellPaths } from '../../shell/config';
import { AgentProcess, BERTH_BIN, startAgentProcess } from '../helpers/agent-process';
import { removeTestContainers, removeTestNetworks, testLabels } from '../helpers/docker';
import { processesMentioning } from '../helpers/procs';
import { log, round, withTimeout } from './lib';

/** How many create calls are in flight per agent, and how many agents are seeded at once. */
export const CREATE_POOL = 8;
export const CREATE_AGENTS_AT_ONCE = 4;
/** Bounds on one agent's start and one shell's start. */
const AGENT_START_MS = 60_000;
const SHELL_START_MS = 30_000;
/** Lines of the shell's log kept (its last ones, for error messages). */
const SHELL_LOG_LINES = 2000;

export type SeedMode = 'rpc' | 'store';

/** A running `berth shell serve`. */
export interface ShellProcess {
  proc: ChildProcess;
  port: number;
  /** performance.now() just before the spawn, and when it printed its listening line. */
  spawnedAt: number;
  listeningAt: number;
  /** Date.now() just before the spawn (the shell's log times are wall-clock ms). */
  spawnedWall: number;
  /** When the shell logged each agent's link online (its last such line), wall-clock ms. */
  onlineWall: Map<string, number>;
  logs: string[];
}

/** Runs `fn` on each item, at most `limit` at once; the first failure fails the lot (after the rest settle). */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  const worker = async (): Promise<void> => {
    while (next < items.length && failed === null) {
      const i = next++;
      try {
        await fn(items[i] as T, i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== null) throw failed;
}

/** A session's name: the agent's number and the session's, always 9 characters (a rename of the same length keeps the table's columns). */
export const sessionName = (agent: number, i: number): string => `s${String(agent).padStart(3, '0')}-${String(i).padStart(4, '0')}`;

const alive = (p: ChildProcess): boolean => p.exitCode === null && p.signalCode === null;

/** Stops a child: SIGTERM, then SIGKILL if it is still there after `graceMs`; bounded. */
export async function endChild(p: ChildProcess, graceMs: number): Promise<void> {
  if (!alive(p)) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  await withTimeout(exited, graceMs, 'exit after SIGTERM').catch(async () => {
    p.kill('SIGKILL');
    await withTimeout(exited, 5000, 'exit after SIGKILL').catch(() => log(`process ${p.pid} did not exit after SIGKILL`));
  });
}

export class Fleet {
  readonly agents: AgentProcess[] = [];
  shell: ShellProcess | null = null;
  /** Sessions made so far, by agent id. */
  readonly sessionCount = new Map<string, number>();
  /** The last batch of sessions made through the agents' RPC: how many, in how many seconds. */
  lastRpcCreate: { count: number; seconds: number } | null = null;
  private disposed = false;

  private constructor(
    readonly dir: string,
    readonly runLabel: string,
    /** The sessions' network of this run (agent config `network`). */
    readonly network: string,
    readonly shellConfigFile: string,
    readonly shellStateDir: string,
    /** The shell's key towards agents (what `berth shell show-key` prints and agents trust). */
    readonly shellKey: { private: string; public: string },
    /** The operator alice (admin): her private key, for ssh2 clients. */
    readonly aliceKey: string,
    private readonly nodeArgs: string[],
  ) {}

  /** A temp folder, the shell's config and keys; no process yet. */
  static async create(runLabel: string, opts: { shellNodeArgs?: string[] } = {}): Promise<Fleet> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-scale-'));
    const stateDir = path.join(dir, 'shell-state');
    const key = await ensureKeyFile(shellPaths(stateDir).agentKey, 'berth-shell');
    const alice = generateEd25519('alice');
    const configFile = path.join(dir, 'shell.json');
    const config = {
      listen: { host: '127.0.0.1', port: 0 },
      stateDir,
      operators: [{ name: 'alice', role: 'admin', keys: [alice.public] }],
      log: { level: 'info' },
    };
    await fs.writeFile(configFile, JSON.stringify(config, null, 2));
    return new Fleet(dir, runLabel, `berth-${runLabel}`, configFile, stateDir, { private: key.private.toString(), public: key.public }, alice.private, opts.shellNodeArgs ?? []);
  }

  /**
   * Starts agents until there are `total`, `batch` at once, each with its own temp root and id
   * (agent-1, agent-2, …). With `seed: 'store'`, each new agent's `perAgent` sessions are written
   * with its session store before it starts. Returns the seconds the starts took.
   */
  async growTo(total: number, batch: number, seed: { mode: SeedMode; perAgent: number }): Promise<{ startSeconds: number; seedSeconds: number }> {
    const numbers = Array.from({ length: Math.max(0, total - this.agents.length) }, (_, i) => this.agents.length + i + 1);
    if (numbers.length === 0) return { startSeconds: 0, seedSeconds: 0 };
    let seedMs = 0;
    if (seed.mode === 'store') {
      const s0 = performance.now();
      await pool(numbers, CREATE_AGENTS_AT_ONCE, async (n) => {
        await this.prepareAgentDir(n);
        await this.writeSessions(n, 0, seed.perAgent);
      });
      seedMs = performance.now() - s0;
      log(`wrote ${numbers.length * seed.perAgent} sessions with the agents' session store in ${round(seedMs / 1000, 1)} s`);
    }
    const t0 = performance.now();
    const started: AgentProcess[] = [];
    try {
      for (let i = 0; i < numbers.length; i += batch) {
        const group = numbers.slice(i, i + batch);
        const b0 = performance.now();
        await pool(group, group.length, async (n) => {
          if (seed.mode !== 'store') await this.prepareAgentDir(n);
          started.push(await withTimeout(this.startAgent(n), AGENT_START_MS, `start agent-${n}`));
        });
        log(`agents ${group[0]}-${group[group.length - 1]} started in ${round((performance.now() - b0) / 1000, 1)} s`);
      }
    } finally {
      // Those that started are ours to stop, whatever happened to the others.
      this.agents.push(...started.sort((a, b) => agentNumber(a.id) - agentNumber(b.id)));
    }
    const startMs = performance.now() - t0;
    if (seed.mode === 'rpc') {
      const s0 = performance.now();
      await this.createSessions(this.agents.filter((a) => numbers.includes(agentNumber(a.id))), seed.perAgent);
      seedMs = performance.now() - s0;
    }
    return { startSeconds: round(startMs / 1000, 1), seedSeconds: round(seedMs / 1000, 1) };
  }

  /** The agent's folder: its shell key (the shell's, so the bench's own clients log in as the shell does) and that key trusted. */
  private async prepareAgentDir(n: number): Promise<void> {
    const dir = this.agentDir(n);
    await fs.mkdir(path.join(dir, 'state'), { recursive: true, mode: 0o700 });
    await fs.writeFile(path.join(dir, 'shell_key.json'), JSON.stringify(this.shellKey));
    await authorizeKey(trustedKeysPath({ stateDir: path.join(dir, 'state') }), this.shellKey.public);
  }

  private agentDir(n: number): string {
    return path.join(this.dir, `agent-${n}`);
  }

  private startAgent(n: number): Promise<AgentProcess> {
    return startAgentProcess({
      id: `agent-${n}`,
      dir: this.agentDir(n),
      runLabel: this.runLabel,
      trusted: true,
      // The product's defaults for the reconciler's cadence, lock staleness and logging (the
      // test helper's are made for fast tests), and this run's own network.
      config: { orphanGraceSeconds: 120, lockStaleSeconds: 10, log: { level: 'info' }, network: this.network, extraLabels: testLabels(this.runLabel) },
    });
  }

  /**
   * Writes sessions `from`…`to-1` of agent `n` as its `create` would (a stopped session, no
   * port, no DNS name): its session store's own `create`, with the owner the agent gives homes
   * to when it runs as root.
   */
  private async writeSessions(n: number, from: number, to: number): Promise<void> {
    const store = new SessionStore({ root: path.join(this.agentDir(n), 'sessions'), owner: process.getuid?.() === 0 ? { ...DEFAULT_SESSION_USER } : undefined });
    await store.init();
    const metas: SessionMeta[] = [];
    for (let i = from; i < to; i++) {
      metas.push({
        version: SESSION_FILE_VERSION,
        id: randomUUID(),
        name: sessionName(n, i),
        protocol: 'tcp',
        port: 0,
        dns: '',
        createdAt: new Date().toISOString(),
        lastAccessedAt: null,
        createdBy: 'alice',
      });
    }
    await pool(metas, CREATE_POOL, (m) => store.create(m));
    this.sessionCount.set(`agent-${n}`, (this.sessionCount.get(`agent-${n}`) ?? 0) + metas.length);
  }

  /** Creates sessions on running agents through their RPC `create` until each has `perAgent`. */
  async createSessions(agents: AgentProcess[], perAgent: number): Promise<void> {
    const t0 = performance.now();
    let made = 0;
    await pool(agents, CREATE_AGENTS_AT_ONCE, async (a) => {
      const client = await withTimeout(a.connect(), 15_000, `connect to ${a.id}`);
      try {
        const have = this.sessionCount.get(a.id) ?? 0;
        const todo = Array.from({ length: Math.max(0, perAgent - have) }, (_, i) => have + i);
        await pool(todo, CREATE_POOL, async (i) => {
          await withTimeout(client.call('create', { name: sessionName(agentNumber(a.id), i) }, 'alice'), 30_000, `create on ${a.id}`);
          this.sessionCount.set(a.id, (this.sessionCount.get(a.id) ?? 0) + 1);
          made++;
        });
      } finally {
        client.close();
      }
    });
    this.lastRpcCreate = { count: made, seconds: round((performance.now() - t0) / 1000, 1) };
    log(`created ${made} sessions through the agents' RPC in ${this.lastRpcCreate.seconds} s`);
  }

  /** Sessions made on the first `n` agents. */
  sessionsOn(n: number): number {
    return this.agents.slice(0, n).reduce((sum, a) => sum + (this.sessionCount.get(a.id) ?? 0), 0);
  }

  /** Enrols the first `n` agents (agents.json, as `shell add-agent` leaves it); the shell reads it at start. */
  async enrol(n: number): Promise<void> {
    const entries = this.agents.slice(0, n).map((a) => ({ id: a.id, host: '127.0.0.1', port: a.port, fingerprint: a.fingerprint }));
    await writeAgentsFile(shellPaths(this.shellStateDir).agents, entries);
  }

  /** Spawns `berth shell serve`; resolves once it printed its listening line. */
  async startShell(): Promise<ShellProcess> {
    if (this.shell) throw new Error('a shell is running already');
    const logs: string[] = [];
    const onlineWall = new Map<string, number>();
    const spawnedWall = Date.now();
    const spawnedAt = performance.now();
    const proc = spawn(process.execPath, [...this.nodeArgs, BERTH_BIN, 'shell', 'serve', '--config', this.shellConfigFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const shell: ShellProcess = { proc, port: 0, spawnedAt, listeningAt: 0, spawnedWall, onlineWall, logs };
    this.shell = shell;
    let partial = '';
    proc.stderr?.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines.filter(Boolean)) {
        logs.push(line);
        if (line.includes('"agent online"')) {
          try {
            const rec = JSON.parse(line) as { message?: string; agent?: string; timestamp?: string };
            if (rec.message === 'agent online' && rec.agent && rec.timestamp) onlineWall.set(rec.agent, Date.parse(rec.timestamp));
          } catch {
            // not a whole JSON line: not one of the link's
          }
        }
      }
      if (logs.length > SHELL_LOG_LINES) logs.splice(0, logs.length - SHELL_LOG_LINES);
    });
    shell.port = await withTimeout(
      new Promise<number>((resolve, reject) => {
        let text = '';
        proc.stdout?.on('data', (d: Buffer) => {
          text += d.toString();
          const m = /listening on [^\s]+:(\d+)/.exec(text);
          if (m) resolve(Number(m[1]));
        });
        proc.on('exit', (code) => reject(new Error(`shell exited ${code}; log: ${logs.slice(-5).join('\n')}`)));
      }),
      SHELL_START_MS,
      'shell listening',
    );
    shell.listeningAt = performance.now();
    return shell;
  }

  async stopShell(): Promise<void> {
    const s = this.shell;
    this.shell = null;
    if (s) await endChild(s.proc, 10_000);
  }

  /**
   * Stops the shell and every agent (SIGTERM, SIGKILL after a grace), removes this run's
   * containers and network, and the temp folder. Never throws; idempotent.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.stopShell().catch((err: unknown) => log(`stop shell: ${String(err)}`));
    await pool(this.agents, 20, (a) => endChild(a.proc, 10_000)).catch((err: unknown) => log(`stop agents: ${String(err)}`));
    // An agent whose start timed out is still ours though no handle was returned: found by this run's own folder in its command line.
    for (const pid of processesMentioning(this.dir)) {
      log(`ending leftover process ${pid} of this run`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    const removed = await withTimeout(removeTestContainers(this.runLabel), 120_000, 'remove containers').catch((err: unknown) => {
      log(`could not remove containers labelled ${this.runLabel}: ${String(err)}`);
      return -1;
    });
    if (removed > 0) log(`removed ${removed} container(s) of this run`);
    await withTimeout(removeTestNetworks(this.runLabel), 60_000, 'remove network').catch((err: unknown) => log(`could not remove this run's network: ${String(err)}`));
    await fs.rm(this.dir, { recursive: true, force: true }).catch((err: unknown) => log(`remove ${this.dir}: ${String(err)}`));
  }
}

/** 7 for `agent-7`. */
export function agentNumber(id: string): number {
  return Number(id.slice(id.lastIndexOf('-') + 1));
}
