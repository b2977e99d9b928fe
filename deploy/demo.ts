/**
 * `berth demo`: a whole cluster on this machine in one foreground process: two agents (each with
 * its own root) and a shell with its own dnsmasq, all on loopback, with keys made and exchanged.
 * State lives in one folder, so the next run finds the same sessions. Sessions run Claude Code,
 * with the credentials found in the demo's environment and a project to start on (demo-setup.ts).
 * Ctrl-C stops the processes and leaves the sessions' containers and folders as they are.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { BerthError } from '../common/errors';
import { parseJson } from '../common/json';
import { createLogger } from '../common/logging';
import { ensureKeyFile } from '../common/ssh-keys';
import { agentConfigSchema } from '../agent/config';
import { authorizeKey } from '../agent/rpc/keys';
import { RunningAgent, startAgent } from '../agent/main';
import { upsertAgent } from '../shell/agents';
import { loadShellConfig, shellPaths } from '../shell/config';
import { startShell } from '../shell/main';
import { prepareDemoSetup } from './demo-setup';

export interface DemoOptions {
  dir: string;
  /** The shell's port; 0 picks a free one. */
  port: number;
  dnsPort: number;
  operator: string;
  out: (line: string) => void;
}

export async function runDemo(o: DemoOptions): Promise<{ stop(): Promise<void> }> {
  if (!o.dir.trim()) throw new BerthError('BAD_REQUEST', 'demo: the state folder must not be empty');
  const dir = path.resolve(o.dir);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const logFile = path.join(dir, 'demo.log');
  const logger = createLogger({ level: 'info', file: logFile });
  const agents: RunningAgent[] = [];
  const shellConfigFile = path.join(dir, 'shell.json');
  const operatorKey = await ensureKeyFile(path.join(dir, 'operator_key'), `${o.operator}@berth-demo`);
  await fs.writeFile(path.join(dir, 'operator_key.pub'), `${operatorKey.public}\n`);
  await writeShellConfig(shellConfigFile, o, operatorKey.public);
  const shellCfg = loadShellConfig(shellConfigFile);
  const shellKey = await ensureKeyFile(shellPaths(shellCfg.stateDir).agentKey, 'berth-demo-shell');
  const setup = await prepareDemoSetup(dir);
  for (const [id, publishAddress] of DEMO_AGENTS) {
    const agentDir = path.join(dir, id);
    const cfg = agentConfigSchema.parse({
      id,
      listen: { host: '127.0.0.1', port: 0 },
      root: path.join(agentDir, 'sessions'),
      stateDir: path.join(agentDir, 'state'),
      publishAddress,
      dnsServers: [],
      env: setup.env,
      repos: { allowLocal: [setup.reposDir], tokenEnv: 'GH_TOKEN' in setup.env ? 'GH_TOKEN' : null },
      extraLabels: demoLabels(),
      log: { level: 'info', file: logFile },
    });
    await authorizeKey(path.join(cfg.stateDir, 'trusted_shell_keys'), shellKey.public);
    const agent = await startAgent({ config: cfg, logger });
    agents.push(agent);
    // Ports are picked afresh each run; the host keys persist, so the pins stay the same.
    await upsertAgent(shellPaths(shellCfg.stateDir).agents, { id, host: '127.0.0.1', port: agent.port, fingerprint: agent.fingerprint });
  }
  const shell = await startShell({ config: shellCfg, logger });
  const ssh = [
    'ssh',
    '-p', String(shell.port),
    '-i', path.join(dir, 'operator_key'),
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${path.join(dir, 'known_hosts')}`,
    '-o', 'StrictHostKeyChecking=accept-new',
    `${o.operator}@127.0.0.1`,
  ].join(' ');
  o.out('berth demo: one shell and two agents on this machine (logs in ' + logFile + ')');
  o.out(`  sessions: ${agents.map((_a, i) => `agent-${i + 1} ${path.join(dir, `agent-${i + 1}`, 'sessions')}`).join(', ')}`);
  o.out(`  dns: <name>.berth answers at 127.0.0.1:${shell.dns?.port ?? o.dnsPort}`);
  o.out(
    setup.found.length > 0
      ? `  credentials for every session: ${setup.found.join(', ')} (files in ${setup.secretsDir})`
      : `  no credentials: export ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) before the demo, or put it in ${path.join(setup.secretsDir, 'ANTHROPIC_API_KEY')}`,
  );
  o.out(`  a project to start on: create --name try --repo ${setup.project}`);
  o.out('The menu (add -t to use it), or any command after it, e.g. `list`:');
  o.out(ssh);
  o.out('Ctrl-C stops the demo; sessions and their containers stay for the next run.');
  let stopping: Promise<void> | null = null;
  return {
    stop() {
      stopping ??= (async () => {
        await shell.stop();
        for (const a of agents) await a.stop();
      })();
      return stopping;
    },
  };
}

/**
 * The demo's agents and the loopback address each publishes on. Two agents on one address would
 * each think a port free that the other reserved for a stopped session; on their own addresses
 * they never hand out the same address and port (and each DNS name points at its agent's).
 */
const DEMO_AGENTS: Array<[string, string]> = [
  ['agent-1', '127.0.0.1'],
  ['agent-2', '127.0.0.2'],
];

/**
 * shell.json for this run. A first run writes it whole; later runs keep what an operator changed
 * (other operators, roles, settings) and only set the ports of this run and make sure the demo's
 * operator is there with the demo's key. A file that is not a JSON object is refused, not replaced.
 */
async function writeShellConfig(file: string, o: DemoOptions, operatorKey: string): Promise<void> {
  let text: string | null = null;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const parsed = text === null ? { ok: true as const, value: {} } : parseJson(text, z.record(z.string(), z.unknown()));
  if (!parsed.ok) throw new BerthError('BAD_REQUEST', `demo: ${file}: ${parsed.problem} (fix it, or remove it to start afresh)`);
  const cfg: Record<string, unknown> = {
    stateDir: './shell-state',
    log: { level: 'info', file: './demo.log' },
    ...parsed.value,
  };
  cfg.listen = { ...asObject(cfg.listen), host: '127.0.0.1', port: o.port };
  const dns = asObject(cfg.dns);
  cfg.dns = { domain: 'berth', ...dns, manage: { ...asObject(dns.manage), listenAddress: '127.0.0.1', port: o.dnsPort } };
  const operators = Array.isArray(cfg.operators) ? [...(cfg.operators as unknown[])] : [];
  const mine = operators.findIndex((op) => asObject(op).name === o.operator);
  if (mine === -1) {
    operators.push({ name: o.operator, role: 'admin', keys: [operatorKey] });
  } else {
    const op = asObject(operators[mine]);
    const keys = Array.isArray(op.keys) ? (op.keys as unknown[]) : [];
    operators[mine] = { ...op, keys: keys.includes(operatorKey) ? keys : [...keys, operatorKey] };
  }
  cfg.operators = operators;
  await fs.writeFile(file, `${JSON.stringify(cfg, null, 2)}\n`);
}

function asObject(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** BERTH_DEMO_DIR, or .berth-demo in the current folder (an empty variable counts as unset). */
export function defaultDemoDir(): string {
  return process.env.BERTH_DEMO_DIR || path.join(process.cwd(), '.berth-demo');
}

export function demoUser(): string {
  const name = (process.env.BERTH_DEMO_USER ?? os.userInfo().username).toLowerCase();
  return /^[a-z_][a-z0-9_.-]{0,31}$/.test(name) ? name : 'operator';
}

/** Extra container labels from BERTH_DEMO_LABEL ("key=value,key=value"), so tests can find what a demo made. */
function demoLabels(): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of (process.env.BERTH_DEMO_LABEL ?? '').split(',')) {
    const m = /^([a-z0-9][a-z0-9._-]*)=(.*)$/.exec(part);
    if (m?.[1]) labels[m[1]] = m[2] ?? '';
  }
  return labels;
}
