/** Agent settings seen from outside: the session count cap, and the command fallback of the image. */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AgentClient, refusal, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { until } from '../helpers/cluster';

const runLabel = `config-${randomUUID().slice(0, 8)}`;
let agent: AgentProcess;
let client: AgentClient;

beforeAll(async () => {
  // A command whose program the image lacks: the session must still come up, in a login shell.
  agent = await startAgentProcess({ runLabel, config: { maxSessions: 2, command: 'berth-no-such-program --flag' } });
  client = await agent.connect();
});

afterAll(async () => {
  await agent?.dispose();
});

test('maxSessions refuses creates and clones past the cap, and frees room on delete', async () => {
  const a = view(await client.call('create', { name: 'a' }));
  await client.call('create', { name: 'b' });
  const full = await refusal(client.call('create', { name: 'c' }));
  expect(full.code).toBe('CONFLICT');
  expect(full.message).toBe('CONFLICT: agent is full: 2 sessions');
  const fullClone = await refusal(client.call('clone', { session: a.meta.id }));
  expect(fullClone.code).toBe('CONFLICT');
  expect((await client.call('list', {})).sessions).toHaveLength(2);
  await client.call('delete', { session: a.meta.id });
  expect(view(await client.call('create', { name: 'c' })).meta.name).toBe('c');
});

test('a command the image lacks falls back to a login shell that works', async () => {
  const { sessions } = await client.call('list', {});
  const s = view(sessions[0]!);
  const a = await client.attach({ session: s.meta.id });
  expect((await a.ready).ok).toBe(true);
  a.write('echo fallback-$((20+3)) $0\r');
  await a.waitForText('fallback-23 bash');
  // berth-session says so on its stderr, which `docker logs` keeps.
  expect(await containerLogs(`berth-${s.meta.id}`)).toContain("'berth-no-such-program' is not in this image; running a login shell instead");
  a.close();
});

function containerLogs(name: string): Promise<string> {
  return new Promise((resolve) => execFile('docker', ['logs', name], (_e, out, err) => resolve(`${out}${err}`)));
}

test('containers run as the configured user, which has a name inside even if the image lacks it', async () => {
  // What a systemd install does: the agent runs as `berth` (some uid the image does not know).
  const odd = await startAgentProcess({ runLabel, config: { user: { uid: 4242, gid: 4242 } } });
  try {
    const c = await odd.connect();
    const s = await c.call('create', { name: 'odd-uid' });
    const id = s.kind === 'session' ? s.meta.id : '';
    expect((await fs.stat(path.join(odd.root, id, 'home'))).uid).toBe(4242);
    const a = await c.attach({ session: id });
    expect((await a.ready).ok).toBe(true);
    a.write('echo "who=$(whoami) home=$HOME" > who.txt\r');
    await until('who.txt written', () => fs.readFile(path.join(odd.root, id, 'home', 'who.txt'), 'utf8').catch(() => ''), (t) => t !== '');
    expect(await fs.readFile(path.join(odd.root, id, 'home', 'who.txt'), 'utf8')).toBe('who=claude home=/home/claude\n');
    expect((await fs.stat(path.join(odd.root, id, 'home', 'who.txt'))).uid).toBe(4242);
    a.close();
  } finally {
    await odd.dispose();
  }
}, 60_000);
