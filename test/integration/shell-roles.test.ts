/**
 * Operator roles and login through the real OpenSSH client (the menu through an ssh2 client with
 * a pty) against a real `berth shell serve` with two real agents: what a viewer, an operator and
 * an admin may do, what the audit log records of it, and which keys get in.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { Cluster, SshResult, runSsh, startCluster, until } from '../helpers/cluster';
import { ShellTerms } from '../helpers/shell-term';
import type { AgentJson, SessionJson } from '../../shell/cli/format';

const runLabel = `shroles-${randomUUID().slice(0, 8)}`;
const tag = runLabel.slice(-6);
let cluster: Cluster;
const terms = new ShellTerms(() => cluster);


/** Runs one command line as an operator; drops OpenSSH's known-hosts notice. */
async function cli(line: string, user = 'alice'): Promise<SshResult> {
  const r = await cluster.ssh(user, [line]);
  return { ...r, err: r.err.replace(/^Warning: Permanently added .*\r?\n/m, '') };
}

async function json<T>(line: string, user = 'alice'): Promise<T> {
  const r = await cli(`${line} --json`, user);
  expect({ line, user, code: r.code, err: r.err }).toEqual({ line, user, code: 0, err: '' });
  return JSON.parse(r.out) as T;
}

const list = (user = 'alice'): Promise<SessionJson[]> => json<SessionJson[]>('list', user);
const find = async (id: string): Promise<SessionJson | undefined> => (await list()).find((s) => s.id === id);
const audit = async (): Promise<Array<Record<string, unknown>>> =>
  (await fs.readFile(cluster.auditFile, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const agentsOnline = (user = 'alice'): Promise<AgentJson[]> =>
  until('both agents online', () => json<AgentJson[]>('agents', user), (a) => a.length === 2 && a.every((x) => x.status === 'online'), 20_000);

function expectForbidden(r: SshResult, user: string, role: string, action: string): void {
  // "a operator" today; the article is not what this checks.
  expect({ code: r.code, err: r.err }).toEqual({ code: 1, err: expect.stringMatching(new RegExp(`^error: FORBIDDEN: ${user} is an? ${role} and may not ${action}\n$`)) });
  expect(r.out).toBe('');
}

/** Makes the lock a crashed operation would leave: the lock directory and its owner record. */
async function handLock(s: SessionJson): Promise<string> {
  const idx = Number(s.agent.slice('agent-'.length)) - 1;
  const dir = path.join(cluster.agents[idx]?.root ?? '', s.id);
  await fs.mkdir(path.join(dir, 'session.lock'));
  const owner = { operator: 'ghost', op: 'clone', since: new Date().toISOString(), pid: 999999, agentInstance: 'gone' };
  await fs.writeFile(path.join(dir, 'session.lock.owner.json'), JSON.stringify(owner));
  return dir;
}

/** ssh with arguments built by hand, running `whoami`. */
const rawSsh = (args: string[]): Promise<SshResult> => runSsh([...args, 'whoami']);

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 2 });
  await agentsOnline();
}, 60_000);

afterAll(async () => {
  terms.endAll();
  await cluster?.dispose();
});

test('viewer: list and agents work; every session op is FORBIDDEN naming the role', async () => {
  const target = await json<SessionJson>(`create --name v-${tag} --agent agent-1`);
  expect(await cli('whoami', 'vic')).toEqual({ code: 0, out: 'vic (viewer)\n', err: '' });
  expect((await agentsOnline('vic')).map((a) => a.id).sort()).toEqual(['agent-1', 'agent-2']);
  const seen = await list('vic');
  expect(seen.find((s) => s.id === target.id)).toEqual(expect.objectContaining({ name: `v-${tag}`, state: 'stopped' }));
  const text = await cli('list', 'vic');
  expect(text.code).toBe(0);
  expect(text.out).toContain(`v-${tag}`);

  const ops: Array<[string, string]> = [
    [`create --name vnew-${tag} --agent agent-1`, 'create'],
    [`edit v-${tag} --name vedit-${tag}`, 'edit'],
    [`clone v-${tag}`, 'clone'],
    [`restart v-${tag}`, 'restart'],
    [`kill v-${tag}`, 'kill'],
    [`delete v-${tag} --yes`, 'delete'],
    [`override v-${tag} --reason because`, 'override'],
    [`background v-${tag}`, 'background'],
  ];
  const results = await Promise.all(ops.map(([line]) => cli(line, 'vic')));
  results.forEach((r, i) => expectForbidden(r, 'vic', 'viewer', (ops[i] as [string, string])[1]));

  const after = await list();
  expect(after.map((s) => s.id).sort()).toEqual(seen.map((s) => s.id).sort());
  expect(after.find((s) => s.id === target.id)).toEqual(expect.objectContaining({ name: `v-${tag}`, state: 'stopped', lock: null }));
  const refused = (await audit()).filter((r) => r.operator === 'vic' && r.code === 'FORBIDDEN' && r.result === 'refused').map((r) => r.op);
  expect(refused.sort()).toEqual(ops.map(([, op]) => op).sort());
});

test('viewer: K in the real menu is refused and audited as the CLI’s kill is', async () => {
  const s = await json<SessionJson>(`create --name vm-${tag} --agent agent-2`);
  const before = (await audit()).length;
  const conn = await terms.login('vic');
  const ch = await new Promise<ClientChannel>((resolve, reject) =>
    conn.shell({ cols: 160, rows: 40, height: 0, width: 0, term: 'xterm-256color' }, (err, c) => (err ? reject(err) : resolve(c))),
  );
  let out = '';
  ch.on('data', (d: Buffer) => (out += d.toString('utf8')));
  await until('the menu lists the session', async () => out, (o) => o.includes(`vm-${tag}`), 15_000, 50);
  ch.write(`/vm-${tag}\r`); // filter down to it: it is the one selected
  ch.write('k');
  await until('the menu says why', async () => out, (o) => o.includes('vic is a viewer and may not kill'), 10_000, 50);
  const added = await until('the refusal audited', async () => (await audit()).slice(before), (a) => a.length > 0, 10_000, 50);
  expect(added).toEqual([
    { ts: expect.any(String), operator: 'vic', op: 'kill', session: s.id, agent: 'agent-2', result: 'refused', code: 'FORBIDDEN', message: 'vic is a viewer and may not kill' },
  ]);
  ch.write('q');
  expect((await find(s.id))?.state).toBe('stopped');
});

test('operator: every session op works, override is FORBIDDEN even on a locked session', async () => {
  const s = await json<SessionJson>(`create --name b-${tag} --agent agent-2`, 'bob');
  expect(s).toEqual(expect.objectContaining({ agent: 'agent-2', state: 'stopped' }));
  const e = await json<SessionJson>(`edit b-${tag} --name b2-${tag} --dns b-${tag}`, 'bob');
  expect(e).toEqual(expect.objectContaining({ id: s.id, name: `b2-${tag}`, dns: `b-${tag}` }));
  const c = await json<SessionJson>(`clone b2-${tag} --name bc-${tag}`, 'bob');
  expect(c).toEqual(expect.objectContaining({ name: `bc-${tag}`, agent: 'agent-2', port: 0, dns: '' }));
  await json(`restart b2-${tag}`, 'bob');
  await until('running', () => find(s.id), (x) => x?.state === 'running', 20_000);
  expect(await json(`background b2-${tag}`, 'bob')).toEqual({ detached: 0 });
  expect(await json<SessionJson>(`kill b2-${tag}`, 'bob')).toEqual(expect.objectContaining({ id: s.id, state: 'stopped' }));
  expectForbidden(await cli(`override b2-${tag}`, 'bob'), 'bob', 'operator', 'override');

  const dir = await handLock(c);
  expectForbidden(await cli(`override bc-${tag} --reason mine`, 'bob'), 'bob', 'operator', 'override');
  expect((await fs.stat(path.join(dir, 'session.lock'))).isDirectory()).toBe(true);
  await fs.rm(path.join(dir, 'session.lock'), { recursive: true });
  await fs.rm(path.join(dir, 'session.lock.owner.json'));

  expect(await json(`delete bc-${tag} --yes`, 'bob')).toEqual({ deleted: c.id });
  expect(await json(`delete ${s.id} --yes`, 'bob')).toEqual({ deleted: s.id });
  const left = (await list()).map((x) => x.id);
  expect(left).not.toContain(s.id);
  expect(left).not.toContain(c.id);
}, 60_000);

test('admin: override clears a hand-made lock and the session goes from locked to stopped', async () => {
  const s = await json<SessionJson>(`create --name a-${tag} --agent agent-1`);
  const dir = await handLock(s);
  // The agent sees the lock at once; the shell's view learns it from the agent's snapshot on connect.
  await cluster.stopShell();
  await cluster.startShell();
  await agentsOnline();
  const locked = await until('locked in the view', () => find(s.id), (x) => x?.state === 'locked', 10_000);
  expect(locked?.lock).toEqual(expect.objectContaining({ operator: 'ghost', op: 'clone' }));
  expect((await list('vic')).find((x) => x.id === s.id)?.state).toBe('locked');

  const o = await json<SessionJson>(`override a-${tag} --reason 'ghost crashed'`);
  expect(o).toEqual(expect.objectContaining({ id: s.id, state: 'stopped', lock: null }));
  expect(await find(s.id)).toEqual(expect.objectContaining({ state: 'stopped', lock: null }));
  await expect(fs.stat(path.join(dir, 'session.lock'))).rejects.toThrow();
  await expect(fs.stat(path.join(dir, 'session.lock.owner.json'))).rejects.toThrow();
  expect((await audit()).find((r) => r.op === 'override' && r.session === s.id)).toEqual(
    expect.objectContaining({ operator: 'alice', agent: 'agent-1', result: 'ok', detail: { reason: 'ghost crashed' } }),
  );
}, 60_000);

test('an unknown user, or a known user with another operator key, is refused before any channel', async () => {
  const alice = cluster.sshArgs('alice');
  const aliceKey = alice[alice.indexOf('-i') + 1] as string;
  const unknown = alice.map((a) => (a === 'alice@127.0.0.1' ? 'mallory@127.0.0.1' : a));
  const bob = cluster.sshArgs('bob');
  const bobWithAliceKey = bob.map((a, i) => (bob[i - 1] === '-i' ? aliceKey : a));
  expect(bobWithAliceKey).toContain(aliceKey);
  expect(bobWithAliceKey).toContain('bob@127.0.0.1');

  for (const args of [unknown, bobWithAliceKey]) {
    const r = await rawSsh(args);
    expect(r.code).toBe(255);
    expect(r.err).toContain('Permission denied (publickey)');
    expect(r.out).toBe('');
  }
  // The same keys work for their own operators.
  expect(await cli('whoami', 'bob')).toEqual({ code: 0, out: 'bob (operator)\n', err: '' });
  expect((await rawSsh(alice)).out).toBe('alice (admin)\n');
});
