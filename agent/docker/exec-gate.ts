/**
 * Keeps execs and pauses of one container apart. runc starts an exec with a helper process that
 * joins the container's cgroup; if a pause freezes that cgroup before the helper is done, the
 * exec never finishes and the container's shim answers nothing any more, not even `unpause` or
 * `rm -f`. So no exec starts while the agent pauses (or has paused) a container, and a pause
 * waits until every exec that is starting is under way.
 */
import { BerthError } from '../../common/errors';

interface ContainerGate {
  id: string;
  /** Execs between "about to start" and "under way". */
  starting: number;
  /** A pause is waiting for execs, or in force. */
  paused: boolean;
  /** Woken whenever `starting` or `paused` changes. */
  waiters: Set<() => void>;
}

export class ExecGate {
  private readonly gates = new Map<string, ContainerGate>();

  /**
   * Waits until `containerId` is not paused by this agent, then counts an exec as starting. Call
   * the returned function once the exec is under way (or failed). Throws CONFLICT after `waitMs`.
   */
  async beginExec(containerId: string, waitMs: number): Promise<() => void> {
    const g = this.gate(containerId);
    const why = 'the session is paused while a clone copies it; try again in a moment';
    await this.waitUntil(g, () => !g.paused, () => (g.starting += 1), waitMs, why);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      g.starting -= 1;
      this.changed(g);
    };
  }

  /**
   * Stops new execs of `containerId` and waits until none is starting, so that the container can
   * be paused. Throws CONFLICT after `waitMs` (and lets execs start again).
   */
  async beginPause(containerId: string, waitMs: number): Promise<void> {
    const g = this.gate(containerId);
    await this.waitUntil(g, () => !g.paused, () => (g.paused = true), waitMs, 'another pause of this session is under way');
    try {
      await this.waitUntil(g, () => g.starting === 0, () => undefined, waitMs, 'a command is starting in the session; try again in a moment');
    } catch (err) {
      this.endPause(containerId);
      throw err;
    }
  }

  /** Lets execs start again (after unpause, or when the pause failed). */
  endPause(containerId: string): void {
    const g = this.gates.get(containerId);
    if (!g) return;
    g.paused = false;
    this.changed(g);
  }

  /** How many containers have state here (for tests: entries go once idle). */
  get size(): number {
    return this.gates.size;
  }

  private gate(containerId: string): ContainerGate {
    let g = this.gates.get(containerId);
    if (!g) {
      g = { id: containerId, starting: 0, paused: false, waiters: new Set() };
      this.gates.set(containerId, g);
    }
    return g;
  }

  private changed(g: ContainerGate): void {
    for (const wake of [...g.waiters]) wake();
    this.prune(g);
  }

  private prune(g: ContainerGate): void {
    if (g.starting === 0 && !g.paused && g.waiters.size === 0) this.gates.delete(g.id);
  }

  /**
   * Resolves once `ready()` holds, having run `take()` in the same tick: no other waiter can slip
   * in between the check and the change it makes.
   */
  private waitUntil(g: ContainerGate, ready: () => boolean, take: () => void, waitMs: number, why: string): Promise<void> {
    if (ready()) {
      take();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        if (!ready()) return;
        clearTimeout(timer);
        g.waiters.delete(wake);
        take();
        resolve();
      };
      const timer = setTimeout(() => {
        g.waiters.delete(wake);
        this.prune(g);
        reject(new BerthError('CONFLICT', why));
      }, waitMs);
      g.waiters.add(wake);
    });
  }
}
