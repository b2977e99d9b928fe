/**
 * The shell killed (SIGKILL) while operators are attached and in the menu, then started again on
 * the same state and port. The sessions never notice: their containers and tmux servers run on,
 * and each operator reconnects and attaches again to the screen they left, what they typed still
 * on it. The shell's own dnsmasq, orphaned by the kill, is replaced (not doubled), the DNS hosts
 * file holds the same records and answers them, and the audit log loses nothing: every line
 * still parses, the records from before the kill are still the start of the log, and the new ones
 * follow them.
 */
import { promises as dnsp } from 'node:dns';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { docker } from '../helpers/docker';
import { freePort } from '../helpers/ports';
import { processesMentioning } from '../helpers/procs';
import { sessionCli } from '../helpers/session-cli';
import { Tmux } from '../helpers/tmux';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `fshell-${randomUUID().slice(0, 8)}`;
const tmux = new Tmux(`berth-${runLabel}`);
let cluster: Cluster;
let dnsPort: number;
const { json, list, startAndWait } = sessionCli(() => cluster);
const PROMPT = /claude@[a-z0-9-]+:~\$/;

const hostsFile = (): string => path.join(cluster.dir, 'state', 'dns.hosts');
const auditLines = async (): Promise<string[]> => (await fs.readFile(cluster.auditFile, 'utf8')).split('\n').filter(Boolean);

/** The address dnsmasq on DNS_PORT gives for `name`, or the error code. */
async function resolve(name: string): Promise<string> {
  const r = new dnsp.Resolver({ timeout: 500, tries: 1 });
  r.setServers([`127.0.0.1:${dnsPort}`]);
  return r.resolve4(name).then(
    (a) => a.join(','),
    (e: NodeJS.ErrnoException) => e.code ?? 'error',
  );
}

beforeAll(async () => {
  dnsPort = await freePort();
  cluster = await startCluster({
    runLabel,
    agents: 2,
    shellConfig: { listen: { host: '127.0.0.1', port: await freePort() }, dns: { domain: 'berth', manage: { listenAddress: '127.0.0.1', port: dnsPort, upstream: [] } } },
  });
  await cluster.agentsOnline();
}, 90_000);

afterAll(async () => {
  tmux.kill();
  await cluster?.dispose();
});

test('kill -9 of the shell under attached operators: sessions run on, same screens after, DNS and audit intact', async () => {
  const web = await json<SessionJson>('create --name web --agent agent-1 --dns web');
  const api = await json<SessionJson>('create --name api --agent agent-2 --dns api');
  await startAndWait(web.id);
  await startAndWait(api.id);
  const attachTo = (who: string, user: string, name: string, marker: string): Promise<string> => {
    tmux.start(who, ['ssh', ...cluster.sshArgs(user, ['-t']), 'attach', name], 100, 30);
    return tmux.waitFor(who, (s) => PROMPT.test(s), `${who} in ${name}`).then(() => {
      tmux.type(who, `echo ${marker}-$((6*7))`);
      tmux.keys(who, 'Enter');
      return tmux.waitFor(who, (s) => s.includes(`${marker}-42`), `${who}'s command ran`);
    });
  };
  await attachTo('alice', 'alice', 'web', 'alice-was-here');
  await attachTo('bob', 'bob', 'api', 'bob-was-here');
  tmux.start('vic', ['ssh', ...cluster.sshArgs('vic', ['-t'])], 120, 30);
  await tmux.waitFor('vic', (s) => s.includes('agents 2/2 online') && s.includes(' web '), 'vic’s menu');
  await until('both names served', async () => [await resolve('web.berth'), await resolve('api.berth')], (a) => a.every((x) => x === '127.0.0.1'), 10_000);
  const hostsBefore = await fs.readFile(hostsFile(), 'utf8');
  const dnsmasqBefore = processesMentioning(hostsFile());
  expect(dnsmasqBefore).toHaveLength(1);
  const auditBefore = await auditLines();
  const containers = async (): Promise<string> =>
    docker('inspect', '--format', '{{.State.Running}} {{.State.StartedAt}}', `berth-${web.id}`, `berth-${api.id}`);
  const runningBefore = await containers();
  expect(runningBefore.split('\n').filter(Boolean).every((l) => l.startsWith('true '))).toBe(true);

  // The kill: no goodbye to anyone.
  const shellPid = cluster.shell.proc.pid!;
  const gone = new Promise<void>((r) => cluster.shell.proc.once('exit', () => r()));
  process.kill(shellPid, 'SIGKILL');
  await gone;
  for (const who of ['alice', 'bob', 'vic']) await tmux.waitFor(who, () => tmux.dead(who), `${who}'s ssh ended with the shell`);

  // Down there, nothing noticed: the same containers, not restarted.
  expect(await containers()).toBe(runningBefore);

  await cluster.startShell();
  await cluster.agentsOnline();
  const after = await until('both sessions listed, running', () => list(), (l) => [web.id, api.id].every((id) => l.find((s) => s.id === id)?.state === 'running'), 10_000);
  expect(after.filter((s) => s.id === web.id || s.id === api.id)).toHaveLength(2);
  // One dnsmasq for this hosts file: the orphan of the killed shell was ended, not doubled.
  const dnsmasqAfter = await until('one dnsmasq of ours, a new one', async () => processesMentioning(hostsFile()), (p) => p.length === 1 && p[0] !== dnsmasqBefore[0], 10_000);
  expect(dnsmasqAfter).toHaveLength(1);
  await until('both names served again', async () => [await resolve('web.berth'), await resolve('api.berth')], (a) => a.every((x) => x === '127.0.0.1'), 10_000);
  expect(await fs.readFile(hostsFile(), 'utf8')).toBe(hostsBefore);

  // Each operator back on the screen they left.
  tmux.start('alice2', ['ssh', ...cluster.sshArgs('alice', ['-t']), 'attach', 'web'], 100, 30);
  await tmux.waitFor('alice2', (s) => s.includes('alice-was-here-42') && PROMPT.test(s), 'alice’s screen again');
  tmux.start('bob2', ['ssh', ...cluster.sshArgs('bob', ['-t']), 'attach', 'api'], 100, 30);
  await tmux.waitFor('bob2', (s) => s.includes('bob-was-here-42') && PROMPT.test(s), 'bob’s screen again');
  tmux.type('alice2', 'echo still-$((6*7))');
  tmux.keys('alice2', 'Enter');
  await tmux.waitFor('alice2', (s) => s.includes('still-42'), 'alice types again');
  tmux.start('vic2', ['ssh', ...cluster.sshArgs('vic', ['-t'])], 120, 30);
  await tmux.waitFor('vic2', (s) => s.includes('agents 2/2 online') && s.includes(' web ') && s.includes(' api '), 'vic’s menu again');
  expect(await containers()).toBe(runningBefore);

  // The audit log: whole lines only, what was there still first, the new attaches after it.
  const auditAfter = await until('the new attaches recorded', auditLines, (l) => l.length >= auditBefore.length + 2, 10_000);
  expect(auditAfter.slice(0, auditBefore.length)).toEqual(auditBefore);
  const records = auditAfter.map((l) => JSON.parse(l) as { operator: string; op: string; session?: string });
  expect(records.slice(auditBefore.length).filter((r) => r.op === 'attach').map((r) => [r.operator, r.session])).toEqual(
    expect.arrayContaining([
      ['alice', web.id],
      ['bob', api.id],
    ]),
  );
});
