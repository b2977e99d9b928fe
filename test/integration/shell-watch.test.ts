/**
 * `watch --json` end to end: the real OpenSSH client against a real shell and agent. It prints
 * every session, `synced`, then a line as soon as a session changes, here when its program
 * reports (a hook report written into its status folder, as berth-hook does), and it ends when
 * the client leaves, leaving the shell as it was.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { sessionCli } from '../helpers/session-cli';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `watch-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
const { json, startAndWait } = sessionCli(() => cluster);

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 1 });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
});

test('watch --json streams each change as one line, until the client leaves', async () => {
  const s = await json<SessionJson>('create --name watched');
  await startAndWait(s.id);
  const client = spawn('ssh', [...cluster.sshArgs('vic'), 'watch', '--json', '--name', 'watched'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<{ type: string; session?: SessionJson; id?: string }> = [];
  let buffered = '';
  client.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const p of parts) if (p) lines.push(JSON.parse(p) as { type: string });
  });
  const exited = new Promise<number | null>((r) => client.on('exit', (code) => r(code)));
  try {
    await until('the start', async () => lines.map((l) => l.type).join(','), (t) => t === 'session,synced', 15_000, 50);
    expect(lines[0]?.session).toMatchObject({ id: s.id, name: 'watched', state: 'running' });

    // What berth-hook does inside the container, done from the host into the status folder.
    const dir = path.join(cluster.agents[0]!.root, s.id, 'status');
    const report = { hook_event_name: 'Notification', notification_type: 'permission_prompt', message: 'Claude needs your permission to use Bash', session_id: 'x', cwd: '/home/claude' };
    await fs.writeFile(path.join(dir, '.event.tmp'), JSON.stringify(report));
    await fs.rename(path.join(dir, '.event.tmp'), path.join(dir, 'event.json'));
    const changed = await until('the change', async () => lines.find((l) => l.session?.activity?.state === 'permission'), (l) => l !== undefined, 10_000, 20);
    expect(changed?.session?.activity).toMatchObject({ state: 'permission', detail: 'Claude needs your permission to use Bash' });

    // Another session's change is not this watch's (its filter), and deleting this one is a line.
    await json<SessionJson>('create --name other');
    const r = await cluster.ssh('alice', [`delete ${s.id} --yes`]);
    expect(r.code).toBe(0);
    await until('the removal', async () => lines.find((l) => l.type === 'removed'), (l) => l !== undefined, 10_000, 20);
    expect(lines.filter((l) => l.session?.name === 'other')).toEqual([]);
  } finally {
    client.kill('SIGTERM');
  }
  await exited;
  // The shell carries on.
  expect((await cluster.ssh('vic', ['list'])).code).toBe(0);
}, 90_000);
