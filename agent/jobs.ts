/**
 * Long ops (a clone of a big home, a create that fetches its project) as jobs the shells can watch: each running job is pushed when
 * it starts, when its phase changes, every `heartbeatMs` meanwhile (with its progress so far), and
 * once when it ends. The heartbeat is what lets a shell wait as long as the job lives rather than
 * one RPC timeout: a shell stops waiting only when a job falls silent.
 *
 * Emits 'job' (Job) for every push.
 */
import { EventEmitter } from 'node:events';
import { toBerthError } from '../common/errors';
import { Job } from '../common/protocol';

export const JOB_HEARTBEAT_MS = 1000;

/** What a job's runner reports as it goes. */
export type JobProgress = Partial<Pick<Job, 'phase' | 'bytesDone' | 'bytesTotal' | 'target'>>;

export interface JobHandle {
  /** Records progress; a new phase is pushed at once, byte counts with the next heartbeat. */
  progress(p: JobProgress): void;
  /** Ends the job: `done`, or `failed` with the error's code and text. Idempotent. */
  end(err?: unknown): void;
}

export class JobBoard extends EventEmitter {
  private readonly running = new Map<string, { job: Job; timer: NodeJS.Timeout }>();

  constructor(
    private readonly heartbeatMs = JOB_HEARTBEAT_MS,
    private readonly now: () => Date = () => new Date(),
  ) {
    super();
  }

  /** Starts a job under `opId` (a second job under a running one's id gets a fresh key). */
  begin(init: Pick<Job, 'opId' | 'op' | 'operator' | 'session'> & Pick<JobProgress, 'target' | 'phase'>): JobHandle {
    const key = this.running.has(init.opId) ? `${init.opId}#${this.now().getTime()}` : init.opId;
    const job: Job = { phase: 'measuring', ...init, bytesDone: null, bytesTotal: null, startedAt: this.now().toISOString() };
    const timer = setInterval(() => this.push(job), this.heartbeatMs);
    timer.unref();
    this.running.set(key, { job, timer });
    this.push(job);
    let ended = false;
    return {
      progress: (p) => {
        if (ended) return;
        const phaseChanged = p.phase !== undefined && p.phase !== job.phase;
        Object.assign(job, p);
        if (phaseChanged) this.push(job);
      },
      end: (err) => {
        if (ended) return;
        ended = true;
        clearInterval(timer);
        this.running.delete(key);
        if (err === undefined) this.push({ ...job, phase: 'done' });
        else this.push({ ...job, phase: 'failed', error: toBerthError(err).toWire() });
      },
    };
  }

  /** The jobs running now, oldest first (for a new subscriber). */
  list(): Job[] {
    return [...this.running.values()].map((r) => ({ ...r.job }));
  }

  private push(job: Job): void {
    this.emit('job', { ...job });
  }
}
