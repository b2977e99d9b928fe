/**
 * A session's lock, as operators see it, end to end (OpenSSH client, real shell, real agent): the
 * agent pushes the session's entry when an op takes its lock and again when the op lets it go, so
 * `watch --json` (and the menu, fed the same way) shows who holds it, for which op, and then
 * that it is free. The op is a clone whose copy waits until the test lets it go on: the agent's
 * `cp` (found on its PATH) waits for a file to appear, so the lock is held exactly as long as the
 * test needs, with no timing.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { sessionCli } from '../helpers/session-cli';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `lockev-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
let gateDir: string;
const { cli, json } = sessionCli(() => cluster);

beforeAll(async () => {
  gateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-gatedcp-'));
  const realCp = execFileSync('sh', ['-c', 'command -v cp']).toString().trim();
  const go = path.join(gateDir, 'go');
  await fs.writeFile(path.join(gateDir, 'cp'), `#!/bin/sh\nwhile [ ! -e ${go} ]; do sleep 0.05; done\nexec ${realCp} "$@"\n`, { mode: 0o755 });
  cluster = await startCluster({ runLabel, agents: 1, agentWrap: ['env', `PATH=${gateDir}:${process.env.PATH ?? '/usr/bin:/bin'}`] });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  // Whatever happened, no copy stays waiting.
  if (gateDir) await fs.writeFile(path.join(gateDir, 'go'), '').catch(() => undefined);
  await cluster?.dispose();
  if (gateDir) await fs.rm(gateDir, { recursive: true, force: true });
});

type WatchLine = { type: string; session?: SessionJson; id?: string };

/** `watch --json --name NAME` as `user`, its lines parsed as they come. */
function watch(user: string, name: string): { lines: WatchLine[]; proc: ChildProcess; exited: Promise<void> } {
  const proc = spawn('ssh', [...cluster.sshArgs(user), 'watch', '--json', '--name', name], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: WatchLine[] = [];
  let buffered = '';
  proc.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const p of parts) if (p) lines.push(JSON.parse(p) as WatchLine);
  });
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  return { lines, proc, exited };
}

test('watch --json shows the lock a clone takes of its source, with who and why, then its release', async () => {
  const src = await json<SessionJson>('create --name held');
  await fs.writeFile(path.join(cluster.agents[0]!.root, src.id, 'home', 'notes.txt'), 'something to copy\n');
  const w = watch('vic', 'held');
  try {
    await until('the start', async () => w.lines.map((l) => l.type).join(','), (t) => t === 'session,synced', 15_000, 50);
    expect(w.lines[0]?.session).toMatchObject({ id: src.id, state: 'stopped', lock: null });

    const cloning = cli('clone held --name held-copy');
    const locked = await until('the lock pushed', async () => w.lines.find((l) => l.session?.lock), (l) => l !== undefined, 20_000, 20);
    expect(locked?.session).toMatchObject({ id: src.id, state: 'locked', lock: { operator: 'alice', op: 'clone', stale: false } });
    expect(Date.parse(locked!.session!.lock!.since)).not.toBeNaN();
    // Others see it too, in list.
    const listed = (await json<SessionJson[]>('list')).find((s) => s.id === src.id);
    expect(listed).toMatchObject({ state: 'locked', lock: { operator: 'alice', op: 'clone' } });

    const lockedAt = w.lines.indexOf(locked!);
    await fs.writeFile(path.join(gateDir, 'go'), '');
    const r = await cloning;
    expect({ code: r.code, out: r.out.split(' (')[0] }).toEqual({ code: 0, out: 'cloned into held-copy' });
    const released = await until('the release pushed', async () => w.lines.slice(lockedAt + 1).find((l) => l.session && l.session.lock === null), (l) => l !== undefined, 20_000, 20);
    expect(released?.session).toMatchObject({ id: src.id, state: 'stopped', lock: null });
    // The watch follows only `held`: the copy is not its business.
    expect(w.lines.filter((l) => l.session && l.session.id !== src.id)).toEqual([]);
  } finally {
    w.proc.kill('SIGTERM');
    await w.exited;
  }
}, 90_000);
