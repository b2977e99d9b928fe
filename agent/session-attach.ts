/**
 * Attaches, the agent's side: starting a stopped session for an attach (pair work waits out
 * another attach's start), refusing one to a source a clone has paused, and ending the tmux
 * clients an earlier agent left behind.
 */
import { BerthError, messageOf, toBerthError } from '../common/errors';
import { Logger } from '../common/logging';
import { SessionEntry, SessionMeta } from '../common/protocol';
import { LiveAttaches } from './attaches';
import { ContainerWatch } from './container-watch';
import { ContainerTracker } from './containers';
import { AttachHandle } from './docker/runtime';
import { SessionFeed } from './feed';
import { SessionSteps, okMeta } from './session-steps';
import { ContainerSettings, SessionsDeps } from './sessions-options';
import { isRunning } from './view';

/** How long an attach waits for another attach that is starting the session (container starts take under 10 s). */
const ATTACH_START_WAIT_MS = 15_000;

export interface OpenAttach {
  handle: AttachHandle;
  entry: SessionEntry;
  /** Ends this attach and forgets it. Idempotent. */
  close(): Promise<void>;
}

export interface AttacherParts {
  d: SessionsDeps;
  settings: ContainerSettings;
  steps: SessionSteps;
  watch: ContainerWatch;
  containers: ContainerTracker;
  attaches: LiveAttaches;
  feed: SessionFeed;
  log: Logger;
}

export class SessionAttacher {
  private readonly d: SessionsDeps;
  private readonly steps: SessionSteps;
  private readonly watch: ContainerWatch;
  private readonly containers: ContainerTracker;
  private readonly attaches: LiveAttaches;
  private readonly feed: SessionFeed;
  private readonly log: Logger;

  constructor(private readonly o: AttacherParts) {
    ({ d: this.d, steps: this.steps, watch: this.watch, containers: this.containers, attaches: this.attaches, feed: this.feed, log: this.log } = o);
  }

  /**
   * Attaches an operator to the session's tmux, starting the container first if it is stopped.
   * Many may attach at once; each close ends only its own tmux client.
   */
  async open(id: string, operator: string, readOnly: boolean, cols: number, rows: number): Promise<OpenAttach> {
    const s = await this.steps.load(id);
    const meta = okMeta(s);
    await this.watch.refresh(id);
    if (!isRunning(this.containers.get(id))) await this.startForAttach(meta, operator, readOnly);
    const c = this.containers.get(id);
    if (!c) throw new BerthError('CONFLICT', 'session stopped while attaching');
    if (c.state === 'paused') {
      const lock = await this.d.locks.inspect(this.d.store.dir(id));
      if (lock && !lock.stale) throw new BerthError('LOCKED', 'session is paused for a clone (ops shows its progress); try again when it ends');
      // The clone that paused it is gone (its lock is stale or removed): let the session run again.
      this.log.warn('unpaused container left paused', { session: id });
      await this.d.runtime.unpause(c.id);
      await this.watch.refresh(id);
    }
    const handle = await this.d.runtime.attach(c.id, { readOnly, cols, rows, user: this.o.settings.user });
    const attachId = this.attaches.add(id, operator, readOnly, handle);
    await this.steps.touch(meta.id);
    this.log.info('attached', { session: id, operator, readOnly });
    this.feed.notify(id);
    const close = async (): Promise<void> => {
      if (!this.attaches.remove(id, attachId)) return;
      await handle.close();
      this.log.info('detached', { session: id, operator });
      this.feed.notify(id);
    };
    return { handle, entry: await this.feed.mustEntry(id), close };
  }

  /**
   * Ends the attach clients an earlier agent left in running containers: killed with kill -9, it
   * could not HUP them, and a read-write tmux client nobody holds would stay for ever while berth
   * shows nobody attached. Runs before the agent serves, so it holds no attach of its own yet.
   */
  async endLeaked(): Promise<void> {
    await Promise.all(
      this.containers.running().map(async (c) => {
        try {
          const n = await this.d.runtime.endAttaches(c.id, this.o.settings.user);
          if (n > 0) this.log.warn('ended attach clients left by an earlier agent', { session: c.sessionId, clients: n });
        } catch (err) {
          this.log.warn('could not end attach clients left by an earlier agent', { session: c.sessionId, err: messageOf(err) });
        }
      }),
    );
  }

  /**
   * Starts a stopped session for an attach. Two operators attaching at once for pair work: the
   * second waits out the first one's start (another attach's lock) instead of being refused; a
   * read-only viewer never starts a session, but waits the same way for one that is starting.
   */
  private async startForAttach(meta: SessionMeta, operator: string, readOnly: boolean): Promise<void> {
    const id = meta.id;
    const end = Date.now() + ATTACH_START_WAIT_MS;
    for (;;) {
      try {
        if (readOnly) throw new BerthError('CONFLICT', 'session is not running (a read-only attach does not start it)');
        await this.steps.withLock(id, operator, 'attach', async () => {
          await this.watch.refresh(id);
          if (!isRunning(this.containers.get(id))) await this.steps.startContainer(meta);
        });
        return;
      } catch (err) {
        const lock = await this.d.locks.inspect(this.d.store.dir(id));
        const starting = lock !== null && !lock.stale && lock.op === 'attach';
        // Refused as locked, and the lock went (the other attach's start ended) or turned stale
        // (its holder died) since: the next try takes it, or finds the container running.
        const freed = toBerthError(err).code === 'LOCKED' && (lock === null || lock.stale);
        if (!(starting || freed) || Date.now() > end) throw err;
      }
      await new Promise((r) => setTimeout(r, 100));
      await this.watch.refresh(id);
      if (isRunning(this.containers.get(id))) return;
    }
  }

}
