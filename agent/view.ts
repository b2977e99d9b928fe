/** Pure: what an operator sees of a session, derived from metadata, Docker, attaches and the lock. */
import os from 'node:os';
import { statfsSync } from 'node:fs';
import { Activity, GitGlance, HostStats, Limits, LockInfo, SessionEntry, SessionMeta, SessionState } from '../common/protocol';
import { projectDir, setupHash } from '../common/session-setup';
import { ContainerSpec, ContainerSummary } from './docker/runtime';
import { StoredSession } from './store/session-store';

/** Running for berth: the container is up, even if paused for a moment (a clone copying it). */
export function isRunning(c: ContainerSummary | null | undefined): boolean {
  return c?.state === 'running' || c?.state === 'paused';
}

/** `C` if anyone is attached to a running session, `R` if running, `L` if locked, else `-`. */
export function deriveState(running: boolean, attachCount: number, lock: LockInfo | null): SessionState {
  if (running) return attachCount > 0 ? 'C' : 'R';
  return lock ? 'L' : '-';
}

/** True when the running container was started with other protocol, port, DNS or limits than the metadata says. */
export function needsRestart(meta: SessionMeta, c: ContainerSummary | null | undefined, defaultCommand: string): boolean {
  if (!c || !isRunning(c) || !c.applied) return false;
  if (c.applied.port !== meta.port || c.applied.protocol !== meta.protocol || c.applied.dns !== meta.dns) return true;
  if (c.applied.limits !== undefined && !sameLimits(c.applied.limits, meta.limits ?? {})) return true;
  return c.applied.setup !== undefined && c.applied.setup !== setupOf(meta, defaultCommand);
}

/** The setup hash a container of this session gets (see setupHash). */
export function setupOf(meta: SessionMeta, defaultCommand: string): string {
  return setupHash({ command: meta.command ?? defaultCommand, env: meta.env ?? {}, repo: meta.repo ?? null });
}

function sameLimits(a: Limits, b: Limits): boolean {
  return a.memoryMb === b.memoryMb && a.cpus === b.cpus && a.pids === b.pids;
}

export function buildEntry(
  agent: string,
  stored: StoredSession,
  container: ContainerSummary | null,
  attached: string[],
  lock: LockInfo | null,
  /** The agent's command, for sessions that name none (see needsRestart). */
  defaultCommand: string,
  /** What its program last reported, and its project's git state (see StatusWatch). */
  activity: Activity | null = null,
  git: GitGlance | null = null,
): SessionEntry {
  const running = isRunning(container);
  const state = deriveState(running, attached.length, lock);
  const wireContainer = container
    ? { id: container.id, status: container.status, running, paused: container.state === 'paused', applied: container.applied }
    : null;
  if (stored.kind === 'broken') {
    return { kind: 'broken', agent, id: stored.id, reason: stored.reason, state, lock, container: wireContainer };
  }
  return {
    kind: 'session',
    agent,
    meta: stored.meta,
    state,
    attached: running ? attached : [],
    lock,
    container: wireContainer,
    restartNeeded: needsRestart(stored.meta, container, defaultCommand),
    // A program whose container is gone has exited, whatever it said last.
    activity: activity && !running && activity.state !== 'exited' ? { ...activity, state: 'exited', detail: '' } : activity,
    git,
  };
}

/** Where a container sees its project's mirror (read-only), to clone it at its first start. */
export const PROJECT_MIRROR = '/run/berth/repo';

/** The container a session runs in, from its metadata and the agent's settings. */
export function containerSpec(
  meta: SessionMeta,
  homeDir: string,
  agent: {
    agent: string;
    image: string;
    command: string;
    mounts?: Array<{ source: string; target: string }>;
    repoTokenEnv?: string | null;
    user: { uid: number; gid: number };
    publishAddress: string;
    dnsServers: string[];
    limits: Limits;
    extraLabels: Record<string, string>;
    network: string;
    readOnlyRoot: boolean;
  },
  /** What it runs with: the session's limits over the agent's defaults, within its maximums. */
  limits: Limits,
  /** Its environment (containerEnv): the agent's variables and the session's. */
  env: Record<string, string>,
  /** Its project's mirror on the host, while its project is not checked out yet. */
  mirror: string | null = null,
  /** Its status folder (see StatusWatch). */
  statusDir: string | null = null,
): ContainerSpec {
  // The project's variables whenever it has one (a token helper, the folder to start in); its
  // mirror only when there is one to clone from.
  const project: { env: Record<string, string>; mounts: Array<{ source: string; target: string }> } =
    meta.repo
      ? {
          env: {
            BERTH_REPO_URL: meta.repo.url,
            BERTH_REPO_BRANCH: meta.repo.branch,
            BERTH_REPO_DIR: `/home/claude/${projectDir(meta.repo.url)}`,
            ...(agent.repoTokenEnv ? { BERTH_REPO_TOKEN_ENV: agent.repoTokenEnv } : {}),
          },
          mounts: mirror ? [{ source: mirror, target: PROJECT_MIRROR }] : [],
        }
      : { env: {}, mounts: [] };
  return {
    sessionId: meta.id,
    agent: agent.agent,
    image: agent.image,
    command: meta.command ?? agent.command,
    env: { ...env, ...project.env },
    mounts: [...(agent.mounts ?? []), ...project.mounts],
    statusDir,
    setup: setupOf(meta, agent.command),
    user: agent.user,
    homeDir,
    hostname: meta.dns || `berth-${meta.id.slice(0, 8)}`,
    protocol: meta.protocol,
    port: meta.port,
    dns: meta.dns,
    publishAddress: agent.publishAddress,
    dnsServers: agent.dnsServers,
    limits: clampLimits(limits, os.cpus().length),
    sessionLimits: meta.limits ?? {},
    extraLabels: agent.extraLabels,
    network: agent.network,
    readOnlyRoot: agent.readOnlyRoot,
  };
}

/** Docker refuses a CPU limit above the host's CPU count: cap it there. */
export function clampLimits(limits: Limits, hostCpus: number): Limits {
  return limits.cpus !== undefined && hostCpus > 0 && limits.cpus > hostCpus ? { ...limits, cpus: hostCpus } : limits;
}

/** This host's figures for the `stats` op and event; the disk's are those of the folder `root` is on. */
export function hostStats(sessions: number, containersRunning: number, root: string): HostStats {
  let disk: Pick<HostStats, 'diskFreeMb' | 'diskTotalMb'> = {};
  try {
    const st = statfsSync(root);
    disk = { diskFreeMb: Math.round((st.bavail * st.bsize) / 1048576), diskTotalMb: Math.round((st.blocks * st.bsize) / 1048576) };
  } catch {
    // a root that went away says nothing of its disk
  }
  return {
    ...disk,
    cpus: os.cpus().length,
    load1: os.loadavg()[0] ?? 0,
    memoryTotalMb: Math.round(os.totalmem() / 1048576),
    memoryFreeMb: Math.round(os.freemem() / 1048576),
    containersRunning,
    sessions,
  };
}
