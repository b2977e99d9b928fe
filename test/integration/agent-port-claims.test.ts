/**
 * Two real agents on one host publishing on one address, sharing a port-claims folder: neither
 * hands out a port the other reserved (even for a stopped session, which binds nothing), an exact
 * request for the other's port is refused naming its holder, a delete frees the port for the
 * other, and a claim whose session folder is gone is taken over. Both sessions then really start.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AgentClient, refusal, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { removeTestContainers } from '../helpers/docker';

const runLabel = `claims-${randomUUID().slice(0, 8)}`;
let claimsDir: string;
let a: AgentProcess;
let b: AgentProcess;
let ca: AgentClient;
let cb: AgentClient;

beforeAll(async () => {
  claimsDir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-claims-'));
  [a, b] = await Promise.all([
    startAgentProcess({ runLabel, config: { portClaims: claimsDir } }),
    startAgentProcess({ runLabel, config: { portClaims: claimsDir } }),
  ]);
  [ca, cb] = await Promise.all([a.connect(), b.connect()]);
}, 60_000);

afterAll(async () => {
  await a?.dispose();
  await b?.dispose();
  await removeTestContainers(runLabel);
  await fs.rm(claimsDir, { recursive: true, force: true });
});

test('agents sharing a claims folder never hand out the same port, and free it on delete', async () => {
  const sa = view(await ca.call('create', { name: 'on-a', port: -1 }));
  const sb = view(await cb.call('create', { name: 'on-b', port: -1 }));
  expect(sa.meta.port).toBeGreaterThan(0);
  expect(sb.meta.port).toBeGreaterThan(0);
  expect(sb.meta.port).not.toBe(sa.meta.port);

  const taken = await refusal(cb.call('create', { name: 'wants-a', port: sa.meta.port }));
  expect(taken.code).toBe('PORT_UNAVAILABLE');
  expect(taken.message).toContain(`claimed by session ${sa.meta.id} of agent ${a.id}`);
  const editTaken = await refusal(cb.call('edit', { session: sb.meta.id, port: sa.meta.port }));
  expect(editTaken.code).toBe('PORT_UNAVAILABLE');

  await ca.call('delete', { session: sa.meta.id });
  const moved = view(await cb.call('edit', { session: sb.meta.id, port: sa.meta.port }));
  expect(moved.meta.port).toBe(sa.meta.port);
  // B gave up its old port: A may have it now.
  const back = view(await ca.call('create', { name: 'old-b-port', port: sb.meta.port }));
  expect(back.meta.port).toBe(sb.meta.port);
  expect((await fs.readdir(claimsDir)).filter((n) => !n.startsWith('.')).sort()).toEqual(
    [`tcp-${sa.meta.port}`, `tcp-${sb.meta.port}`].sort(),
  );
  // Both start: their containers publish different ports on the one address.
  await Promise.all([ca.call('restart', { session: back.meta.id }), cb.call('restart', { session: sb.meta.id })]);
  expect(view(await ca.call('get', { session: back.meta.id })).state).toBe('R');
  expect(view(await cb.call('get', { session: sb.meta.id })).state).toBe('R');
}, 120_000);

test('a claim whose session folder is gone is stale and taken over', async () => {
  const s = view(await ca.call('create', { name: 'vanishing', port: -1 }));
  await fs.rm(path.join(a.root, s.meta.id), { recursive: true, force: true });
  const took = view(await cb.call('create', { name: 'takes-over', port: s.meta.port }));
  expect(took.meta.port).toBe(s.meta.port);
  expect(JSON.parse(await fs.readFile(path.join(claimsDir, `tcp-${s.meta.port}`), 'utf8'))).toMatchObject({ agent: b.id, session: took.meta.id });
});
