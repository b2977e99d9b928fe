/** Builds a real agent from its config: the only place that creates the real runtime, probe and clock. */
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { BerthError, messageOf } from '../common/errors';
import { withDeadline } from '../common/deadline';
import { Logger, createLogger } from '../common/logging';
import { BERTH_VERSION, HelloEvent, PROTOCOL_VERSION } from '../common/protocol';
import { BUILD } from '../common/build-info';
import { AgentConfig, DEFAULT_SESSION_USER, hostKeyPath, trustedKeysPath } from './config';
import { DockerodeRuntime } from './docker/dockerode-runtime';
import { ContainerRuntime } from './docker/runtime';
import { PortProbe } from './ports/ports';
import { bindProbe } from './ports/probe';
import { AgentServer, createAgentServer } from './rpc/server';
import { ensureHostKey, publicKeyOf } from './rpc/keys';
import { Clock, Sessions } from './sessions';
import { SessionLocks } from './store/locks';
import { limitPolicy } from './limits';
import { PortClaims } from './ports/claims';
import { SessionStore } from './store/session-store';
import { RepoMirrors } from './repos/mirrors';
import { containerEnv } from './session-env';

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
/** How long start-up waits for the sessions' network before serving anyway. */
const NETWORK_WAIT_MS = 10_000;

/** Starts an agent: takes its root, loads sessions, adopts containers, serves SSH. */
export async function startAgent(o: AgentOptions): Promise<RunningAgent> {
  const cfg = o.config;
  const logger = (o.logger ?? createLogger({ level: cfg.log.level, file: cfg.log.file })).child({ agent: cfg.id });
  const clock = o.clock ?? { now: () => Date.now() };
  const handsHomes = canHandHomes();
  const user = cfg.user ?? defaultUser(handsHomes);
  const account = hostAccountOf(user.uid);
  if (account !== null) {
    logger.warn('containers run as an existing host user', {
      uid: user.uid,
      account,
      hint: 'set "user" in the agent config to a uid:gid no host account has',
    });
  }
  const limits = limitPolicy(cfg.limits, cfg.maxLimits, { memoryMb: Math.floor(os.totalmem() / 1048576), cpus: os.cpus().length });
  if (!handsHomes && user.uid !== process.getuid?.()) {
    logger.warn('cannot give session homes to the containers\' user: run as root or with CAP_CHOWN, CAP_DAC_OVERRIDE and CAP_FOWNER', { uid: user.uid });
  }
  const store = new SessionStore({ root: cfg.root, owner: handsHomes ? user : undefined });
  await fs.mkdir(cfg.root, { recursive: true });
  await claimRoot(cfg.root);
  const runtime =
    o.runtime ??
    new DockerodeRuntime({ socketPath: cfg.dockerSocket, agent: cfg.id, root: path.resolve(cfg.root), extraLabels: cfg.extraLabels, logger });
  const sessions = new Sessions(
    {
      store,
      locks: new SessionLocks({ staleMs: cfg.lockStaleSeconds * 1000, instance: randomUUID(), now: () => clock.now(), logger }),
      runtime,
      probe: o.probe ?? bindProbe(cfg.publishAddress),
      claims: cfg.portClaims ? new PortClaims(cfg.portClaims, { agent: cfg.id, root: path.resolve(cfg.root) }) : undefined,
      repos: new RepoMirrors({
        mirrorDir: cfg.repos.mirrorDir ?? path.join(cfg.stateDir, 'mirrors'),
        allowLocal: cfg.repos.allowLocal,
        refreshSeconds: cfg.repos.refreshSeconds,
        token: repoToken(cfg),
        logger,
      }),
      clock,
      logger,
    },
    {
      agent: cfg.id,
      image: cfg.image,
      command: cfg.command,
      env: cfg.env,
      mounts: cfg.mounts,
      repoTokenEnv: cfg.repos.tokenEnv,
      publishAddress: cfg.publishAddress,
      dnsServers: cfg.dnsServers,
      limits: cfg.limits,
      maxLimits: limits.max,
      user,
      extraLabels: cfg.extraLabels,
      network: cfg.network,
      readOnlyRoot: cfg.readOnlyRoot,
    },
    {
      maxSessions: cfg.maxSessions,
      stuckAfterMs: cfg.stuckAfterSeconds * 1000,
      idleAfterMs: cfg.idleAfterSeconds * 1000,
      trashMs: Math.round(cfg.trashHours * 3_600_000),
      orphanGraceMs: cfg.orphanGraceSeconds * 1000,
      reconcileIntervalMs: o.reconcileIntervalMs ?? Math.min(30_000, Math.max(1000, (cfg.orphanGraceSeconds * 1000) / 2)),
    },
  );
  await sessions.start();
  if (sessions.dockerUp) {
    try {
      await withDeadline(runtime.ensureNetwork(cfg.network), NETWORK_WAIT_MS, 'prepare network');
    } catch (err) {
      // A network that lets sessions reach each other is the operator's to fix: refuse to serve.
      if (err instanceof BerthError && err.code === 'CONFLICT') {
        await sessions.stop();
        throw err;
      }
      // Docker went away or is slow: every container start makes sure of the network anyway.
      logger.warn('session network not ready', { network: cfg.network, err: messageOf(err) });
    }
  }
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
    commit: BUILD.commit,
    builtAt: BUILD.builtAt,
    hostname: os.hostname(),
    publishAddress: cfg.publishAddress,
    capacity: { cpus: os.cpus().length, memoryMb: Math.round(os.totalmem() / 1048576), maxSessions: cfg.maxSessions, limits },
  });
  const server: AgentServer = createAgentServer({
    hostKey,
    trustedKeysFile: trustedKeysPath(cfg),
    sessions,
    hello,
    statsIntervalMs: o.statsIntervalMs ?? 5000,
    logger,
    login: cfg.login,
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

/**
 * The containers' user: when the agent runs as root, one that no host account should have; else
 * the agent's own (the only one whose homes it can write).
 */
function defaultUser(handsHomes: boolean): { uid: number; gid: number } {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  return handsHomes ? { ...DEFAULT_SESSION_USER } : { uid, gid };
}

/** CAP_CHOWN, CAP_DAC_OVERRIDE and CAP_FOWNER: what giving homes to another uid (and copying and removing them) takes. */
const HOME_CAPS = (1n << 0n) | (1n << 1n) | (1n << 3n);

/**
 * Whether this agent can keep homes owned by the containers' own uid: as root, or as a service
 * user with the three capabilities above (the systemd unit grants them as ambient capabilities,
 * which the copy, chown and rm children inherit).
 */
function canHandHomes(): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
    return line !== undefined && (BigInt(`0x${line.slice(7).trim()}`) & HOME_CAPS) === HOME_CAPS;
  } catch {
    return false;
  }
}

/** The host account with this uid in /etc/passwd, or null (also when the file cannot be read). */
function hostAccountOf(uid: number): string | null {
  let text = '';
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length >= 3 && fields[2] !== '' && Number(fields[2]) === uid) return fields[0] ?? '';
  }
  return null;
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

/** The token for https projects: the value of the variable `repos.tokenEnv` names, read when needed. */
function repoToken(cfg: AgentConfig): (() => Promise<string | null>) | null {
  const name = cfg.repos.tokenEnv;
  if (name === null) return null;
  return async () => (await containerEnv({ [name]: cfg.env[name] ?? '' }, {}))[name] ?? null;
}
