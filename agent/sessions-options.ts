/** What a Sessions is built from: its injected parts, how it runs containers, its housekeeping. */
import { Logger } from '../common/logging';
import { Limits } from '../common/protocol';
import { ContainerRuntime } from './docker/runtime';
import { PortProbe } from './ports/ports';
import { PortClaims } from './ports/claims';
import { SessionLocks } from './store/locks';
import { SessionStore } from './store/session-store';

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
  /** Host-wide port claims shared with other agents on this host (agent config `portClaims`). */
  claims?: PortClaims;
}

/** How this agent runs its sessions' containers. */
export interface ContainerSettings {
  /** The agent's id (the berth.agent label). */
  agent: string;
  image: string;
  command: string;
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
}
