/**
 * The shell pins each agent's host key at enrolment: an agent that comes back with another key
 * (a different machine answering at its address) is refused and shown offline with the reason.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startAgentProcess } from '../helpers/agent-process';
import { Cluster, startCluster, until } from '../helpers/cluster';

const runLabel = `shell-pin-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;

type AgentRow = { id: string; status: string; reason: string | null };
const agents = async (): Promise<AgentRow[]> => JSON.parse((await cluster.ssh('alice', ['agents', '--json'])).out || '[]') as AgentRow[];

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 1 });
  await until('agent online', agents, (a) => a[0]?.status === 'online', 20_000);
});

afterAll(async () => {
  await cluster?.dispose();
});

test('an agent presenting another host key is refused, with the reason shown', async () => {
  const old = cluster.agents[0]!;
  await old.stop();
  await fs.rm(path.join(old.dir, 'state', 'host_key'));
  cluster.agents[0] = await startAgentProcess({ runLabel, dir: old.dir, id: old.id, config: { listen: { host: '127.0.0.1', port: old.port } } });
  expect(cluster.agents[0].fingerprint).not.toBe(old.fingerprint);
  const [row] = await until('refused as a changed key', agents, (a) => (a[0]?.reason ?? '').includes('host key changed'), 30_000);
  expect(row).toMatchObject({ id: old.id, status: expect.stringMatching(/offline|connecting/) });
  expect(row?.reason).toContain(`expected ${old.fingerprint}`);
  const refused = await cluster.ssh('alice', ['create', '--name', 'x', '--agent', old.id]);
  expect(refused.code).toBe(1);
  expect(refused.err).toMatch(/error: AGENT_OFFLINE: agent agent-1 is offline/);
});
