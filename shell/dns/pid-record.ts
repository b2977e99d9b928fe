/**
 * The record of the shell's own dnsmasq, next to the hosts file: its pid and its start time. Our
 * dnsmasq dies with the shell where the host can tie it to us; where it cannot (or a shell of an
 * older version ran it), a killed shell leaves it running on the port. The next shell finds it
 * through this record and ends it: only a live process with the recorded pid and start time (a
 * reused pid never matches), named dnsmasq, whose command line reads our hosts file.
 */
import { promises as fs } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { writeFileAtomic } from '../../common/atomic-file';
import { messageOf } from '../../common/errors';
import { parseJson } from '../../common/json';
import type { Logger } from '../../common/logging';

const recordSchema = z.object({
  pid: z.number().int().min(2),
  /** Field 22 of the process's stat: clock ticks after boot, unique with the pid. */
  startTime: z.string().regex(/^\d+$/),
});

export type PidRecord = z.infer<typeof recordSchema>;

/** How long a killed leftover may take to go. */
const GONE_WAIT_MS = 3_000;

/** Where the record of the dnsmasq serving `hostsFile` is kept. */
export function pidRecordFile(hostsFile: string): string {
  return `${hostsFile}.dnsmasq.json`;
}

interface ProcStat {
  comm: string;
  state: string;
  startTime: string;
}

/** What the kernel says of `pid` now, or null if there is no such process (or no /proc). */
async function procStat(pid: number): Promise<ProcStat | null> {
  let text: string;
  try {
    text = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // "pid (comm) state ppid …": comm may hold spaces and ")", so split after its last ")".
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text.slice(close + 2).split(' ');
  const startTime = fields[19];
  if (!startTime) return null;
  return { comm: text.slice(text.indexOf('(') + 1, close), state: fields[0] ?? '', startTime };
}

/** A process that exists and is not a zombie (a dead child its parent has not reaped yet). */
function running(stat: ProcStat | null): stat is ProcStat {
  return stat !== null && stat.state !== 'Z' && stat.state !== 'X';
}

/** The start time of `pid`, or null if it is gone already. */
export async function startTimeOf(pid: number): Promise<string | null> {
  const stat = await procStat(pid);
  return running(stat) ? stat.startTime : null;
}

/** Writes the record of our dnsmasq `pid`. Best effort: a failure is logged, never thrown. */
export async function writePidRecord(file: string, pid: number, log: Logger): Promise<void> {
  const startTime = await startTimeOf(pid);
  if (startTime === null) return; // it died already: nothing to leave behind
  const record: PidRecord = { pid, startTime };
  await writeFileAtomic(file, `${JSON.stringify(record)}\n`).catch((err) => {
    log.warn('could not write the dnsmasq pid record', { file, error: messageOf(err) });
  });
}

/** Removes the record if it still names `pid`. Never throws. */
export async function removePidRecord(file: string, pid: number): Promise<void> {
  const record = await readPidRecord(file);
  if (record?.pid === pid) await fs.rm(file, { force: true }).catch(() => undefined);
}

async function readPidRecord(file: string): Promise<PidRecord | null> {
  const text = await fs.readFile(file, 'utf8').catch(() => null);
  if (text === null) return null;
  const r = parseJson(text, recordSchema);
  return r.ok ? r.value : null;
}

/** Whether `pid` runs dnsmasq with `hostsFile` as its addn-hosts file, started at `startTime`. */
async function isOurDnsmasq(pid: number, startTime: string, hostsFile: string): Promise<boolean> {
  const stat = await procStat(pid);
  if (!running(stat) || stat.startTime !== startTime || stat.comm !== 'dnsmasq') return false;
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0').includes(`--addn-hosts=${hostsFile}`);
}

/**
 * Ends the dnsmasq an earlier shell left serving `hostsFile`, as named by the record in `file`:
 * SIGKILL, then a bounded wait until it is gone. A process that does not match in every respect
 * is never touched. Never throws; resolves to the pid it ended, or null.
 */
export async function endLeftover(file: string, hostsFile: string, log: Logger): Promise<number | null> {
  const record = await readPidRecord(file);
  if (!record || !(await isOurDnsmasq(record.pid, record.startTime, hostsFile))) return null;
  try {
    process.kill(record.pid, 'SIGKILL');
  } catch (err) {
    log.warn('could not end the dnsmasq an earlier shell left', { pid: record.pid, error: messageOf(err) });
    return null;
  }
  const deadline = Date.now() + GONE_WAIT_MS;
  let stat = await procStat(record.pid);
  while (running(stat) && stat.startTime === record.startTime && Date.now() < deadline) {
    await sleep(20);
    stat = await procStat(record.pid);
  }
  log.warn('ended the dnsmasq an earlier shell left', { pid: record.pid, hostsFile });
  return record.pid;
}
