/** Processes as /proc sees them: a zombie counts as gone (PID 1 here may reap orphans late). */
import { readdirSync, readFileSync } from 'node:fs';

/** True while the process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Pids of live processes whose command line contains `text`. */
export function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(text) && alive(pid)) pids.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
