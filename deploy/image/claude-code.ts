/**
 * Claude Code for the session image: the version berth pins (package.json, "berth"
 * "claudeCodeVersion"; deploy/image/Dockerfile's CLAUDE_CODE_VERSION default must match it), and
 * its native binary, taken from the npm package for this platform. That binary is one ELF file
 * that needs only glibc, so the image needs no Node.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BerthError, messageOf } from '../../common/errors';

/** Where the binary goes in the image: on every user's PATH, owned by root, not writable by them. */
export const CLAUDE_BIN = '/usr/local/bin/claude';
/** npm's names for the architectures Claude Code ships a Linux (glibc) binary for. */
const ARCHES = ['x64', 'arm64'];
const VERSION = /^\d+\.\d+\.\d+$/;

/** The pinned Claude Code version, read from package.json beside deploy/; throws if it is missing or malformed. */
export async function claudeCodeVersion(packageJson: string): Promise<string> {
  let parsed: { berth?: { claudeCodeVersion?: unknown } };
  try {
    parsed = JSON.parse(await fs.readFile(packageJson, 'utf8')) as typeof parsed;
  } catch (err) {
    throw new BerthError('INTERNAL', `read ${packageJson}: ${messageOf(err)}`, { cause: err });
  }
  const v = parsed?.berth?.claudeCodeVersion;
  if (typeof v !== 'string' || !VERSION.test(v)) {
    throw new BerthError('INTERNAL', `${packageJson}: "berth"."claudeCodeVersion" must be a version like 1.2.3`);
  }
  return v;
}

/** The npm package holding the binary for this machine's architecture; throws on another one. */
export function platformPackage(arch: string = process.arch): string {
  if (!ARCHES.includes(arch)) throw new BerthError('INTERNAL', `image build: Claude Code has no Linux binary for ${arch}`);
  return `@anthropic-ai/claude-code-linux-${arch}`;
}

/**
 * Fetches the platform package of `version` with `npm pack` (npm's own registry settings and
 * cache apply) and puts its `claude` at CLAUDE_BIN in `rootfs`, root-owned, mode 0755. Then runs
 * it inside `rootfs` (chroot, unprivileged) and checks it reports `version`. Not idempotent in time (it downloads each
 * call); throws if npm, tar or the check fails.
 */
export async function installClaudeCode(rootfs: string, version: string, log: (line: string) => void): Promise<void> {
  const pkg = `${platformPackage()}@${version}`;
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-claude-'));
  try {
    log(`fetching ${pkg}`);
    await output('npm', ['pack', '--silent', pkg], { cwd: tmp });
    const tarball = (await fs.readdir(tmp)).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new BerthError('INTERNAL', `image build: npm pack ${pkg} left no tarball`);
    await output('tar', ['-xzf', tarball, 'package/claude'], { cwd: tmp });
    const target = path.join(rootfs, CLAUDE_BIN);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.copyFile(path.join(tmp, 'package/claude'), target);
    await fs.chown(target, 0, 0);
    await fs.chmod(target, 0o755);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  // The image's own libc runs it, as in a session, and as nobody rather than the builder's root.
  const said = await output('chroot', ['--userspec=65534:65534', rootfs, 'env', 'HOME=/tmp', CLAUDE_BIN, '--version'], {});
  if (said.trim().split(' ')[0] !== version) {
    throw new BerthError('INTERNAL', `image build: ${CLAUDE_BIN} --version says ${JSON.stringify(said.trim())}, not ${version}`);
  }
  log(`Claude Code ${version} at ${CLAUDE_BIN}`);
}

/** Runs a command (no shell) and resolves with its stdout; rejects with its stderr's end. */
function output(cmd: string, args: string[], opts: { cwd?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const why = stderr.trim().slice(-2000) || err.message;
      reject(new BerthError('INTERNAL', `image build: ${cmd} ${args[0] ?? ''} failed: ${why}`, { cause: err }));
    });
  });
}
