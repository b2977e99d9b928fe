/**
 * The agent seen by Debian's OpenSSH client: keys made by ssh-keygen are trusted with
 * `authorize-shell`, `ssh -s … berth-rpc` works as a scriptable client, the fingerprint the agent
 * prints is the one OpenSSH records, and every other way in is refused.
 */
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { AgentProcess, BERTH_BIN, startAgentProcess } from '../helpers/agent-process';

const run = promisify(execFile);
const runLabel = `openssh-${randomUUID().slice(0, 8)}`;
let agent: AgentProcess;
let key: string;
let knownHosts: string;

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel });
  key = path.join(agent.dir, 'openssh_key');
  knownHosts = path.join(agent.dir, 'known_hosts');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'shell@test', '-f', key]);
  await run(process.execPath, [BERTH_BIN, 'agent', 'authorize-shell', '--config', agent.configFile, '--key-file', `${key}.pub`]);
});

afterAll(async () => {
  await agent?.dispose();
});

/** Runs ssh with the test key against the agent; resolves with its exit code and output. */
function ssh(args: string[], input = '', identity = key): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn('ssh', [
      '-p', String(agent.port),
      '-i', identity,
      '-o', 'IdentitiesOnly=yes',
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=accept-new',
      '-o', `UserKnownHostsFile=${knownHosts}`,
      '-o', 'ConnectTimeout=10',
      'shell@127.0.0.1',
      ...args,
    ]);
    let out = '';
    let err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
    p.stdin.end(input);
  });
}

test('ssh -s berth-rpc answers every request on stdin, then exits 0', async () => {
  const requests = [
    { v: 1, id: 'c', op: 'create', params: { name: 'from-openssh', port: -1 }, operator: 'alice' },
    { v: 1, id: 'l', op: 'list', params: {}, operator: 'alice' },
  ];
  const r = await ssh(['-s', 'berth-rpc'], requests.map((q) => JSON.stringify(q)).join('\n') + '\n');
  expect(r.code).toBe(0);
  const replies = r.out.trim().split('\n').map((l) => JSON.parse(l) as { id: string; ok: boolean; result: unknown });
  expect(replies.map((x) => [x.id, x.ok]).sort()).toEqual([['c', true], ['l', true]]);
  const created = replies.find((x) => x.id === 'c')?.result as { meta: { name: string; port: number } };
  expect(created.meta).toMatchObject({ name: 'from-openssh', port: 1001 });
});

test('the fingerprint the agent prints is the one OpenSSH records', async () => {
  await ssh(['-s', 'berth-rpc']);
  const { stdout } = await run('ssh-keygen', ['-l', '-f', knownHosts]);
  const { stdout: printed } = await run(process.execPath, [BERTH_BIN, 'agent', 'fingerprint', '--config', agent.configFile]);
  expect(printed.trim()).toBe(agent.fingerprint);
  expect(stdout).toContain(agent.fingerprint);
});

test('exec, a shell and unknown subsystems are refused', async () => {
  const exec = await ssh(['ls', '/']);
  expect(exec.code).toBe(255);
  expect(exec.err).toContain('exec request failed');
  const sub = await ssh(['-s', 'sftp']);
  expect(sub.code).toBe(255);
  expect(sub.err).toContain('subsystem request failed');
  const shell = await ssh(['-T']);
  expect(shell.code).toBe(255);
  expect(shell.err).toContain('shell request failed');
});

test('a key the agent does not trust is refused before any channel opens', async () => {
  const stranger = path.join(agent.dir, 'stranger_key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
  const r = await ssh(['-s', 'berth-rpc'], '', stranger);
  expect(r.code).toBe(255);
  expect(r.err).toContain('Permission denied (publickey)');
});
