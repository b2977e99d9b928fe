/** Agent settings seen from outside: the session count cap, and the command fallback of the image. */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { AgentClient, refusal, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';

const runLabel = `config-${randomUUID().slice(0, 8)}`;
let agent: AgentProcess;
let client: AgentClient;

beforeAll(async () => {
  // The offline image has no `claude`: the session must still come up, in a login shell.
  agent = await startAgentProcess({ runLabel, config: { maxSessions: 2, command: 'claude' } });
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
  expect(await containerLogs(`berth-${s.meta.id}`)).toContain("'claude' is not in this image; running a login shell instead");
  a.close();
});

function containerLogs(name: string): Promise<string> {
  return new Promise((resolve) => execFile('docker', ['logs', name], (_e, out, err) => resolve(`${out}${err}`)));
}
