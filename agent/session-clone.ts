/**
 * A clone: a new session (a fresh id and name, port 0, no DNS name) with a copy of a session's
 * home, made under the source's lock. A running source is paused while its home is copied, so
 * the copy is of one instant; the copy is a job whose bytes the shells follow.
 */
import { Logger } from '../common/logging';
import { cloneName } from '../common/names';
import { RpcParams, SessionEntry, SessionMeta } from '../common/protocol';
import { SessionCatalog } from './catalog';
import { ContainerTracker } from './containers';
import { ContainerRuntime } from './docker/runtime';
import { SessionFeed } from './feed';
import { JobBoard } from './jobs';
import { SessionSteps, okMeta } from './session-steps';
import { SessionStore } from './store/session-store';
import { randomUUID } from 'node:crypto';

export interface CloneParts {
  jobs: JobBoard;
  steps: SessionSteps;
  containers: ContainerTracker;
  runtime: ContainerRuntime;
  store: SessionStore;
  catalog: SessionCatalog;
  feed: SessionFeed;
  log: Logger;
  /** Throws CONFLICT when the agent holds its most sessions. */
  assertRoom(): void;
}

/** The clone of session `p.session` (see the file's comment), as a job under `opId`; its entry. */
export async function cloneSession(c: CloneParts, p: RpcParams<'clone'>, operator: string, opId: string): Promise<SessionEntry> {
  const job = c.jobs.begin({ opId, op: 'clone', operator, session: p.session });
  try {
    const id = await c.steps.withLock(p.session, operator, 'clone', async (s) => {
      const src = okMeta(s);
      const meta: SessionMeta = {
        ...src,
        id: randomUUID(),
        name: p.name ?? cloneName(src.name),
        port: 0,
        dns: '',
        createdAt: c.steps.nowIso(),
        lastAccessedAt: null,
        createdBy: operator,
      };
      c.assertRoom();
      job.progress({ target: { id: meta.id, name: meta.name } });
      const container = c.containers.get(src.id);
      const pause = container && container.state === 'running';
      if (pause) await c.runtime.pause(container.id);
      try {
        await c.store.clone(src.id, meta, (progress) => job.progress(progress));
      } finally {
        if (pause) await c.runtime.unpause(container.id);
      }
      c.catalog.set(meta.id, { kind: 'ok', meta });
      return meta.id;
    });
    c.log.info('cloned session', { session: p.session, clone: id, operator });
    c.feed.notify(id);
    const entry = await c.feed.mustEntry(id);
    job.end();
    return entry;
  } catch (err) {
    job.end(err);
    throw err;
  }
}
