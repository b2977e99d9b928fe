/**
 * What the demo gives its sessions so that Claude Code can run in them: credentials and a project.
 *
 * Credentials: for each of CREDENTIAL_VARS, a file `<dir>/secrets/<NAME>` (0600) the agents read at
 * each container start. The demo writes it from the variable of that name when it is set in the
 * demo's own environment; a file put there by hand works as well. Values are never printed.
 *
 * A project: a small repository, `<dir>/repos/hello.git` (bare, one commit), made once, which the
 * agents may take by path (`create --repo <dir>/repos/hello.git`).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../common/atomic-file';

const run = promisify(execFile);

/** The variables Claude Code and git read credentials from. */
export const CREDENTIAL_VARS = ['ANTHROPIC_API_KEY', 'CLAUDE_CODE_OAUTH_TOKEN', 'GH_TOKEN'] as const;

export interface DemoSetup {
  /** The agents' `env`: each credential found, by its file. */
  env: Record<string, { file: string }>;
  /** The names found (for the banner). */
  found: string[];
  secretsDir: string;
  reposDir: string;
  /** The demo project's URL (a path on this host). */
  project: string;
}

export async function prepareDemoSetup(dir: string, environment: NodeJS.ProcessEnv = process.env): Promise<DemoSetup> {
  const secretsDir = path.join(dir, 'secrets');
  await fs.mkdir(secretsDir, { recursive: true, mode: 0o700 });
  const env: Record<string, { file: string }> = {};
  for (const name of CREDENTIAL_VARS) {
    const file = path.join(secretsDir, name);
    const value = environment[name];
    if (value) await writeFileAtomic(file, `${value}\n`, 0o600);
    const present = await fs.stat(file).then(
      (st) => st.isFile(),
      () => false,
    );
    if (present) env[name] = { file };
  }
  const reposDir = path.join(dir, 'repos');
  const project = path.join(reposDir, 'hello.git');
  await ensureDemoProject(project);
  return { env, found: Object.keys(env), secretsDir, reposDir, project };
}

/** Makes the demo's repository (bare, one commit on main) unless it is there. */
async function ensureDemoProject(bare: string): Promise<void> {
  const there = await fs.stat(path.join(bare, 'HEAD')).then(
    () => true,
    () => false,
  );
  if (there) return;
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-demo-project-'));
  try {
    const git = (args: string[]): Promise<unknown> =>
      run('git', ['-c', 'user.name=berth demo', '-c', 'user.email=demo@berth.invalid', '-c', 'init.defaultBranch=main', ...args]);
    await git(['init', '--quiet', work]);
    await fs.writeFile(
      path.join(work, 'README.md'),
      '# hello\n\nA project for the berth demo: each session checks it out on its own branch, berth/<name>.\n',
    );
    await git(['-C', work, 'add', 'README.md']);
    await git(['-C', work, 'commit', '--quiet', '-m', 'A project for the berth demo']);
    await fs.mkdir(path.dirname(bare), { recursive: true });
    await git(['clone', '--quiet', '--bare', work, `${bare}.new`]);
    await fs.rename(`${bare}.new`, bare);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
