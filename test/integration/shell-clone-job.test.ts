/**
 * A clone runs as a job, end to end (OpenSSH client, real shell, real agent): a clone that takes
 * several times the shell's RPC timeout completes, because the agent pushes its progress every
 * second and the shell waits as long as the job reports. Meanwhile `ops` shows the running job
 * with its progress, the CLI prints progress on stderr, and the audit has one `ok` and no
 * `unknown`. The copy is made slow the way a big home would be: the agent's `cp` (found on its
 * PATH) waits before it copies. A create on a project is a job the same way, while the agent's
 * (slowed) git makes the project's mirror.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Cluster, SshResult, startCluster, until } from '../helpers/cluster';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `clonejob-${randomUUID().slice(0, 8)}`;
const RPC_TIMEOUT_MS = 2000;
const COPY_DELAY_S = 7;
let cluster: Cluster;
let slowBin: string;
let repos: string;

beforeAll(async () => {
  slowBin = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-slowcp-'));
  const realCp = execFileSync('sh', ['-c', 'command -v cp']).toString().trim();
  await fs.writeFile(path.join(slowBin, 'cp'), `#!/bin/sh\nsleep ${COPY_DELAY_S}\nexec ${realCp} "$@"\n`, { mode: 0o755 });
  // A repository that takes long to fetch: the agent's git waits before it works.
  const realGit = execFileSync('sh', ['-c', 'command -v git']).toString().trim();
  await fs.writeFile(path.join(slowBin, 'git'), `#!/bin/sh\nsleep ${COPY_DELAY_S}\nexec ${realGit} "$@"\n`, { mode: 0o755 });
  repos = path.join(slowBin, 'repos');
  execFileSync('git', ['init', '--quiet', '--bare', path.join(repos, 'slow.git')]);
  cluster = await startCluster({
    runLabel,
    agents: 1,
    agentConfig: { repos: { allowLocal: [repos] } },
    shellConfig: { rpcTimeoutMs: RPC_TIMEOUT_MS },
    agentWrap: ['env', `PATH=${slowBin}:${process.env.PATH ?? '/usr/bin:/bin'}`],
  });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
  await fs.rm(slowBin, { recursive: true, force: true });
});

async function cli(line: string): Promise<SshResult> {
  const r = await cluster.ssh('alice', [line], { timeoutMs: 60_000 });
  return { ...r, err: r.err.replace(/^Warning: Permanently added .*\r?\n/m, '') };
}

/** The results the audit log recorded for `op`, in order. */
async function auditResults(op: string): Promise<string[]> {
  return (await fs.readFile(cluster.auditFile, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { op: string; result: string })
    .filter((a) => a.op === op)
    .map((a) => a.result);
}

interface OpsJson {
  running: Array<{ agent: string; opId: string; op: string; phase: string; bytesDone: number | null; bytesTotal: number | null; target?: { name: string } }>;
  waiting: unknown[];
}

test('a clone longer than the RPC timeout completes as a job, with progress in ops and on stderr (not with --json)', async () => {
  const created = await cli('create --name big-src --json');
  expect(created.code).toBe(0);
  const src = JSON.parse(created.out) as SessionJson;
  const home = path.join(cluster.agents[0]!.root, src.id, 'home');
  await fs.writeFile(path.join(home, 'data.bin'), Buffer.alloc(8 * 1024 * 1024, 7));

  const started = Date.now();
  const cloning = cli('clone big-src --name big-copy');
  const seen = await until(
    'ops shows the clone copying',
    async () => JSON.parse((await cli('ops --json')).out) as OpsJson,
    (o) => o.running.some((j) => j.phase === 'copying'),
    20_000,
    200,
  );
  const job = seen.running[0]!;
  expect(job).toMatchObject({ agent: 'agent-1', op: 'clone', target: { name: 'big-copy' } });
  expect(job.bytesDone).toBeLessThan(64 * 1024);
  expect(job.bytesTotal).toBeGreaterThanOrEqual(8 * 1024 * 1024);
  const text = await cli('ops');
  expect(text.out).toContain('running:');
  expect(text.out).toContain(job.opId);
  // The copy (held up before it starts) holds only its empty home so far.
  expect(text.out).toMatch(/[\d.]+ K?B of 8\.0 MB \(0%\)/);

  const r = await cloning;
  const took = Date.now() - started;
  expect({ code: r.code, err: r.err.split('\n').filter((l) => !l.startsWith('cloning')) }).toEqual({ code: 0, err: [''] });
  expect(took).toBeGreaterThan(2 * RPC_TIMEOUT_MS);
  expect(r.out).toMatch(/^cloned into big-copy \(([0-9a-f]{8})\)/);
  const copy = (JSON.parse((await cli('list --json')).out) as SessionJson[]).find((s) => s.name === 'big-copy')!;
  expect(r.err).toMatch(/cloning big-src → big-copy: [\d.]+ K?B of 8\.0 MB \(0%\), [2-9] s/);
  expect((await fs.readFile(path.join(cluster.agents[0]!.root, copy.id, 'home', 'data.bin'))).length).toBe(8 * 1024 * 1024);

  // --json keeps stderr for errors only.
  const quiet = await cli('clone big-copy --name big-copy-2 --json');
  expect({ code: quiet.code, err: quiet.err }).toEqual({ code: 0, err: '' });

  // Done: no job left, and one plain `ok` in the audit under the job's op id.
  expect(JSON.parse((await cli('ops --json')).out)).toEqual({ running: [], waiting: [] });
  expect(await auditResults('clone')).toEqual(['ok', 'ok']);
}, 120_000);

test('a create on a project that takes longer than the RPC timeout to fetch completes as a job', async () => {
  const started = Date.now();
  const r = await cli(`create --name slow-project --repo ${path.join(repos, 'slow.git')}`);
  expect({ code: r.code, out: r.out.split(' (')[0] }).toEqual({ code: 0, out: 'created slow-project' });
  expect(Date.now() - started).toBeGreaterThan(2 * RPC_TIMEOUT_MS);
  expect(r.err).toContain('creating slow-project: fetching the project');
  expect(await auditResults('create')).toEqual(['ok', 'ok']);
}, 60_000);
