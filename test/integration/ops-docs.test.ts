/**
 * docs/operations.md, run: every `ssh -p 2200 USER@shell-host …` step of the fleet sections
 * (enrolling through the shell, capacity and draining, operators, locks, killing under others,
 * moving, deleting and restoring, versions) against a real shell with two real agents named as the guide names them (host-1,
 * host-2), each step's output checked against the `# ` lines the guide shows under it (times, ids
 * and figures by kind: test/helpers/doc-steps.ts). A step the guide shows failing (`# error: …`)
 * must exit 1 with that error. The audit section is run by shell-audit.test.ts.
 *
 * The tests share one session, `web`, in the order the guide's story needs it: locked, killed
 * under an attached operator, moved, deleted and restored.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { DocStep, docSection, docSteps, normalize, shownPattern } from '../helpers/doc-steps';
import { freePort } from '../helpers/ports';
import { sessionCli } from '../helpers/session-cli';
import { ShellTerms } from '../helpers/shell-term';
import { BERTH_BIN, REPO_ROOT, startAgentProcess } from '../helpers/agent-process';
import type { SessionJson } from '../../shell/cli/format';

const run = promisify(execFile);
const GUIDE = 'docs/operations.md';
const runLabel = `opsdocs-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
const terms = new ShellTerms(() => cluster);
const { list, startAndWait } = sessionCli(() => cluster);
let web: SessionJson;
const berth = (...args: string[]) => run(process.execPath, [BERTH_BIN, ...args]);

beforeAll(async () => {
  cluster = await startCluster({
    runLabel,
    agents: 2,
    agentIds: ['host-1', 'host-2'],
    operators: [
      { name: 'alice', role: 'admin' },
      { name: 'bob', role: 'operator' },
      { name: 'carol', role: 'viewer' },
    ],
    // A lock left by hand stays live for the steps that meet it.
    agentConfig: { lockStaleSeconds: 120 },
  });
  await cluster.agentsOnline();
  stamped = await fs.stat(path.join(REPO_ROOT, 'dist', 'build-info.json')).then(
    () => true,
    () => false,
  );
}, 60_000);

afterAll(async () => {
  terms.endAll();
  await cluster?.dispose();
});

/** The steps of `heading`, whose commands must be `commands`: a step dropped from the guide fails here, not silently. */
async function steps(heading: string, commands: string[]): Promise<DocStep[]> {
  const found = docSteps(await docSection(GUIDE, heading));
  expect(found.map((s) => s.command)).toEqual(commands);
  return found;
}

/** Whether dist has its build stamp: `npm run build` makes it, a bare `tsc -b` does not. */
let stamped = true;

/** A shown line as an unstamped build prints it (as the guide says): no commit beside a version, commit and date unknown. */
function unstamped(line: string): string {
  return line.replace(/(\d+\.\d+\.\d+) [0-9a-f]{7}\b/g, '$1').replace(/^commit [0-9a-f]+…?, built \S+$/, 'commit unknown, built unknown');
}

/**
 * Runs a step as its user and checks what it prints. `real`: pairs of the guide's placeholder and
 * this cluster's value (a host name, a key), put in the command and taken back out of the output.
 */
async function replay(step: DocStep, real: Array<[string, string]> = []): Promise<void> {
  if (!stamped) step = { ...step, shown: step.shown.map(unstamped) };
  const command = real.reduce((c, [doc, ours]) => c.split(doc).join(ours), step.command);
  const r = await cluster.ssh(step.user, [command], { timeoutMs: 60_000 });
  const fails = step.shown[0]?.startsWith('error: ') === true;
  expect({ command, code: r.code }).toEqual({ command, code: fails ? 1 : 0 });
  const printed = real.reduce((o, [doc, ours]) => o.split(ours).join(doc), fails ? r.err : r.out);
  if (step.shown.length > 0) expect({ command, printed: normalize(printed) }).toEqual({ command, printed: expect.stringMatching(shownPattern(step.shown)) });
}

test('Enrol an agent: through the shell, an admin adds, lists and removes one', async () => {
  const agent = await startAgentProcess({ runLabel, id: 'host-3' });
  try {
    // Step 3 of the guide, on the agent host: trust the shell's key.
    const shellKey = (await berth('shell', 'show-key', '--config', cluster.shell.configFile)).stdout.trim();
    await berth('agent', 'authorize-shell', '--config', agent.configFile, shellKey);
    const real: Array<[string, string]> = [
      ['host-3.example.net', '127.0.0.1'],
      ['--port 2222', `--port ${agent.port}`],
      ['SHA256:…', agent.fingerprint],
    ];
    const [add, agentList, remove] = await steps('Enrol an agent', ['agent add host-3 --host host-3.example.net --port 2222 --fingerprint SHA256:…', 'agent list', 'agent remove host-3 --yes']);
    await replay(add!, real);
    await until('host-3 online', () => cluster.ssh('alice', ['agents --json']), (r) => r.out.includes('"id":"host-3","status":"online"'), 20_000, 100);
    await replay(agentList!, real);
    await replay(remove!, real);
    expect((await cluster.ssh('alice', ['agent list'])).out).not.toContain('host-3');
  } finally {
    await agent.dispose();
  }
});

test('Capacity and draining: the agents table, drain refuses new sessions, resume', async () => {
  for (const step of await steps('Capacity and draining', ['agents', 'agent drain host-1', 'create --name api --agent host-1', 'agent resume host-1'])) await replay(step);
  expect((await list()).map((s) => s.name)).not.toContain('api');
});

test('Operators and roles: add, role, list, remove, and the last admin kept', async () => {
  const found = await steps('Operators and roles', [
    "operator add dave --role operator --key 'ssh-ed25519 AAAA… dave@laptop'",
    'operator role carol operator',
    'operator list',
    'operator remove dave --yes',
    'operator role alice viewer',
  ]);
  const key = path.join(cluster.dir, 'key_dave');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dave@laptop', '-f', key]);
  const pub = (await fs.readFile(`${key}.pub`, 'utf8')).trim();
  for (const step of found) await replay(step, [["'ssh-ed25519 AAAA… dave@laptop'", `'${pub}'`]]);
  // Back as the other tests expect.
  expect((await cluster.ssh('alice', ['operator role carol viewer'])).code).toBe(0);
});

test('Session locks: a lock refuses others and names its holder; an admin overrides it', async () => {
  web = JSON.parse((await cluster.ssh('alice', [`create --name web --agent host-1 --port ${await freePort()} --dns web --json`])).out) as SessionJson;
  // A lock whose operation died elsewhere, as the agent keeps one: the lock folder and its owner record.
  const dir = path.join(cluster.agents[0]!.root, web.id);
  await fs.mkdir(path.join(dir, 'session.lock'));
  await fs.writeFile(
    path.join(dir, 'session.lock.owner.json'),
    JSON.stringify({ operator: 'carol', op: 'clone', since: new Date().toISOString(), pid: 424242, agentInstance: 'another-agent' }),
  );
  for (const step of await steps('Session locks', ['restart web', 'override web --reason "agent host rebooted mid-clone"'])) await replay(step);
});

test('Killing a session others are attached to: refused without --yes, naming them', async () => {
  await startAndWait(web.id);
  const alice = await terms.attach('alice', 'web', { cols: 100, rows: 30 });
  await until('alice attached', () => list(), (l) => l.find((s) => s.id === web.id)?.attached.includes('alice') === true, 30_000, 200);
  for (const step of await steps('Killing a session others are attached to', ['kill web', 'kill web --yes'])) await replay(step);
  await alice.closed;
});

test('Moving a session: to another agent, listed there once; an unknown agent refused', async () => {
  for (const step of await steps('Moving a session', ['move web --to host-2', 'list', 'move web --to host-9'])) await replay(step);
  expect((await list()).filter((s) => s.id === web.id).map((s) => s.agent)).toEqual(['host-2']);
});

test('Deleting and restoring: trash, restore, and restore without the port', async () => {
  const found = await steps('Deleting and restoring', ['delete web --yes', 'trash', 'restore web', 'delete web --yes', 'restore web --no-port']);
  for (const step of found) await replay(step);
  expect((await list()).filter((s) => s.id === web.id).map((s) => [s.name, s.port])).toEqual([['web', 0]]);
});

test('Versions and builds: the shell says its version, commit and build date', async () => {
  for (const step of await steps('Versions and builds', ['version', 'agents'])) await replay(step);
});
