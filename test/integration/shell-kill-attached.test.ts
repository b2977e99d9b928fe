/**
 * `kill REF` of a session other operators are attached to, end to end (two real attaches through
 * an ssh2 client with a pty, the CLI through OpenSSH, a real shell and agent): refused without
 * --yes, naming the others (never the operator herself) and recorded in the audit as refused;
 * with --yes it kills, and both attaches end.
 */
import { promises as fs } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { sessionCli } from '../helpers/session-cli';
import { ShellTerms } from '../helpers/shell-term';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `killatt-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
const terms = new ShellTerms(() => cluster);
const { cli, json, find } = sessionCli(() => cluster);

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 1 });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  terms.endAll();
  await cluster?.dispose();
});

test("bob's kill of a session alice is attached to is refused naming her, and goes through with --yes", async () => {
  const s = await json<SessionJson>('create --name paired');
  const alice = await terms.attach('alice', s.id, { cols: 100, rows: 30 });
  const bob = await terms.attach('bob', s.id, { cols: 100, rows: 30 });
  // The shell decides from its view of the session: both attaches are in it.
  await until('both attached', () => find(s.id), (x) => [...x.attached].sort().join(',') === 'alice,bob', 20_000, 100);

  const refused = await cli('kill paired', 'bob');
  expect(refused).toEqual({ code: 1, out: '', err: 'error: CONFLICT: alice is attached to paired: kill paired --yes kills it anyway\n' });
  expect(await find(s.id)).toMatchObject({ state: 'connected' });
  const kills = async (): Promise<Array<Record<string, unknown>>> =>
    (await fs.readFile(cluster.auditFile, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.op === 'kill');
  // The audit line is written as the refusal is made, not before the reply: wait for it.
  expect(await until('the refusal in the audit', kills, (k) => k.length > 0, 10_000, 50)).toEqual([
    expect.objectContaining({ operator: 'bob', session: s.id, result: 'refused', code: 'CONFLICT' }),
  ]);

  const killed = await cli('kill paired --yes', 'bob');
  expect({ code: killed.code, out: killed.out, err: killed.err }).toEqual({ code: 0, out: expect.stringMatching(/^killed paired \([0-9a-f]{8}\) on agent-1: stopped\n$/), err: '' });
  await Promise.all([alice.closed, bob.closed]);
  expect(await find(s.id)).toMatchObject({ state: 'stopped', attached: [] });
}, 90_000);
