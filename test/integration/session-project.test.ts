/**
 * A project per session, end to end through the shell's CLI over the real OpenSSH client, with a
 * bare repository the test makes on the agent's host (no network). The agent keeps one bare
 * mirror per URL; each session's container clones it at its first start into its home, on the
 * session's own branch (or the one asked for), with origin set to the real URL, and its pane
 * starts there. Paths outside the agent's allowLocal folders, repositories that cannot be read
 * and URL forms that could run something on the host are refused, and leave nothing.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { Cluster, SshResult, startCluster, until } from '../helpers/cluster';
import { sessionCli } from '../helpers/session-cli';
import { removeTestContainers } from '../helpers/docker';
import type { SessionJson } from '../../shell/cli/format';

const run = promisify(execFile);
const runLabel = `proj-${randomUUID().slice(0, 8)}`;
const tag = runLabel.slice(-6);
const README = `hello-from-repo-${tag}\n`;
const FEATURE = `feature-work-${tag}\n`;

let cluster: Cluster;
/** The folder the agent allows repositories from, and one it does not. */
let reposDir = '';
let outsideDir = '';
let workDir = '';
/** The test's bare repository (main and feature/x), and one outside allowLocal. */
let bare = '';
let outsideBare = '';
let mainCommit = '';
let featureCommit = '';

/** git on the host, as the test (never the product) uses it; stdout trimmed. */
async function git(args: string[], cwd?: string): Promise<string> {
  const { stdout } = await run('git', ['-c', 'user.name=berth test', '-c', 'user.email=test@berth.invalid', '-c', 'init.defaultBranch=main', ...args], { cwd });
  return stdout.trim();
}

const { cli, json, list, find, inSession, startAndWait, killAndWait } = sessionCli(() => cluster, { trim: true });

function expectRefused(r: SshResult, code: string, message?: RegExp): void {
  expect({ code: r.code, out: r.out, err: r.err }).toEqual({ code: 1, out: '', err: expect.stringMatching(new RegExp(`^error: ${code}: `)) });
  if (message) expect(r.err).toMatch(message);
}

/** Waits (bounded) until the session's pane is up, which is after its first-start checkout; the pane's folder. */
async function paneFolder(id: string): Promise<string> {
  const r = await until('the pane', () => inSession(id, ['tmux', 'display-message', '-p', '-t', 'claude', '#{pane_current_path}']), (x) => x.code === 0 && x.out !== '', 30_000, 200);
  return r.out;
}

const mirrorDir = (): string => path.join(cluster.agents[0]!.dir, 'state', 'mirrors');
const mirrors = async (): Promise<string[]> => (await fs.readdir(mirrorDir()).catch(() => [] as string[])).sort();
/** The agent's log lines with this message for this repository URL. */
const logged = (message: string, url: string): Array<Record<string, unknown>> =>
  cluster.agents[0]!.logs
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .filter((l) => l.message === message && l.repo === url);

const exists = (p: string): Promise<boolean> =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );

/** Makes a bare repository at `at` with main (README.md) and feature/x (FEATURE.md) pushed to it. */
async function makeRepo(at: string): Promise<{ main: string; feature: string }> {
  await git(['init', '--quiet', '--bare', at]);
  const work = await fs.mkdtemp(path.join(workDir, 'work-'));
  await git(['init', '--quiet', work]);
  await fs.writeFile(path.join(work, 'README.md'), README);
  await git(['add', 'README.md'], work);
  await git(['commit', '--quiet', '-m', 'first'], work);
  await git(['push', '--quiet', at, 'main'], work);
  const main = await git(['rev-parse', 'HEAD'], work);
  await git(['checkout', '--quiet', '-b', 'feature/x'], work);
  await fs.writeFile(path.join(work, 'FEATURE.md'), FEATURE);
  await git(['add', 'FEATURE.md'], work);
  await git(['commit', '--quiet', '-m', 'feature'], work);
  await git(['push', '--quiet', at, 'feature/x'], work);
  return { main, feature: await git(['rev-parse', 'HEAD'], work) };
}

beforeAll(async () => {
  reposDir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-repos-'));
  outsideDir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-outside-'));
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-work-'));
  bare = path.join(reposDir, 'demo.git');
  ({ main: mainCommit, feature: featureCommit } = await makeRepo(bare));
  outsideBare = path.join(outsideDir, 'other.git');
  await makeRepo(outsideBare);
  cluster = await startCluster({ runLabel, agents: 1, agentConfig: { repos: { allowLocal: [reposDir] } } });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
  await removeTestContainers(runLabel);
  for (const d of [reposDir, outsideDir, workDir]) if (d) await fs.rm(d, { recursive: true, force: true });
});

test('create --repo: the session starts in a checkout of it, on berth/<name>, origin the real URL', async () => {
  const name = `proj-${tag}`;
  const s = await json<SessionJson>(`create --name ${name} --repo ${bare}`);
  expect(s.repo).toEqual({ url: bare, branch: `berth/${name}` });
  expect((await find(s.id)).repo).toEqual({ url: bare, branch: `berth/${name}` });
  expect(await mirrors()).toHaveLength(1);
  expect(logged('made project mirror', bare)).toHaveLength(1);

  await startAndWait(s.id);
  const dir = '/home/claude/demo';
  expect(await paneFolder(s.id)).toBe(dir);
  expect(await inSession(s.id, ['cat', `${dir}/README.md`])).toEqual({ code: 0, out: README.trim(), err: '' });
  expect((await inSession(s.id, ['git', '-C', dir, 'rev-parse', '--abbrev-ref', 'HEAD'])).out).toBe(`berth/${name}`);
  expect((await inSession(s.id, ['git', '-C', dir, 'rev-parse', 'HEAD'])).out).toBe(mainCommit);
  expect((await inSession(s.id, ['git', '-C', dir, 'remote', 'get-url', 'origin'])).out).toBe(bare);
  // Every branch of the repository is there to switch to.
  expect((await inSession(s.id, ['git', '-C', dir, 'rev-parse', 'origin/feature/x'])).out).toBe(featureCommit);
  // The checkout is the session's own, and works: a commit on its branch.
  expect((await inSession(s.id, ['stat', '-c', '%u', `${dir}/README.md`])).out).toBe((await inSession(s.id, ['id', '-u'])).out);
  const commit = await inSession(s.id, ['sh', '-c', `cd ${dir} && echo more > NOTES.md && git add NOTES.md && git -c user.name=t -c user.email=t@t commit -q -m notes && git log --format=%s -1`]);
  expect(commit).toEqual({ code: 0, out: 'notes', err: '' });
  // The mirror is there read-only.
  const write = await inSession(s.id, ['touch', '/run/berth/repo/x']);
  expect(write.code).not.toBe(0);
  expect(write.err).toMatch(/Read-only file system/);

  // A later start keeps the checkout as the session left it.
  await killAndWait(s.id);
  await startAndWait(s.id);
  expect(await paneFolder(s.id)).toBe(dir);
  expect((await inSession(s.id, ['git', '-C', dir, 'log', '--format=%s', '-1'])).out).toBe('notes');
  expect((await inSession(s.id, ['ls', '-a', '/home/claude'])).out.split('\n').filter((f) => f.includes('berth-new'))).toEqual([]);
  // Nothing was pushed to the repository on the host.
  expect(await git(['--git-dir', bare, 'branch', '--list', '--format=%(refname:short)'])).toBe('feature/x\nmain');
}, 120_000);

test('--branch: an existing remote branch is checked out tracking origin; --branch needs --repo', async () => {
  const s = await json<SessionJson>(`create --name feat-${tag} --repo ${bare} --branch feature/x`);
  expect(s.repo).toEqual({ url: bare, branch: 'feature/x' });
  await startAndWait(s.id);
  const dir = '/home/claude/demo';
  expect(await paneFolder(s.id)).toBe(dir);
  expect((await inSession(s.id, ['git', '-C', dir, 'rev-parse', '--abbrev-ref', 'HEAD'])).out).toBe('feature/x');
  expect((await inSession(s.id, ['git', '-C', dir, 'rev-parse', '--abbrev-ref', '--symbolic-full-name', '@{u}'])).out).toBe('origin/feature/x');
  expect((await inSession(s.id, ['git', '-C', dir, 'rev-parse', 'HEAD'])).out).toBe(featureCommit);
  expect(await inSession(s.id, ['cat', `${dir}/FEATURE.md`])).toEqual({ code: 0, out: FEATURE.trim(), err: '' });

  const lone = await cli(`create --name lone-${tag} --branch feature/x`);
  expect(lone.code).toBe(2);
  expect(lone.err).toMatch(/^berth: --branch needs --repo\n/);
  expectRefused(await cli(`create --name badbr-${tag} --repo ${bare} --branch ../x`), 'BAD_REQUEST', /branch/);
  expect((await list()).filter((x) => [`lone-${tag}`, `badbr-${tag}`].includes(x.name))).toEqual([]);
  // Still the one mirror, made once, never fetched again within refreshSeconds.
  expect(logged('made project mirror', bare)).toHaveLength(1);
  expect(logged('fetched project mirror', bare)).toHaveLength(0);
}, 90_000);

test('sessions made at once on one repository share one mirror, made once; each gets its own checkout', async () => {
  const many = path.join(reposDir, 'many.git');
  await makeRepo(many);
  const before = await mirrors();
  const names = [1, 2, 3, 4].map((i) => `many${i}-${tag}`);
  const made = await Promise.all(names.map((n) => json<SessionJson>(`create --name ${n} --repo ${many}`)));
  expect(made.map((m) => m.repo)).toEqual(names.map((n) => ({ url: many, branch: `berth/${n}` })));
  const after = await mirrors();
  expect(after.filter((m) => !before.includes(m))).toHaveLength(1);
  expect(after.filter((m) => !m.endsWith('.git'))).toEqual([]);
  expect(logged('made project mirror', many)).toHaveLength(1);
  expect(logged('fetched project mirror', many)).toHaveLength(0);

  await Promise.all(made.map((m) => startAndWait(m.id)));
  for (const [i, m] of made.entries()) {
    expect(await paneFolder(m.id)).toBe('/home/claude/many');
    expect((await inSession(m.id, ['git', '-C', '/home/claude/many', 'rev-parse', '--abbrev-ref', 'HEAD'])).out).toBe(`berth/${names[i]}`);
    expect((await inSession(m.id, ['git', '-C', '/home/claude/many', 'remote', 'get-url', 'origin'])).out).toBe(many);
  }
  expect(logged('made project mirror', many)).toHaveLength(1);
}, 120_000);

test('a file:/// URL works; a start re-makes a mirror that went missing', async () => {
  const url = `file://${bare}`;
  const s = await json<SessionJson>(`create --name fileurl-${tag} --repo ${url}`);
  expect(s.repo).toEqual({ url, branch: `berth/fileurl-${tag}` });
  expect(logged('made project mirror', url)).toHaveLength(1);
  for (const m of await mirrors()) await fs.rm(path.join(mirrorDir(), m), { recursive: true, force: true });
  await startAndWait(s.id);
  expect(await paneFolder(s.id)).toBe('/home/claude/demo');
  expect((await inSession(s.id, ['git', '-C', '/home/claude/demo', 'remote', 'get-url', 'origin'])).out).toBe(url);
  expect((await inSession(s.id, ['cat', '/home/claude/demo/README.md'])).out).toBe(README.trim());
  expect(logged('made project mirror', url)).toHaveLength(2);
}, 90_000);

test('a session that has its checkout starts without its mirror or its source', async () => {
  const gone = path.join(reposDir, `gone-${tag}.git`);
  await makeRepo(gone);
  const s = await json<SessionJson>(`create --name gone-${tag} --repo ${gone}`);
  await startAndWait(s.id);
  expect(await paneFolder(s.id)).toBe(`/home/claude/gone-${tag}`);
  await killAndWait(s.id);
  // The mirror (every mirror) and the repository itself are gone; the checkout in the home stays.
  for (const m of await mirrors()) await fs.rm(path.join(mirrorDir(), m), { recursive: true, force: true });
  await fs.rm(gone, { recursive: true, force: true });
  await startAndWait(s.id);
  expect(await paneFolder(s.id)).toBe(`/home/claude/gone-${tag}`);
  expect((await inSession(s.id, ['cat', `/home/claude/gone-${tag}/README.md`])).out).toBe(README.trim());
  expect((await inSession(s.id, ['test', '-e', '/run/berth/repo'])).code).not.toBe(0);
  expect(await mirrors()).toEqual([]);
}, 90_000);

test('a path outside allowLocal is FORBIDDEN, one that is no repository is BAD_REQUEST; neither leaves a session or a mirror', async () => {
  const before = await mirrors();
  expectRefused(await cli(`create --name out-${tag} --repo ${outsideBare}`), 'FORBIDDEN', /allowLocal/);
  // Ways round it: .. and a symbolic link inside the allowed folder.
  expectRefused(await cli(`create --name out-${tag} --repo ${reposDir}/../${path.basename(outsideDir)}/other.git`), 'FORBIDDEN', /allowLocal/);
  await fs.symlink(outsideBare, path.join(reposDir, 'link.git'));
  expectRefused(await cli(`create --name out-${tag} --repo ${path.join(reposDir, 'link.git')}`), 'FORBIDDEN', /allowLocal/);
  expectRefused(await cli(`create --name out-${tag} --repo file://${outsideBare}`), 'FORBIDDEN', /allowLocal/);

  expectRefused(await cli(`create --name none-${tag} --repo ${path.join(reposDir, 'nope.git')}`), 'BAD_REQUEST', /nope\.git/);
  await fs.mkdir(path.join(reposDir, 'empty-folder'));
  expectRefused(await cli(`create --name none-${tag} --repo ${path.join(reposDir, 'empty-folder')}`), 'BAD_REQUEST', /empty-folder/);

  expect((await list()).filter((x) => [`out-${tag}`, `none-${tag}`].includes(x.name))).toEqual([]);
  expect(await mirrors()).toEqual(before);
}, 60_000);

test('URL forms that could run something on the host are refused with a clear error, and nothing runs', async () => {
  const mark = `/tmp/berth-repo-mark-${randomUUID()}`;
  const before = await mirrors();
  const cases: Array<[string, RegExp]> = [
    [`'ext::sh -c touch% ${mark}-ext'`, /repo: must be https:\/\//],
    [`'-oProxyCommand=touch ${mark}-opt'`, /repo: must be https:\/\//],
    [`-oProxyCommand=touch`, /repo: must be https:\/\//],
    [`'--upload-pack=touch ${mark}-up'`, /needs a value|repo: must be/],
    [`'fd::17'`, /repo: must be https:\/\//],
    [`relative/demo.git`, /repo: must be https:\/\//],
    [`'https://user:s3cr3t-${tag}@example.invalid/x.git'`, /must not carry a user, password or token/],
    [`'https://s3cr3t-${tag}@example.invalid/x.git'`, /must not carry a user, password or token/],
    [`'ssh://-oProxyCommand=touch%20${mark}-ssh/x'`, /repo|git|host/],
  ];
  for (const [repo, why] of cases) {
    const r = await cli(`create --name url-${tag} --repo ${repo}`);
    expect({ repo, code: r.code === 1 || r.code === 2, out: r.out }).toEqual({ repo, code: true, out: '' });
    expect(r.err).toMatch(why);
    expect(r.err).not.toMatch(/^ {4}at /m);
  }
  for (const suffix of ['-ext', '-opt', '-up', '-ssh', '']) expect(await exists(`${mark}${suffix}`)).toBe(false);
  expect((await list()).filter((x) => x.name === `url-${tag}`)).toEqual([]);
  expect(await mirrors()).toEqual(before);
  // The refused token is not kept anywhere the shell or agent write.
  const audit = await fs.readFile(cluster.auditFile, 'utf8');
  expect(audit).not.toContain(`s3cr3t-${tag}`);
  expect(cluster.shell.logs.join('\n')).not.toContain(`s3cr3t-${tag}`);
  expect(cluster.agents[0]!.logs.join('\n')).not.toContain(`s3cr3t-${tag}`);
}, 60_000);
