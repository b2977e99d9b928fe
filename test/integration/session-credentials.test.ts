/**
 * Credentials every session gets from its agent's config, end to end: the real OpenSSH client, a
 * real shell and agent, real containers. A secret read from a file at each start and a literal
 * are inside the session (its container and the shell in its pane), and a host folder is there
 * read-only. The values are nowhere else: not in session.json, a container label, `list --json`,
 * a log line, the audit log, an error message or any file of the agent or the shell. Per-session
 * variables, which are not secret, are stored and shown, and may not shadow the agent's.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Cluster, SshResult, startCluster, until } from '../helpers/cluster';
import { sessionCli } from '../helpers/session-cli';
import { docker, removeTestContainers, testContainers } from '../helpers/docker';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `cred-${randomUUID().slice(0, 8)}`;
const tag = runLabel.slice(-6);
const marker = (what: string): string => `berth-marker-${what}-${randomUUID()}`;
/** The secret file's first value, the one it is rotated to, and a literal of the config. */
const FIRST = marker('first');
const ROTATED = marker('rotated');
const OVERSIZED = marker('oversized');
const LITERAL = marker('literal');
const SHARED_TEXT = `shared-bundle-${tag}`;
const MOUNT_TARGET = '/opt/berth-shared';

let cluster: Cluster;
let secretsDir = '';
let secretFile = '';
let shareDir = '';
/** Everything the CLI printed in this file's tests: searched for the secrets at the end. */
const printed: string[] = [];

const { cli, json, list, find, inSession, startAndWait, killAndWait } = sessionCli(() => cluster, { seen: (r) => printed.push(r.out, r.err) });

function expectRefused(r: SshResult, code: string): void {
  expect({ code: r.code, out: r.out, err: r.err }).toEqual({ code: 1, out: '', err: expect.stringMatching(new RegExp(`^error: ${code}: `)) });
}

/** Every regular file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

beforeAll(async () => {
  secretsDir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-secrets-'));
  secretFile = path.join(secretsDir, 'anthropic');
  await fs.writeFile(secretFile, `${FIRST}\n`, { mode: 0o600 });
  // Writable by anyone on the host: only the read-only mount keeps the session from writing.
  shareDir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-share-'));
  await fs.writeFile(path.join(shareDir, 'bundle.pem'), SHARED_TEXT);
  await fs.chmod(path.join(shareDir, 'bundle.pem'), 0o666);
  await fs.chmod(shareDir, 0o777);
  cluster = await startCluster({
    runLabel,
    agents: 1,
    agentConfig: {
      env: { ANTHROPIC_API_KEY: { file: secretFile }, GH_TOKEN: LITERAL },
      mounts: [{ source: shareDir, target: MOUNT_TARGET }],
    },
  });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
  await removeTestContainers(runLabel);
  for (const d of [secretsDir, shareDir]) if (d) await fs.rm(d, { recursive: true, force: true });
});

describe('in order: the secrets are in the session and nowhere else', () => {
  let id = '';
  let varsId = '';

  test('the secret from its file and the literal are in the container and in its pane; the host folder is there read-only', async () => {
    id = (await json<SessionJson>(`create --name cred-${tag}`)).id;
    await startAndWait(id);
    // The file's one trailing line end is dropped: printenv adds the only one.
    expect(await inSession(id, ['printenv', 'ANTHROPIC_API_KEY'])).toEqual({ code: 0, out: `${FIRST}\n`, err: '' });
    expect(await inSession(id, ['printenv', 'GH_TOKEN'])).toEqual({ code: 0, out: `${LITERAL}\n`, err: '' });
    // The command in the pane (a shell here) has them too.
    await until('the pane shell up', () => inSession(id, ['tmux', 'display-message', '-p', '-t', 'claude', '#{pane_current_command}']), (r) => r.out.trim() === 'bash', 15_000, 200);
    expect((await inSession(id, ['tmux', 'send-keys', '-t', 'claude', 'printenv ANTHROPIC_API_KEY GH_TOKEN > /tmp/seen-by-pane', 'Enter'])).code).toBe(0);
    const seen = await until('the pane wrote what it sees', () => inSession(id, ['cat', '/tmp/seen-by-pane']), (r) => r.code === 0 && r.out.endsWith('\n') && r.out.split('\n').length === 3, 15_000, 200);
    expect(seen.out).toBe(`${FIRST}\n${LITERAL}\n`);

    expect(await inSession(id, ['cat', `${MOUNT_TARGET}/bundle.pem`])).toEqual({ code: 0, out: SHARED_TEXT, err: '' });
    const write = await inSession(id, ['sh', '-c', `echo x > ${MOUNT_TARGET}/bundle.pem`]);
    expect(write.code).not.toBe(0);
    expect(write.err).toMatch(/Read-only file system/);
    const touch = await inSession(id, ['touch', `${MOUNT_TARGET}/new-file`]);
    expect(touch.code).not.toBe(0);
    expect(touch.err).toMatch(/Read-only file system/);
    expect(await fs.readFile(path.join(shareDir, 'bundle.pem'), 'utf8')).toBe(SHARED_TEXT);
    expect(await fs.readdir(shareDir)).toEqual(['bundle.pem']);
    const mounts = JSON.parse(await docker('inspect', '--format', '{{json .Mounts}}', `berth-${id}`)) as Array<{ Source: string; Destination: string; RW: boolean }>;
    expect(mounts.find((m) => m.Destination === MOUNT_TARGET)).toEqual(expect.objectContaining({ Source: shareDir, RW: false }));
  }, 90_000);

  test('a start with the file unreadable fails naming the variable and the file, never a value; a rotated file applies at the next start', async () => {
    await killAndWait(id);
    const expectStartRefused = async (why: RegExp): Promise<void> => {
      const r = await cli(`restart ${id}`);
      expectRefused(r, 'CONFLICT');
      expect(r.err).toContain('ANTHROPIC_API_KEY');
      expect(r.err).toContain(secretFile);
      expect(r.err).toMatch(why);
      for (const v of [FIRST, ROTATED, OVERSIZED, LITERAL]) expect(r.err).not.toContain(v);
      expect((await find(id))?.state).toBe('stopped');
      expect((await testContainers(runLabel)).filter((c) => c.session === id)).toEqual([]);
    };

    // A folder where the file was (root reads any file, whatever its mode).
    await fs.rm(secretFile);
    await fs.mkdir(secretFile);
    await expectStartRefused(/not a regular file/);
    await fs.rmdir(secretFile);
    await expectStartRefused(/cannot be read \(ENOENT\)/);
    // Too large: the marker leads, so any echo of the content would show it.
    await fs.writeFile(secretFile, `${OVERSIZED}${'x'.repeat(70 * 1024)}`);
    await expectStartRefused(/larger than 65536 bytes/);

    await fs.writeFile(secretFile, `${ROTATED}\n`);
    await startAndWait(id);
    expect(await inSession(id, ['printenv', 'ANTHROPIC_API_KEY'])).toEqual({ code: 0, out: `${ROTATED}\n`, err: '' });
    expect((await find(id))?.restartNeeded).toBe(false);
  }, 90_000);

  test('per-session variables are stored, shown and set inside; none may shadow the agent\'s or berth\'s own', async () => {
    const s = await json<SessionJson>(`create --name vars-${tag} --env FOO=bar --env 'EQ=a=b c' --env EMPTY=`);
    varsId = s.id;
    expect(s.env).toEqual({ FOO: 'bar', EQ: 'a=b c', EMPTY: '' });
    expect((await find(varsId))?.env).toEqual({ FOO: 'bar', EQ: 'a=b c', EMPTY: '' });
    const meta = JSON.parse(await fs.readFile(path.join(cluster.agents[0]!.root, varsId, 'session.json'), 'utf8')) as { env?: unknown };
    expect(meta.env).toEqual({ FOO: 'bar', EQ: 'a=b c', EMPTY: '' });
    // A session with none shows an empty set.
    expect((await find(id))?.env).toEqual({});

    await startAndWait(varsId);
    expect(await inSession(varsId, ['printenv', 'FOO'])).toEqual({ code: 0, out: 'bar\n', err: '' });
    expect(await inSession(varsId, ['printenv', 'EQ'])).toEqual({ code: 0, out: 'a=b c\n', err: '' });
    expect(await inSession(varsId, ['printenv', 'EMPTY'])).toEqual({ code: 0, out: '\n', err: '' });
    expect(await inSession(varsId, ['printenv', 'ANTHROPIC_API_KEY'])).toEqual({ code: 0, out: `${ROTATED}\n`, err: '' });

    for (const name of ['ANTHROPIC_API_KEY', 'GH_TOKEN']) {
      const r = await cli(`create --name shadow-${tag} --env ${name}=x`);
      expectRefused(r, 'BAD_REQUEST');
      expect(r.err).toContain(name);
      const e = await cli(`edit ${varsId} --env ${name}=x`);
      expectRefused(e, 'BAD_REQUEST');
      expect(e.err).toContain(name);
    }
    const reserved = await cli(`create --name shadow-${tag} --env HOME=/root`);
    expect(reserved.code).not.toBe(0);
    expect(reserved.err).toContain('HOME');
    const badName = await cli(`create --name shadow-${tag} --env 1BAD=x`);
    expect(badName.code).not.toBe(0);
    expect(badName.err).toContain('1BAD');
    expect((await list()).filter((x) => x.name === `shadow-${tag}`)).toEqual([]);
    expect((await find(varsId))?.env).toEqual({ FOO: 'bar', EQ: 'a=b c', EMPTY: '' });

    // An edit is stored at once and applied at the next start.
    const edited = await json<SessionJson>(`edit ${varsId} --env FOO=baz --unset-env EMPTY`);
    expect(edited.env).toEqual({ FOO: 'baz', EQ: 'a=b c' });
    expect(edited.restartNeeded).toBe(true);
    expect(await inSession(varsId, ['printenv', 'FOO'])).toEqual({ code: 0, out: 'bar\n', err: '' });
    await killAndWait(varsId);
    await startAndWait(varsId);
    expect(await inSession(varsId, ['printenv', 'FOO'])).toEqual({ code: 0, out: 'baz\n', err: '' });
    expect((await inSession(varsId, ['printenv', 'EMPTY'])).code).toBe(1);
    expect((await find(varsId))?.restartNeeded).toBe(false);
  }, 90_000);

  test('the secret values are in no session.json, label, list --json, log line, audit record, error or file of the agent and the shell', async () => {
    const agent = cluster.agents[0]!;
    const secrets = [FIRST, ROTATED, OVERSIZED];
    const places: Array<{ where: string; text: string }> = [];
    places.push({ where: 'list --json', text: (await cli('list --json')).out });
    for (const sid of [id, varsId]) {
      places.push({ where: `session.json of ${sid}`, text: await fs.readFile(path.join(agent.root, sid, 'session.json'), 'utf8') });
      places.push({ where: `show ${sid}`, text: JSON.stringify(await find(sid)) });
    }
    for (const c of await testContainers(runLabel)) {
      const [inspect] = JSON.parse(await docker('inspect', c.id)) as Array<{ Config: { Env: string[]; Labels: Record<string, string> } }>;
      places.push({ where: `labels of ${c.id}`, text: JSON.stringify(inspect!.Config.Labels) });
      // All that docker keeps of it but its environment, where the values belong.
      places.push({ where: `inspect (less Env) of ${c.id}`, text: JSON.stringify({ ...inspect, Config: { ...inspect!.Config, Env: [] } }) });
      places.push({ where: `docker logs of ${c.id}`, text: await docker('logs', c.id) });
    }
    places.push({ where: 'agent log', text: agent.logs.join('\n') });
    places.push({ where: 'shell log', text: cluster.shell.logs.join('\n') });
    places.push({ where: 'audit log', text: await fs.readFile(cluster.auditFile, 'utf8') });
    places.push({ where: 'cli output', text: printed.join('\n') });
    for (const dir of [agent.dir, cluster.dir]) {
      for (const f of await filesUnder(dir)) places.push({ where: f, text: await fs.readFile(f, 'latin1') });
    }

    // What was searched holds what it should: the search would see a leak.
    const all = (where: RegExp): string => places.filter((p) => where.test(p.where)).map((p) => p.text).join('\n');
    expect(all(/^session\.json/)).toMatch(/"FOO": ?"baz"/);
    expect(all(/^labels/)).toContain('berth.setup');
    expect(all(/^agent log$/)).toContain('started container');
    expect(all(/^shell log$/).length).toBeGreaterThan(0);
    expect(all(/^audit log$/)).toContain('"op":"restart"');
    expect(all(/^cli output$/)).toContain(secretFile);

    const leaks = places.flatMap((p) => secrets.filter((v) => p.text.includes(v)).map((v) => `${v.split('-')[2]} in ${p.where}`));
    // The literal is written in the agent's config by its operator, and nowhere else.
    const configFile = agent.configFile;
    leaks.push(...places.filter((p) => p.where !== configFile && p.text.includes(LITERAL)).map((p) => `literal in ${p.where}`));
    expect(leaks).toEqual([]);
    expect(await fs.readFile(configFile, 'utf8')).toContain(LITERAL);
  }, 60_000);
});
