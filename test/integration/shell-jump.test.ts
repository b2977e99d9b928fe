/**
 * An agent behind a bastion: a real OpenSSH sshd on loopback that allows the shell's key nothing
 * but a TCP forward to the agent's port. The shell reaches the agent only through it (sshd logs
 * each forward, and the agent, alive and answering on its own port, is offline while the bastion
 * is down), pins the bastion's host key like the agent's, and follows the bastion going away and
 * coming back. The enrolment steps are docs/operations.md's "Agents behind a bastion".
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { silentLogger } from '../../common/logging';
import { AgentLink } from '../../shell/agents';
import type { AgentJson } from '../../shell/cli/format';
import { BERTH_BIN } from '../helpers/agent-process';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { ShellTerms } from '../helpers/shell-term';
import { Bastion, startBastion } from '../helpers/sshd';

const run = promisify(execFile);
const runLabel = `shell-jump-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
let bastion: Bastion;
const terms = new ShellTerms(() => cluster);

/** `berth ARGS…`; resolves with its exit code and output, whatever the code. */
async function berth(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BERTH_BIN, ...args], { timeout: 30_000 });
    return { code: 0, out: stdout, err: stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: e.stdout ?? '', err: e.stderr ?? '' };
  }
}

const agent = () => cluster.agents[0]!;
const jump = () => `${bastion.user}@127.0.0.1:${bastion.port}`;
const agentsFile = () => path.join(cluster.dir, 'state', 'agents.json');
const agentRow = async (): Promise<AgentJson | undefined> =>
  (JSON.parse((await cluster.ssh('alice', ['agents', '--json'])).out || '[]') as AgentJson[])[0];
/** The bastion's log lines from `from` on that record a forward to the agent's port. */
const forwards = (from: number): string[] => {
  const line = new RegExp(`server_request_direct_tcpip: .*target 127\\.0\\.0\\.1 port ${agent().port}\\b`);
  return bastion.logs.slice(from).filter((l) => line.test(l));
};
const logins = (from: number): string[] => bastion.logs.slice(from).filter((l) => l.includes('Accepted publickey'));

/** `add-agent` for agent-1 through the bastion, with these extra flags; must succeed. */
async function enrolThroughBastion(...flags: string[]): Promise<string> {
  const r = await berth('shell', 'add-agent', '--config', cluster.shell.configFile, '--id', agent().id, '--host', '127.0.0.1', '--port', String(agent().port), '--jump', jump(), ...flags);
  expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
  return r.out;
}

async function restartShell(): Promise<void> {
  await cluster.stopShell();
  await cluster.startShell();
}

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 1 });
  // startCluster enrols the agent directly; each test enrols it through the bastion, then starts the shell.
  await cluster.stopShell();
  bastion = await startBastion({ permitOpen: [`127.0.0.1:${agent().port}`] });
  // The docs' step on the bastion: the shell's key, allowed to forward to the agent and nothing else.
  const shellKey = (await berth('shell', 'show-key', '--config', cluster.shell.configFile)).out.trim();
  await bastion.authorize([`restrict,port-forwarding,permitopen="127.0.0.1:${agent().port}" ${shellKey}`]);
});

afterAll(async () => {
  terms.endAll();
  try {
    await cluster?.dispose();
  } finally {
    await bastion?.dispose();
  }
});

test('add-agent refuses a bad --jump, naming the part that is wrong, and changes nothing', async () => {
  const before = await fs.readFile(agentsFile(), 'utf8');
  const cases: Array<[string[], string]> = [
    [['--jump', '127.0.0.1:22'], '--jump: must be user@host:port'],
    [['--jump', 'Root@127.0.0.1:22'], '--jump: user "Root" must be'],
    [['--jump', '@127.0.0.1:22'], '--jump: user "" must be'],
    [['--jump', 'root@127.0.0.1'], '--jump: must end with ":port"'],
    [['--jump', 'root@:22'], '--jump: the host is missing'],
    [['--jump', 'root@bad_host:22'], '--jump: host "bad_host" must be a hostname'],
    [['--jump', 'root@300.1.1.1:22'], '--jump: host "300.1.1.1" is not a valid IPv4 address'],
    [['--jump', 'root@::1:22'], 'an IPv6 address goes in brackets'],
    [['--jump', 'root@[::1]:0'], '--jump: port "0" must be a number from 1 to 65535'],
    [['--jump', 'root@127.0.0.1:65536'], '--jump: port "65536" must be a number from 1 to 65535'],
    [['--jump', 'root@127.0.0.1:2x'], '--jump: port "2x" must be'],
    [['--jump', `root@127.0.0.1:${bastion.port}`, '--jump-fingerprint', 'SHA256:short'], '--jump-fingerprint must be an OpenSSH SHA256 fingerprint'],
    [['--jump-fingerprint', bastion.fingerprint], '--jump-fingerprint needs --jump'],
  ];
  for (const [flags, message] of cases) {
    const r = await berth('shell', 'add-agent', '--config', cluster.shell.configFile, '--id', agent().id, '--host', '127.0.0.1', '--port', String(agent().port), ...flags);
    expect({ flags, code: r.code, message: r.err.split('\n')[0] }).toEqual({ flags, code: 2, message: expect.stringContaining(message) });
  }
  expect(await fs.readFile(agentsFile(), 'utf8')).toBe(before);
});

test('without fingerprints, add-agent pins the key the bastion presents, and the agent\'s through it', async () => {
  const mark = bastion.logs.length;
  const out = await enrolThroughBastion();
  expect(out).toContain(`pinned the host key the bastion presents now: ${bastion.fingerprint}`);
  expect(out).toContain(`pinned the host key the agent presents now: ${agent().fingerprint}`);
  expect(out).toContain(`agent ${agent().id} at 127.0.0.1:${agent().port} through bastion ${jump()}`);
  expect(out).toContain(`restrict,port-forwarding,permitopen="127.0.0.1:${agent().port}" ssh-ed25519 `);
  // The agent's key was read through the bastion: sshd forwarded to the agent's port.
  expect(forwards(mark).length).toBeGreaterThan(0);
  const { agents } = JSON.parse(await fs.readFile(agentsFile(), 'utf8')) as { agents: Array<Record<string, unknown>> };
  expect(agents).toEqual([
    { id: agent().id, host: '127.0.0.1', port: agent().port, fingerprint: agent().fingerprint, jump: jump(), jumpFingerprint: bastion.fingerprint },
  ]);
});

test('the shell reaches the agent through the bastion: agents, create, list and attach work', async () => {
  await enrolThroughBastion('--fingerprint', agent().fingerprint, '--jump-fingerprint', bastion.fingerprint);
  const mark = bastion.logs.length;
  await cluster.startShell();
  await until('agent online through the bastion', agentRow, (a) => a?.status === 'online', 20_000);
  expect(logins(mark).length).toBeGreaterThan(0);
  expect(forwards(mark).length).toBeGreaterThan(0);

  const created = await cluster.ssh('alice', ['create', '--name', 'via-jump', '--agent', agent().id, '--json']);
  expect({ code: created.code, err: created.err.replace(/^Warning: Permanently added .*\r?\n/m, '') }).toEqual({ code: 0, err: '' });
  const listed = JSON.parse((await cluster.ssh('alice', ['list', '--json'])).out) as Array<{ name: string; agent: string }>;
  expect(listed).toEqual([expect.objectContaining({ name: 'via-jump', agent: agent().id })]);

  const term = await terms.attach('alice', 'via-jump', { cols: 100, rows: 30 });
  await until('the session prompt', async () => term.output(), (o) => /claude@berth-[0-9a-f]{8}:~\$/.test(o), 30_000);
  term.channel.write('echo through-the-$((6*7))-bastion\r');
  await until('the command output', async () => term.output(), (o) => o.includes('through-the-42-bastion'), 10_000);
  term.channel.close();
  await term.closed;
});

test('a bastion presenting another key than its pin is refused before any login, the reason naming its key', async () => {
  const wrong = `SHA256:${'A'.repeat(43)}`;
  await enrolThroughBastion('--fingerprint', agent().fingerprint, '--jump-fingerprint', wrong);
  const mark = bastion.logs.length;
  await restartShell();
  const row = await until('refused as a changed bastion key', agentRow, (a) => (a?.reason ?? '').includes('bastion host key changed'), 20_000);
  expect(row?.status).not.toBe('online');
  expect(row?.reason).toContain(`expected ${wrong}`);
  expect(row?.reason).toContain(`${jump()} presented ${bastion.fingerprint}`);
  // The shell did reach sshd (it saw the key), and went no further: no login, no forward.
  expect(bastion.logs.slice(mark).some((l) => l.includes('Connection from 127.0.0.1'))).toBe(true);
  expect(logins(mark)).toEqual([]);
  expect(forwards(mark)).toEqual([]);

  await enrolThroughBastion('--fingerprint', agent().fingerprint, '--jump-fingerprint', bastion.fingerprint);
  await restartShell();
  await until('online again with the right pin', agentRow, (a) => a?.status === 'online', 20_000);
});

test('the bastion going away takes the agent offline; back, the agent is online again', async () => {
  await until('online', agentRow, (a) => a?.status === 'online', 20_000);
  await bastion.kill();
  const down = await until('offline while the bastion is down', agentRow, (a) => a?.status !== 'online' && (a?.reason ?? '').includes('cannot reach bastion'), 20_000);
  expect(down?.reason).toContain(`cannot reach bastion ${jump()}`);
  // The agent itself is up and answers on its port: only the way through the bastion is gone.
  expect(agent().proc.exitCode).toBeNull();
  const refused = await cluster.ssh('alice', ['create', '--name', 'while-down', '--agent', agent().id]);
  expect({ code: refused.code, err: refused.err }).toEqual({ code: 1, err: expect.stringContaining(`AGENT_OFFLINE: agent ${agent().id} is offline`) });

  const mark = bastion.logs.length;
  await bastion.start();
  await until('online once the bastion is back', agentRow, (a) => a?.status === 'online', 30_000);
  expect(forwards(mark).length).toBeGreaterThan(0);
  const listed = JSON.parse((await cluster.ssh('alice', ['list', '--json'])).out) as Array<{ name: string }>;
  expect(listed.map((s) => s.name)).toEqual(['via-jump']);
});

test('a stopped link leaves no connection at the bastion, whether it was online or still connecting', async () => {
  await cluster.stopShell();
  await until('the shell\'s connection gone from the bastion', async () => bastion.connections(), (n) => n === 0, 10_000);
  const privateKey = await fs.readFile(path.join(cluster.dir, 'state', 'agent_key'));
  const link = (): AgentLink =>
    new AgentLink({
      id: agent().id,
      host: '127.0.0.1',
      port: agent().port,
      fingerprint: agent().fingerprint,
      jump: { user: bastion.user, host: '127.0.0.1', port: bastion.port, fingerprint: bastion.fingerprint },
      privateKey,
      logger: silentLogger,
    });

  const online = link();
  online.start();
  await until('link online', async () => online.status, (s) => s === 'online', 20_000);
  expect(bastion.connections()).toBe(1);
  online.stop();
  await until('online link\'s connection closed', async () => bastion.connections(), (n) => n === 0, 10_000);

  // Stopped while its bastion connection is being set up: it must not go on to log in.
  const connecting = link();
  connecting.start();
  await until('connection at the bastion', async () => bastion.connections(), (n) => n === 1, 10_000);
  connecting.stop();
  await until('connecting link\'s connection closed', async () => bastion.connections(), (n) => n === 0, 10_000);
  expect(connecting.status).toBe('offline');
  expect(online.status).toBe('offline');
});
