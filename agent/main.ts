/** Builds a real agent from its config: the only place that creates the real runtime, probe and clock. */
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { BerthError } from '../common/errors';
import { Logger, createLogger } from '../common/logging';
import { BERTH_VERSION, HelloEvent, PROTOCOL_VERSION } from '../common/protocol';
import { AgentConfig, hostKeyPath, trustedKeysPath } from './config';
import { DockerodeRuntime } from './docker/dockerode-runtime';
import { ContainerRuntime } from './docker/runtime';
import { PortProbe } from './ports/ports';
import { bindProbe } from './ports/probe';
import { AgentServer, createAgentServer } from './rpc/server';
import { ensureHostKey, publicKeyOf } from './rpc/keys';
import { Clock, Sessions } from './sessions';
import { SessionLocks } from './store/locks';
import { SessionStore } from './store/session-store';

export interface AgentOptions {
  config: AgentConfig;
  runtime?: ContainerRuntime;
  probe?: PortProbe;
  clock?: Clock;
  logger?: Logger;
  statsIntervalMs?: number;
  reconcileIntervalMs?: number;
}

export interface RunningAgent {
  host: string;
  port: number;
  fingerprint: string;
  sessions: Sessions;
  /** Stops serving; containers keep running. Idempotent. */
  stop(): Promise<void>;
}

const PID_FILE = '.agent.pid';

/** Starts an agent: takes its root, loads sessions, adopts containers, serves SSH. */
export async function startAgent(o: AgentOptions): Promise<RunningAgent> {
  const cfg = o.config;
  const logger = (o.logger ?? createLogger({ level: cfg.log.level, file: cfg.log.file })).child({ agent: cfg.id });
  const clock = o.clock ?? { now: () => Date.now() };
  const user = cfg.user ?? defaultUser();
  const store = new SessionStore({ root: cfg.root, owner: process.getuid?.() === 0 ? user : undefined });
  await fs.mkdir(cfg.root, { recursive: true });
  await claimRoot(cfg.root);
  const runtime = o.runtime ?? new DockerodeRuntime({ socketPath: cfg.dockerSocket, agent: cfg.id, root: path.resolve(cfg.root), logger });
  const sessions = new Sessions(
    {
      store,
      locks: new SessionLocks({ staleMs: cfg.lockStaleSeconds * 1000, instance: randomUUID(), now: () => clock.now(), logger }),
      runtime,
      probe: o.probe ?? bindProbe(cfg.publishAddress),
      clock,
      logger,
    },
    {
      agent: cfg.id,
      image: cfg.image,
      command: cfg.command,
      publishAddress: cfg.publishAddress,
      dnsServers: cfg.dnsServers,
      limits: cfg.limits,
      user,
      extraLabels: cfg.extraLabels,
    },
    {
      maxSessions: cfg.maxSessions,
      orphanGraceMs: cfg.orphanGraceSeconds * 1000,
      reconcileIntervalMs: o.reconcileIntervalMs ?? Math.min(30_000, Math.max(1000, (cfg.orphanGraceSeconds * 1000) / 2)),
    },
  );
  await sessions.start();
  if (sessions.dockerUp && !(await runtime.hasImage(cfg.image).catch(() => true))) {
    logger.warn('session image missing', { image: cfg.image, hint: 'run: berth image build' });
  }
  const hostKey = await ensureHostKey(hostKeyPath(cfg));
  const pub = publicKeyOf(hostKey);
  const hello = (): HelloEvent => ({
    type: 'hello',
    agent: cfg.id,
    protocol: PROTOCOL_VERSION,
    version: BERTH_VERSION,
    hostname: os.hostname(),
    publishAddress: cfg.publishAddress,
    capacity: { cpus: os.cpus().length, memoryMb: Math.round(os.totalmem() / 1048576), maxSessions: cfg.maxSessions },
  });
  const server: AgentServer = createAgentServer({
    hostKey,
    trustedKeysFile: trustedKeysPath(cfg),
    sessions,
    hello,
    statsIntervalMs: o.statsIntervalMs ?? 5000,
    logger,
  });
  const addr = await server.listen(cfg.listen.port, cfg.listen.host);
  logger.info('agent listening', { host: addr.address, port: addr.port, fingerprint: pub.fingerprint });
  let stopped = false;
  return {
    host: addr.address,
    port: addr.port,
    fingerprint: pub.fingerprint,
    sessions,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
      await sessions.stop();
      await fs.rm(path.join(cfg.root, PID_FILE), { force: true });
    },
  };
}

/** The containers' user: the agent's own, or 1000:1000 when the agent runs as root. */
function defaultUser(): { uid: number; gid: number } {
  const uid = process.getuid?.() ?? 1000;
  const gid = process.getgid?.() ?? 1000;
  return uid === 0 ? { uid: 1000, gid: 1000 } : { uid, gid };
}

/**
 * One agent per root: refuses when another live agent holds it, takes over from a dead one. The
 * pid file records the holder's pid and start time, so a pid that a later process reused (or a
 * zombie not yet reaped) never passes for a live agent and never keeps one from starting.
 */
async function claimRoot(root: string): Promise<void> {
  const file = path.join(root, PID_FILE);
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // no holder recorded
  }
  const [pidText = '', started = ''] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
    const holder = processStart(pid);
    // A pid file of an older agent has no start time: then the command line must name berth.
    if (holder !== null && (holder === started || (started === '' && commandMentionsBerth(pid)))) {
      throw new BerthError('CONFLICT', `another agent (pid ${pid}) is using root ${root}`);
    }
  }
  await fs.writeFile(file, `${process.pid} ${processStart(process.pid) ?? ''}\n`);
}

function commandMentionsBerth(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('berth');
  } catch {
    return false;
  }
}

/** A live process's start time (clock ticks since boot, from /proc), or null if it is gone or a zombie. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, starttime field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    return fields[19] ?? null;
  } catch {
    return null;
  }
}
