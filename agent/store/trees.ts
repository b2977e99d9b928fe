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
