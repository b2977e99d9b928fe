/**
 * Moves cut short at the points after the copy, where a kill -9 lands too quickly to aim at: the
 * state such a crash leaves is made on disk while the shell and both agents are down, then
 * everything starts again and the shell resolves the move. Whatever the point, the session ends
 * whole on exactly one agent, listed once, unlocked, with no move leftovers:
 * - committed at the target, the source's copy still there (killed before `out-finish`): it moves;
 * - committed at the target, the source's copy gone (killed before `in-confirm`): it moves;
 * - not committed (killed during the copy, the staging half written): it stays at the source.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { startAgentProcess } from '../helpers/agent-process';
import { removeTestContainers } from '../helpers/docker';
import { sessionCli } from '../helpers/session-cli';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `moverecover-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
const { json, list } = sessionCli(() => cluster, { trim: true });

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 2 });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
  await removeTestContainers(runLabel);
});

/** Kills the shell and both agents (kill -9 for the agents), runs `craft`, and starts them again. */
async function crashAndCraft(craft: () => Promise<void>): Promise<void> {
  await cluster.stopShell();
  for (const a of cluster.agents) await a.kill9();
  await craft();
  for (let i = 0; i < cluster.agents.length; i++) {
    const old = cluster.agents[i]!;
    cluster.agents[i] = await startAgentProcess({ runLabel, id: old.id, dir: old.dir, config: { listen: { host: '127.0.0.1', port: old.port } } });
  }
  await cluster.startShell();
  await cluster.agentsOnline();
}

/** A stopped session on agent-1 with a file of random bytes in its home; its id and the bytes. */
async function sessionWithFile(name: string): Promise<{ id: string; bytes: Buffer }> {
  const s = await json<SessionJson>(`create --name ${name} --agent agent-1`);
  const bytes = randomBytes(64 * 1024);
  const home = path.join(cluster.agents[0]!.root, s.id, 'home');
  await fs.writeFile(path.join(home, 'keep.bin'), bytes);
  return { id: s.id, bytes };
}

const folders = (i: number, id: string) => {
  const root = cluster.agents[i]!.root;
  return { root, live: path.join(root, id), incoming: path.join(root, '.incoming') };
};

/** What a source's out-begin and a target's copy (and commit, if `committed`) leave on disk. */
async function leaveMove(id: string, token: string, o: { committed: boolean; sourceGone: boolean }): Promise<void> {
  const src = folders(0, id);
  const dst = folders(1, id);
  await fs.writeFile(path.join(src.live, 'moving.json'), JSON.stringify({ to: 'agent-2', token, running: false, operator: 'alice' }));
  await fs.mkdir(dst.incoming, { recursive: true, mode: 0o700 });
  const staging = path.join(dst.incoming, `${id}.${token}`);
  // cp -a keeps the home's owner (the sessions' uid), as the import's tar does.
  execFileSync('cp', ['-a', src.live, staging]);
  await fs.rm(path.join(staging, 'moving.json'));
  if (o.committed) {
    await fs.writeFile(path.join(staging, 'moved-in.json'), JSON.stringify({ from: 'agent-1', token, running: false }));
    await fs.rename(staging, `${staging}.committed`);
  } else {
    // Half a copy: the home's file cut short.
    await fs.truncate(path.join(staging, 'home', 'keep.bin'), 1000);
  }
  if (o.sourceGone) await fs.rm(src.live, { recursive: true, force: true });
}

/** The invariant, with the agent the session must end on. */
async function endsOn(id: string, bytes: Buffer, agent: 'agent-1' | 'agent-2'): Promise<void> {
  const s = await until(
    'the move resolved',
    async () => (await list()).filter((x) => x.id === id),
    (xs) => xs.length === 1 && xs[0]?.agent === agent && xs[0]?.lock === null,
    30_000,
  );
  expect(s).toHaveLength(1);
  const at = agent === 'agent-1' ? 0 : 1;
  expect(await fs.readFile(path.join(folders(at, id).live, 'home', 'keep.bin'))).toEqual(bytes);
  // No copy, marker or staging left anywhere.
  expect(await fs.stat(folders(1 - at, id).live).catch(() => null)).toBeNull();
  for (const i of [0, 1]) {
    expect(await fs.stat(path.join(folders(i, id).live, 'moving.json')).catch(() => null)).toBeNull();
    expect((await fs.readdir(folders(i, id).incoming).catch(() => [] as string[])).filter((n) => n.startsWith(id))).toEqual([]);
  }
}

test('committed at the target, the source still has its copy (a crash before out-finish): the move completes', async () => {
  const { id, bytes } = await sessionWithFile('after-commit');
  await crashAndCraft(() => leaveMove(id, randomBytes(12).toString('hex'), { committed: true, sourceGone: false }));
  await endsOn(id, bytes, 'agent-2');
}, 120_000);

test('committed at the target, the source copy gone (a crash before in-confirm): the target lists it', async () => {
  const { id, bytes } = await sessionWithFile('after-finish');
  await crashAndCraft(() => leaveMove(id, randomBytes(12).toString('hex'), { committed: true, sourceGone: true }));
  await endsOn(id, bytes, 'agent-2');
}, 120_000);

test('not committed (a crash during the copy): it stays at the source, the half copy goes', async () => {
  const { id, bytes } = await sessionWithFile('mid-copy');
  await crashAndCraft(() => leaveMove(id, randomBytes(12).toString('hex'), { committed: false, sourceGone: false }));
  await endsOn(id, bytes, 'agent-1');
}, 120_000);
