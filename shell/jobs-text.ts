/** Pure: running jobs (clones, creates that fetch a project) as the CLI's `ops` and the menu's status line show them. */
import { Job } from '../common/protocol';
import { inertCell } from '../common/terminal-text';
import { ClusterJob } from './cluster/view';

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** "512 B", "1.5 MB", "5.8 GB" (binary units, one decimal from KB on). */
export function byteSize(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

/** How far a job got: "fetching the project", "measuring", "1.2 GB of 5.8 GB (21%)", "finishing". */
export function jobProgress(job: Job): string {
  if (job.phase === 'fetching') return 'fetching the project';
  if (job.phase !== 'copying') return job.phase;
  if (job.bytesDone === null) return 'copying';
  if (job.bytesTotal === null || job.bytesTotal === 0) return `${byteSize(job.bytesDone)} copied`;
  const pct = Math.min(100, Math.floor((job.bytesDone / job.bytesTotal) * 100));
  return `${byteSize(job.bytesDone)} of ${byteSize(job.bytesTotal)} (${pct}%)`;
}

/** How long from `since` (ISO) to `now`: "12 s" below 2 min, "5 min" below 2 h, else "3 h"; "?" for a time that does not parse. */
export function ageText(since: string, now: Date): string {
  const ms = now.getTime() - Date.parse(since);
  if (!Number.isFinite(ms)) return '?';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  const min = Math.round(s / 60);
  return min < 120 ? `${min} min` : `${Math.round(min / 60)} h`;
}

/** How long a job has run (see ageText). */
export function jobAge(job: Job, now: Date): string {
  return ageText(job.startedAt, now);
}

/**
 * One line for a job, inert: "cloning web → web-copy: 1.2 GB of 5.8 GB (21%), 12 s", or
 * "creating api: fetching the project, 3 s". `sourceName` names a clone's source.
 */
export function jobLine(j: ClusterJob, sourceName: string, now: Date): string {
  const progress = `${jobProgress(j.job)}, ${jobAge(j.job, now)}`;
  if (j.job.op === 'create') return `creating ${inertCell(j.job.target?.name ?? sourceName)}: ${progress}`;
  if (j.job.op === 'move') return `moving ${inertCell(sourceName)} → ${inertCell(j.job.target?.name ?? '?')}: ${progress}`;
  const target = j.job.target ? ` → ${inertCell(j.job.target.name)}` : '';
  return `cloning ${inertCell(sourceName)}${target}: ${progress}`;
}

export const JOB_HEAD = ['OP-ID', 'OP', 'AGENT', 'SESSION', 'TO', 'OPERATOR', 'PROGRESS', 'SINCE'];

/** A job's row in `ops`. */
export function jobRow(j: ClusterJob, now: Date): string[] {
  const job = j.job;
  return [job.opId, job.op, j.agent, job.session.slice(0, 8), job.target?.name ?? '-', job.operator, jobProgress(job), jobAge(job, now)].map((c) =>
    inertCell(c),
  );
}
