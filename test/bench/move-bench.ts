/**
 * bench:move: MB/s of `move` for a session with a 500 MB home (one file of random bytes), against
 * the closest direct path that runs here: `tar -C SRC -cf - . | ssh localhost tar -C DST -xf -`
 * when ssh to localhost works, else the same pipe without ssh (`tar | tar`, said in the output).
 * Two agents and a shell on loopback (test/helpers/cluster.ts). Not part of npm test.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startCluster } from '../helpers/cluster';

const MB = 1024 * 1024;
const SIZE_MB = Number(process.env.MOVE_BENCH_MB ?? 500);

async function main(): Promise<void> {
  const cluster = await startCluster({ runLabel: `benchmove-${randomUUID().slice(0, 8)}`, agents: 2 });
  try {
    await cluster.agentsOnline();
    const created = await cluster.ssh('alice', ['create --name bench-move --agent agent-1 --json']);
    const id = (JSON.parse(created.out) as { id: string }).id;
    const home = path.join(cluster.agents[0]!.root, id, 'home');
    execFileSync('sh', ['-c', `head -c ${SIZE_MB * MB} /dev/urandom > "$1"`, 'sh', path.join(home, 'random.bin')]);
    let t = process.hrtime.bigint();
    const r = await cluster.ssh('alice', ['move bench-move --to agent-2'], { timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`move failed: ${r.err}`);
    const moveS = Number(process.hrtime.bigint() - t) / 1e9;

    const src = path.join(cluster.agents[1]!.root, id);
    const dst = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-bench-dst-'));
    const viaSsh = spawnSync('ssh', ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=3', 'localhost', 'true']).status === 0;
    const cmd = viaSsh ? `tar -C ${src} -cf - . | ssh localhost tar -C ${dst} -xf -` : `tar -C ${src} -cf - . | tar -C ${dst} -xf -`;
    t = process.hrtime.bigint();
    execFileSync('sh', ['-c', cmd]);
    const directS = Number(process.hrtime.bigint() - t) / 1e9;
    await fs.rm(dst, { recursive: true, force: true });
    const move = SIZE_MB / moveS;
    const direct = SIZE_MB / directS;
    process.stdout.write(`move (shell between two agents):   ${move.toFixed(1)} MB/s (${moveS.toFixed(2)} s for ${SIZE_MB} MB, stop and start included)\n`);
    process.stdout.write(`direct (${viaSsh ? 'tar | ssh localhost tar' : 'tar | tar, no ssh to localhost here'}): ${direct.toFixed(1)} MB/s\n`);
    process.stdout.write(`ratio move/direct: ${(move / direct).toFixed(2)}\n`);
  } finally {
    await cluster.dispose();
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
