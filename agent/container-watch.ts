/**
 * Keeps the agent's picture of its containers in step with Docker: one label-filtered listing at
 * start and after every reconnect, then Docker's event stream; a reconciler round (orphans,
 * paused leftovers, crash leftovers) at start and every `intervalMs`.
 */
import { withDeadline } from '../common/deadline';
import { messageOf } from '../common/errors';
import { Logger } from '../common/logging';
import { ContainerTracker } from './containers';
import { ContainerRuntime, RuntimeEvent } from './docker/runtime';
import { Reconciler } from './reconcile';
import { isRunning } from './view';

/** How long start-up waits for Docker's listing and the first reconcile before serving without them. */
const START_DOCKER_WAIT_MS = 10_000;
/** Docker 20.10 sends events before its listing shows their effect: look again this much later. */
const SETTLE_MS = 300;

export interface ContainerWatchParts {
  runtime: ContainerRuntime;
  containers: ContainerTracker;
  reconciler: Reconciler;
  logger: Logger;
  /** How often the reconciler runs (0: only at start). */
  intervalMs: number;
  /** A session's container changed. */
  changed(sessionId: string): void;
  /** A session's container is no longer running: its attaches are over. */
  stopped(sessionId: string): void;
  /** Runs before every periodic reconciler round (the crash-leftover sweep). */
  everyRound(): void;
}

export class ContainerWatch {
  private stopWatch: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: ContainerWatchParts) {}

  /**
   * Reads every container and reconciles, then follows Docker's events. A Docker that is down or
   * hangs (a wedged container can make it) never keeps the agent from serving: past the deadline
   * it goes on without, and the event watch catches up once Docker answers.
   */
  async start(): Promise<void> {
    try {
      await withDeadline(
        (async () => {
          await this.refreshAll();
          await this.o.reconciler.run();
        })(),
        START_DOCKER_WAIT_MS,
        'docker at start',
      );
    } catch (err) {
      this.o.logger.warn('docker unavailable at start', { err: messageOf(err) });
    }
    this.stopWatch = this.o.runtime.watch({
      onEvent: (e) => this.onEvent(e),
      onUp: () => this.onUp(),
      onDown: (reason) => {
        if (this.o.containers.up) this.o.logger.warn('docker went away', { reason });
        this.o.containers.up = false;
      },
    });
    if (this.o.intervalMs > 0) {
      this.timer = setInterval(() => {
        this.o.everyRound();
        this.o.reconciler.run().catch((err: unknown) => this.o.logger.debug('reconcile skipped', { err: messageOf(err) }));
      }, this.o.intervalMs);
      this.timer.unref();
    }
  }

  /** Stops following Docker. Idempotent. */
  stop(): void {
    this.stopWatch?.();
    this.stopWatch = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Re-reads every container; tells of each session whose container changed. */
  async refreshAll(): Promise<void> {
    for (const id of await this.o.containers.refreshAll()) this.o.changed(id);
  }

  /** One reconciler round. Throws RUNTIME_UNAVAILABLE when Docker is down. */
  reconcile(): Promise<void> {
    return this.o.reconciler.run();
  }

  /** Re-reads one session's container. */
  refresh(sessionId: string): Promise<void> {
    return this.o.containers.refresh(sessionId);
  }

  private onEvent(e: RuntimeEvent): void {
    const id = e.sessionId;
    const before = this.o.containers.get(id);
    this.refresh(id)
      .then(() => {
        // A `die` can still list as running: trust the event at once, and look again shortly for
        // the settled state.
        if (e.action === 'die') this.o.containers.markExited(id, e.containerId);
        if (e.action !== 'settle') setTimeout(() => this.onEvent({ ...e, action: 'settle' }), SETTLE_MS).unref();
        const after = this.o.containers.get(id);
        if (!isRunning(after)) this.o.stopped(id);
        if (e.action !== 'settle' || before?.id !== after?.id || before?.state !== after?.state) this.o.changed(id);
      })
      .catch((err: unknown) => this.o.logger.debug('refresh after event failed', { session: id, err: messageOf(err) }));
  }

  private onUp(): void {
    const wasUp = this.o.containers.up;
    this.refreshAll()
      .then(() => {
        if (!wasUp) this.o.logger.info('docker is back');
        return this.o.reconciler.run();
      })
      .catch((err: unknown) => this.o.logger.debug('refresh after reconnect failed', { err: messageOf(err) }));
  }
}
