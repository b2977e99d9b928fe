/** berth-events: hello, the full set of sessions, `synced`, the trash, the running jobs, then every change, job push and periodic stats. */
import { Duplex } from 'node:stream';
import { Logger } from '../../common/logging';
import { AgentEvent, HelloEvent, Job, SessionEntry, TrashEntry, encodeFrame } from '../../common/protocol';
import { Sessions } from '../sessions';

export function serveEvents(
  channel: Duplex,
  sessions: Sessions,
  hello: HelloEvent,
  statsIntervalMs: number,
  logger: Logger,
): void {
  const log = logger.child({ component: 'events' });
  const send = (e: AgentEvent): void => {
    if (!channel.destroyed && channel.writable) channel.write(encodeFrame(e));
  };
  // Changes that happen while the snapshot is taken wait for it, then follow it in order.
  let held: AgentEvent[] | null = [];
  const push = (e: AgentEvent): void => (held ? void held.push(e) : send(e));
  const onSession = (session: SessionEntry): void => push({ type: 'session', session });
  const onRemoved = (id: string): void => push({ type: 'session-removed', id });
  const onJob = (job: Job): void => push({ type: 'job', job });
  const onTrash = (trash: TrashEntry[]): void => push({ type: 'trash', trash });
  // Subscribe before taking the snapshot, so no change falls between the two.
  sessions.on('session', onSession);
  sessions.on('removed', onRemoved);
  sessions.jobs.on('job', onJob);
  sessions.on('trash', onTrash);
  const timer = setInterval(() => send({ type: 'stats', stats: sessions.stats() }), statsIntervalMs);
  timer.unref();
  const stop = (): void => {
    clearInterval(timer);
    sessions.off('session', onSession);
    sessions.off('removed', onRemoved);
    sessions.jobs.off('job', onJob);
    sessions.off('trash', onTrash);
  };
  channel.on('close', stop);
  channel.on('error', (err: Error) => log.debug('events channel error', { err: err.message }));
  channel.resume();
  send(hello);
  sessions
    .snapshot()
    .then((all) => {
      for (const session of all) send({ type: 'session', session });
      send({ type: 'synced', count: all.length });
      send({ type: 'trash', trash: sessions.trash.list() });
      // The jobs running now; their later pushes are held with the other changes.
      for (const job of sessions.jobs.list()) send({ type: 'job', job });
      send({ type: 'stats', stats: sessions.stats() });
      const later = held ?? [];
      held = null;
      later.forEach(send);
    })
    .catch((err: unknown) => {
      log.error('events snapshot failed', { err: String(err) });
      send({ type: 'error', error: { code: 'INTERNAL', message: 'snapshot failed' } });
      held = null;
    });
}
