/**
 * Whole-tree work on session homes, each in a child process: copying (`cp -a`), removing
 * (`rm -rf`) and handing a home to another uid (`chown -R`). A home can hold millions of files;
 * walking it inside the agent would queue that many requests on the thread pool that every other
 * session's file operations share. None of the three follows a symlink: `cp -a` copies links as
 * links, `rm` and `chown -R -h` act on the links themselves.
 *
 * Each child dies with the agent (common/tied-child.ts): a copy of a killed agent must not go on
 * writing into a staging folder that the next agent is sweeping.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { findSetpriv, tiedArgv } from '../../common/tied-child';

const run = promisify(execFile);

/** Runs `argv` as a child that dies with this process; rejects when it fails or outlives `timeoutMs`. */
async function runTied(argv: string[], timeoutMs: number): Promise<void> {
  const [file, ...args] = tiedArgv(argv);
  await run(file, args, { maxBuffer: 1024 * 1024, timeout: timeoutMs, killSignal: 'SIGKILL' });
}

/** True when tree work is tied to this process's life (setpriv found). */
export function copiesDieWithAgent(): boolean {
  return findSetpriv() !== null;
}

/** Entries per cp: a home with very many top-level entries must not overflow the argument list. */
const BATCH = 256;

/** Copies the entries `names` of folder `src` into the existing folder `dst`. */
export async function copyEntries(src: string, names: string[], dst: string, timeoutMs: number): Promise<void> {
  for (let i = 0; i < names.length; i += BATCH) {
    const sources = names.slice(i, i + BATCH).map((n) => path.join(src, n));
    await runTied(['cp', '-a', '-t', dst, '--', ...sources], timeoutMs);
  }
}

/** Removes `dir` and everything below it, never leaving its file system. Idempotent. */
export async function removeTree(dir: string, timeoutMs: number): Promise<void> {
  await runTied(['rm', '-rf', '--one-file-system', '--', dir], timeoutMs);
}

/**
 * Gives `dir` and everything below it that belongs to uid `fromUid` to `to` (links themselves, never
 * their targets; files of other owners are left alone).
 */
export async function chownTree(
  dir: string,
  fromUid: number,
  to: { uid: number; gid: number },
  timeoutMs: number,
): Promise<void> {
  await runTied(['chown', '-R', '-h', '-P', `--from=${fromUid}`, `${to.uid}:${to.gid}`, '--', dir], timeoutMs);
}

/** How long one measure of a tree may take before it is given up (progress only waits for it). */
const MEASURE_TIMEOUT_MS = 60_000;

/**
 * The bytes of the files below `dir` (apparent sizes, links not followed, one file system), or
 * null when they cannot be measured in time. `du` reports what it could read even when some
 * entry is unreadable; that partial total is still a fair measure of progress.
 */
export async function treeBytes(dir: string, timeoutMs = MEASURE_TIMEOUT_MS): Promise<number | null> {
  const [file, ...args] = tiedArgv(['du', '-s', '-b', '-x', '-P', '--', dir]);
  const out = await run(file, args, { maxBuffer: 64 * 1024, timeout: timeoutMs, killSignal: 'SIGKILL' }).then(
    (r) => r.stdout,
    (err: { stdout?: unknown; killed?: boolean }) => (err.killed ? '' : String(err.stdout ?? '')),
  );
  const bytes = Number.parseInt(out.trim().split(/\s/)[0] ?? '', 10);
  return Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : null;
}

/** What a copy reports while it runs. */
export interface CopyProgress {
  phase: 'measuring' | 'copying';
  bytesDone: number | null;
  bytesTotal: number | null;
}

/**
 * Copies the entries `names` of `src` into `dst` (as copyEntries), measuring `src` first and
 * `dst` every `sampleMs` meanwhile, one measure at a time, so `progress` learns how far it got.
 * The copy's outcome is its own: a failed measure only leaves the figures unknown.
 */
export async function copyEntriesWithProgress(
  src: string,
  names: string[],
  dst: string,
  timeoutMs: number,
  progress: (p: CopyProgress) => void,
  sampleMs = 1000,
): Promise<void> {
  progress({ phase: 'measuring', bytesDone: null, bytesTotal: null });
  const total = await treeBytes(src);
  progress({ phase: 'copying', bytesDone: 0, bytesTotal: total });
  let copying = true;
  const sampler = (async () => {
    // Ends with the copy, whose own timeout bounds it.
    while (copying) {
      await new Promise((r) => setTimeout(r, sampleMs).unref());
      if (!copying) break;
      const done = await treeBytes(dst);
      if (copying && done !== null) progress({ phase: 'copying', bytesDone: done, bytesTotal: total });
    }
  })();
  try {
    await copyEntries(src, names, dst, timeoutMs);
  } finally {
    copying = false;
  }
  await sampler;
  const done = await treeBytes(dst);
  progress({ phase: 'copying', bytesDone: done ?? total, bytesTotal: total });
}
