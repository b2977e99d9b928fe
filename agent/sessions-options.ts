/** What a Sessions is built from: its injected parts, how it runs containers, its housekeeping. */
import { Logger } from '../common/logging';
import { Limits } from '../common/protocol';
import { ContainerRuntime } from './docker/runtime';
import { PortProbe } from './ports/ports';
import { PortClaims } from './ports/claims';
import { SessionLocks } from './store/locks';
import { SessionStore } from './store/session-store';
import { EnvSource } from './session-env';
import { RepoMirrors } from './repos/mirrors';

export interface Clock {
  now(): number;
}

/** What the operations stand on: injected, so that tests can hand in fakes. */
export interface SessionsDeps {
  store: SessionStore;
  locks: SessionLocks;
  runtime: ContainerRuntime;
  probe: PortProbe;
  clock: Clock;
  logger: Logger;
  /** Project mirrors (agent config `repos`); absent: sessions take no project. */
  repos?: RepoMirrors;
  /** Host-wide port claims shared with other agents on this host (agent config `portClaims`). */
  claims?: PortClaims;
}

/** How this agent runs its sessions' containers. */
export interface ContainerSettings {
  /** The agent's id (the berth.agent label). */
  agent: string;
  image: string;
  /** What tmux runs in a session that names no command of its own. */
  command: string;
  /** Variables every session gets (see session-env.ts). */
  env?: Record<string, EnvSource>;
  /** Host paths every session sees read-only. */
  mounts?: Array<{ source: string; target: string }>;
  /** The variable (of `env`) holding the token a project's https remote is pushed with. */
  repoTokenEnv?: string | null;
  publishAddress: string;
  dnsServers: string[];
  /** Defaults for sessions that asked for no limits of their own. */
  limits: Limits;
  /** The most an operator may ask for (unset fields: no maximum). */
  maxLimits?: Limits;
  user: { uid: number; gid: number };
  extraLabels: Record<string, string>;
  /** The sessions' network (made by the runtime if missing; containers on it cannot reach each other). */
  network: string;
  /** Containers get a read-only root filesystem (and a tmpfs /tmp). */
  readOnlyRoot: boolean;
  /** Seconds `kill` waits for a container to stop before killing it. */
  stopTimeoutSec?: number;
}

/** Limits and timings of the agent's housekeeping. */
export interface SessionsPolicy {
  maxSessions: number | null;
  /** How long a container must stand without a session before it is removed. */
  orphanGraceMs: number;
  /** How often the reconciler looks for orphans and leftovers (0: only at start). */
  reconcileIntervalMs: number;
  /** A working session with no report for this long shows as stuck (default 10 min). */
  stuckAfterMs?: number;
  /** A session no hook reports for whose pane printed nothing for this long shows as idle (default 30 s). */
  idleAfterMs?: number;
  /** How long a deleted session stays in the trash before it is purged; 0 (the default): deleted at once. */
  trashMs?: number;
}
