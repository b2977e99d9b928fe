/**
 * A real cluster on loopback for tests and benches: agent processes, a `berth shell serve` process
 * enrolled with them through the real commands, and operators with keys made by ssh-keygen,
 * reached with the real OpenSSH client.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { until } from './wait';
import { AgentProcess, BERTH_BIN, startAgentProcess } from './agent-process';

const run = promisify(execFile);

export type Role = 'viewer' | 'operator' | 'admin';

export interface ClusterOptions {
  runLabel: string;
  agents: number;
  /** The agents' ids (default agent-1, agent-2, …). */
  agentIds?: string[];
  operators?: Array<{ name: string; role: Role }>;
  shellConfig?: Record<string, unknown>;
  /** A command every agent runs under (see AgentProcessOptions.wrap). */
  agentWrap?: string[];
  /** Config every agent gets over the test defaults (see AgentProcessOptions.config). */
  agentConfig?: Record<string, unknown>;
  /** Options for node itself in the shell and every agent (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** Where the shell runs (a command it runs under, e.g. `ip netns exec NS`) and listens; default here on 127.0.0.1. */
  shellHost?: { wrap: string[]; address: string };
  /** Per agent, where it runs and listens, and so the address it is enrolled at; default here on 127.0.0.1. */
  agentHosts?: Array<{ wrap: string[]; address: string }>;
}

export interface SshResult {
  code: number | null;
  out: string;
  err: string;
}

export interface Cluster {
  dir: string;
  agents: AgentProcess[];
  shell: { address: string; port: number; proc: ChildProcess; logs: string[]; configFile: string };
  auditFile: string;
  /** Runs `ssh -p PORT USER@ADDRESS ARGS…` non-interactively; resolves with code and output. */
  ssh(user: string, args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<SshResult>;
  /** Waits (bounded) until the shell has every agent online: its links connect after it starts. */
  agentsOnline(): Promise<void>;
  /** The argument list for ssh as an operator (for tmux-driven tests). */
  sshArgs(user: string, extra?: string[]): string[];
  startShell(): Promise<void>;
  stopShell(): Promise<void>;
  dispose(): Promise<void>;
}

const DEFAULT_OPERATORS: Array<{ name: string; role: Role }> = [
  { name: 'alice', role: 'admin' },
  { name: 'bob', role: 'operator' },
  { name: 'vic', role: 'viewer' },
];

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-cluster-'));
  const agents: AgentProcess[] = [];
  for (let i = 0; i < o.agents; i++) {
    const at = o.agentHosts?.[i];
    agents.push(
      await startAgentProcess({
        runLabel: o.runLabel,
        id: o.agentIds?.[i] ?? `agent-${i + 1}`,
        wrap: [...(at?.wrap ?? []), ...(o.agentWrap ?? [])],
        nodeArgs: o.nodeArgs,
        config: { ...(at ? { listen: { host: at.address, port: 0 } } : {}), ...o.agentConfig },
      }),
    );
  }
  const shellAddress = o.shellHost?.address ?? '127.0.0.1';
  const operators = o.operators ?? DEFAULT_OPERATORS;
  const opConfig = [];
  for (const op of operators) {
    const key = path.join(dir, `key_${op.name}`);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', op.name, '-f', key]);
    opConfig.push({ name: op.name, role: op.role, keys: [(await fs.readFile(`${key}.pub`, 'utf8')).trim()] });
  }
  const configFile = path.join(dir, 'shell.json');
  await fs.writeFile(
    configFile,
    JSON.stringify({ listen: { host: shellAddress, port: 0 }, stateDir: './state', operators: opConfig, rpcTimeoutMs: 5000, log: { level: 'debug' }, ...o.shellConfig }, null, 2),
  );
  const berth = (...args: string[]) => run(process.execPath, [BERTH_BIN, ...args]);
  const shellKey = (await berth('shell', 'show-key', '--config', configFile)).stdout.trim();
  for (const [i, a] of agents.entries()) {
    await berth('agent', 'authorize-shell', '--config', a.configFile, shellKey);
    const host = o.agentHosts?.[i]?.address ?? '127.0.0.1';
    await berth('shell', 'add-agent', '--config', configFile, '--id', a.id, '--host', host, '--port', String(a.port), '--fingerprint', a.fingerprint);
  }
  const knownHosts = path.join(dir, 'known_hosts');
  const sshArgs = (user: string, extra: string[] = []): string[] => [
    '-p', String(cluster.shell.port),
    '-i', path.join(dir, `key_${user}`),
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=accept-new',
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'ConnectTimeout=10',
    ...extra,
    `${user}@${shellAddress}`,
  ];
  const cluster: Cluster = {
    dir,
    agents,
    shell: { address: shellAddress, port: 0, proc: null as unknown as ChildProcess, logs: [], configFile },
    auditFile: path.join(dir, 'state', 'audit.jsonl'),
    sshArgs,
    ssh(user, args, opts = {}) {
      return runSsh([...sshArgs(user), ...args], opts);
    },
    async agentsOnline() {
      const online = async (): Promise<number> => {
        const r = await runSsh([...sshArgs('alice'), 'agents', '--json']);
        return (JSON.parse(r.out || '[]') as Array<{ status: string }>).filter((a) => a.status === 'online').length;
      };
      await until('every agent online', online, (n) => n === agents.length, 20_000);
    },
    async startShell() {
      const argv = [...(o.shellHost?.wrap ?? []), process.execPath, ...(o.nodeArgs ?? []), BERTH_BIN, 'shell', 'serve', '--config', configFile];
      const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      cluster.shell.proc = proc;
      proc.stderr?.on('data', (d: Buffer) => cluster.shell.logs.push(...d.toString().split('\n').filter(Boolean)));
      cluster.shell.port = await new Promise<number>((resolve, reject) => {
        let text = '';
        const timer = setTimeout(() => reject(new Error(`shell did not start; log: ${cluster.shell.logs.slice(-5).join('\n')}`)), 20_000);
        proc.stdout?.on('data', (d: Buffer) => {
          text += d.toString();
          const m = /listening on [^\s]+:(\d+)/.exec(text);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
        proc.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`shell exited ${code}; log: ${cluster.shell.logs.slice(-5).join('\n')}`));
        });
      });
    },
    async stopShell() {
      const p = cluster.shell.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise<void>((r) => p.on('exit', () => r()));
      p.kill('SIGTERM');
      await exited;
    },
    async dispose() {
      await cluster.stopShell();
      for (const a of agents) await a.dispose();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
  await cluster.startShell();
  return cluster;
}

export { until };

/** OpenSSH's client with these arguments (killed after `timeoutMs`, 20 s by default); resolves with its exit code and output. */
export function runSsh(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<SshResult> {
  return new Promise((resolve) => {
    const p = spawn('ssh', args);
    let out = '';
    let err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // 'close', not 'exit': only then has all of the output been read.
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
    p.stdin.on('error', () => undefined);
    p.stdin.end(opts.input ?? '');
  });
}
