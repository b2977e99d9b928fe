/**
 * The container runtime as the agent sees it. agent/docker/ is the only place that knows Docker;
 * everything else talks to this interface (and tests of pure logic can fake it).
 */
import { Duplex } from 'node:stream';
import { AppliedConfig, appliedConfigSchema, Limits, limitsSchema } from '../../common/protocol';
import { parseJson } from '../../common/json';
import { Protocol } from '../../common/names';

export const LABEL_SESSION = 'berth.session';
export const LABEL_AGENT = 'berth.agent';
/** The agent's session root: agents that share an id by mistake never touch each other's containers. */
export const LABEL_ROOT = 'berth.root';
export const LABEL_PROTOCOL = 'berth.protocol';
export const LABEL_PORT = 'berth.port';
export const LABEL_DNS = 'berth.dns';
/** The session's own limits (JSON) it was started with: an edit of them shows "restart to apply". */
export const LABEL_LIMITS = 'berth.limits';
/** The hash of its command, variables and project (setupHash): an edit of them shows "restart to apply". */
export const LABEL_SETUP = 'berth.setup';
/** On the sessions' network: marks it as berth's (several agents on one engine share it). */
export const LABEL_NETWORK = 'berth.network';
/** Where a container sees its status folder (berth-hook writes its reports there). */
export const STATUS_MOUNT = '/run/berth/status';

export interface ContainerSpec {
  sessionId: string;
  agent: string;
  image: string;
  /** What tmux runs inside. */
  command: string;
  /** Its environment besides berth's own variables (secrets among them: never logged or labelled). */
  env: Record<string, string>;
  /** Host paths it sees read-only. */
  mounts: Array<{ source: string; target: string }>;
  /** The session's status folder, mounted writable at STATUS_MOUNT; null for none. */
  statusDir: string | null;
  /** setupHash of its command, the session's variables and project. */
  setup: string;
  user: { uid: number; gid: number };
  homeDir: string;
  hostname: string;
  protocol: Protocol;
  port: number;
  /** The DNS name (label only), recorded so an edit shows "restart to apply". */
  dns: string;
  publishAddress: string;
  dnsServers: string[];
  /** What the container runs with. */
  limits: Limits;
  /** The session's own limits (recorded, so that an edit of them shows "restart to apply"). */
  sessionLimits: Limits;
  extraLabels: Record<string, string>;
  /** The bridge network it joins, one where containers cannot reach each other (see ensureNetwork). */
  network: string;
  /** A read-only root filesystem, with a tmpfs on /tmp. */
  readOnlyRoot: boolean;
}

export interface ContainerSummary {
  id: string;
  sessionId: string;
  /** Docker's state word: running, paused, exited, created, restarting, removing, dead. */
  state: string;
  /** Docker's human status ("Up 3 minutes"). */
  status: string;
  /** The protocol/port/dns it was started with, from its labels; null if they are unreadable. */
  applied: AppliedConfig | null;
}

export interface AttachOptions {
  readOnly: boolean;
  cols: number;
  rows: number;
  user: { uid: number; gid: number };
}

export interface AttachHandle {
  /** Raw terminal bytes both ways (a TTY exec: no multiplexing). */
  stream: Duplex;
  /** Resizes this attach's terminal. Never throws. */
  resize(cols: number, rows: number): Promise<void>;
  /** Ends this attach's tmux client only (HUP) and the stream. Idempotent, never throws. */
  close(): Promise<void>;
}

export type RuntimeEvent = { sessionId: string; containerId: string; action: string };

export interface ContainerRuntime {
  /** Every container labelled for this agent, in any state: one label-filtered listing. */
  list(): Promise<ContainerSummary[]>;
  /** The containers of one session (normally zero or one). */
  listSession(sessionId: string): Promise<ContainerSummary[]>;
  /**
   * Makes sure the bridge network `name` exists with inter-container traffic off, creating it if
   * missing. Idempotent, and safe when agents sharing the engine race to create it. Throws
   * CONFLICT if a network of that name lets containers reach each other, RUNTIME_UNAVAILABLE if
   * Docker is down.
   */
  ensureNetwork(name: string): Promise<void>;
  /**
   * Creates and starts the session's container, first removing any other container of the
   * session (stopped or not). The container runs with every capability dropped, no new
   * privileges, private namespaces, and no mount but the home; its network is made if missing.
   * Throws PORT_UNAVAILABLE if the port cannot be published, CONFLICT if the network lets
   * containers reach each other, RUNTIME_UNAVAILABLE if Docker is down.
   */
  start(spec: ContainerSpec): Promise<ContainerSummary>;
  /** Stops (after `timeoutSec`, killed) and removes a container. Idempotent. */
  stopAndRemove(containerId: string, timeoutSec: number): Promise<void>;
  /** Pauses / unpauses a running container. Idempotent. */
  pause(containerId: string): Promise<void>;
  unpause(containerId: string): Promise<void>;
  /**
   * Opens a tmux client in the container (`-r` when read-only). While this agent has the
   * container paused (a clone copying it), it waits, and after 30 s throws CONFLICT.
   */
  attach(containerId: string, opts: AttachOptions): Promise<AttachHandle>;
  /**
   * Ends every attach client a berth agent left in the container (after a crash nobody holds
   * them). Only while this agent holds no attach to it. Returns how many were ended.
   */
  endAttaches(containerId: string, user: { uid: number; gid: number }): Promise<number>;
  /** The last `lines` lines of the session's tmux pane, as text (at most MAX_PREVIEW_BYTES). */
  capturePane(containerId: string, user: { uid: number; gid: number }, lines: number): Promise<string>;
  /**
   * Follows container events for this agent until the returned stop is called, reconnecting
   * while Docker is away. `onUp`/`onDown` tell when the engine comes and goes.
   */
  watch(handlers: { onEvent(e: RuntimeEvent): void; onUp(): void; onDown(err: string): void }): () => void;
  /** Whether the image is present locally. */
  hasImage(image: string): Promise<boolean>;
}

/** What a container was started with, from its labels; null when they are unreadable. */
export function appliedFromLabels(labels: Record<string, string>): AppliedConfig | null {
  const limitsText = labels[LABEL_LIMITS];
  const limits = limitsText === undefined ? undefined : parseJson(limitsText, limitsSchema);
  const r = appliedConfigSchema.safeParse({
    protocol: labels[LABEL_PROTOCOL],
    port: Number(labels[LABEL_PORT]),
    dns: labels[LABEL_DNS] ?? '',
    ...(limits?.ok ? { limits: limits.value } : {}),
    ...(labels[LABEL_SETUP] ? { setup: labels[LABEL_SETUP] } : {}),
  });
  return r.success ? r.data : null;
}
