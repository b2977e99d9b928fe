/**
 * Copies a session's files with `cp -a` (owners, modes, links and times kept: the copy must work
 * for the container's user) in a child process that never outlives the agent. A plain child keeps
 * running after its parent is killed with SIGKILL, and goes on writing into a staging folder that
 * the next agent is sweeping; under setpriv the kernel sends the copy SIGKILL as soon as the agent
 * dies, whatever way it dies.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv'];

let setpriv: string | null | undefined;

/** util-linux's setpriv, if this host has it (Debian and most distributions do). */
function findSetpriv(): string | null {
  if (setpriv === undefined) {
    setpriv = SETPRIV_PATHS.find((p) => {
      try {
        accessSync(p, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }) ?? null;
  }
  return setpriv;
}

/** The argument vector that copies `sources` into the folder `dst` and dies with this process. */
function copyCommand(sources: string[], dst: string): { file: string; args: string[] } {
  const cp = ['cp', '-a', '-t', dst, '--', ...sources];
  const sp = findSetpriv();
  return sp ? { file: sp, args: ['--pdeathsig', 'KILL', '--', ...cp] } : { file: 'cp', args: cp.slice(1) };
}

/** True when copies are tied to this process's life (setpriv found). */
export function copiesDieWithAgent(): boolean {
  return findSetpriv() !== null;
}

/** Entries per cp: a home with very many top-level entries must not overflow the argument list. */
const BATCH = 256;

/** Copies the entries `names` of folder `src` into the existing folder `dst`. */
export async function copyEntries(src: string, names: string[], dst: string): Promise<void> {
  for (let i = 0; i < names.length; i += BATCH) {
    const { file, args } = copyCommand(names.slice(i, i + BATCH).map((n) => path.join(src, n)), dst);
    await run(file, args, { maxBuffer: 1024 * 1024 });
  }
}
