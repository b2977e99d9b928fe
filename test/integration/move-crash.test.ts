/**
 * Moves cut short by kill -9, then resolved: the agents' tar waits a few seconds before it works
 * (a slowed copy, found on their PATH), and something is killed while it waits. After a restart
 * the shell resolves the move; the invariant: the session is listed exactly once, whole (its
 * home's file intact), unlocked, and no move leftovers remain on either agent. The points are
 * printed.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { startAgentProcess } from '../helpers/agent-process';
import { sessionCli } from '../helpers/session-cli';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `movecrash-${randomUUID().slice(0, 8)}`;
const TAR_DELAY_S = 4;
let cluster: Cluster;
let slowBin: string;
const { cli, json, list } = sessionCli(() => cluster, { trim: true });

beforeAll(async () => {
  slowBin = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-slowtar-'));
  const realTar = execFileSync('sh', ['-c', 'command -v tar']).toString().trim();
  await fs.writeFile(path.join(slowBin, 'tar'), `#!/bin/sh\nsleep ${TAR_DELAY_S}\nexec ${realTar} "$@"\n`, { mode: 0o755 });
  cluster = await startCluster({ runLabel, agents: 2, agentWrap: ['env', `PATH=${slowBin}:${process.env.PATH ?? '/usr/bin:/bin'}`] });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
  await fs.rm(slowBin, { recursive: true, force: true });
});

/** Restarts agent `i` on its old root and port (a crash's restart). */
async function restartAgent(i: number): Promise<void> {
  const old = cluster.agents[i]!;
  const next = await startAgentProcess({
    runLabel,
    id: old.id,
    dir: old.dir,
    wrap: ['env', `PATH=${slowBin}:${process.env.PATH ?? '/usr/bin:/bin'}`],
    config: { listen: { host: '127.0.0.1', port: old.port } },
  });
  cluster.agents[i] = next;
}

async function leftovers(): Promise<string[]> {
  const out: string[] = [];
  for (const a of cluster.agents) {
    out.push(...(await fs.readdir(path.join(a.root, '.incoming')).catch(() => [] as string[])).map((n) => `${a.id}:.incoming/${n}`));
    for (const id of await fs.readdir(a.root).catch(() => [] as string[])) {
      if (await fs.lstat(path.join(a.root, id, 'moving.json')).then(() => true, () => false)) out.push(`${a.id}:${id}/moving.json`);
    }
  }
  return out;
}

/** The invariant after recovery: listed once, unlocked, whole, no leftovers; returns where it is. */
async function assertWhole(id: string, payload: Buffer): Promise<string> {
  const settled = await until(
    'the move resolved',
    async () => ({ mine: (await list()).filter((x) => x.id === id), left: await leftovers() }),
    (r) => r.mine.length === 1 && r.mine[0]!.lock === null && r.left.length === 0,
    60_000,
    500,
  );
  const where = settled.mine[0]!.agent;
  const agent = cluster.agents.find((a) => a.id === where)!;
  expect(Buffer.compare(await fs.readFile(path.join(agent.root, id, 'home', 'marker.bin')), payload)).toBe(0);
  const other = cluster.agents.find((a) => a.id !== where)!;
  expect(await fs.lstat(path.join(other.root, id)).then(() => true, () => false)).toBe(false);
  return where;
}

const points: Array<{ name: string; kill: () => Promise<void>; restart: () => Promise<void> }> = [
  { name: 'source agent killed during the copy', kill: () => cluster.agents[0]!.kill9(), restart: () => restartAgent(0) },
  { name: 'target agent killed during the copy', kill: () => cluster.agents[1]!.kill9(), restart: () => restartAgent(1) },
  {
    name: 'shell killed during the copy',
    kill: async () => {
      const p = cluster.shell.proc;
      const exited = new Promise<void>((r) => p.on('exit', () => r()));
      p.kill('SIGKILL');
      await exited;
    },
    restart: () => cluster.startShell(),
  },
];

test.each(points.map((p, i) => [p.name, i] as const))('%s: the session ends whole on exactly one agent', async (name, i) => {
  const point = points[i]!;
  const s = await json<SessionJson>(`create --name crash-${i} --agent agent-1`);
  const payload = randomBytes(128 * 1024);
  await fs.writeFile(path.join(cluster.agents[0]!.root, s.id, 'home', 'marker.bin'), payload);
  const moving = cli(`move crash-${i} --to agent-2`);
  // Held while the slowed tar waits: the source is marked and locked for the move.
  await until('the source marked', () => leftovers(), (l) => l.some((x) => x.includes(`${s.id}/moving.json`)), 20_000, 100);
  await point.kill();
  await moving;
  await point.restart();
  await cluster.agentsOnline();
  const where = await assertWhole(s.id, payload);
  process.stdout.write(`move-crash point "${name}": session ended on ${where}\n`);
}, 150_000);

test('while it copies, ops and the running jobs show the move and its bytes; it ends on the target', async () => {
  const s = await json<SessionJson>('create --name watched --agent agent-1');
  const payload = randomBytes(256 * 1024);
  await fs.writeFile(path.join(cluster.agents[0]!.root, s.id, 'home', 'marker.bin'), payload);
  const moving = cli('move watched --to agent-2');
  type Running = { running: Array<{ op: string; session: string; to?: string; phase: string; bytesTotal: number | null; agent: string }> };
  const ops = await until(
    'the move among the running jobs',
    async () => JSON.parse((await cli('ops --json')).out || '{"running":[]}') as Running,
    (o) => o.running.some((j) => j.op === 'move' && j.session === s.id && j.phase === 'copying'),
    20_000,
    100,
  );
  // (A move cut short above may still be ending on its agent: this one is found by its session.)
  const job = ops.running.find((j) => j.op === 'move' && j.session === s.id)!;
  expect(job).toEqual(expect.objectContaining({ agent: 'agent-1', bytesTotal: expect.any(Number) }));
  expect(job.bytesTotal).toBeGreaterThanOrEqual(payload.length);
  expect((await cli('ops')).out).toMatch(new RegExp(`move +agent-1 +${s.id.slice(0, 8)} +agent-2 `));
  expect((await moving).code).toBe(0);
  expect(await assertWhole(s.id, payload)).toBe('agent-2');
}, 120_000);
