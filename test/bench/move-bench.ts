/**
 * bench:move: MB/s of `move` for a stopped session with a 500 MB home (one file of random bytes),
 * against `tar -C SRC -cf - . | ssh HOST tar -C DST -xf -` between the same folders through a
 * real OpenSSH sshd on loopback (the direct path an operator would script), and against the same
 * pipe with no ssh (`tar | tar`: what the disk and tar alone allow). Blocks interleave: a move
 * there, both direct copies of the moved folder, a move back, and so on; each figure is given as
 * min/median/max over the blocks, with the ratio of each block's move to its own direct copy.
 *
 *   npm run bench:move [-- --quick] [-- --blocks N]
 *
 * `--quick`: a 100 MB home and 2 blocks. MOVE_BENCH_MB sets the size. MOVE_BENCH_PROFILE=DIR runs
 * the shell and both agents under `node --cpu-prof` and leaves their profiles in DIR.
 * Two agents and a shell on loopback (test/helpers/cluster.ts). Not part of npm test.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { startCluster } from '../helpers/cluster';
import { startBastion } from '../helpers/sshd';
import { log, printReport, round, runBench, stats } from './lib';

const run = promisify(execFile);
const MB = 1024 * 1024;
const quick = process.argv.includes('--quick');
const blocksArg = process.argv.indexOf('--blocks');
const BLOCKS = blocksArg > 0 ? Number(process.argv[blocksArg + 1]) : quick ? 2 : 3;
const SIZE_MB = Number(process.env.MOVE_BENCH_MB ?? (quick ? 100 : 500));
const PROFILE_DIR = process.env.MOVE_BENCH_PROFILE;
const TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system, its reaped children's included: the agents' tar) of `pid` so far. */
function cpuOf(pid: number | undefined): number {
  if (!pid) return 0;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // Fields 14–17 of proc(5), counted from the state (field 3) at index 0.
  return ((f[11] ?? 0) + (f[12] ?? 0) + (f[13] ?? 0) + (f[14] ?? 0)) / TICKS;
}

/** Busy CPU seconds of the whole machine so far, all cores (/proc/stat's first line less idle and iowait). */
function machineCpu(): { busy: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: (total - (f[3] ?? 0) - (f[4] ?? 0)) / TICKS };
}

/** Seconds `f` took. */
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
}

async function main(): Promise<void> {
  const started = performance.now();
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-bench-move-'));
  const key = path.join(work, 'key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench', '-f', key]);
  const sshd = await startBastion({ permitOpen: [], commands: true });
  await sshd.authorize([(await fs.readFile(`${key}.pub`, 'utf8')).trim()]);
  const ssh = [
    'ssh', '-p', String(sshd.port), '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${path.join(work, 'known_hosts')}`, `${sshd.user}@127.0.0.1`,
  ].join(' ');
  const cluster = await startCluster({
    runLabel: `benchmove-${randomUUID().slice(0, 8)}`,
    agents: 2,
    nodeArgs: PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : undefined,
  });
  const move: number[] = [];
  const viaSsh: number[] = [];
  const plain: number[] = [];
  const ratioSsh: number[] = [];
  const cpu = { shell: [] as number[], source: [] as number[], target: [] as number[], machine: [] as number[], direct: [] as number[] };
  try {
    await cluster.agentsOnline();
    const created = await cluster.ssh('alice', ['create --name bench-move --agent agent-1 --json']);
    const id = (JSON.parse(created.out) as { id: string }).id;
    // Stopped (as create leaves it), so that the figure is the copy and its checks, not a container's stop and start.
    const home = path.join(cluster.agents[0]!.root, id, 'home');
    await run('sh', ['-c', `head -c ${SIZE_MB * MB} /dev/urandom > "$1"`, 'sh', path.join(home, 'random.bin')]);
    log(`${SIZE_MB} MB home, ${BLOCKS} blocks; direct path through sshd on 127.0.0.1:${sshd.port}`);
    for (let b = 0; b < BLOCKS; b++) {
      const to = b % 2 === 0 ? 'agent-2' : 'agent-1';
      const source = cluster.agents[b % 2 === 0 ? 0 : 1]!;
      const target = cluster.agents[b % 2 === 0 ? 1 : 0]!;
      const toRoot = target.root;
      const pids = [cluster.shell.proc.pid, source.proc.pid, target.proc.pid];
      const before = { own: pids.map(cpuOf), machine: machineCpu() };
      const moveS = await timed(async () => {
        const r = await cluster.ssh('alice', [`move bench-move --to ${to}`], { timeoutMs: 600_000 });
        if (r.code !== 0) throw new Error(`move failed: ${r.err}`);
      });
      const after = { own: pids.map(cpuOf), machine: machineCpu() };
      const used = after.own.map((c, i) => c - (before.own[i] ?? 0));
      cpu.shell.push((1000 * (used[0] ?? 0)) / SIZE_MB);
      cpu.source.push((1000 * (used[1] ?? 0)) / SIZE_MB);
      cpu.target.push((1000 * (used[2] ?? 0)) / SIZE_MB);
      cpu.machine.push((1000 * (after.machine.busy - before.machine.busy)) / SIZE_MB);
      const src = path.join(toRoot, id);
      const direct = async (pipe: string): Promise<number> => {
        const dst = await fs.mkdtemp(path.join(work, 'dst-'));
        try {
          return await timed(() => run('sh', ['-c', `tar -C "$1" -cf - . | ${pipe}`, 'sh', src, dst], { maxBuffer: MB }));
        } finally {
          await fs.rm(dst, { recursive: true, force: true });
        }
      };
      const sshBefore = machineCpu();
      const sshS = await direct(`${ssh} tar -C "$2" -xf -`);
      const sshAfter = machineCpu();
      cpu.direct.push((1000 * (sshAfter.busy - sshBefore.busy)) / SIZE_MB);
      const plainS = await direct('tar -C "$2" -xf -');
      move.push(SIZE_MB / moveS);
      viaSsh.push(SIZE_MB / sshS);
      plain.push(SIZE_MB / plainS);
      ratioSsh.push(sshS / moveS);
      log(`block ${b + 1}: move ${round(SIZE_MB / moveS, 1)} MB/s, tar | ssh | tar ${round(SIZE_MB / sshS, 1)} MB/s, tar | tar ${round(SIZE_MB / plainS, 1)} MB/s`);
    }
  } finally {
    await cluster.dispose();
    await sshd.dispose();
    await fs.rm(work, { recursive: true, force: true });
  }
  const line = (name: string, v: number[], unit: string): string => {
    const s = stats(v);
    return `${name.padEnd(44)} median ${s.median} ${unit} (min ${s.min}, max ${s.max}, n=${s.n})\n`;
  };
  process.stdout.write(line('move (agent -> shell -> agent, stopped)', move, 'MB/s'));
  process.stdout.write(line('tar | ssh | tar (OpenSSH, loopback)', viaSsh, 'MB/s'));
  process.stdout.write(line('tar | tar (no ssh)', plain, 'MB/s'));
  process.stdout.write(line('ratio move / tar | ssh | tar', ratioSsh, ''));
  process.stdout.write(line('CPU ms per MB moved: the shell', cpu.shell, 'ms'));
  process.stdout.write(line('  the source agent (its tar included)', cpu.source, 'ms'));
  process.stdout.write(line('  the target agent (its tar included)', cpu.target, 'ms'));
  process.stdout.write(line(`  the whole machine (${os.cpus().length} cores)`, cpu.machine, 'ms'));
  process.stdout.write(line('CPU ms per MB, whole machine: tar | ssh | tar', cpu.direct, 'ms'));
  if (PROFILE_DIR) process.stdout.write(`CPU profiles of the shell and the agents: ${PROFILE_DIR}\n`);
  printReport({
    bench: 'move',
    setup: `a stopped session with a ${SIZE_MB} MB home between 2 agents, ${BLOCKS} blocks`,
    figures: [
      {
        key: 'move.speed',
        label: 'move (agent → shell → agent)',
        unit: 'MB/s',
        values: move,
        direct: { label: '`tar | ssh | tar` through OpenSSH’s sshd', values: viaSsh },
        note: 'CPU-bound on 2 cores: each byte is encrypted twice and hashed at both ends',
      },
      { key: 'move.tar', label: '`tar | tar` with no ssh (what disk and tar allow)', unit: 'MB/s', values: plain },
      { key: 'move.cpu', label: 'CPU per MB moved, whole machine', unit: 'ms/MB', values: cpu.machine, direct: { label: '`tar | ssh | tar`', values: cpu.direct } },
    ],
    seconds: (performance.now() - started) / 1000,
  });
}

runBench(main, log);
