/**
 * What this copy of berth is: its version (package.json's), the git commit it was built from and
 * when. `npm run build` stamps them into `dist/build-info.json` (deploy/stamp-build.ts); each
 * process reads that file once, at start. A copy built without the stamp still knows its version
 * from package.json, with commit and date `unknown`.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseJson } from './json';

export const UNKNOWN = 'unknown';

export const buildInfoSchema = z.object({
  version: z.string().min(1).max(64),
  /** 40 hex digits, or `unknown` (built outside a git checkout). */
  commit: z.string().regex(/^([0-9a-f]{40}|unknown)$/),
  /** ISO date-time, or `unknown`. */
  builtAt: z.string().min(1).max(40),
});
export type BuildInfo = z.infer<typeof buildInfoSchema>;

const packageSchema = z.object({ name: z.string(), version: z.string().min(1).max(64) });

/** The stamp's place under a package root. */
export function buildInfoPath(root: string): string {
  return path.join(root, 'dist', 'build-info.json');
}

/**
 * berth's package root: the nearest folder above `from` whose package.json is berth's (the same
 * from `dist/common/` as from `common/`). Throws if there is none.
 */
export function packageRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = parseJson(readFileSync(file, 'utf8'), packageSchema);
      if (pkg.ok && pkg.value.name === 'berth') return dir;
    }
    if (path.dirname(dir) === dir) throw new Error(`no package.json of berth above ${from}`);
  }
}

/** The version in the package.json of `root`. Throws if it cannot be read. */
export function packageVersion(root: string): string {
  const pkg = parseJson(readFileSync(path.join(root, 'package.json'), 'utf8'), packageSchema);
  if (!pkg.ok) throw new Error(`${path.join(root, 'package.json')}: ${pkg.problem}`);
  return pkg.value.version;
}

/**
 * The stamp of the package at `root`; without one (or with one that does not parse), the
 * version from its package.json and `unknown` for the rest. Never throws for a bad stamp.
 */
export function readBuildInfo(root: string): BuildInfo {
  let text: string | null = null;
  try {
    text = readFileSync(buildInfoPath(root), 'utf8');
  } catch {
    // not stamped: built with a bare `tsc -b`, or run from the sources
  }
  const stamp = text === null ? null : parseJson(text, buildInfoSchema);
  if (stamp?.ok) return stamp.value;
  return { version: packageVersion(root), commit: UNKNOWN, builtAt: UNKNOWN };
}

/** This process's build, read once at start; all `unknown` for a copy without berth's package.json. */
export const BUILD: BuildInfo = (() => {
  try {
    return readBuildInfo(packageRoot());
  } catch {
    return { version: UNKNOWN, commit: UNKNOWN, builtAt: UNKNOWN };
  }
})();
