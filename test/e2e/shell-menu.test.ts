/**
 * The menu as an operator uses it: the real OpenSSH client in a terminal (tmux), keys typed with
 * send-keys and the screen read with capture-pane.
 */
import { randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { freePort } from '../helpers/ports';
import { Tmux } from '../helpers/tmux';

const runLabel = `e2e-menu-${randomUUID().slice(0, 8)}`;
const tmux = new Tmux(`berth-${runLabel}`);
let cluster: Cluster;

const PROMPT = /claude@[a-z0-9-]+:~\$/;
const row = (screen: string, name: string): string => screen.split('\n').find((l) => l.includes(` ${name} `)) ?? '';

async function listJson(): Promise<Array<Record<string, unknown>>> {
  return JSON.parse((await cluster.ssh('alice', ['list', '--json'])).out || '[]') as Array<Record<string, unknown>>;
}

/**
 * Whether the terminal shows an attached session: its prompt, and no menu (whose preview pane
 * shows the same prompt below the table while the attach is still opening).
 */
const inSession = (s: string): boolean => PROMPT.test(s) && !/^ berth {2}\w+ \(/m.test(s);

/** The menu's lines above its preview pane (whose headline reads "NAME on AGENT"). */
function abovePreview(s: string): string {
  const lines = s.split('\n');
  const head = lines.findIndex((l) => /^ \S+ on agent-\d/.test(l));
  return (head < 0 ? lines : lines.slice(0, head)).join('\n');
}

/** Moves the selection to the row of `name` (rows are in creation order). */
async function select(name: string): Promise<void> {
  const names = (await listJson()).map((s) => s.name);
  tmux.keys('alice', 'Home');
  for (let i = 0; i < 30; i++) tmux.keys('alice', 'Up');
  for (let i = 0; i < names.indexOf(name); i++) tmux.keys('alice', 'Down');
}

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 2 });
  await until('both agents online', () => cluster.ssh('vic', ['agents', '--json']).then((r) => (JSON.parse(r.out || '[]') as Array<{ status: string }>).filter((a) => a.status === 'online').length), (n) => n === 2);
  tmux.start('alice', ['ssh', ...cluster.sshArgs('alice', ['-t'])], 120, 30);
  await tmux.waitFor('alice', (s) => s.includes('alice (admin)') && s.includes('agents 2/2 online'), 'the menu');
});

afterAll(async () => {
  tmux.kill();
  await cluster?.dispose();
});

test('N asks for the agent, the form checks as you type, and the new session shows up', async () => {
  tmux.keys('alice', 'N');
  await tmux.waitFor('alice', (s) => s.includes('new session on which agent?') && s.includes('agent-2'), 'the agent picker');
  tmux.keys('alice', 'Down', 'Enter');
  await tmux.waitFor('alice', (s) => s.includes('new session on agent-2'), 'the form');
  tmux.type('alice', 'no good');
  await tmux.waitFor('alice', (s) => s.includes('must be 1-64 letters, digits'), 'the name problem, as typed');
  for (let i = 0; i < 7; i++) tmux.keys('alice', 'BSpace');
  tmux.type('alice', 'web');
  tmux.keys('alice', 'Tab', 'Tab');
  tmux.type('alice', '-1');
  tmux.keys('alice', 'Tab');
  tmux.type('alice', 'webdns');
  tmux.keys('alice', 'Enter');
  const s = await tmux.waitFor('alice', (x) => row(x, 'web').includes('agent-2'), 'the new row');
  // -1: the lowest port from 1001 that this host can bind (another program may hold 1001 itself).
  const m = /web\s+agent-2\s+-\s+-\s+(\d+)\/tcp\s+webdns/.exec(row(s, 'web'));
  expect(Number(m?.[1])).toBeGreaterThanOrEqual(1001);
});

test('an agent refusal is shown verbatim in the form, which stays open', async () => {
  tmux.keys('alice', 'N');
  await tmux.waitFor('alice', (s) => s.includes('which agent?'), 'the agent picker');
  tmux.keys('alice', 'Enter');
  tmux.type('alice', 'other');
  tmux.keys('alice', 'Tab', 'Tab', 'Tab');
  tmux.type('alice', 'webdns');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => s.includes('dns: "webdns" is used by session web on agent-2'), 'the refusal in the form');
  tmux.keys('alice', 'Escape');
  await tmux.waitFor('alice', (s) => !s.includes('new session on'), 'the form closed');
});

test('Enter attaches, Ctrl-b d comes back to the menu, which shows the session running', async () => {
  await select('web');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => inSession(s), 'the session prompt', 20_000);
  tmux.type('alice', 'echo menu-$((3*4))');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => s.includes('menu-12'), 'the command output');
  tmux.keys('alice', 'C-b', 'd');
  const s = await tmux.waitFor('alice', (x) => x.includes('agents 2/2 online') && / R /.test(row(x, 'web')), 'the menu with web running');
  // The menu drew over the whole session screen: what the session printed is only in the preview.
  expect(abovePreview(s)).not.toContain('menu-12');
});

test('E edits (restart to apply), C clones, K kills, R restarts', async () => {
  const port = String(await freePort());
  await select('web');
  tmux.keys('alice', 'E');
  await tmux.waitFor('alice', (s) => s.includes('edit web'), 'the edit form');
  tmux.keys('alice', 'Tab', 'Tab');
  for (let i = 0; i < 6; i++) tmux.keys('alice', 'BSpace');
  tmux.type('alice', port);
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => s.includes('edited web: restart it to apply') && row(s, 'web').includes('R*'), 'restart-to-apply');
  tmux.keys('alice', 'C');
  await tmux.waitFor('alice', (s) => s.includes('clone web'), 'the clone form');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => row(s, 'web-copy').includes('agent-2'), 'the clone row');
  await select('web');
  tmux.keys('alice', 'K');
  await tmux.waitFor('alice', (s) => s.includes('killed web') && / - /.test(row(s, 'web')), 'web stopped');
  tmux.keys('alice', 'R');
  await tmux.waitFor('alice', (s) => s.includes('restarted web') && row(s, 'web').includes(`${port}/tcp`) && / R /.test(row(s, 'web')), 'web running on its new port');
});

test('/ filters, ? and S show help and settings', async () => {
  tmux.keys('alice', '/');
  tmux.type('alice', 'copy');
  let s = await tmux.waitFor('alice', (x) => x.includes('filter: copy'), 'the filter');
  expect(row(s, 'web')).toBe('');
  expect(row(s, 'web-copy')).not.toBe('');
  tmux.keys('alice', 'Escape');
  s = await tmux.waitFor('alice', (x) => row(x, 'web') !== '', 'the filter cleared');
  tmux.type('alice', '?');
  await tmux.waitFor('alice', (x) => x.includes("override a session's lock"), 'help');
  tmux.keys('alice', 'Space');
  tmux.type('alice', 'S');
  await tmux.waitFor('alice', (x) => x.includes('protocol 1') && x.includes('agent-1') && x.includes('online'), 'settings');
  tmux.keys('alice', 'Space');
});

test('D asks Y/N: N keeps the session, Y deletes it', async () => {
  await select('web-copy');
  tmux.keys('alice', 'D');
  await tmux.waitFor('alice', (s) => s.includes('Delete web-copy and all its files?'), 'the question');
  tmux.keys('alice', 'n');
  await tmux.waitFor('alice', (s) => !s.includes('Delete web-copy') && row(s, 'web-copy') !== '', 'kept');
  tmux.keys('alice', 'D');
  await tmux.waitFor('alice', (s) => s.includes('Delete web-copy'), 'the question');
  tmux.keys('alice', 'y');
  const tableRow = (s: string): string => row(s.split('\n').filter((l) => /^[0-9a-f]{8} /.test(l.trim())).join('\n'), 'web-copy');
  await tmux.waitFor('alice', (s) => s.includes('deleted web-copy — u to undo') && tableRow(s) === '', 'deleted');
  expect((await listJson()).map((x) => x.name)).not.toContain('web-copy');
  // U brings it back, stopped; then it goes again.
  tmux.keys('alice', 'u');
  await tmux.waitFor('alice', (s) => s.includes('restored web-copy') && tableRow(s) !== '', 'restored');
  expect((await listJson()).map((x) => x.name)).toContain('web-copy');
  await select('web-copy');
  tmux.keys('alice', 'D');
  await tmux.waitFor('alice', (s) => s.includes('Delete web-copy'), 'the question');
  tmux.keys('alice', 'y');
  await tmux.waitFor('alice', (s) => s.includes('deleted web-copy') && tableRow(s) === '', 'deleted again');
});

test('a viewer is told why mutating keys are refused, and Enter attaches read-only', async () => {
  tmux.start('vic', ['ssh', ...cluster.sshArgs('vic', ['-t'])], 120, 30);
  await tmux.waitFor('vic', (s) => s.includes('vic (viewer)') && row(s, 'web') !== '', 'the viewer menu');
  for (const [k, what] of [['N', 'create'], ['K', 'kill'], ['D', 'delete'], ['E', 'edit']] as const) {
    tmux.keys('vic', k);
    await tmux.waitFor('vic', (s) => s.includes(`vic is a viewer and may not ${what}`), `the refusal of ${k}`);
  }
  tmux.keys('vic', 'Enter');
  await tmux.waitFor('vic', (s) => inSession(s), 'the read-only attach', 20_000);
  const [web] = (await listJson()).filter((x) => x.name === 'web');
  expect(web?.attached).toEqual(['vic']);
  tmux.keys('vic', 'C-b', 'd');
  await tmux.waitFor('vic', (s) => s.includes('vic (viewer)'), 'back in the menu');
  tmux.keys('vic', 'q');
  await until('the viewer ssh ends on Q', async () => tmux.dead('vic'), (d) => d);
});

test('B ends your own attach elsewhere; the session keeps running', async () => {
  tmux.start('alice2', ['ssh', ...cluster.sshArgs('alice', ['-t']), 'attach', 'web']);
  await tmux.waitFor('alice2', (s) => inSession(s), 'the second attach', 20_000);
  await tmux.waitFor('alice', (s) => row(s, 'web').includes('alice'), 'alice listed as attached');
  await select('web');
  tmux.keys('alice', 'B');
  await tmux.waitFor('alice', (s) => s.includes('detached 1 of your attaches to web'), 'the result');
  await until('the other terminal\'s ssh ends', async () => tmux.dead('alice2'), (d) => d);
  const s = await tmux.waitFor('alice', (x) => / R /.test(row(x, 'web')) && !row(x, 'web').includes('alice'), 'web running, nobody attached');
  expect(row(s, 'web')).toMatch(/ R /);
});

test('after a resize during an attach, Ctrl-b d brings the menu back at the new size', async () => {
  await select('web');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => inSession(s), 'the session prompt', 20_000);
  tmux.resize('alice', 100, 24);
  tmux.keys('alice', 'C-b', 'd');
  const s = await tmux.waitFor('alice', (x) => x.includes('alice (admin)') && row(x, 'web') !== '', 'the menu again');
  const lines = s.replace(/\n$/, '').split('\n');
  expect(lines).toHaveLength(24);
  expect(lines[23]).toMatch(/^Enter attach · N new/);
  expect(lines[0]).toMatch(/^ berth {2}alice \(admin\)/);
  tmux.resize('alice', 120, 30);
  await tmux.waitFor('alice', (x) => x.replace(/\n$/, '').split('\n').length === 30 && /^Enter attach/.test(x.replace(/\n$/, '').split('\n')[29] ?? ''), 'the menu at 120×30');
});

test('an agent that stops answering: its rows turn ?, the menu keeps answering, then it comes back', async () => {
  expect((await cluster.ssh('alice', ['create', '--name', 'quiet', '--agent', 'agent-1'])).code).toBe(0);
  await tmux.waitFor('alice', (s) => row(s, 'quiet').includes('agent-1'), 'the new row');
  const pid = cluster.agents[0]!.proc.pid!;
  process.kill(pid, 'SIGSTOP');
  try {
    const s = await tmux.waitFor('alice', (x) => / \? /.test(row(x, 'quiet')) && x.includes('agents 1/2 online'), 'quiet marked ?', 8000);
    expect(s).toMatch(/agents 1\/2 online \(\? agent-1 offline\)/);
    expect(row(s, 'quiet')).toMatch(/quiet\s+agent-1\s+\?\s+-\s+-\s+-\s+\S+ \S+\s+-\s+-$/);
    expect(row(s, 'web')).toMatch(/ R /);
    tmux.type('alice', '?');
    await tmux.waitFor('alice', (x) => x.includes("override a session's lock"), 'help still opens');
    tmux.keys('alice', 'Space');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await tmux.waitFor('alice', (x) => / - /.test(row(x, 'quiet')) && x.includes('agents 2/2 online'), 'agent-1 back', 20_000);
});

test('O overrides a lock left by a killed agent, after asking why', async () => {
  const [quiet] = (await listJson()).filter((x) => x.name === 'quiet');
  const id = String(quiet?.id);
  const old = cluster.agents[0]!;
  await old.kill9();
  // The dead agent's lock, as a crash mid-operation leaves it.
  const dir = `${old.root}/${id}`;
  await import('node:fs/promises').then(async (fs) => {
    await fs.mkdir(`${dir}/session.lock`);
    await fs.writeFile(`${dir}/session.lock.owner.json`, JSON.stringify({ operator: 'bob', op: 'clone', since: new Date().toISOString(), pid: 999999, agentInstance: 'dead' }));
  });
  const { startAgentProcess } = await import('../helpers/agent-process');
  cluster.agents[0] = await startAgentProcess({ runLabel, dir: old.dir, id: old.id, config: { listen: { host: '127.0.0.1', port: old.port } } });
  await tmux.waitFor('alice', (x) => / L /.test(row(x, 'quiet')) && x.includes('agents 2/2 online'), 'quiet locked', 30_000);
  await select('quiet');
  tmux.keys('alice', 'O');
  await tmux.waitFor('alice', (s) => s.includes('override the lock of quiet'), 'the reason form');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => s.includes('say why'), 'a reason is required');
  tmux.type('alice', 'agent was killed');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => s.includes('unlocked quiet') && / - /.test(row(s, 'quiet')), 'unlocked');
  const audit = (await import('node:fs/promises').then((fs) => fs.readFile(cluster.auditFile, 'utf8'))).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(audit.find((r) => r.op === 'override' && r.session === id && r.result === 'ok')).toMatchObject({ operator: 'alice', detail: { reason: 'agent was killed' } });
});

test('M asks which agent and moves the session there, keeping its name', async () => {
  const [quiet] = (await listJson()).filter((x) => x.name === 'quiet');
  expect(quiet?.agent).toBe('agent-1');
  await select('quiet');
  tmux.keys('alice', 'M');
  // The only other agent that takes sessions is offered.
  await tmux.waitFor('alice', (s) => s.includes('move quiet to which agent?') && s.includes('agent-2'), 'the agent picker');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => s.includes('moved quiet to agent-2') && row(s, 'quiet').includes('agent-2'), 'quiet on agent-2', 60_000);
  const moved = (await listJson()).filter((x) => x.name === 'quiet');
  expect(moved.map((x) => [x.id, x.agent])).toEqual([[quiet?.id, 'agent-2']]);
}, 90_000);
