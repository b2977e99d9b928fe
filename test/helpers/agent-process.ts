/**
 * Starts a real `berth agent serve` process with a temp root and config on 127.0.0.1:0, and
 * trusts a fresh shell key for it. Used by integration tests and benchmarks.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AgentClient, connectAgent, makeShellKey } from './agent-client';
import { SESSION_IMAGE, removeTestContainers, testLabels } from './docker';

/** The repository root, whether this runs from test/ (jest) or dist/test/ (benchmarks). */
export const REPO_ROOT = path.resolve(__dirname, __dirname.split(path.sep).includes('dist') ? '../../..' : '../..');
export const BERTH_BIN = path.join(REPO_ROOT, 'dist/deploy/berth.js');

export interface AgentProcessOptions {
  id?: string;
  /** Reuse a root (and state dir) from an earlier agent, as a restart would. */
  dir?: string;
  runLabel: string;
  config?: Record<string, unknown>;
  /** A command the agent runs under (e.g. setpriv, to run it as a service user with capabilities). */
  wrap?: string[];
  /** Options for node itself, before the script (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** `dir`'s agent trusts its shell key already (a restart on the same dir): no authorize-shell run. */
  trusted?: boolean;
}

export interface AgentProcess {
  id: string;
  dir: string;
  root: string;
  configFile: string;
  port: number;
  fingerprint: string;
  shellKey: { private: string; public: string };
  proc: ChildProcess;
  /** The agent's stderr log lines so far. */
  logs: string[];
  connect(): Promise<AgentClient>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit: a crash. */
  kill9(): Promise<void>;
  /** Closes every client from connect(), stops the agent, removes its run's containers and its folder. */
  dispose(): Promise<void>;
}

export async function startAgentProcess(o: AgentProcessOptions): Promise<AgentProcess> {
  const dir = o.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'berth-agent-')));
  const id = o.id ?? `test-${randomUUID().slice(0, 8)}`;
  const configFile = path.join(dir, 'agent.json');
  const keyFile = path.join(dir, 'shell_key.json');
  let shellKey: { private: string; public: string };
  try {
    shellKey = JSON.parse(await fs.readFile(keyFile, 'utf8')) as { private: string; public: string };
  } catch {
    shellKey = makeShellKey();
    await fs.writeFile(keyFile, JSON.stringify(shellKey));
  }
  const config = {
    id,
    listen: { host: '127.0.0.1', port: 0 },
    root: './sessions',
    stateDir: './state',
    publishAddress: '127.0.0.1',
    image: SESSION_IMAGE,
    command: 'bash',
    limits: { memoryMb: 512, cpus: 1, pids: 256 },
    extraLabels: testLabels(o.runLabel),
    orphanGraceSeconds: 2,
    lockStaleSeconds: 3,
    log: { level: 'debug' },
    ...o.config,
  };
  await fs.writeFile(configFile, JSON.stringify(config, null, 2));
  if (!o.trusted) {
    const auth = spawn(process.execPath, [BERTH_BIN, 'agent', 'authorize-shell', '--config', configFile, shellKey.public]);
    let authErr = '';
    auth.stderr?.on('data', (d: Buffer) => (authErr += d.toString()));
    // 'close', not 'exit': only then has all of its stderr been read.
    const authCode = await new Promise<number | null>((r) => auth.on('close', r));
    if (authCode !== 0) throw new Error(`authorize-shell exited ${authCode}: ${authErr}`);
  }

  const argv = [...(o.wrap ?? []), process.execPath, ...(o.nodeArgs ?? []), BERTH_BIN, 'agent', 'serve', '--config', configFile];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  proc.stderr?.on('data', (d: Buffer) => logs.push(...d.toString().split('\n').filter(Boolean)));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const { port, fingerprint } = await new Promise<{ port: number; fingerprint: string }>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`agent did not start in 20 s; log: ${logs.slice(-5).join('\n')}`)), 20_000);
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on [^\s]+:(\d+) host key (SHA256:\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), fingerprint: m[2] ?? '' });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited ${code} before listening; log: ${logs.slice(-5).join('\n')}`));
    });
  });
  const waitExit = async (sig: NodeJS.Signals): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
    await exited;
  };
  const clients: AgentClient[] = [];
  return {
    id,
    dir,
    root: path.join(dir, 'sessions'),
    configFile,
    port,
    fingerprint,
    shellKey,
    proc,
    logs,
    connect: async () => {
      const c = await connectAgent({ port, privateKey: shellKey.private, fingerprint });
      clients.push(c);
      return c;
    },
    stop: () => waitExit('SIGTERM'),
    kill9: () => waitExit('SIGKILL'),
    dispose: async () => {
      for (const c of clients.splice(0)) c.close();
      await waitExit('SIGTERM');
      await removeTestContainers(o.runLabel);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
