/** Pure: what an operator sees of a session, derived from metadata, Docker, attaches and the lock. */
import { LockInfo, SessionEntry, SessionMeta, SessionState } from '../common/protocol';
import { ContainerSummary } from './docker/runtime';
import { StoredSession } from './store/session-store';

/** Running for berth: the container is up, even if paused for a moment (a clone copying it). */
export function isRunning(c: ContainerSummary | null | undefined): boolean {
  return c?.state === 'running' || c?.state === 'paused';
}

/** `C` if anyone is attached to a running session, `R` if running, `L` if locked, else `-`. */
export function deriveState(running: boolean, attachCount: number, lock: LockInfo | null): SessionState {
  if (running) return attachCount > 0 ? 'C' : 'R';
  return lock ? 'L' : '-';
}

/** True when the running container was started with other protocol, port or DNS than the metadata says. */
export function needsRestart(meta: SessionMeta, c: ContainerSummary | null | undefined): boolean {
  if (!c || !isRunning(c) || !c.applied) return false;
  return c.applied.port !== meta.port || c.applied.protocol !== meta.protocol || c.applied.dns !== meta.dns;
}

export function buildEntry(
  agent: string,
  stored: StoredSession,
  container: ContainerSummary | null,
  attached: string[],
  lock: LockInfo | null,
): SessionEntry {
  const running = isRunning(container);
  const state = deriveState(running, attached.length, lock);
  const wireContainer = container
    ? { id: container.id, status: container.status, running, applied: container.applied }
    : null;
  if (stored.kind === 'broken') {
    return { kind: 'broken', agent, id: stored.id, reason: stored.reason, state, lock, container: wireContainer };
  }
  return {
    kind: 'session',
    agent,
    meta: stored.meta,
    state,
    attached: running ? attached : [],
    lock,
    container: wireContainer,
    restartNeeded: needsRestart(stored.meta, container),
  };
}

/** A default name for a clone: the source's with "-copy", kept within 64 characters. */
export function cloneName(source: string): string {
  const suffix = '-copy';
  return `${source.slice(0, 64 - suffix.length)}${suffix}`;
}
