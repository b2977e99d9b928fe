/**
 * Stamps a build: writes `dist/build-info.json` ({version, commit, builtAt}) for the package at
 * the root above it, after `tsc -b` (`npm run build`, `prepare`, `typecheck`). The commit is the
 * git HEAD of that root when the root is a git checkout of its own, else `unknown` (an unpacked
 * copy, even one inside another repository).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { BuildInfo, UNKNOWN, buildInfoPath, packageRoot, packageVersion } from '../common/build-info';
import { writeFileAtomic } from '../common/atomic-file';

/** The HEAD commit of the git checkout at `root`, or `unknown` (no git, no checkout, or the checkout of a folder above). */
export function gitCommit(root: string): string {
  const git = (args: string[]): string => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  try {
    if (path.resolve(git(['rev-parse', '--show-toplevel'])) !== path.resolve(root)) return UNKNOWN;
    const commit = git(['rev-parse', 'HEAD']);
    return /^[0-9a-f]{40}$/.test(commit) ? commit : UNKNOWN;
  } catch {
    return UNKNOWN;
  }
}

/** What the stamp of the package at `root` says now. Throws if its package.json cannot be read. */
export function buildInfoOf(root: string, now: Date = new Date()): BuildInfo {
  return { version: packageVersion(root), commit: gitCommit(root), builtAt: now.toISOString().replace(/\.\d{3}Z$/, 'Z') };
}

/** Writes the stamp of the package at `root` (atomically) to `file`; returns it. */
export async function stampBuild(root: string, file: string = buildInfoPath(root)): Promise<BuildInfo> {
  const info = buildInfoOf(root);
  mkdirSync(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, `${JSON.stringify(info, null, 2)}\n`);
  return info;
}

if (require.main === module) {
  stampBuild(packageRoot()).then(
    (b) => console.log(`stamped berth ${b.version}, commit ${b.commit}, built ${b.builtAt}`),
    (err: unknown) => {
      console.error(`stamp-build: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
