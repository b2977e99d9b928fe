/** The agent's picture of its containers: filled from one label-filtered listing, kept by events. */
import { ContainerRuntime, ContainerSummary } from './docker/runtime';
import { isRunning } from './view';

export class ContainerTracker {
  private readonly bySession = new Map<string, ContainerSummary>();
  /** Whether the last call to Docker got an answer. */
  up = false;

  constructor(private readonly runtime: ContainerRuntime) {}

  get(sessionId: string): ContainerSummary | undefined {
    return this.bySession.get(sessionId);
  }

  set(c: ContainerSummary): void {
    this.bySession.set(c.sessionId, c);
  }

  /** Records that this container of the session exited (a `die` event), if it was still shown running. */
  markExited(sessionId: string, containerId: string): boolean {
    const c = this.bySession.get(sessionId);
    if (!c || c.id !== containerId || !isRunning(c)) return false;
    this.bySession.set(sessionId, { ...c, state: 'exited', status: 'Exited' });
    return true;
  }

  delete(sessionId: string): void {
    this.bySession.delete(sessionId);
  }

  get size(): number {
    return this.bySession.size;
  }

  runningCount(): number {
    return this.running().length;
  }

  /** The containers shown running (or paused for a moment). */
  running(): ContainerSummary[] {
    return [...this.bySession.values()].filter(isRunning);
  }

  /** Re-reads every container; returns the ids of sessions whose container changed. */
  async refreshAll(): Promise<string[]> {
    let all: ContainerSummary[];
    try {
      all = await this.runtime.list();
    } catch (err) {
      this.up = false;
      throw err;
    }
    this.up = true;
    const before = new Map(this.bySession);
    this.bySession.clear();
    for (const c of all) if (c.sessionId) this.keep(c);
    const changed: string[] = [];
    for (const id of new Set([...before.keys(), ...this.bySession.keys()])) {
      const a = before.get(id);
      const b = this.bySession.get(id);
      if (a?.id !== b?.id || a?.state !== b?.state) changed.push(id);
    }
    return changed;
  }

  /** Re-reads one session's container. */
  async refresh(sessionId: string): Promise<void> {
    const list = await this.runtime.listSession(sessionId);
    this.bySession.delete(sessionId);
    for (const c of list) this.keep(c);
  }

  /** Keeps the most alive container of a session when several carry its label. */
  private keep(c: ContainerSummary): void {
    const prev = this.bySession.get(c.sessionId);
    if (!prev || (!isRunning(prev) && isRunning(c))) this.bySession.set(c.sessionId, c);
  }
}
