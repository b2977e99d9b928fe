/**
 * Operators attaching through the shell with the real OpenSSH client (`ssh -t … attach REF`), each
 * in its own terminal (tmux): pair work, a read-only viewer, detach, resize, and an agent that
 * stops answering and comes back.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { Tmux } from '../helpers/tmux';

const runLabel = `e2e-attach-${randomUUID().slice(0, 8)}`;
const tmux = new Tmux(`berth-${runLabel}`);
let cluster: Cluster;
let sessionId = '';

const PROMPT = /claude@berth-[0-9a-f]{8}:~\$/;

async function listJson(user = 'vic'): Promise<Array<Record<string, unknown>>> {
  const r = await cluster.ssh(user, ['list', '--json']);
  return JSON.parse(r.out || '[]') as Array<Record<string, unknown>>;
}

function attachArgv(user: string, extra: string[] = []): string[] {
  return ['ssh', ...cluster.sshArgs(user, ['-t']), 'attach', 'pair', ...extra];
}

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 2 });
  await until('both agents online', () => cluster.ssh('vic', ['agents', '--json']).then((r) => (JSON.parse(r.out || '[]') as Array<{ status: string }>).filter((a) => a.status === 'online').length), (n) => n === 2);
  const r = await cluster.ssh('alice', ['create', '--name', 'pair', '--agent', 'agent-2', '--json']);
  expect(r.code).toBe(0);
  sessionId = (JSON.parse(r.out) as { id: string }).id;
});

afterAll(async () => {
  tmux.kill();
  await cluster?.dispose();
});

test('alice attaches to the stopped session: it starts and her terminal shows its shell', async () => {
  tmux.start('alice', attachArgv('alice'));
  await tmux.waitFor('alice', (s) => PROMPT.test(s), 'the session prompt', 20_000);
  const [s] = await listJson();
  expect(s).toMatchObject({ id: sessionId, state: 'connected', attached: ['alice'] });
});

test('bob attaches too and sees what alice types (pair work); the list names both', async () => {
  tmux.start('bob', attachArgv('bob'));
  await tmux.waitFor('bob', (s) => PROMPT.test(s), 'the session prompt');
  tmux.type('alice', 'echo pair-$((40+2))');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('bob', (s) => s.includes('pair-42'), "alice's command output in bob's terminal");
  const l = await until('both attached', () => listJson(), (x) => ((x[0]?.attached as string[]) ?? []).length === 2);
  expect([...(l[0]?.attached as string[])].sort()).toEqual(['alice', 'bob']);
});

test('a viewer watches read-only: sees the typing, cannot type', async () => {
  tmux.start('vic', attachArgv('vic'));
  await tmux.waitFor('vic', (s) => PROMPT.test(s), 'the session prompt');
  const marker = path.join(cluster.agents[1]!.root, sessionId, 'vic-was-here');
  tmux.type('vic', 'touch vic-was-here');
  tmux.keys('vic', 'Enter');
  tmux.type('alice', 'echo after-vic-$((1+1))');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('vic', (s) => s.includes('after-vic-2'), "alice's typing in the viewer's terminal");
  expect(existsSync(marker)).toBe(false);
  expect(tmux.screen('alice')).not.toContain('touch vic-was-here');
});

test('Ctrl-b d ends only bob\'s attach; alice stays attached', async () => {
  tmux.keys('bob', 'C-b', 'd');
  await until('bob\'s ssh exits', async () => tmux.dead('bob'), (d) => d);
  const l = await until('bob gone from attached', () => listJson(), (x) => !((x[0]?.attached as string[]) ?? []).includes('bob'));
  expect(l[0]?.attached).toEqual(expect.arrayContaining(['alice']));
  tmux.type('alice', 'echo still-$((2+3))');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => s.includes('still-5'), 'alice still working');
});

test('a terminal resize reaches tmux inside the session', async () => {
  tmux.keys('vic', 'C-b', 'd');
  await until('vic detached', async () => tmux.dead('vic'), (d) => d);
  tmux.resize('alice', 120, 40);
  await new Promise((r) => setTimeout(r, 500));
  tmux.type('alice', 'echo size-$(tput cols)x$(tput lines)');
  tmux.keys('alice', 'Enter');
  // tmux inside keeps one line for its status bar.
  await tmux.waitFor('alice', (s) => s.includes('size-120x39'), 'the new size inside the session');
});

test('an agent that stops answering shows offline within 5 s, its sessions unknown; then it comes back', async () => {
  const agent1 = cluster.agents[0]!;
  await cluster.ssh('alice', ['create', '--name', 'on-one', '--agent', 'agent-1']);
  const pid = agent1.proc.pid!;
  process.kill(pid, 'SIGSTOP');
  const t0 = Date.now();
  try {
    await until('agent-1 offline', () => cluster.ssh('vic', ['agents', '--json']).then((r) => (JSON.parse(r.out) as Array<{ id: string; status: string }>).find((a) => a.id === 'agent-1')?.status), (s) => s === 'offline', 8000);
    expect(Date.now() - t0).toBeLessThan(5000 + 1500);
    const l = await listJson();
    expect(l.find((x) => x.name === 'on-one')).toMatchObject({ state: 'unknown', agent: 'agent-1' });
    expect(l.find((x) => x.name === 'pair')).toMatchObject({ state: 'connected' });
    const refused = await cluster.ssh('alice', ['restart', 'on-one']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/error: AGENT_OFFLINE: agent agent-1 is offline/);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await until('agent-1 online again', () => cluster.ssh('vic', ['agents', '--json']).then((r) => (JSON.parse(r.out) as Array<{ id: string; status: string }>).find((a) => a.id === 'agent-1')?.status), (s) => s === 'online', 20_000);
  expect((await listJson()).find((x) => x.name === 'on-one')).toMatchObject({ state: 'stopped' });
});
