/**
 * The shell's exec CLI end to end: the real OpenSSH client against a real `berth shell serve`
 * with two real agents and Docker. Commands, REF forms, exit codes, --json shapes, cluster-wide
 * DNS names, usage errors, quoting and the audit log.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { freePort } from '../helpers/ports';
import { Cluster, SshResult, startCluster, until } from '../helpers/cluster';
import { rawChars } from '../helpers/raw-text';
import type { AgentJson, SessionJson } from '../../shell/cli/format';

const runLabel = `shcli-${randomUUID().slice(0, 8)}`;
const tag = runLabel.slice(-6);
let cluster: Cluster;


const USAGE_HEAD = 'usage: ssh -p PORT USER@SHELL <command> [--json]';
const STATES = ['stopped', 'running', 'connected', 'locked', 'unknown'];

/** Runs one command line (sent to the server exactly as written) as an operator; drops OpenSSH's known-hosts notice. */
async function cli(line: string, user = 'alice'): Promise<SshResult> {
  const r = await cluster.ssh(user, [line]);
  return { ...r, err: r.err.replace(/^Warning: Permanently added .*\r?\n/m, '') };
}

/** Runs a command with --json that must succeed and print exactly one JSON value. */
async function json<T>(line: string, user = 'alice'): Promise<T> {
  const r = await cli(`${line} --json`, user);
  expect({ line, code: r.code, err: r.err }).toEqual({ line, code: 0, err: '' });
  expect(r.out.trim().split('\n')).toHaveLength(1);
  return JSON.parse(r.out) as T;
}

/** A session-result command (create, edit, …): one JSON object with the session fields. */
async function sessionOp(line: string, user = 'alice'): Promise<SessionJson> {
  const s = await json<SessionJson>(line, user);
  expectSessionShape(s);
  return s;
}

const list = (): Promise<SessionJson[]> => json<SessionJson[]>('list');
const find = async (id: string): Promise<SessionJson | undefined> => (await list()).find((s) => s.id === id);

function expectSessionShape(s: SessionJson): void {
  expect(s !== null && typeof s === 'object' && !Array.isArray(s)).toBe(true);
  expect(s).toEqual(
    expect.objectContaining({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
      name: expect.any(String),
      agent: expect.stringMatching(/^agent-[12]$/),
      protocol: expect.stringMatching(/^(tcp|udp)$/),
      port: expect.any(Number),
      dns: expect.any(String),
      createdAt: expect.any(String),
      attached: expect.any(Array),
    }),
  );
  expect(STATES).toContain(s.state);
  expect(Number.isNaN(Date.parse(s.createdAt))).toBe(false);
  expect(s.lastAccessedAt === null || typeof s.lastAccessedAt === 'string').toBe(true);
}

function expectRefused(r: SshResult, code: string, message?: string | RegExp): void {
  expect({ code: r.code, err: r.err }).toEqual({ code: 1, err: expect.stringMatching(new RegExp(`^error: ${code}: `)) });
  if (typeof message === 'string') expect(r.err).toBe(`error: ${code}: ${message}\n`);
  else if (message) expect(r.err).toMatch(message);
  expect(r.err).not.toMatch(/^ {4}at /m);
}

function expectUsage(r: SshResult, message: string): void {
  expect(r.code).toBe(2);
  expect(r.err.startsWith(`berth: ${message}\n\n${USAGE_HEAD}\n`)).toBe(true);
  expect(r.err).not.toMatch(/^ {4}at /m);
  expect(r.out).toBe('');
}

const audit = async (): Promise<Array<Record<string, unknown>>> =>
  (await fs.readFile(cluster.auditFile, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  // trashHours 0: delete removes at once, so names and ports are free right after (shell-trash tests the trash).
  cluster = await startCluster({ runLabel, agents: 2, agentConfig: { trashHours: 0 } });
  await until(
    'both agents online',
    () => json<AgentJson[]>('agents'),
    (a) => a.length === 2 && a.every((x) => x.status === 'online'),
    20_000,
  );
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
});

test('version, whoami, help and agents', async () => {
  const v = await cli('version');
  expect(v).toEqual({ code: 0, out: expect.stringMatching(/^berth \d+\.\d+\.\d+\S* \(protocol \S+\)\ncommit ([0-9a-f]{40}|unknown), built \S+\n$/), err: '' });
  expect(await json('version')).toEqual({ version: expect.any(String), commit: expect.stringMatching(/^([0-9a-f]{40}|unknown)$/), builtAt: expect.any(String), protocol: expect.anything() });
  expect(await cli('whoami')).toEqual({ code: 0, out: 'alice (admin)\n', err: '' });
  expect(await json('whoami')).toEqual({ name: 'alice', role: 'admin' });
  expect(await json('whoami', 'bob')).toEqual({ name: 'bob', role: 'operator' });
  const help = await cli('help');
  expect(help.code).toBe(0);
  expect(help.out.startsWith(USAGE_HEAD)).toBe(true);
  expect(help.out).toContain('REF: a session id, a unique id prefix (4+ characters) or a unique name.');
  const agents = await json<AgentJson[]>('agents');
  expect(agents.map((a) => a.id).sort()).toEqual(['agent-1', 'agent-2']);
  for (const a of agents) expect(a).toEqual(expect.objectContaining({ status: 'online', sessions: expect.any(Number) }));
  const text = await cli('agents');
  expect(text.code).toBe(0);
  expect(text.out).toMatch(/^AGENT +STATUS +SESSIONS/);
  expect(text.out).toMatch(/^agent-2 +online +\d+/m);
});

test('create on a chosen agent with udp, --port -1 and dns; without --agent on an online agent; list --json shape', async () => {
  const s = await sessionOp(`create --name udp-${tag} --agent agent-2 --protocol udp --port -1 --dns u-${tag}`);
  expect(s).toEqual(expect.objectContaining({ name: `udp-${tag}`, agent: 'agent-2', protocol: 'udp', dns: `u-${tag}`, state: 'stopped', attached: [] }));
  expect(s.port).toBeGreaterThanOrEqual(1001);
  expect(s.lastAccessedAt).toBeNull();
  const auto = await sessionOp(`create --name auto-${tag}`);
  expect(['agent-1', 'agent-2']).toContain(auto.agent);
  expect(auto).toEqual(expect.objectContaining({ protocol: 'tcp', port: 0, dns: '', state: 'stopped' }));
  const text = await cli(`create --name txt-${tag} --agent agent-1`);
  expect(text).toEqual({ code: 0, out: expect.stringMatching(new RegExp(`^created txt-${tag} \\([0-9a-f]{8}\\) on agent-1: stopped\\n$`)), err: '' });

  const all = await list();
  expect(Array.isArray(all)).toBe(true);
  all.forEach(expectSessionShape);
  expect(all.find((x) => x.id === s.id)).toEqual(expect.objectContaining({ agent: 'agent-2', protocol: 'udp', port: s.port }));
  expect(all.filter((x) => [`udp-${tag}`, `auto-${tag}`, `txt-${tag}`].includes(x.name))).toHaveLength(3);
  const counts = await json<AgentJson[]>('agents');
  expect(counts.reduce((n, a) => n + a.sessions, 0)).toBe(all.length);
});

test('REF: full uuid, unique 4+ prefix, unique name; short prefix, ambiguous name and unknown REF refused', async () => {
  const s = await sessionOp(`create --name ref-${tag} --agent agent-1`);
  const ids = (await list()).map((x) => x.id);
  let prefix = s.id.slice(0, 4);
  while (ids.filter((i) => i.startsWith(prefix)).length > 1) prefix = s.id.slice(0, prefix.length + 1);

  expect(await sessionOp(`edit ${s.id} --name ref1-${tag}`)).toEqual(expect.objectContaining({ id: s.id, name: `ref1-${tag}` }));
  expect(await sessionOp(`edit ${prefix} --name ref2-${tag}`)).toEqual(expect.objectContaining({ id: s.id, name: `ref2-${tag}` }));
  expect(await sessionOp(`edit ref2-${tag} --name ref3-${tag}`)).toEqual(expect.objectContaining({ id: s.id, name: `ref3-${tag}` }));

  const short = s.id.slice(0, 3);
  expectRefused(await cli(`edit ${short} --name nope`), 'NOT_FOUND', `no session matches "${short}" (an id prefix needs at least 4 characters)`);
  expectRefused(await cli(`restart no-such-${tag}`), 'NOT_FOUND', `no session matches "no-such-${tag}"`);

  const a = await sessionOp(`create --name twin-${tag} --agent agent-1`);
  const b = await sessionOp(`create --name twin-${tag} --agent agent-2`);
  const amb = await cli(`restart twin-${tag}`);
  expectRefused(amb, 'BAD_REQUEST', /ambiguous/);
  expect(amb.err).toContain(`${a.id.slice(0, 8)} twin-${tag} on agent-1`);
  expect(amb.err).toContain(`${b.id.slice(0, 8)} twin-${tag} on agent-2`);
  const after = await list();
  expect(after.filter((x) => x.name === `twin-${tag}`).map((x) => x.state)).toEqual(['stopped', 'stopped']);
  // Each twin is still reachable by its own id prefix.
  expect(await sessionOp(`edit ${b.id.slice(0, 8)} --name twin2-${tag}`)).toEqual(expect.objectContaining({ id: b.id, agent: 'agent-2' }));
});

test('edit, restart, background, override, kill, clone and delete', async () => {
  const s = await sessionOp(`create --name life-${tag} --agent agent-1`);
  const port = await freePort();
  const e = await sessionOp(`edit life-${tag} --name life2-${tag} --port ${port} --dns l-${tag}`);
  expect(e).toEqual(expect.objectContaining({ id: s.id, name: `life2-${tag}`, port, dns: `l-${tag}`, protocol: 'tcp' }));
  expect(await find(s.id)).toEqual(expect.objectContaining({ name: `life2-${tag}`, port, dns: `l-${tag}` }));

  await sessionOp(`restart life2-${tag}`);
  await until('running', () => find(s.id), (x) => x?.state === 'running', 20_000);
  expectRefused(await cli(`restart life2-${tag}`), 'CONFLICT', 'session is already running');
  expect(await cli(`background life2-${tag}`)).toEqual({ code: 0, out: 'detached 0 attaches of alice\n', err: '' });
  expect(await json(`background ${s.id}`)).toEqual({ detached: 0 });
  expectRefused(await cli(`override life2-${tag}`), 'CONFLICT', 'session is not locked');

  const k = await sessionOp(`kill life2-${tag}`);
  expect(k).toEqual(expect.objectContaining({ id: s.id, state: 'stopped' }));
  await until('stopped', () => find(s.id), (x) => x?.state === 'stopped', 20_000);

  const c1 = await sessionOp(`clone life2-${tag}`);
  expect(c1).toEqual(expect.objectContaining({ name: `life2-${tag}-copy`, agent: 'agent-1', port: 0, dns: '', protocol: 'tcp' }));
  const c2 = await sessionOp(`clone life2-${tag} --name named-${tag}`);
  expect(c2).toEqual(expect.objectContaining({ name: `named-${tag}`, agent: 'agent-1', port: 0, dns: '' }));
  expect(new Set([s.id, c1.id, c2.id]).size).toBe(3);

  expectUsage(await cli(`delete life2-${tag}`), 'delete stops the session and moves it and its files to the trash: confirm with --yes');
  expect(await find(s.id)).toBeDefined();
  expect(await cli(`delete life2-${tag} --yes`)).toEqual({ code: 0, out: `deleted ${s.id}\n`, err: '' });
  expect(await json(`delete ${c1.id} --yes`)).toEqual({ deleted: c1.id });
  const left = (await list()).map((x) => x.id);
  expect(left).not.toContain(s.id);
  expect(left).not.toContain(c1.id);
  expect(left).toContain(c2.id);
}, 90_000);

test('DNS names are cluster-wide, also under concurrent creates, and free again after delete', async () => {
  const holder = await sessionOp(`create --name dns1-${tag} --agent agent-1 --dns d-${tag}`);
  expectRefused(await cli(`create --name dns2-${tag} --agent agent-2 --dns d-${tag}`), 'NAME_TAKEN', `dns: "d-${tag}" is used by session dns1-${tag} on agent-1`);
  expect((await list()).filter((x) => x.name === `dns2-${tag}`)).toEqual([]);

  const race = await Promise.all([
    cli(`create --name race1-${tag} --agent agent-1 --dns r-${tag} --json`),
    cli(`create --name race2-${tag} --agent agent-2 --dns r-${tag} --json`),
  ]);
  expect(race.map((r) => r.code).sort()).toEqual([0, 1]);
  const winner = race.find((r) => r.code === 0) as SshResult;
  const loser = race.find((r) => r.code === 1) as SshResult;
  expectRefused(loser, 'NAME_TAKEN');
  const won = JSON.parse(winner.out) as SessionJson;
  expect((await list()).filter((x) => x.dns === `r-${tag}`).map((x) => x.id)).toEqual([won.id]);

  expect((await cli(`delete ${won.id} --yes`)).code).toBe(0);
  const otherAgent = won.agent === 'agent-1' ? 'agent-2' : 'agent-1';
  expect(await sessionOp(`create --name race3-${tag} --agent ${otherAgent} --dns r-${tag}`)).toEqual(expect.objectContaining({ agent: otherAgent, dns: `r-${tag}` }));
  expect((await cli(`delete ${holder.id} --yes`)).code).toBe(0);
  expect(await sessionOp(`create --name dns3-${tag} --agent agent-2 --dns d-${tag}`)).toEqual(expect.objectContaining({ agent: 'agent-2', dns: `d-${tag}` }));
});

test('limits: create and edit take --memory, --cpus, --pids up to the agent\'s maximums', async () => {
  const s = await sessionOp(`create --name lim-${tag} --agent agent-1 --memory 1g --cpus 0.5 --pids 300`);
  expect(s.limits).toEqual({ memoryMb: 1024, cpus: 0.5, pids: 300 });
  expect((await sessionOp(`edit ${s.id} --memory 768m`)).limits).toEqual({ memoryMb: 768, cpus: 0.5, pids: 300 });
  expectRefused(await cli(`edit ${s.id} --pids 100000`), 'BAD_REQUEST', "limits: pids 100000 is above this agent's maximum of 32768");
  expectUsage(await cli(`edit ${s.id} --memory lots`), '--memory must be a size in MB, like 512, 512m or 4g');
  expectUsage(await cli(`edit ${s.id} --cpus -1`), '--cpus must be a number like 0.5 or 2');
  expect((await find(s.id))?.limits).toEqual({ memoryMb: 768, cpus: 0.5, pids: 300 });
  // A running session keeps its limits until restarted, and says so.
  expect((await cli(`restart ${s.id}`)).code).toBe(0);
  expect((await find(s.id))?.restartNeeded).toBe(false);
  expect((await sessionOp(`edit ${s.id} --pids 400`)).restartNeeded).toBe(true);
  expect((await cli(`delete ${s.id} --yes`)).code).toBe(0);
});

test('usage errors exit 2 with the usage text; an agent refusal is shown verbatim', async () => {
  const before = (await list()).length;
  const cases: Array<[string, string]> = [
    ['frobnicate', 'unknown command: frobnicate'],
    ['list --bogus', 'unknown flag --bogus'],
    ['create --agent agent-1', 'create needs --name N'],
    [`create --name p-${tag} --port abc`, '--port must be a whole number'],
    [`create --name p-${tag} --protocol sctp`, '--protocol must be tcp or udp'],
    [`create --name 'p-${tag}`, 'unterminated single quote'],
    // One rule for numbers: anything but a whole number (in range) is a usage error, exit 2.
    [`create --name p-${tag} --port 99999999999999999999999`, '--port must be a whole number'],
    // A value never swallows the next flag; an empty one is refused, not taken for the default.
    [`create --name --yes`, '--name needs a value (one that starts with -- is written --name=--yes)'],
    [`clone x-${tag} --name ''`, '--name must not be empty'],
  ];
  const results = await Promise.all(cases.map(([line]) => cli(line)));
  results.forEach((r, i) => expectUsage(r, (cases[i] as [string, string])[1]));

  const bad = await cli(`create --name "a b" --agent agent-1`);
  expectRefused(bad, 'BAD_REQUEST', /^error: BAD_REQUEST: name: .+\n$/);
  const badDns = await cli(`create --name ok-${tag} --agent agent-2 --dns Not_A_Name`);
  expectRefused(badDns, 'BAD_REQUEST', /^error: BAD_REQUEST: dns: .+\n$/);
  expect((await list()).length).toBe(before);
});

test('override passes a quoted reason literally and the audit log records it', async () => {
  const s = await sessionOp(`create --name lock-${tag} --agent agent-1`);
  const dir = path.join(cluster.agents[0]?.root ?? '', s.id);
  await fs.mkdir(path.join(dir, 'session.lock'));
  const owner = { operator: 'ghost', op: 'clone', since: new Date().toISOString(), pid: 999999, agentInstance: 'gone' };
  await fs.writeFile(path.join(dir, 'session.lock.owner.json'), JSON.stringify(owner));

  const o = await sessionOp(`override lock-${tag} --reason 'holder is gone; $HOME'`);
  expect(o).toEqual(expect.objectContaining({ id: s.id, state: 'stopped', lock: null }));
  await expect(fs.stat(path.join(dir, 'session.lock'))).rejects.toThrow();
  const rec = (await audit()).find((r) => r.op === 'override' && r.session === s.id && r.result === 'ok');
  expect(rec).toEqual(expect.objectContaining({ operator: 'alice', agent: 'agent-1', detail: { reason: 'holder is gone; $HOME' } }));
});

test('the audit log has a record per op, refused ones with their code', async () => {
  const s = await sessionOp(`create --name aud-${tag} --agent agent-2`);
  expectRefused(await cli(`override aud-${tag}`, 'alice'), 'CONFLICT');
  await sessionOp(`edit aud-${tag} --port 0`, 'bob');
  expect((await cli(`delete aud-${tag} --yes`, 'bob')).code).toBe(0);

  const recs = (await audit()).filter((r) => r.session === s.id);
  for (const r of recs) expect(Number.isNaN(Date.parse(String(r.ts)))).toBe(false);
  expect(recs.map((r) => [r.operator, r.op, r.agent, r.result, r.code])).toEqual([
    ['alice', 'create', 'agent-2', 'ok', undefined],
    ['alice', 'override', 'agent-2', 'refused', 'CONFLICT'],
    ['bob', 'edit', 'agent-2', 'ok', undefined],
    ['bob', 'delete', 'agent-2', 'ok', undefined],
  ]);
  expect(recs[1]).toEqual(expect.objectContaining({ message: 'session is not locked' }));
  const taken = (await audit()).find((r) => r.op === 'create' && r.code === 'NAME_TAKEN');
  expect(taken).toEqual(expect.objectContaining({ operator: 'alice', result: 'refused', message: expect.stringContaining(`d-${tag}`) }));
});

test('refused ops are audited too: an unknown REF, and a refused create with its agent', async () => {
  expectRefused(await cli(`restart gone-${tag}`, 'bob'), 'NOT_FOUND');
  const lost = (await audit()).find((r) => r.op === 'restart' && (r.detail as { ref?: string } | undefined)?.ref === `gone-${tag}`);
  expect(lost).toEqual(expect.objectContaining({ operator: 'bob', result: 'refused', code: 'NOT_FOUND' }));
  expectRefused(await cli(`create --name 'bad name' --agent agent-1`, 'bob'), 'BAD_REQUEST');
  const bad = (await audit()).filter((r) => r.op === 'create' && r.code === 'BAD_REQUEST').pop();
  expect(bad).toEqual(expect.objectContaining({ operator: 'bob', agent: 'agent-1', result: 'refused' }));
});

test('attach without a terminal and a plain shell request are refused clearly', async () => {
  await sessionOp(`create --name att-${tag} --agent agent-1`);
  const a = await cli(`attach att-${tag}`);
  expect(a.code).toBe(2);
  expect(a.err).toContain('attach needs a terminal: use ssh -t');
  // No command and no terminal: the menu door says why it will not open (its wording changes with the menu).
  const sh = await cluster.ssh('alice', []);
  expect(sh.code).toBe(2);
  expect(sh.err).toMatch(/^berth: the menu .+/m);
  expect(sh.err).not.toMatch(/^ {4}at /m);
});

/** The session.json of session `id` in an agent's root, wherever the store keeps it there. */
async function sessionFile(root: string, id: string): Promise<string> {
  const found: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isFile() && e.name === 'session.json' && (await fs.readFile(p, 'utf8')).includes(id)) found.push(p);
      else if (e.isDirectory() && depth < 2 && e.name !== 'home') await walk(p, depth + 1);
    }
  };
  await walk(root, 0);
  expect(found).toHaveLength(1);
  return found[0] ?? '';
}

test('an agent error quoting a corrupt session.json arrives on stderr with its control characters escaped', async () => {
  const s = await sessionOp(`create --name esc-${tag} --agent agent-2`);
  const file = await sessionFile(cluster.agents[1]?.root ?? '', s.id);
  const meta = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
  // A field whose name would set the terminal's title, clear the screen, ask for the cursor position
  // (C1 CSI) and reverse the text, if printed raw: the agent's refusal quotes it.
  await fs.writeFile(file, JSON.stringify({ ...meta, '\u001b]0;pwned\u0007\u001b[2J\u009b6n\u202e': 1 }));
  const r = await cli(`restart ${s.id}`);
  expectRefused(r, 'CONFLICT', /unknown field "\\x1b\]0;pwned\\x07\\x1b\[2J\\x9b6n\\u202e"/);
  expect(rawChars(r.err, { lines: true })).toEqual([]);
  expect(r.err.split('\n')).toHaveLength(2);
  expect((await cli(`delete ${s.id} --yes`)).code).toBe(0);
});
