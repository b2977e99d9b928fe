/** The ContainerRuntime on a real Docker engine, through dockerode. The only dockerode importer. */
import { randomUUID } from 'node:crypto';
import { IncomingMessage } from 'node:http';
import { Duplex } from 'node:stream';
import Docker from 'dockerode';
import { BerthError, messageOf } from '../../common/errors';
import { LineSplitter } from '../../common/protocol/ndjson';
import { appliedConfigSchema } from '../../common/protocol';
import { Logger } from '../../common/logging';
import {
  AttachHandle,
  AttachOptions,
  ContainerRuntime,
  ContainerSpec,
  ContainerSummary,
  LABEL_AGENT,
  LABEL_DNS,
  LABEL_PORT,
  LABEL_PROTOCOL,
  LABEL_ROOT,
  LABEL_SESSION,
  RuntimeEvent,
} from './runtime';
import { dockerError, isGoneOrDone } from './errors';
import { ExecGate } from './exec-gate';

/** Inside the image: PID 1 of every session container (deploy/image/berth-session). */
export const SESSION_ENTRY = '/usr/local/bin/berth-session';
const TMUX_SESSION = 'claude';
const WATCHED_ACTIONS = new Set(['create', 'start', 'die', 'stop', 'kill', 'destroy', 'pause', 'unpause', 'oom']);

/** Shell text that waits (at most 10 s) for the tmux session; it holds no operator input. */
const WAIT_FOR_TMUX =
  `i=0; until tmux has-session -t ${TMUX_SESSION} 2>/dev/null; do i=$((i+1)); ` +
  `if [ "$i" -gt 200 ]; then echo "berth: tmux session not ready" >&2; exit 1; fi; sleep 0.05; done`;

/** How long an attach waits for a clone's pause to end before it is refused. */
const ATTACH_GATE_WAIT_MS = 30_000;
/** How long the agent's own short commands (the HUP of a detach, …) wait for a pause to end. */
const RUN_GATE_WAIT_MS = 10 * 60_000;
/** How long a pause waits for execs that are starting. */
const PAUSE_GATE_WAIT_MS = 15_000;
/** How long an exec may take to be under way (its process running or done). */
const EXEC_START_WAIT_MS = 10_000;

export interface DockerodeRuntimeOptions {
  socketPath: string;
  agent: string;
  /** The agent's session root, recorded on and required of every container it owns. */
  root: string;
  logger: Logger;
}

export class DockerodeRuntime implements ContainerRuntime {
  private readonly docker: Docker;
  private readonly agent: string;
  private readonly root: string;
  private readonly log: Logger;
  private readonly gate = new ExecGate();

  constructor(opts: DockerodeRuntimeOptions) {
    this.docker = new Docker({ socketPath: opts.socketPath });
    this.agent = opts.agent;
    this.root = opts.root;
    this.log = opts.logger.child({ component: 'docker' });
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw dockerError('ping docker', err);
    }
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
    const portKey = `${spec.port}/${spec.protocol}`;
    const labels: Record<string, string> = {
      ...spec.extraLabels,
      [LABEL_SESSION]: spec.sessionId,
      [LABEL_AGENT]: spec.agent,
      [LABEL_ROOT]: this.root,
      [LABEL_PROTOCOL]: spec.protocol,
      [LABEL_PORT]: String(spec.port),
      [LABEL_DNS]: spec.dns,
    };
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({
        name: `berth-${spec.sessionId}`,
        Image: spec.image,
        Cmd: [SESSION_ENTRY],
        Env: [
          'LANG=C.UTF-8',
          'TERM=xterm-256color',
          'HOME=/home/claude',
          `BERTH_SESSION=${spec.sessionId}`,
          `BERTH_COMMAND=${spec.command}`,
        ],
        User: `${spec.user.uid}:${spec.user.gid}`,
        WorkingDir: '/home/claude',
        Hostname: spec.hostname,
        Labels: labels,
        ExposedPorts: spec.port > 0 ? { [portKey]: {} } : undefined,
        HostConfig: {
          Binds: [`${spec.homeDir}:/home/claude`],
          PortBindings:
            spec.port > 0 ? { [portKey]: [{ HostIp: spec.publishAddress, HostPort: String(spec.port) }] } : undefined,
          Dns: spec.dnsServers.length > 0 ? spec.dnsServers : undefined,
          Memory: spec.limits.memoryMb ? spec.limits.memoryMb * 1024 * 1024 : undefined,
          NanoCpus: spec.limits.cpus ? Math.round(spec.limits.cpus * 1e9) : undefined,
          PidsLimit: spec.limits.pids,
          Init: true,
          RestartPolicy: { Name: 'no' },
        },
      });
    } catch (err) {
      throw dockerError('create container', err);
    }
    try {
      await container.start();
    } catch (err) {
      await this.removeForce(container.id);
      throw dockerError('start container', err);
    }
    const [summary] = await this.listSession(spec.sessionId);
    if (!summary) throw new BerthError('INTERNAL', 'start container: container vanished right after start');
    return summary;
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

  async pause(containerId: string): Promise<void> {
    await this.gate.beginPause(containerId, PAUSE_GATE_WAIT_MS);
    try {
      await this.docker.getContainer(containerId).pause();
    } catch (err) {
      if (!/already paused/i.test(messageOf(err))) {
        this.gate.endPause(containerId);
        throw dockerError('pause container', err);
      }
    }
  }

  async unpause(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).unpause();
    } catch (err) {
      if (!/not paused/i.test(messageOf(err)) && !isGoneOrDone(err)) throw dockerError('unpause container', err);
    }
    this.gate.endPause(containerId);
  }

  /**
   * Creates and starts an exec through the gate: it waits while this agent has the container
   * paused, and counts as starting until Docker reports its process (a pause waits for that). The
   * stream is handed back at once, so no output is missed meanwhile.
   */
  private async startExec(
    containerId: string,
    create: Docker.ExecCreateOptions,
    start: { stdin: boolean },
    gateWaitMs: number,
  ): Promise<{ exec: Docker.Exec; stream: Duplex }> {
    const started = await this.gate.beginExec(containerId, gateWaitMs);
    let exec: Docker.Exec;
    let stream: Duplex;
    try {
      exec = await this.docker.getContainer(containerId).exec(create);
      stream = (await exec.start({ hijack: true, stdin: start.stdin, Tty: true })) as Duplex;
    } catch (err) {
      started();
      throw err;
    }
    this.underWay(exec)
      .catch((err: unknown) => this.log.warn('exec not seen under way', { container: containerId, err: messageOf(err) }))
      .finally(started);
    return { exec, stream };
  }

  /**
   * Waits (bounded) until Docker reports the exec's process id (or its exit). Not `Running`:
   * Docker sets that before it asks containerd to start the process, while runc is still at it.
   */
  private async underWay(exec: Docker.Exec): Promise<void> {
    const end = Date.now() + EXEC_START_WAIT_MS;
    for (;;) {
      const info = await exec.inspect();
      if (info.Pid > 0 || info.ExitCode !== null) return;
      if (Date.now() > end) throw new BerthError('TIMEOUT', `exec in container: not under way after ${EXEC_START_WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async waitForTmux(containerId: string, user: { uid: number; gid: number }, timeoutMs: number): Promise<void> {
    const r = await this.run(containerId, user, WAIT_FOR_TMUX, timeoutMs);
    if (r.exitCode !== 0) throw new BerthError('INTERNAL', `tmux session did not start: ${r.output.trim() || `exit ${r.exitCode}`}`);
  }

  async tmuxClients(containerId: string, user: { uid: number; gid: number }): Promise<number> {
    const r = await this.run(containerId, user, `tmux list-clients -t ${TMUX_SESSION} -F x 2>/dev/null || true`, 5000);
    return r.output.split('\n').filter((l) => l.trim() === 'x').length;
  }

  async attach(containerId: string, opts: AttachOptions): Promise<AttachHandle> {
    const attachId = randomUUID();
    const pidFile = `/tmp/.berth-attach-${attachId}`;
    const script = `${WAIT_FOR_TMUX}; echo $$ > ${pidFile}; exec tmux attach-session -t ${TMUX_SESSION}${opts.readOnly ? ' -r' : ''}`;
    let exec: Docker.Exec;
    let stream: Duplex;
    try {
      ({ exec, stream } = await this.startExec(
        containerId,
        {
          Cmd: ['sh', '-c', script],
          User: `${opts.user.uid}:${opts.user.gid}`,
          Env: ['TERM=xterm-256color', 'LANG=C.UTF-8', 'HOME=/home/claude'],
          Tty: true,
          AttachStdin: true,
          AttachStdout: true,
          AttachStderr: true,
        },
        { stdin: true },
        ATTACH_GATE_WAIT_MS,
      ));
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw dockerError('attach', err);
    }
    const resize = async (cols: number, rows: number): Promise<void> => {
      try {
        await exec.resize({ h: rows, w: cols });
      } catch (err) {
        this.log.debug('resize failed', { container: containerId, err: messageOf(err) });
      }
    };
    await resize(opts.cols, opts.rows);
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      // A dropped hijack socket does not end the exec: HUP exactly this attach's tmux client.
      const hup = `p=$(cat ${pidFile} 2>/dev/null) && kill -HUP "$p" 2>/dev/null; rm -f ${pidFile}`;
      await this.run(containerId, opts.user, hup, 5000).catch((err: unknown) =>
        this.log.debug('hup attach failed', { container: containerId, err: messageOf(err) }),
      );
      stream.destroy();
    };
    return { stream, resize, close };
  }

  /** Runs a fixed script (never operator input) in the container and collects its output. */
  private async run(
    containerId: string,
    user: { uid: number; gid: number },
    script: string,
    timeoutMs: number,
  ): Promise<{ exitCode: number; output: string }> {
    let exec: Docker.Exec;
    let stream: Duplex;
    try {
      ({ exec, stream } = await this.startExec(
        containerId,
        {
          Cmd: ['sh', '-c', script],
          User: `${user.uid}:${user.gid}`,
          Env: ['LANG=C.UTF-8', 'HOME=/home/claude'],
          Tty: true,
          AttachStdout: true,
          AttachStderr: true,
        },
        { stdin: false },
        RUN_GATE_WAIT_MS,
      ));
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw dockerError('exec in container', err);
    }
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.destroy();
        reject(new BerthError('TIMEOUT', `exec in container: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', () => undefined);
      stream.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
      stream.on('end', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const info = await exec.inspect().catch(() => null);
    return { exitCode: info?.ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8').replace(/\r/g, '') };
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

function appliedFromLabels(labels: Record<string, string>) {
  const r = appliedConfigSchema.safeParse({
    protocol: labels[LABEL_PROTOCOL],
    port: Number(labels[LABEL_PORT]),
    dns: labels[LABEL_DNS] ?? '',
  });
  return r.success ? r.data : null;
}
