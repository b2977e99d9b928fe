/**
 * What operators give a session (command, variables, project) is checked with errors that name
 * what is wrong; the CLI reads `--env` and `--unset-env`; a secret file is read as the agent's
 * config says, and an error about it names the variable and file but never the value; a project
 * named by a path must lie under the agent's allowed folders.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../common/logging';
import { branchSchema, commandSchema, envNameSchema, httpsHost, projectDir, repoUrlSchema, sessionEnvSchema, setupHash } from '../../common/session-setup';
import { checkSessionEnv, containerEnv } from '../../agent/session-env';
import { RepoMirrors, localPath } from '../../agent/repos/mirrors';
import { UsageError, envFlags, parseFlags } from '../../shell/cli/args';

const problem = (r: { success: boolean; error?: { issues: Array<{ message: string }> } }): string => (r.success ? '' : (r.error?.issues[0]?.message ?? ''));

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-setup-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe('schemas', () => {
  test('a command is one line of at most 1000 characters', () => {
    expect(commandSchema.safeParse('claude --dangerously-skip-permissions').success).toBe(true);
    expect(problem(commandSchema.safeParse(''))).toBe('must not be empty');
    expect(problem(commandSchema.safeParse('a\nb'))).toContain('one line');
    expect(problem(commandSchema.safeParse('a\u001b[2J'))).toContain('control characters');
    expect(problem(commandSchema.safeParse('x'.repeat(1001)))).toContain('at most 1000');
  });

  test("variable names: a shell variable's, none of berth's own or the loader's", () => {
    expect(envNameSchema.safeParse('GH_TOKEN').success).toBe(true);
    expect(envNameSchema.safeParse('_x1').success).toBe(true);
    for (const bad of ['1X', 'A-B', '', 'A B']) expect(problem(envNameSchema.safeParse(bad))).toContain('must be a variable name');
    for (const reserved of ['BERTH_COMMAND', 'HOME', 'LD_PRELOAD', 'GIT_CONFIG_COUNT', 'NSS_WRAPPER_PASSWD']) {
      expect(problem(envNameSchema.safeParse(reserved))).toContain('is set by berth');
    }
    expect(problem(sessionEnvSchema.safeParse({ A: 'x\u0000y' }))).toContain('NUL');
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, '1']));
    expect(problem(sessionEnvSchema.safeParse(many))).toContain('at most 64');
  });

  test('repository URLs: the usual forms; no transport helper, option or password', () => {
    for (const ok of ['https://github.com/acme/web.git', 'ssh://git@host/acme/web', 'git@github.com:acme/web.git', 'file:///srv/git/web.git', '/srv/git/web.git', 'git://host/x']) {
      expect({ ok, r: repoUrlSchema.safeParse(ok).success }).toEqual({ ok, r: true });
    }
    for (const bad of ['ext::sh -c touch% /tmp/pwned', '-oProxyCommand=touch /tmp/x', 'fd::17', 'relative/path', 'https://github.com', 'host:path with space']) {
      expect({ bad, m: problem(repoUrlSchema.safeParse(bad)) }).toEqual({ bad, m: expect.stringContaining('must be https://') });
    }
    for (const secret of ['https://me:ghp_secret@github.com/acme/web', 'https://ghp_secret@github.com/acme/web', 'http://x@h/y', 'ssh://git:pw@host/x']) {
      expect({ secret, m: problem(repoUrlSchema.safeParse(secret)) }).toEqual({ secret, m: expect.stringContaining('must not carry a user, password or token') });
    }
    expect(repoUrlSchema.safeParse('ssh://git@host/x').success).toBe(true);
    expect(httpsHost('https://github.com:8443/acme/web')).toBe('github.com:8443');
    expect(httpsHost('http://github.com/acme/web')).toBeNull();
    expect(httpsHost('git@github.com:acme/web')).toBeNull();
  });

  test('branches: a plain subset of what git accepts', () => {
    for (const ok of ['berth/web', 'main', 'feature/x-1', 'v1.2']) expect(branchSchema.safeParse(ok).success).toBe(true);
    for (const bad of ['-x', '.x', '/x', 'a..b', 'a//b', 'a/', 'a.lock', 'a b', 'a.', 'x/.y']) expect(branchSchema.safeParse(bad).success).toBe(false);
  });

  test("the project's folder comes from the URL's last part; the setup hash changes with what a container runs", () => {
    expect(projectDir('https://github.com/acme/web.git')).toBe('web');
    expect(projectDir('git@github.com:acme/api')).toBe('api');
    expect(projectDir('/srv/git/tools.git/')).toBe('tools');
    expect(projectDir('/srv/git/.git')).toBe('project');
    const base = { command: 'claude', env: { A: '1', B: '2' }, repo: null };
    expect(setupHash(base)).toBe(setupHash({ ...base, env: { B: '2', A: '1' } }));
    expect(setupHash(base)).not.toBe(setupHash({ ...base, command: 'bash' }));
    expect(setupHash(base)).not.toBe(setupHash({ ...base, env: { A: '1' } }));
    expect(setupHash(base)).not.toBe(setupHash({ ...base, repo: { url: '/r', branch: 'b' } }));
  });
});

describe('the CLI', () => {
  test('--env NAME=VALUE may repeat; a value may hold = or be empty; a word without = or a name twice is refused', () => {
    const { flags } = parseFlags(['--env', 'A=1', '--env=B=x=y', '--env', 'C='], { env: 'list' }, 0);
    expect(envFlags(flags.env)).toEqual({ A: '1', B: 'x=y', C: '' });
    expect(envFlags(undefined)).toBeUndefined();
    expect(() => envFlags(['NOVALUE'])).toThrow(new UsageError('--env must be NAME=VALUE, got: NOVALUE'));
    expect(() => envFlags(['=x'])).toThrow(UsageError);
    expect(() => envFlags(['A=1', 'A=2'])).toThrow(new UsageError('--env A is given twice'));
    expect(() => parseFlags(['--env', ''], { env: 'list' }, 0)).toThrow(new UsageError('--env must not be empty'));
  });
});

describe('the agent', () => {
  test('variables: literals and files (one line end dropped); the session may not set what the agent sets', async () => {
    const key = path.join(dir, 'key');
    await fs.writeFile(key, 'sk-marker-123\n');
    expect(await containerEnv({ ANTHROPIC_API_KEY: { file: key }, MODE: 'x' }, { FOO: 'bar' })).toEqual({ ANTHROPIC_API_KEY: 'sk-marker-123', MODE: 'x', FOO: 'bar' });
    expect(() => checkSessionEnv({ ANTHROPIC_API_KEY: 'v' }, { ANTHROPIC_API_KEY: 'mine', OK: '1' })).toThrow(
      "env: ANTHROPIC_API_KEY is set by the agent's config for every session",
    );
    expect(() => checkSessionEnv({ A: 'v' }, { B: '1' })).not.toThrow();
  });

  test('an unreadable, odd or oversized secret file is named with its variable, never its value', async () => {
    const gone = path.join(dir, 'gone');
    await expect(containerEnv({ GH_TOKEN: { file: gone } }, {})).rejects.toMatchObject({ code: 'CONFLICT', message: `env GH_TOKEN: its file ${gone} cannot be read (ENOENT)` });
    await expect(containerEnv({ GH_TOKEN: { file: dir } }, {})).rejects.toMatchObject({ message: `env GH_TOKEN: its file ${dir} is not a regular file` });
    const big = path.join(dir, 'big');
    await fs.writeFile(big, `secret-marker-${'x'.repeat(70 * 1024)}`);
    const err = await containerEnv({ GH_TOKEN: { file: big } }, {}).catch((e: Error) => e);
    expect(String((err as Error).message)).toContain('is larger than 65536 bytes');
    expect(String((err as Error).message)).not.toContain('secret-marker');
  });

  test('a project named by a path must lie under allowLocal (links resolved); a missing one is named', async () => {
    const allowed = path.join(dir, 'allowed');
    const outside = path.join(dir, 'outside');
    await fs.mkdir(path.join(allowed, 'r.git'), { recursive: true });
    await fs.mkdir(path.join(outside, 'r.git'), { recursive: true });
    await fs.symlink(path.join(outside, 'r.git'), path.join(allowed, 'sneaky.git'));
    const m = new RepoMirrors({ mirrorDir: path.join(dir, 'mirrors'), allowLocal: [allowed], refreshSeconds: 60, token: null, logger: silentLogger });
    // "/" allows every path (it is its own folder's end).
    const all = new RepoMirrors({ mirrorDir: path.join(dir, 'mirrors'), allowLocal: ['/'], refreshSeconds: 60, token: null, logger: silentLogger });
    await expect(all.prepare(path.join(outside, 'r.git'))).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('git clone of') });
    await expect(m.prepare(path.join(outside, 'r.git'))).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(m.prepare(`file://${path.join(allowed, 'sneaky.git')}`)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(m.prepare(path.join(allowed, 'none.git'))).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('does not exist on agent host') });
    // Inside allowLocal but not a repository: git says why.
    await expect(m.prepare(path.join(allowed, 'r.git'))).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('git clone of') });
    expect(localPath('file:///a/b')).toBe('/a/b');
    expect(localPath('https://h/x')).toBeNull();
    expect(m.pathOf('/a')).not.toBe(m.pathOf('/b'));
  });
});
