/**
 * A hostile session. From inside a real session container, as its user, the test plays what a
 * prompt-injected agent could try against berth: planting links, FIFOs and forged records at
 * every name berth uses, raising its own limits, taking another session's name, escalating
 * through setuid or capabilities, reading another session's home, and a fork bomb. Each attack
 * must fail, change nothing berth trusts, and leave the agent serving the other sessions.
 * (Network isolation and giant resizes have their own suites: container-hardening, attach-size.)
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { AgentClient, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { docker, removeTestContainers } from '../helpers/docker';
import { until } from '../helpers/wait';
import type { SessionView } from '../../common/protocol';

const runLabel = `hostile-${randomUUID().slice(0, 8)}`;
/** The agent's limits for every session here (see startAgentProcess). */
const MEMORY_MB = 512;
const PIDS = 256;

let agent: AgentProcess;
let client: AgentClient;

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel, config: { limits: { memoryMb: MEMORY_MB, cpus: 1, pids: PIDS } } });
  client = await agent.connect();
});

afterAll(async () => {
  await agent?.dispose();
  await removeTestContainers(runLabel);
});

interface Inspect {
  Id: string;
  Config: { User: string; Labels: Record<string, string> };
  State: { Pid: number; Running: boolean; OOMKilled: boolean };
  HostConfig: { Memory: number; PidsLimit: number | null };
}

async function inspect(id: string): Promise<Inspect> {
  return (JSON.parse(await docker('inspect', `berth-${id}`)) as Inspect[])[0] as Inspect;
}

/** Runs `script` with bash inside the session's container as its user; never throws for a failure inside. */
function inside(id: string, user: string, script: string, timeoutMs = 30_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('docker', ['exec', '-u', user, `berth-${id}`, 'bash', '-c', script], { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

async function running(name: string, extra: Record<string, unknown> = {}): Promise<{ s: SessionView; user: string }> {
  const s = view(await client.call('create', { name, ...extra }));
  await client.call('restart', { session: s.meta.id });
  return { s, user: (await inspect(s.meta.id)).Config.User };
}

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Settles within `ms` or fails the test: a hang is what these attacks aim for. */
function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

test('forged records, links and FIFOs in its home change nothing berth believes or enforces', async () => {
  const victim = view(await client.call('create', { name: 'victim', dns: 'victim-b' }));
  const { s, user } = await running('hostile', { dns: 'hostile-a' });
  const id = s.meta.id;
  const metaFile = path.join(agent.root, id, 'session.json');
  const before = { meta: sha(metaFile), passwd: sha('/etc/passwd'), victim: sha(path.join(agent.root, victim.meta.id, 'session.json')) };

  const forged = JSON.stringify({ ...s.meta, name: 'pwned', dns: 'victim-b', createdBy: 'mallory', limits: { memoryMb: 1048576, pids: 1000000 } });
  const attack = await inside(
    id,
    user,
    `cd ~
     # Every name berth's records had or have, planted as forgeries, links and FIFOs.
     printf '%s' '${forged}' > session.json
     ln -sf /etc/passwd session.lock.owner.json
     mkdir -p session.lock
     mkfifo .session.json.0123abcd.tmp
     mkdir -p home && ln -sf /etc/passwd home/session.json && mkfifo home/session.lock
     # The real records, by every path the container has.
     for p in ../session.json /home/session.json /session.json ../session.lock; do
       (echo x > "$p") 2>/dev/null && echo "WROTE $p"
     done
     ls -d ../home ../session.json 2>/dev/null
     grep -c " /home/claude " /proc/self/mountinfo
     true`,
  );
  expect(attack.out).not.toContain('WROTE');
  // One mount at /home/claude, and from there no way to the session's records.
  expect(attack.out.trim()).toBe('1');

  // The operator's ops go through: no forged lock, and berth keeps its own metadata.
  expect(view(await client.call('get', { session: id })).lock).toBeNull();
  const edited = view(await client.call('edit', { session: id, name: 'renamed' }));
  expect(edited.meta).toMatchObject({ name: 'renamed', dns: 'hostile-a', createdBy: 'alice' });
  expect(edited.meta.limits).toBeUndefined();
  await client.call('kill', { session: id });
  await client.call('restart', { session: id });
  const c = await inspect(id);
  expect(c.HostConfig.Memory).toBe(MEMORY_MB * 1024 * 1024);
  expect(c.HostConfig.PidsLimit).toBe(PIDS);
  expect(c.Config.Labels['berth.dns']).toBe('hostile-a');
  expect(view(await client.call('get', { session: victim.meta.id })).meta).toMatchObject({ name: 'victim', dns: 'victim-b' });
  expect(sha('/etc/passwd')).toBe(before.passwd);
  expect(sha(path.join(agent.root, victim.meta.id, 'session.json'))).toBe(before.victim);
  // The only changes to the hostile session's record are the operator's edit and access times.
  expect(sha(metaFile)).not.toBe(before.meta);
  expect(JSON.parse(await fs.readFile(metaFile, 'utf8'))).toMatchObject({ name: 'renamed', dns: 'hostile-a', createdBy: 'alice' });
  expect(JSON.parse(await fs.readFile(metaFile, 'utf8'))).not.toHaveProperty('limits');
  // And the session keeps its home as it left it.
  const home = path.join(agent.root, id, 'home');
  expect(await fs.readlink(path.join(home, 'session.lock.owner.json'))).toBe('/etc/passwd');
  expect((await fs.lstat(path.join(home, '.session.json.0123abcd.tmp'))).isFIFO()).toBe(true);
}, 120_000);

test('FIFOs and links everywhere in a home never stall an op, here or on another session; clone and delete never follow them', async () => {
  const other = await running('bystander');
  const { s, user } = await running('fifos');
  const id = s.meta.id;
  const planted = await inside(
    id,
    user,
    `cd ~ && for i in $(seq 1 16); do mkfifo "pipe$i"; done
     ln -s / rootlink && ln -s /etc/shadow shadow && mkdir -p deep/er && mkfifo deep/er/pipe && ln -s /etc deep/er/etc
     echo done`,
  );
  expect(planted.out.trim()).toBe('done');
  const shadow = sha('/etc/shadow');

  // Many ops at once on the hostile session (more than the thread pool has threads) and on the
  // bystander: every one answers.
  const ops = [
    ...Array.from({ length: 8 }, () => client.call('get', { session: id })),
    client.call('list', {}),
    client.call('clone', { session: id, name: 'fifos-clone' }),
    client.call('get', { session: other.s.meta.id }),
    client.call('kill', { session: other.s.meta.id }),
  ];
  const results = await within('ops on a home full of FIFOs', 60_000, Promise.allSettled(ops));
  const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
  // The one clone may find the session locked by nothing else here: every op succeeds.
  expect(failed).toEqual([]);
  const clone = view((results[9] as PromiseFulfilledResult<unknown>).value as never);
  const cloneHome = path.join(agent.root, clone.meta.id, 'home');
  expect((await fs.lstat(path.join(cloneHome, 'pipe1'))).isFIFO()).toBe(true);
  expect((await fs.lstat(path.join(cloneHome, 'deep/er/pipe'))).isFIFO()).toBe(true);
  expect(await fs.readlink(path.join(cloneHome, 'rootlink'))).toBe('/');
  expect(await fs.readlink(path.join(cloneHome, 'deep/er/etc'))).toBe('/etc');
  // Deleting the clone and the source removes the links, never what they point at.
  await client.call('delete', { session: clone.meta.id });
  await client.call('delete', { session: id });
  expect(sha('/etc/shadow')).toBe(shadow);
  expect((await fs.readdir('/etc')).length).toBeGreaterThan(10);
  expect(await fs.stat(agent.root).then(() => true)).toBe(true);
  await client.call('restart', { session: other.s.meta.id });
  expect(view(await client.call('get', { session: other.s.meta.id })).state).toBe('R');
}, 180_000);

test('no way up: no capabilities, no new privileges, no setuid binaries, no device nodes, no other home', async () => {
  const neighbour = await running('neighbour');
  await inside(neighbour.s.meta.id, neighbour.user, 'echo neighbour-secret > ~/secret.txt');
  const { s, user } = await running('climber');
  const r = await inside(
    s.meta.id,
    user,
    `id -u
     grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status
     echo "setuid: $(find / -xdev -perm /6000 -type f 2>/dev/null | head -5 | tr '\\n' ' ')"
     mknod ~/disk b 8 0 2>/dev/null && echo MKNOD
     mount -t tmpfs none ~/x 2>/dev/null && echo MOUNTED
     cat ${path.join(agent.root, neighbour.s.meta.id, 'home', 'secret.txt')} 2>/dev/null && echo READ
     grep -rs neighbour-secret /home /tmp /var /srv /mnt /opt 2>/dev/null && echo FOUND
     echo "homes: $(ls /home)"`,
  );
  const lines = r.out.split('\n');
  expect(lines[0]).toBe(user.split(':')[0]);
  expect(lines[0]).not.toBe('0');
  for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(r.out).toMatch(new RegExp(`${cap}:\\s+0000000000000000`));
  expect(r.out).toMatch(/NoNewPrivs:\s+1/);
  expect(r.out).toContain('setuid: \n');
  expect(r.out).not.toMatch(/MKNOD|MOUNTED|READ|FOUND/);
  expect(r.out).toContain('homes: claude');
}, 120_000);

/** The pids cgroup counter of a running container, read on the host. */
function pidsCurrent(hostPid: number): number {
  const line = readFileSync(`/proc/${hostPid}/cgroup`, 'utf8').split('\n').find((l) => /:pids:/.test(l) || l.startsWith('0::'));
  const rel = line?.split(':')[2] ?? '';
  const candidates = [path.join('/sys/fs/cgroup/pids', rel, 'pids.current'), path.join('/sys/fs/cgroup', rel, 'pids.current')];
  for (const c of candidates) {
    try {
      return Number(readFileSync(c, 'utf8').trim());
    } catch {
      // try the next layout
    }
  }
  throw new Error(`no pids.current for pid ${hostPid} (cgroup ${rel})`);
}

test('a fork bomb stays within the pids limit; the agent keeps serving and can kill it', async () => {
  const other = await running('calm');
  const { s } = await running('bomb');
  const id = s.meta.id;
  const c = await inspect(id);
  // Bounded by `timeout`, detached; its children outlive it, which is what kill must handle.
  await docker('exec', '-d', '-u', c.Config.User, `berth-${id}`, 'timeout', '60', 'bash', '-c', 'b() { b | b & }; b; wait');
  const peak = await until('the bomb fills the pids limit', async () => pidsCurrent(c.State.Pid), (n) => n >= PIDS - 8, 30_000, 100);
  expect(peak).toBeLessThanOrEqual(PIDS);
  // Meanwhile the agent answers, and works on the other session.
  for (let i = 0; i < 3; i++) {
    expect(pidsCurrent(c.State.Pid)).toBeLessThanOrEqual(PIDS);
    await within('list during the bomb', 20_000, client.call('list', {}));
    await within('kill of another session', 30_000, client.call('kill', { session: other.s.meta.id }));
    await within('restart of another session', 30_000, client.call('restart', { session: other.s.meta.id }));
  }
  // And it ends the bomb: kill stops the container whatever runs in it.
  await within('kill of the bomb', 60_000, client.call('kill', { session: id }));
  expect(view(await client.call('get', { session: id })).state).toBe('-');
  expect((await inspect(other.s.meta.id)).State.Running).toBe(true);
}, 240_000);
