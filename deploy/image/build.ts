/**
 * `berth image build`: the session image without any container registry. debootstrap makes a
 * minimal Debian with tmux, git, ripgrep, the OpenSSH client and CA certificates, a `claude` user
 * (the agent's default container user), berth-session and Claude Code at the version package.json
 * pins (fetched from the npm registry), with no setuid or setgid file left; `docker import` turns
 * it into an image. Same result as deploy/image/Dockerfile.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../../common/errors';
import { DEFAULT_SESSION_USER } from '../../agent/config';
import { claudeCodeVersion, installClaudeCode, platformPackage } from './claude-code';

export const DEFAULT_IMAGE = 'berth-session:latest';
/** The Debian packages; deploy/image/Dockerfile installs the same. */
export const PACKAGES = ['tmux', 'bash', 'procps', 'ncurses-base', 'libnss-wrapper', 'git', 'ca-certificates', 'openssh-client', 'ripgrep'];
/**
 * The steps below that shape the image besides the packages, Claude Code and berth-session; part
 * of the recipe hash, so changing one rebuilds images made the old way. DISABLE_AUTOUPDATER keeps
 * Claude Code at the pinned version.
 */
const STEPS = { user: DEFAULT_SESSION_USER, env: ['LANG=C.UTF-8', 'DISABLE_AUTOUPDATER=1'], setid: 'stripped' };
/**
 * The files of deploy/image the image carries, where, and their mode: the entry point, the hook
 * every Claude Code event runs, the pane's output watcher, and Claude Code's managed settings
 * that name the hook (read by Claude Code beside a user's own settings, which stay untouched).
 */
const IMAGE_FILES: Array<[string, string, number]> = [
  ['berth-session', 'usr/local/bin/berth-session', 0o755],
  ['berth-hook', 'usr/local/bin/berth-hook', 0o755],
  ['berth-output', 'usr/local/bin/berth-output', 0o755],
  ['managed-settings.json', 'etc/claude-code/managed-settings.json', 0o644],
];

/** Images carry the hash of what they were built from, so an outdated one is rebuilt. */
export const RECIPE_LABEL = 'berth.image.recipe';

export interface ImageBuildOptions {
  tag: string;
  suite: string;
  mirror?: string;
  /** Skip the build when the tag is already there. */
  ifMissing: boolean;
  log: (line: string) => void;
}

export async function buildImage(o: ImageBuildOptions): Promise<'built' | 'present'> {
  const claude = await claudeCodeVersion(path.join(sourceDir(), '../../package.json'));
  const recipe = await recipeHash(o.suite, claude);
  if (o.ifMissing) {
    const have = await output('docker', ['image', 'inspect', '-f', `{{index .Config.Labels "${RECIPE_LABEL}"}}`, o.tag]).catch(() => null);
    if (have?.trim() === recipe) {
      o.log(`image ${o.tag} is already there and up to date`);
      return 'present';
    }
    if (have !== null) o.log(`image ${o.tag} was built from another recipe: rebuilding`);
  }
  if (process.getuid?.() !== 0) throw new BerthError('FORBIDDEN', 'image build: debootstrap needs root');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-rootfs-'));
  try {
    // The image's `/`, which users other than root must be able to enter (as Docker makes it).
    await fs.chmod(dir, 0o755);
    o.log(`debootstrap ${o.suite} into ${dir}`);
    const args = ['--variant=minbase', `--include=${PACKAGES.join(',')}`, o.suite, dir];
    if (o.mirror) args.push(o.mirror);
    await run('debootstrap', args, { quiet: true });
    const { uid, gid } = STEPS.user;
    await run('chroot', [dir, 'groupadd', '--gid', String(gid), 'claude']);
    await run('chroot', [dir, 'useradd', '--create-home', '--uid', String(uid), '--gid', String(gid), '--shell', '/bin/bash', 'claude']);
    await installClaudeCode(dir, claude, o.log);
    for (const [name, at, mode] of IMAGE_FILES) {
      const to = path.join(dir, at);
      await fs.mkdir(path.dirname(to), { recursive: true, mode: 0o755 });
      await fs.copyFile(path.join(sourceDir(), name), to);
      await fs.chmod(to, mode);
    }
    // Trim what a session never needs: apt lists and caches, docs.
    for (const p of ['var/cache/apt', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man']) {
      await fs.rm(path.join(dir, p), { recursive: true, force: true });
    }
    // Last, so nothing added above escapes it. A session is untrusted code: no file may raise its
    // privileges (su, mount, passwd, ssh-keysign, …), and no setgid folder is needed either.
    await run('find', [dir, '-xdev', '-perm', '/6000', '-exec', 'chmod', 'ug-s', '{}', '+']);
    o.log(`importing as ${o.tag}`);
    await importDir(dir, o.tag, recipe);
    o.log(`built ${o.tag}`);
    return 'built';
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** deploy/image in the source tree, whether running from dist/ or not. */
function sourceDir(): string {
  const here = __dirname;
  const fromDist = path.resolve(here, '../../../deploy/image');
  return here.split(path.sep).includes('dist') ? fromDist : here;
}

/**
 * What the image is made from: the package list, the suite, the steps, Claude Code's package and
 * version, and the files it carries (IMAGE_FILES), hashed.
 */
async function recipeHash(suite: string, claudeCode: string): Promise<string> {
  const recipe = { suite, packages: PACKAGES, steps: STEPS, claudeCode: `${platformPackage()}@${claudeCode}`, files: IMAGE_FILES };
  const hash = createHash('sha256').update(JSON.stringify(recipe));
  for (const [name] of IMAGE_FILES) hash.update(await fs.readFile(path.join(sourceDir(), name)));
  return hash.digest('hex').slice(0, 16);
}

function importDir(dir: string, tag: string, recipe: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['-C', dir, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const imp = spawn(
      'docker',
      ['import', ...STEPS.env.flatMap((e) => ['-c', `ENV ${e}`]), '-c', `LABEL ${RECIPE_LABEL}=${recipe}`, '-c', 'USER claude', '-c', 'WORKDIR /home/claude', '-c', 'CMD ["/usr/local/bin/berth-session"]', '-', tag],
      { stdio: ['pipe', 'ignore', 'inherit'] },
    );
    tar.stdout.pipe(imp.stdin);
    // docker import ending early (no engine) closes its stdin: its exit says why, not an EPIPE.
    imp.stdin.on('error', () => undefined);
    let failed = false;
    const fail = (what: string) => (code: number | null) => {
      if (code !== 0 && !failed) {
        failed = true;
        reject(new BerthError('INTERNAL', `image build: ${what} exited ${code}`));
      }
    };
    tar.on('exit', fail('tar'));
    imp.on('exit', (code) => {
      fail('docker import')(code);
      if (code === 0 && !failed) resolve();
    });
    tar.on('error', reject);
    imp.on('error', reject);
  });
}

/** Runs a command and resolves with its stdout; rejects if it fails. */
function output(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

function run(cmd: string, args: string[], opts: { quiet?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', opts.quiet ? 'ignore' : 'inherit', opts.quiet ? 'pipe' : 'inherit'] });
    let err = '';
    p.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    p.on('error', (e) => reject(new BerthError('INTERNAL', `image build: cannot run ${cmd}: ${e.message}`)));
    p.on('exit', (code) =>
      code === 0 ? resolve() : reject(new BerthError('INTERNAL', `image build: ${cmd} exited ${code}${err ? `: ${err.trim()}` : ''}`)),
    );
  });
}
