/**
 * Projects: a bare mirror per repository URL on the agent's host, made by `git clone --mirror`
 * and refreshed by `git fetch`, never checked out there, so no repository hook or config runs on
 * the host. A session's container clones its project from the mirror (mounted read-only) at its
 * first start: twenty sessions of one repository fetch it once, not twenty times.
 *
 * git runs as a child that dies with the agent, time-bounded, with no prompt, only the
 * transports of repoUrlSchema, hooks off, and the URL as one argument after `--`. A repository
 * named by path must lie under one of `allowLocal`. The token for https repositories (agent
 * config `repos.tokenEnv`) reaches git through its environment, never its arguments, and is
 * cut out of any error text.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { BerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import { Mutex } from '../../common/mutex';
import { httpsHost } from '../../common/session-setup';
import { tiedArgv } from '../../common/tied-child';

const run = promisify(execFile);

/** How long one clone or fetch may take. */
const GIT_TIMEOUT_MS = 10 * 60 * 1000;
/** The transports git may use (GIT_ALLOW_PROTOCOL). */
const ALLOWED_PROTOCOLS = 'https:http:ssh:git:file';
/** Gives git the token of BERTH_GIT_TOKEN (set only for the URL's own https host). A fixed text. */
const TOKEN_HELPER = '!f() { echo username=x-access-token; echo "password=$BERTH_GIT_TOKEN"; }; f';

export interface RepoMirrorOptions {
  mirrorDir: string;
  allowLocal: string[];
  refreshSeconds: number;
  /** The token for https repositories, read when a fetch needs it; null: none. */
  token: (() => Promise<string | null>) | null;
  logger: Logger;
  now?: () => number;
}

export class RepoMirrors {
  private readonly locks = new Map<string, Mutex>();
  private readonly fetchedAt = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly o: RepoMirrorOptions) {
    this.now = o.now ?? Date.now;
  }

  /** The mirror of `url` (whether it exists yet or not). */
  pathOf(url: string): string {
    return path.join(this.o.mirrorDir, `${createHash('sha256').update(url).digest('hex').slice(0, 32)}.git`);
  }

  /**
   * Makes the mirror of `url`, or fetches it when it was fetched longer than `refreshSeconds`
   * ago; concurrent calls for one URL share the work. Returns the mirror's path. Throws
   * FORBIDDEN for a path outside `allowLocal`, BAD_REQUEST when git cannot read the repository.
   */
  async prepare(url: string): Promise<string> {
    await this.check(url);
    const lock = this.locks.get(url) ?? new Mutex();
    this.locks.set(url, lock);
    return lock.run(async () => {
      const dir = this.pathOf(url);
      const have = await fs.stat(path.join(dir, 'HEAD')).then(
        () => true,
        () => false,
      );
      const last = this.fetchedAt.get(url);
      if (have && last !== undefined && this.now() - last < this.o.refreshSeconds * 1000) return dir;
      await fs.mkdir(this.o.mirrorDir, { recursive: true, mode: 0o755 });
      if (have) {
        await this.git(url, ['-C', dir, 'fetch', '--prune', '--quiet', 'origin'], 'fetch');
      } else {
        const staging = `${dir}.new-${process.pid}-${this.now()}`;
        try {
          await this.git(url, ['clone', '--mirror', '--no-hardlinks', '--quiet', '--', url, staging], 'clone');
          await fs.rename(staging, dir);
        } finally {
          await fs.rm(staging, { recursive: true, force: true });
        }
      }
      this.fetchedAt.set(url, this.now());
      this.o.logger.info(have ? 'fetched project mirror' : 'made project mirror', { repo: url, mirror: path.basename(dir) });
      return dir;
    });
  }

  /** The mirror of `url`, made if it is missing (a start needs it, not a fresh fetch). */
  async ensure(url: string): Promise<string> {
    const dir = this.pathOf(url);
    const have = await fs.stat(path.join(dir, 'HEAD')).then(
      () => true,
      () => false,
    );
    return have ? dir : this.prepare(url);
  }

  /**
   * Refuses a URL this agent does not take, before anything is fetched: a local path must lie
   * under one of `allowLocal` (links resolved). Throws FORBIDDEN or BAD_REQUEST.
   */
  async check(url: string): Promise<void> {
    const local = localPath(url);
    if (local === null) return;
    const real = await fs.realpath(local).catch(() => null);
    if (real === null) throw new BerthError('BAD_REQUEST', `repo: ${url} does not exist on agent host`);
    const roots = await Promise.all(this.o.allowLocal.map((r) => fs.realpath(r).catch(() => null)));
    const under = (root: string): boolean => real === root || real.startsWith(root.endsWith(path.sep) ? root : `${root}${path.sep}`);
    if (!roots.some((r) => r !== null && under(r))) {
      throw new BerthError('FORBIDDEN', `repo: ${url} is a path on the agent's host outside its repos.allowLocal folders`);
    }
  }

  private async git(url: string, args: string[], what: string): Promise<void> {
    // The token goes only to the https host the URL names: never over plain http, never to a host
    // a redirect leads to.
    const host = httpsHost(url);
    const token = host ? await this.o.token?.() : null;
    const config = ['-c', 'core.hooksPath=/dev/null', '-c', 'protocol.file.allow=always', '-c', 'credential.helper='];
    if (token && host) config.push('-c', `credential.https://${host}.helper=${TOKEN_HELPER}`);
    const [file, ...rest] = tiedArgv(['git', ...config, ...args]);
    try {
      await run(file, rest, {
        timeout: GIT_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: 1024 * 1024,
        env: {
          ...process.env,
          GIT_TERMINAL_PROMPT: '0',
          GIT_ALLOW_PROTOCOL: ALLOWED_PROTOCOLS,
          GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
          ...(token ? { BERTH_GIT_TOKEN: token } : {}),
        },
      });
    } catch (err) {
      const e = err as { stderr?: unknown; killed?: boolean; code?: unknown };
      let text = e.killed ? `took longer than ${GIT_TIMEOUT_MS / 60000} min` : String(e.stderr ?? e.code ?? 'failed').trim();
      if (token) text = text.split(token).join('***');
      throw new BerthError('BAD_REQUEST', `repo: git ${what} of ${url} failed: ${text.slice(-500)}`);
    }
  }
}

/** The host path a repository URL names, or null for a remote one. */
export function localPath(url: string): string | null {
  if (url.startsWith('file://')) return url.slice('file://'.length);
  return url.startsWith('/') ? url : null;
}
