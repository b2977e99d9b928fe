/**
 * Children that die with this process. A plain child keeps running after its parent is killed
 * with SIGKILL; run under util-linux's `setpriv --pdeathsig KILL`, the kernel kills it as soon as
 * its parent dies, whatever way it dies. (The setting is cleared if the child changes its
 * credentials, e.g. drops root for another user: such a child needs its own cleanup.)
 */
import { accessSync, constants } from 'node:fs';

const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv'];

let setpriv: string | null | undefined;

/** util-linux's setpriv, if this host has it (Debian and most distributions do). */
export function findSetpriv(): string | null {
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

/** The argument vector that runs `argv` tied to this process (as is, where setpriv is missing). */
export function tiedArgv(argv: string[]): [string, ...string[]] {
  const sp = findSetpriv();
  const [file, ...args] = sp ? [sp, '--pdeathsig', 'KILL', '--', ...argv] : argv;
  return [file ?? '', ...args];
}
