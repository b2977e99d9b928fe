/**
 * The fleet changes while operators work: an admin adds an agent and operators, changes a role and
 * removes an operator through the same SSH door (`agent …`, `operator …`), or edits shell.json and
 * sends the shell SIGHUP. Everyone else stays connected (an attach keeps echoing, a `watch` keeps
 * streaming), a removed operator is disconnected at once, a changed role applies to a connection
 * already open, an invalid file is refused whole with the running config kept, and each change
 * and refusal is in the audit log.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { AgentProcess, BERTH_BIN, startAgentProcess } from '../helpers/agent-process';
import { Cluster, startCluster } from '../helpers/cluster';
import { removeTestContainers } from '../helpers/docker';
import { sessionCli } from '../helpers/session-cli';
import { ShellTerm, ShellTerms } from '../helpers/shell-term';
import { Tmux } from '../helpers/tmux';
import { until, within } from '../helpers/wait';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `live-config-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
let spare: AgentProcess;
const terms = new ShellTerms(() => cluster);
const { cli, json, startAndWait } = sessionCli(() => cluster);
const streams: ChildProcess[] = [];
const tmux = new Tmux(`berth-${runLabel}`);

beforeAll(async () => {
  cluster = await startCluster({
    runLabel,
    agents: 1,
    operators: [
      { name: 'alice', role: 'admin' },
      { name: 'bob', role: 'operator' },
      { name: 'vic', role: 'viewer' },
      { name: 'carol', role: 'operator' },
    ],
  });
  spare = await startAgentProcess({ runLabel, id: 'agent-2' });
  await cluster.agentsOnline();
}, 90_000);

afterAll(async () => {
  terms.endAll();
  tmux.kill();
  for (const s of streams) s.kill('SIGKILL');
  await spare?.dispose();
  await cluster?.dispose();
  await removeTestContainers(runLabel);
});

/** A new key pair for `name` in the cluster's folder (as the cluster helper makes them); its public line. */
async function newKey(name: string): Promise<string> {
  const key = path.join(cluster.dir, `key_${name}`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', key]);
  return (await fs.readFile(`${key}.pub`, 'utf8')).trim();
}

/** `watch --json` as `user`, kept open; resolves its exit code when the connection ends. */
function openWatch(user: string): { proc: ChildProcess; lines: () => number; exited: Promise<number | null> } {
  const proc = spawn('ssh', [...cluster.sshArgs(user), 'watch', '--json'], { stdio: ['pipe', 'pipe', 'pipe'] });
  streams.push(proc);
  let n = 0;
  proc.stdout?.on('data', (d: Buffer) => (n += d.toString().split('\n').length - 1));
  return { proc, lines: () => n, exited: new Promise((r) => proc.on('exit', (code) => r(code))) };
}

/** Types a marker into an attach and waits (bounded) for its echo. */
async function echoes(t: ShellTerm, marker: string): Promise<void> {
  t.channel.write(`echo ${marker}\r`);
  await until(`echo of ${marker}`, async () => t.output(), (o) => o.includes(marker), 10_000, 50);
}

const auditOps = async (): Promise<Array<{ operator: string; op: string; result: string; message?: string }>> =>
  (await fs.readFile(cluster.auditFile, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { operator: string; op: string; result: string; message?: string })
    .filter((r) => r.op.includes('.'));

test('agent add and operator changes apply live: nobody else is dropped, roles change on open connections, a removed operator is cut off', async () => {
  const s = await json<SessionJson>(`create --name live --command bash`);
  await startAndWait(s.id);
  let bob = await terms.attach('bob', s.id, { cols: 100, rows: 30 });
  await echoes(bob, 'before-changes');
  const carolWatch = openWatch('carol');
  const aliceWatch = openWatch('alice');
  await until('both watches synced', async () => Math.min(carolWatch.lines(), aliceWatch.lines()), (n) => n >= 2, 15_000);

  // A new agent, enrolled through the door.
  const key = (await cli('agent list --json')).out;
  expect(JSON.parse(key)).toHaveLength(1);
  execFileSync(process.execPath, [BERTH_BIN, 'agent', 'authorize-shell', '--config', spare.configFile, spare.shellKey.public]);
  // The shell's own key (the one agents trust): shown by `berth shell show-key`.
  const shellKey = execFileSync(process.execPath, [BERTH_BIN, 'shell', 'show-key', '--config', cluster.shell.configFile], { encoding: 'utf8' }).trim();
  execFileSync(process.execPath, [BERTH_BIN, 'agent', 'authorize-shell', '--config', spare.configFile, shellKey]);
  const added = await cli(`agent add agent-2 --host 127.0.0.1 --port ${spare.port} --fingerprint ${spare.fingerprint}`);
  expect(added).toEqual(expect.objectContaining({ code: 0 }));
  expect(added.out).toContain('enrolled agent-2');
  expect(added.out).toContain(shellKey);
  await until('agent-2 online', async () => JSON.parse((await cli('agents --json')).out) as Array<{ id: string; status: string }>, (a) => a.some((x) => x.id === 'agent-2' && x.status === 'online'), 20_000);
  const onTwo = await json<SessionJson>('create --name on-two --agent agent-2');
  expect(onTwo.agent).toBe('agent-2');

  // A new operator can log in at once.
  const daveKey = await newKey('dave');
  expect((await cli(`operator add dave --role viewer --key '${daveKey}'`)).code).toBe(0);
  expect((await cluster.ssh('dave', ['whoami'])).out).toBe('dave (viewer)\n');

  // A role changed under an open connection: vic's menu, open all along, may delete at once.
  tmux.start('vic', ['ssh', ...cluster.sshArgs('vic', ['-t'])], 140, 30);
  await tmux.waitFor('vic', (x) => x.includes('vic (viewer)') && x.includes(' live '), "vic's menu");
  tmux.type('vic', '/live');
  tmux.keys('vic', 'Enter');
  tmux.type('vic', 'd');
  await tmux.waitFor('vic', (x) => x.includes('vic is a viewer and may not delete'), 'the refusal');
  expect((await cli('operator role vic operator')).code).toBe(0);
  tmux.type('vic', 'd');
  await tmux.waitFor('vic', (x) => x.includes('Delete live and all its files?'), 'the delete question');
  tmux.type('vic', 'n');
  await tmux.waitFor('vic', (x) => !x.includes('Delete live and all its files?'), 'no delete');
  // Demoted to viewer while attached read-write: bob's next key ends that attach, and never
  // reaches the session; promoted back, he attaches again.
  expect((await cli('operator role bob viewer')).code).toBe(0);
  bob.channel.write('touch typed-as-viewer\r');
  await within("bob's read-write attach ending", 10_000, bob.closed);
  expect(bob.output()).toContain('berth: bob is now a viewer: this read-write attach ended');
  const home = path.join(cluster.agents[0]!.root, s.id, 'home');
  await expect(fs.stat(path.join(home, 'typed-as-viewer'))).rejects.toMatchObject({ code: 'ENOENT' });
  expect((await cli('operator role bob operator')).code).toBe(0);
  bob = await terms.attach('bob', s.id, { cols: 100, rows: 30 });
  await echoes(bob, 'typed-as-operator-again');
  // A demoted operator's next commands are refused.
  expect((await cli('operator role carol viewer')).code).toBe(0);
  const refused = await cluster.ssh('carol', ['kill', 'live']);
  expect(refused.err).toContain('FORBIDDEN: carol is a viewer and may not kill');

  // Removed: carol's open watch ends at once; alice's stays.
  expect((await cli('operator remove carol')).err).toContain('add --yes');
  expect((await cli('operator remove carol --yes')).code).toBe(0);
  await within("carol's watch ending", 10_000, carolWatch.exited);
  expect((await cluster.ssh('carol', ['whoami'])).code).not.toBe(0);
  expect(aliceWatch.proc.exitCode).toBeNull();

  // Through it all bob stayed attached, and alice's watch saw the new agent's session.
  await echoes(bob, 'after-changes');
  await until('alice saw on-two', async () => aliceWatch.lines(), (n) => n >= 3, 10_000);
  expect((await cli('operator list --json')).out).toContain('"name":"dave"');

  // Nobody may leave the fleet without an admin.
  const last = await cli('operator role alice operator');
  expect(last.err).toContain('CONFLICT: that would leave no admin');
  // Only an admin changes the fleet, and the refusal is audited.
  expect((await cluster.ssh('bob', ['operator', 'list'])).err).toContain('FORBIDDEN: bob is an operator and may not manage-operators');

  const ops = await auditOps();
  expect(ops.map((r) => [r.operator, r.op, r.result])).toEqual(
    expect.arrayContaining([
      ['alice', 'agent.add', 'ok'],
      ['alice', 'operator.add', 'ok'],
      ['alice', 'operator.role', 'ok'],
      ['alice', 'operator.remove', 'ok'],
      ['alice', 'operator.role', 'refused'],
    ]),
  );
  expect(ops.filter((r) => r.op === 'operator.role' && r.result === 'ok').map((r) => r.message)).toEqual([
    'operators vic: viewer→operator',
    'operators bob: operator→viewer',
    'operators bob: viewer→operator',
    'operators carol: operator→viewer',
  ]);

  // Drained: no new sessions there (named or placed, nor a clone), its own keep running.
  expect((await cli('agent drain agent-1')).out).toContain('agent-1 takes no new sessions');
  for (let i = 0; i < 2; i++) expect((await json<SessionJson>(`create --name placed-${i}`)).agent).toBe('agent-2');
  expect((await cli('create --name refused --agent agent-1')).err).toContain('CONFLICT: agent-1 is drained: it takes no new sessions (agent resume agent-1)');
  expect((await cli('clone live')).err).toContain('CONFLICT: agent-1 is drained');
  await echoes(bob, 'while-drained');
  // Its figures (pushed every few seconds): the disk under its sessions root too.
  type Figures = Array<{ id: string; drained: boolean; stats: { cpus: number; memoryTotalMb: number; diskFreeMb?: number } | null }>;
  const figures = await until('agent-1 figures', async () => JSON.parse((await cli('agents --json')).out) as Figures, (a) => (a.find((x) => x.id === 'agent-1')?.stats?.diskFreeMb ?? 0) > 0, 15_000);
  expect(figures.find((a) => a.id === 'agent-1')).toEqual(expect.objectContaining({ drained: true, stats: expect.objectContaining({ cpus: expect.any(Number), memoryTotalMb: expect.any(Number) }) }));
  expect((await cli('agents')).out).toMatch(/agent-1 +online, drained +\d+ +\d+ +[\d.]+\/\d+ +[\d.]+\/[\d.]+ GB +[\d.]+ GB/);
  expect((await cli('agent resume agent-1')).code).toBe(0);
  expect((await json<SessionJson>('create --name back --agent agent-1')).agent).toBe('agent-1');

  // Removing the agent drops its session from view; bob's attach on agent-1 goes on.
  expect((await cli('agent remove agent-2 --yes')).code).toBe(0);
  const names = (await json<SessionJson[]>('list')).map((x) => x.name);
  expect(names).toContain('live');
  expect(names).not.toContain('on-two');
  await echoes(bob, 'after-agent-removed');
}, 180_000);

test('SIGHUP reloads shell.json: a valid change applies, an invalid file is refused whole and the running config kept', async () => {
  const file = cluster.shell.configFile;
  const original = await fs.readFile(file, 'utf8');
  const cfg = JSON.parse(original) as { operators: Array<{ name: string; role: string; keys: string[] }> };
  const erinKey = await newKey('erin');
  cfg.operators.push({ name: 'erin', role: 'operator', keys: [erinKey] });
  await fs.writeFile(file, JSON.stringify(cfg, null, 2));
  cluster.shell.proc.kill('SIGHUP');
  await until('erin can log in', async () => (await cluster.ssh('erin', ['whoami'])).out, (o) => o === 'erin (operator)\n', 10_000);

  // An invalid file: nothing of it applies (erin stays), and the refusal names the field.
  const bad = JSON.parse(JSON.stringify(cfg)) as typeof cfg;
  bad.operators = bad.operators.filter((o) => o.name !== 'erin');
  bad.operators.push({ name: 'frank', role: 'superuser', keys: [erinKey] });
  await fs.writeFile(file, JSON.stringify(bad, null, 2));
  cluster.shell.proc.kill('SIGHUP');
  const refusal = await until('the refusal in the audit', auditOps, (ops) => ops.some((r) => r.op === 'config.reload' && r.result === 'refused'), 10_000);
  expect(refusal.find((r) => r.op === 'config.reload' && r.result === 'refused')?.message).toMatch(/operators\.\d+\.role/);
  expect((await cluster.ssh('erin', ['whoami'])).out).toBe('erin (operator)\n');
  expect((await cluster.ssh('frank', ['whoami'])).code).not.toBe(0);
  expect(refusal.find((r) => r.op === 'config.reload' && r.result === 'ok')).toEqual(expect.objectContaining({ operator: '(host)', message: 'operators +erin' }));
  await fs.writeFile(file, original);
}, 60_000);
