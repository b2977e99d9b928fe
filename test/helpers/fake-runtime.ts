/**
 * An in-memory ContainerRuntime (sessions-harness.ts builds the agent's Sessions on it): for the
 * session logic that is slow or timing-bound against real Docker (pauses around a clone, event
 * races, grace periods, outages).
 *
 * It behaves as agent/docker/dockerode-runtime.ts does where the agent can tell: listings filtered
 * by the agent and root labels, the same error codes (through the same dockerError mapping), the
 * same idempotence, the events Docker sends for each change. Knobs let a test take Docker down,
 * slow or hold a call, hold the event stream, and have a `die` arrive while the listing still says
 * running (Docker 20.10 does). Every call is recorded, in order.
 */
import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import { dockerError } from '../../agent/docker/errors';
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
  LABEL_LIMITS,
  LABEL_SESSION,
  RuntimeEvent,
  appliedFromLabels,
} from '../../agent/docker/runtime';
import { BerthError } from '../../common/errors';
import { Protocol } from '../../common/names';
import { AppliedConfig } from '../../common/protocol';

export type FakeState = 'created' | 'running' | 'paused' | 'exited';

export interface FakeContainer {
  id: string;
  labels: Record<string, string>;
  state: FakeState;
  /** What listings show while `staleListings` > 0 (Docker 20.10 lists a dead container as running for a moment). */
  listedState: FakeState;
  staleListings: number;
}

export interface FakeAttach {
  containerId: string;
  readOnly: boolean;
  cols: number;
  rows: number;
  /** Bytes the agent wrote to this attach's terminal. */
  input: Buffer[];
  /** The agent called close() (HUP of this tmux client). */
  closedByAgent: boolean;
  /** The exec ended on its own (its container stopped). */
  ended: boolean;
  stream: Duplex;
}

export interface RuntimeCall {
  method: string;
  /** The container, session or image the call was about ('' for none). */
  target: string;
}

type Handlers = Parameters<ContainerRuntime['watch']>[0];

export interface FakeRuntimeOptions {
  agent: string;
  root: string;
  images?: string[];
  /** How long an attach waits while the container is paused before CONFLICT (the real one waits 30 s). */
  pauseWaitMs?: number;
}

export class FakeRuntime implements ContainerRuntime {
  readonly calls: RuntimeCall[] = [];
  readonly attaches: FakeAttach[] = [];
  private readonly containers = new Map<string, FakeContainer>();
  private readonly watchers = new Set<Handlers>();
  private readonly images: Set<string>;
  private readonly delays = new Map<string, number>();
  private readonly holds = new Map<string, Array<() => Promise<void>>>();
  private readonly unpauseWaiters = new Set<() => void>();
  private heldEvents: RuntimeEvent[] | null = null;
  private isDown = false;

  constructor(private readonly o: FakeRuntimeOptions) {
    this.images = new Set(o.images ?? []);
  }

  // ---- knobs ----

  /** Takes the engine away (every call throws RUNTIME_UNAVAILABLE, watchers hear onDown) or brings it back (onUp). */
  setDown(down: boolean): void {
    if (this.isDown === down) return;
    this.isDown = down;
    // A broken event stream loses what it had not delivered.
    if (down && this.heldEvents) this.heldEvents = [];
    for (const h of this.watchers) setImmediate(() => (down ? h.onDown('connect ECONNREFUSED /var/run/docker.sock') : h.onUp()));
  }

  /** Every later call of `method` takes `ms` longer (before it looks at anything); 0 ends that. */
  delay(method: keyof ContainerRuntime, ms: number): void {
    this.delays.set(method, ms);
  }

  /** Stops the next call of `method` until `release()`; `reached` resolves when it arrives. */
  hold(method: keyof ContainerRuntime): { reached: Promise<void>; release(): void } {
    let arrived!: () => void;
    const reached = new Promise<void>((r) => (arrived = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const queue = this.holds.get(method) ?? [];
    queue.push(() => {
      arrived();
      return gate;
    });
    this.holds.set(method, queue);
    return { reached, release };
  }

  /** Keeps events back (as a lagging event stream does) until `flushEvents`. */
  holdEvents(): void {
    this.heldEvents ??= [];
  }

  /** Sends the events kept back, in their order, and stops keeping them; returns how many. */
  flushEvents(): number {
    const held = this.heldEvents ?? [];
    this.heldEvents = null;
    for (const e of held) this.emit(e);
    return held.length;
  }

  /** Sends one event to every watcher, after the current call stack (as the event stream does). Dropped while down. */
  emit(e: RuntimeEvent): void {
    if (this.isDown) return;
    if (this.heldEvents) {
      this.heldEvents.push(e);
      return;
    }
    for (const h of this.watchers) setImmediate(() => h.onEvent(e));
  }

  /**
   * The container's process exits behind the agent's back. With `staleListings`, that many
   * listings still show it as it was (Docker 20.10 sends `die` before its listing agrees).
   * `event: false` changes it silently (as while the event stream is down).
   */
  die(containerId: string, opts: { staleListings?: number; event?: boolean } = {}): void {
    const c = this.must(containerId);
    c.listedState = c.state;
    c.staleListings = opts.staleListings ?? 0;
    c.state = 'exited';
    this.streamsEnd(containerId);
    if (opts.event !== false) this.emit({ sessionId: c.labels[LABEL_SESSION] ?? '', containerId, action: 'die' });
  }

  /** A container that was there before the agent looked (adopted, orphaned, or another agent's). */
  addContainer(o: { sessionId: string; state?: FakeState; agent?: string; root?: string; applied?: AppliedConfig }): string {
    const id = randomBytes(32).toString('hex');
    const applied = o.applied ?? { protocol: 'tcp', port: 0, dns: '' };
    const labels = {
      [LABEL_SESSION]: o.sessionId,
      [LABEL_AGENT]: o.agent ?? this.o.agent,
      [LABEL_ROOT]: o.root ?? this.o.root,
      [LABEL_PROTOCOL]: applied.protocol,
      [LABEL_PORT]: String(applied.port),
      [LABEL_DNS]: applied.dns,
      ...(applied.limits ? { [LABEL_LIMITS]: JSON.stringify(applied.limits) } : {}),
    };
    const state = o.state ?? 'running';
    this.containers.set(id, { id, labels, state, listedState: state, staleListings: 0 });
    return id;
  }

  /** A container as the engine really has it (not as listings show it), or undefined. */
  container(containerId: string): FakeContainer | undefined {
    return this.containers.get(containerId);
  }

  /** Every container carrying the session's label, whoever owns it. */
  containersOf(sessionId: string): FakeContainer[] {
    return [...this.containers.values()].filter((c) => c.labels[LABEL_SESSION] === sessionId);
  }

  /** Methods called on one container (or session), in order: e.g. ['pause', 'unpause']. */
  callsOn(target: string, methods?: string[]): string[] {
    return this.calls.filter((c) => c.target === target && (!methods || methods.includes(c.method))).map((c) => c.method);
  }

  // ---- ContainerRuntime ----

  async list(): Promise<ContainerSummary[]> {
    await this.enter('list', '', 'list containers');
    return this.listing(() => true);
  }

  /** The last spec each session's container was started from. */
  readonly specs = new Map<string, ContainerSpec>();

  async listSession(sessionId: string): Promise<ContainerSummary[]> {
    await this.enter('listSession', sessionId, 'list containers');
    return this.listing((c) => c.labels[LABEL_SESSION] === sessionId);
  }

  async ensureNetwork(name: string): Promise<void> {
    await this.enter('ensureNetwork', name, 'list networks');
  }

  async start(spec: ContainerSpec): Promise<ContainerSummary> {
    await this.enter('start', spec.sessionId, 'create container');
    this.specs.set(spec.sessionId, spec);
    for (const old of this.own().filter((c) => c.labels[LABEL_SESSION] === spec.sessionId)) this.remove(old);
    if (!this.images.has(spec.image)) throw dockerError('create container', httpError(404, `No such image: ${spec.image}`));
    if (spec.port > 0 && this.portInUse(spec.port, spec.protocol)) {
      throw dockerError('start container', httpError(500, `Bind for ${spec.publishAddress}:${spec.port} failed: port is already allocated`));
    }
    const id = this.addContainer({
      sessionId: spec.sessionId,
      agent: spec.agent,
      applied: { protocol: spec.protocol, port: spec.port, dns: spec.dns, limits: spec.sessionLimits },
    });
    const c = this.must(id);
    Object.assign(c.labels, spec.extraLabels);
    this.emit({ sessionId: spec.sessionId, containerId: id, action: 'create' });
    this.emit({ sessionId: spec.sessionId, containerId: id, action: 'start' });
    return summaryOf(c, c.state);
  }

  async stopAndRemove(containerId: string, _timeoutSec: number): Promise<void> {
    await this.enter('stopAndRemove', containerId, 'stop container');
    const c = this.containers.get(containerId);
    if (c) this.remove(c);
  }

  async pause(containerId: string): Promise<void> {
    await this.enter('pause', containerId, 'pause container');
    const c = this.containers.get(containerId);
    if (!c) throw dockerError('pause container', httpError(404, `No such container: ${containerId}`));
    if (c.state === 'paused') return;
    if (c.state !== 'running') throw dockerError('pause container', httpError(409, `Container ${containerId} is not running`));
    c.state = 'paused';
    this.emit({ sessionId: c.labels[LABEL_SESSION] ?? '', containerId, action: 'pause' });
  }

  async unpause(containerId: string): Promise<void> {
    await this.enter('unpause', containerId, 'unpause container');
    const c = this.containers.get(containerId);
    if (c?.state !== 'paused') return;
    c.state = 'running';
    for (const wake of [...this.unpauseWaiters]) wake();
    this.emit({ sessionId: c.labels[LABEL_SESSION] ?? '', containerId, action: 'unpause' });
  }

  /** What capturePane gives, per container id (a test sets it). */
  readonly panes = new Map<string, string>();

  async capturePane(containerId: string, _user: { uid: number; gid: number }, lines: number): Promise<string> {
    await this.enter('capturePane', containerId, 'exec in container');
    return (this.panes.get(containerId) ?? '').split('\n').slice(-lines).join('\n');
  }

  async endAttaches(containerId: string, _user: { uid: number; gid: number }): Promise<number> {
    await this.enter('endAttaches', containerId, 'exec in container');
    const left = this.attaches.filter((a) => a.containerId === containerId && !a.ended && !a.closedByAgent);
    for (const a of left) {
      a.closedByAgent = true;
      a.ended = true;
      a.stream.push(null);
    }
    return left.length;
  }

  async attach(containerId: string, opts: AttachOptions): Promise<AttachHandle> {
    await this.enter('attach', containerId, 'attach');
    await this.waitWhilePaused(containerId);
    const c = this.containers.get(containerId);
    if (!c) throw dockerError('attach', httpError(404, `No such container: ${containerId}`));
    if (c.state !== 'running') throw dockerError('attach', httpError(409, `Container ${containerId} is not running`));
    const a: FakeAttach = {
      containerId,
      readOnly: opts.readOnly,
      cols: opts.cols,
      rows: opts.rows,
      input: [],
      closedByAgent: false,
      ended: false,
      stream: new Duplex({
        read: () => undefined,
        write: (chunk: Buffer, _enc, cb) => {
          a.input.push(Buffer.from(chunk));
          cb();
        },
      }),
    };
    this.attaches.push(a);
    return {
      stream: a.stream,
      resize: async (cols, rows) => {
        this.calls.push({ method: 'attach.resize', target: containerId });
        a.cols = cols;
        a.rows = rows;
      },
      close: async () => {
        if (a.closedByAgent) return;
        this.calls.push({ method: 'attach.close', target: containerId });
        a.closedByAgent = true;
        a.stream.destroy();
      },
    };
  }

  watch(handlers: Handlers): () => void {
    this.calls.push({ method: 'watch', target: '' });
    this.watchers.add(handlers);
    setImmediate(() => {
      if (!this.watchers.has(handlers)) return;
      if (this.isDown) handlers.onDown('connect ECONNREFUSED /var/run/docker.sock');
      else handlers.onUp();
    });
    return () => {
      this.watchers.delete(handlers);
    };
  }

  async hasImage(image: string): Promise<boolean> {
    await this.enter('hasImage', image, 'inspect image');
    return this.images.has(image);
  }

  // ---- inside ----

  /** Records the call, applies its delay or hold, then fails as an unreachable engine does if down. */
  private async enter(method: string, target: string, context: string): Promise<void> {
    this.calls.push({ method, target });
    const ms = this.delays.get(method) ?? 0;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    const held = this.holds.get(method)?.shift();
    if (held) await held();
    if (this.isDown) {
      throw dockerError(context, Object.assign(new Error('connect ECONNREFUSED /var/run/docker.sock'), { code: 'ECONNREFUSED' }));
    }
  }

  private own(): FakeContainer[] {
    return [...this.containers.values()].filter((c) => c.labels[LABEL_AGENT] === this.o.agent && c.labels[LABEL_ROOT] === this.o.root);
  }

  private listing(which: (c: FakeContainer) => boolean): ContainerSummary[] {
    return this.own()
      .filter(which)
      .map((c) => {
        if (c.staleListings <= 0) return summaryOf(c, c.state);
        c.staleListings -= 1;
        return summaryOf(c, c.listedState);
      });
  }

  private remove(c: FakeContainer): void {
    const sessionId = c.labels[LABEL_SESSION] ?? '';
    const alive = c.state === 'running' || c.state === 'paused';
    this.containers.delete(c.id);
    this.streamsEnd(c.id);
    for (const wake of [...this.unpauseWaiters]) wake();
    const actions = alive ? ['kill', 'die', 'stop', 'destroy'] : ['destroy'];
    for (const action of actions) this.emit({ sessionId, containerId: c.id, action });
  }

  private portInUse(port: number, protocol: Protocol): boolean {
    return [...this.containers.values()].some(
      (c) => (c.state === 'running' || c.state === 'paused') && c.labels[LABEL_PORT] === String(port) && c.labels[LABEL_PROTOCOL] === protocol,
    );
  }

  /** The container ended: its attach streams end with it. */
  private streamsEnd(containerId: string): void {
    for (const a of this.attaches) {
      if (a.containerId !== containerId || a.ended || a.closedByAgent) continue;
      a.ended = true;
      a.stream.push(null);
    }
  }

  /** As the real exec gate: an exec waits while the container is paused, then gives up with CONFLICT. */
  private async waitWhilePaused(containerId: string): Promise<void> {
    if (this.containers.get(containerId)?.state !== 'paused') return;
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        if (this.containers.get(containerId)?.state === 'paused') return;
        clearTimeout(timer);
        this.unpauseWaiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(() => {
        this.unpauseWaiters.delete(wake);
        reject(new BerthError('CONFLICT', 'the session is paused while a clone copies it; try again in a moment'));
      }, this.o.pauseWaitMs ?? 1000);
      this.unpauseWaiters.add(wake);
    });
  }

  private must(containerId: string): FakeContainer {
    const c = this.containers.get(containerId);
    if (!c) throw new Error(`fake runtime: no container ${containerId}`);
    return c;
  }
}

function summaryOf(c: FakeContainer, state: FakeState): ContainerSummary {
  const status = { created: 'Created', running: 'Up 2 seconds', paused: 'Up 2 seconds (Paused)', exited: 'Exited (137) 1 second ago' }[state];
  // From the labels, as the real one reads them: unreadable labels give null.
  const applied = appliedFromLabels(c.labels);
  return { id: c.id, sessionId: c.labels[LABEL_SESSION] ?? '', state, status, applied };
}

/** An error shaped as dockerode's for an engine answer with this HTTP status. */
function httpError(statusCode: number, message: string): Error {
  return Object.assign(new Error(`(HTTP code ${statusCode}) ${message}`), { statusCode, json: { message } });
}

// ---- the harness: Sessions on the fake, a temp root, a fake clock and probe ----
