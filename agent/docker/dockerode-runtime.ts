/** The ContainerRuntime on a real Docker engine, through dockerode. The only dockerode importer. */
import { IncomingMessage } from 'node:http';
import Docker from 'dockerode';
import { BerthError, messageOf } from '../../common/errors';
import { LineSplitter } from '../../common/protocol/ndjson';
import { Logger } from '../../common/logging';
import {
  AttachHandle,
  AttachOptions,
  ContainerRuntime,
  ContainerSpec,
  ContainerSummary,
  LABEL_AGENT,
  LABEL_DNS,
  LABEL_LIMITS,
  LABEL_SETUP,
  STATUS_MOUNT,
  LABEL_PORT,
  LABEL_PROTOCOL,
  LABEL_ROOT,
  LABEL_SESSION,
  RuntimeEvent,
  appliedFromLabels,
} from './runtime';
import { dockerError, isGoneOrDone } from './errors';
import { ContainerExecs } from './execs';
import { SessionNetworks } from './session-network';

/** Inside the image: PID 1 of every session container (deploy/image/berth-session). */
export const SESSION_ENTRY = '/usr/local/bin/berth-session';
/** /tmp's size on a read-only root when the container has no memory limit. */
const DEFAULT_TMP_MB = 1024;
const WATCHED_ACTIONS = new Set(['create', 'start', 'die', 'stop', 'kill', 'destroy', 'pause', 'unpause', 'oom']);

export interface DockerodeRuntimeOptions {
  socketPath: string;
  agent: string;
  /** The agent's session root, recorded on and required of every container it owns. */
  root: string;
  /** Labels for what this agent creates besides containers (the sessions' network). */
  extraLabels?: Record<string, string>;
  logger: Logger;
}

export class DockerodeRuntime implements ContainerRuntime {
  private readonly docker: Docker;
  private readonly agent: string;
  private readonly root: string;
  private readonly log: Logger;
  private readonly execs: ContainerExecs;
  private readonly networks: SessionNetworks;

  constructor(opts: DockerodeRuntimeOptions) {
    this.docker = new Docker({ socketPath: opts.socketPath });
    this.agent = opts.agent;
    this.root = opts.root;
    this.log = opts.logger.child({ component: 'docker' });
    this.execs = new ContainerExecs(this.docker, this.log);
    this.networks = new SessionNetworks(this.docker, opts.extraLabels ?? {}, this.log);
  }

  async ensureNetwork(name: string): Promise<void> {
    await this.networks.ensure(name);
  }

  async list(): Promise<ContainerSummary[]> {
    return this.listBy(this.ownLabels());
  }

  async listSession(sessionId: string): Promise<ContainerSummary[]> {
    return this.listBy([...this.ownLabels(), `${LABEL_SESSION}=${sessionId}`]);
  }

  private ownLabels(): string[] {
    return [`${LABEL_AGENT}=${this.agent}`, `${LABEL_ROOT}=${this.root}`];
  }

  private async listBy(labels: string[]): Promise<ContainerSummary[]> {
    let rows: Docker.ContainerInfo[];
    try {
      rows = await this.docker.listContainers({ all: true, filters: { label: labels } });
    } catch (err) {
      throw dockerError('list containers', err);
    }
    return rows.map((c) => ({
      id: c.Id,
      sessionId: c.Labels[LABEL_SESSION] ?? '',
      state: c.State,
      status: c.Status,
      applied: appliedFromLabels(c.Labels),
    }));
  }

  async start(spec: ContainerSpec): Promise<ContainerSummary> {
    for (const old of await this.listSession(spec.sessionId)) {
      await this.removeForce(old.id);
    }
    try {
      await this.createAndStart(spec);
    } catch (err) {
      // The network was removed since the agent looked (another agent tidying a duplicate, an
      // operator): look again, creating it if need be, and try once more.
      if (!isNetworkGone(err)) throw err;
      this.networks.forget(spec.network);
      this.log.info('network gone: looking again', { network: spec.network, session: spec.sessionId });
      await this.createAndStart(spec);
    }
    const [summary] = await this.listSession(spec.sessionId);
    if (!summary) throw new BerthError('INTERNAL', 'start container: container vanished right after start');
    return summary;
  }

  private async createAndStart(spec: ContainerSpec): Promise<void> {
    const networkId = await this.networks.ensure(spec.network);
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(this.createOptions(spec, networkId));
    } catch (err) {
      throw dockerError('create container', err);
    }
    try {
      await container.start();
    } catch (err) {
      await this.removeForce(container.id);
      throw dockerError('start container', err);
    }
  }

  /**
   * What a session container is: whatever runs in it is untrusted. No capabilities, no way to
   * gain privileges (setuid), private namespaces, no device, no mount but its home, its own
   * network where containers cannot reach each other, and (by default) nothing writable outside
   * the home but a bounded /tmp.
   */
  private createOptions(spec: ContainerSpec, networkId: string): Docker.ContainerCreateOptions {
    const portKey = `${spec.port}/${spec.protocol}`;
    const labels: Record<string, string> = {
      ...spec.extraLabels,
      [LABEL_SESSION]: spec.sessionId,
      [LABEL_AGENT]: spec.agent,
      [LABEL_ROOT]: this.root,
      [LABEL_PROTOCOL]: spec.protocol,
      [LABEL_PORT]: String(spec.port),
      [LABEL_DNS]: spec.dns,
      [LABEL_LIMITS]: JSON.stringify(spec.sessionLimits),
      [LABEL_SETUP]: spec.setup,
    };
    // CgroupnsMode is in API 1.41 but not in dockerode's types.
    const hostConfig: Docker.HostConfig & { CgroupnsMode: string } = {
      Binds: [`${spec.homeDir}:/home/claude`],
      Mounts: [
        ...spec.mounts.map((m) => ({ Type: 'bind' as const, Source: m.source, Target: m.target, ReadOnly: true })),
        ...(spec.statusDir ? [{ Type: 'bind' as const, Source: spec.statusDir, Target: STATUS_MOUNT, ReadOnly: false }] : []),
      ],
      NetworkMode: networkId,
      PortBindings:
        spec.port > 0 ? { [portKey]: [{ HostIp: spec.publishAddress, HostPort: String(spec.port) }] } : undefined,
      Dns: spec.dnsServers.length > 0 ? spec.dnsServers : undefined,
      Memory: spec.limits.memoryMb ? spec.limits.memoryMb * 1024 * 1024 : undefined,
      NanoCpus: spec.limits.cpus ? Math.round(spec.limits.cpus * 1e9) : undefined,
      PidsLimit: spec.limits.pids,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      IpcMode: 'private',
      CgroupnsMode: 'private',
      ReadonlyRootfs: spec.readOnlyRoot,
      Tmpfs: spec.readOnlyRoot ? { '/tmp': tmpOptions(spec.limits.memoryMb) } : undefined,
      Init: true,
      RestartPolicy: { Name: 'no' },
    };
    return {
      name: `berth-${spec.sessionId}`,
      Image: spec.image,
      Cmd: [SESSION_ENTRY],
      Env: [
        'LANG=C.UTF-8',
        'TERM=xterm-256color',
        'HOME=/home/claude',
        `BERTH_SESSION=${spec.sessionId}`,
        `BERTH_COMMAND=${spec.command}`,
        ...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      ],
      User: `${spec.user.uid}:${spec.user.gid}`,
      WorkingDir: '/home/claude',
      Hostname: spec.hostname,
      Labels: labels,
      ExposedPorts: spec.port > 0 ? { [portKey]: {} } : undefined,
      HostConfig: hostConfig,
    };
  }

  async stopAndRemove(containerId: string, timeoutSec: number): Promise<void> {
    const c = this.docker.getContainer(containerId);
    try {
      await c.stop({ t: timeoutSec });
    } catch (err) {
      if (!isGoneOrDone(err)) throw dockerError('stop container', err);
    }
    await this.removeForce(containerId);
  }

  private async removeForce(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).remove({ force: true, v: true });
    } catch (err) {
      // 409: removal already in progress; both end with the container gone.
      const code = (err as { statusCode?: number }).statusCode;
      if (!isGoneOrDone(err) && code !== 409) throw dockerError('remove container', err);
    }
  }

  pause(containerId: string): Promise<void> {
    return this.execs.pause(containerId);
  }

  unpause(containerId: string): Promise<void> {
    return this.execs.unpause(containerId);
  }

  attach(containerId: string, opts: AttachOptions): Promise<AttachHandle> {
    return this.execs.attach(containerId, opts);
  }

  endAttaches(containerId: string, user: { uid: number; gid: number }): Promise<number> {
    return this.execs.endAttaches(containerId, user);
  }

  capturePane(containerId: string, user: { uid: number; gid: number }, lines: number): Promise<string> {
    return this.execs.capturePane(containerId, user, lines);
  }

  watch(handlers: { onEvent(e: RuntimeEvent): void; onUp(): void; onDown(err: string): void }): () => void {
    let stopped = false;
    let current: IncomingMessage | null = null;
    let wake: (() => void) | null = null;
    const loop = async (): Promise<void> => {
      let backoff = 250;
      while (!stopped) {
        let reason = 'event stream ended';
        try {
          const stream = (await this.docker.getEvents({
            filters: { type: ['container'], label: this.ownLabels() },
          })) as unknown as IncomingMessage;
          current = stream;
          backoff = 250;
          handlers.onUp();
          await this.consumeEvents(stream, handlers.onEvent);
        } catch (err) {
          reason = messageOf(err);
        }
        current = null;
        if (stopped) break;
        handlers.onDown(reason);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, backoff);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        backoff = Math.min(backoff * 2, 4000);
      }
    };
    void loop();
    return () => {
      stopped = true;
      current?.destroy();
      wake?.();
    };
  }

  private consumeEvents(stream: IncomingMessage, onEvent: (e: RuntimeEvent) => void): Promise<void> {
    const splitter = new LineSplitter(1024 * 1024);
    return new Promise((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        for (const f of splitter.push(chunk)) {
          if (f.kind !== 'line') continue;
          try {
            const ev = JSON.parse(f.line) as { Action?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
            const sessionId = ev.Actor?.Attributes?.[LABEL_SESSION];
            const action = (ev.Action ?? '').split(':')[0] ?? '';
            if (sessionId && WATCHED_ACTIONS.has(action)) onEvent({ sessionId, containerId: ev.Actor?.ID ?? '', action });
          } catch (err) {
            this.log.warn('bad docker event', { err: messageOf(err) });
          }
        }
      });
      stream.on('error', () => resolve());
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
    });
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return false;
      throw dockerError('inspect image', err);
    }
  }
}

/**
 * /tmp on a read-only root: programs may run from it (build tools do), nothing setuid or a
 * device. Its pages count against the container's memory, so it is bounded at half the memory
 * limit: filling it gives "no space left" before the session's processes are killed for memory.
 */
export function tmpOptions(memoryMb: number | undefined): string {
  const sizeMb = memoryMb ? Math.max(16, Math.floor(memoryMb / 2)) : DEFAULT_TMP_MB;
  return `rw,exec,nosuid,nodev,size=${sizeMb}m`;
}

/** Docker's answer when a container's network no longer exists (at create or at start). */
function isNetworkGone(err: unknown): boolean {
  return err instanceof BerthError && /network \S+ not found/i.test(err.message);
}
