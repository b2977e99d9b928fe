/**
 * Access (issue 14), end to end against a real shell with two real agents: who gets in and who
 * does not, what a viewer may not change, which SSH requests either server refuses, an agent that
 * comes back with another host key, and a flood of connections that never log in. Each case checks
 * what is still there afterwards (sessions, containers, the fleet, the operators, the agent links,
 * everyone else's logins) and what the audit log and the failed-login log say of it.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { BaseAgent, Client, ClientChannel, ExecOptions, IdentityCallback, ParsedKey, SignCallback, utils } from 'ssh2';
import { fingerprint, generateEd25519 } from '../../common/ssh-keys';
import { AgentClient } from '../helpers/agent-client';
import { startAgentProcess } from '../helpers/agent-process';
import { Cluster, SshResult, startCluster, until } from '../helpers/cluster';
import { testContainers } from '../helpers/docker';
import { IdlePeer, counts, dropPeers, idlePeers } from '../helpers/idle-peers';
import { records, tryLogin } from '../helpers/login-attempts';
import { freePort } from '../helpers/ports';
import { execOn as execOnShell } from '../helpers/shell-term';
import { within } from '../helpers/wait';
import type { AgentJson, SessionJson } from '../../shell/cli/format';
import type { TrashJson } from '../../shell/cli/trash-commands';

const runLabel = `access-${randomUUID().slice(0, 8)}`;
const tag = runLabel.slice(-6);
/** Small pre-auth caps, so that a flood of a few dozen connections passes each of them. */
const LOGIN = { graceSeconds: 30, maxPerSource: 4, maxTotal: 12 };

let cluster: Cluster;
/** alice (admin), logged in for the whole suite: the reads that check what survived. */
let admin: Client;
/** A running session on agent-1, a stopped one there, a stopped one on agent-2, a trashed one. */
let run: SessionJson;
let idle: SessionJson;
let far: SessionJson;
let trashed: string;

type AuditLine = Record<string, unknown> & { operator: string; op: string; result: string };

const auditLines = async (): Promise<AuditLine[]> =>
  (await fs.readFile(cluster.auditFile, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditLine);

/** The audit records written after the first `from`, once `ok` holds for them (bounded). */
const auditSince = (from: number, what: string, ok: (added: AuditLine[]) => boolean): Promise<AuditLine[]> =>
  until(what, async () => (await auditLines()).slice(from), ok, 10_000, 50);

const keyOf = (user: string): Promise<Buffer> => fs.readFile(path.join(cluster.dir, `key_${user}`));

/** SHA256 fingerprint of a private key's public half, as the failed-login log writes it. */
function fingerprintOf(privateKey: string | Buffer): string {
  const k = utils.parseKey(privateKey);
  if (k instanceof Error || Array.isArray(k)) throw new Error('unreadable test key');
  return fingerprint(k.getPublicSSH());
}

const loginFailed = (logs: string[], address: string): Array<Record<string, unknown>> => records(logs, 'login failed').filter((r) => r['address'] === address);

/** An SSH agent with no keys: lets a client ask for agent forwarding without lending anything. */
class NoKeys extends BaseAgent {
  getIdentities(cb: IdentityCallback): void {
    cb(undefined, []);
  }

  sign(_key: string | Buffer | ParsedKey, _data: Buffer, options: unknown, cb?: SignCallback): void {
    const done = typeof options === 'function' ? (options as SignCallback) : cb;
    done?.(new Error('this agent holds no keys'));
  }
}

/** Exec options asking for agent forwarding (ssh2 reads this option; its type declarations leave it out). */
const ASK_AGENT_FORWARDING = { agentForward: true } as ExecOptions;

/** A logged-in ssh2 connection (bounded: 10 s). */
function connect(o: { port: number; from?: string; username: string; privateKey: string | Buffer; agent?: BaseAgent }): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.once('ready', () => {
      c.on('error', () => undefined);
      resolve(c);
    });
    c.once('error', reject);
    c.connect({ host: '127.0.0.1', port: o.port, localAddress: o.from, username: o.username, privateKey: o.privateKey, agent: o.agent, readyTimeout: 10_000 });
  });
}

/** One command on a connection: its exit code and output (bounded: 15 s). */
function execOn(c: Client, line: string, opts: ExecOptions = {}): Promise<SshResult> {
  return within(`exec ${line}`, 15_000, execOnShell(c, line, opts));
}

async function json<T>(line: string, c: Client = admin): Promise<T> {
  const r = await execOn(c, `${line} --json`);
  expect({ line, code: r.code, err: r.err }).toEqual({ line, code: 0, err: '' });
  return JSON.parse(r.out) as T;
}

interface Answer {
  message: string;
  /** The SSH reason code of a refused channel open (1: administratively prohibited). */
  reason?: number;
}

/** How one SSH request ended: the client's error (and reason code, if any), or ACCEPTED (bounded). */
function answer(start: (cb: (err: Error | undefined, ch?: ClientChannel) => void) => void): Promise<Answer> {
  return within(
    'an answer to the request',
    8000,
    new Promise((resolve) => {
      start((err, ch) => {
        if (ch) {
          ch.on('error', () => undefined);
          ch.close();
        }
        if (!err) return resolve({ message: 'ACCEPTED' });
        const reason = (err as Error & { reason?: unknown }).reason;
        resolve(typeof reason === 'number' ? { message: err.message, reason } : { message: err.message });
      });
    }),
  );
}

/** Whether anything accepts TCP connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

interface Term {
  write(s: string): void;
  /** Resolves once `text` came to the terminal (bounded). */
  seen(text: string, timeoutMs?: number): Promise<void>;
  output(): string;
  /** Detaches (Ctrl-b d) and waits for the channel to close; closes it if it does not. */
  leave(): Promise<void>;
}

/** `attach REF` with a pty on an open connection, as `ssh -t shell attach REF` does. */
async function attachOn(c: Client, ref: string, env?: Record<string, string>): Promise<Term> {
  const ch = await within(
    `attach ${ref}`,
    10_000,
    new Promise<ClientChannel>((resolve, reject) =>
      c.exec(`attach ${ref}`, { pty: { cols: 120, rows: 30, height: 0, width: 0, term: 'xterm' }, ...(env ? { env } : {}) }, (err, x) => (err ? reject(err) : resolve(x))),
    ),
  );
  let out = '';
  ch.on('data', (d: Buffer) => {
    out += d.toString('utf8');
    if (out.length > 400_000) out = out.slice(-200_000);
  });
  ch.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const closed = new Promise<void>((r) => ch.on('close', () => r()));
  return {
    write: (s) => ch.write(s),
    seen: async (text, timeoutMs = 10_000) => {
      await until(`"${text}" on the terminal`, async () => out.slice(-300), () => out.includes(text), timeoutMs, 50);
    },
    output: () => out,
    leave: async () => {
      ch.write('\x02d');
      await within('detached', 5000, closed).catch(() => ch.close());
    },
  };
}

/**
 * Everything a refused command could have changed, as the admin reads it: sessions (but for what
 * moves by itself), the fleet, the operators, the trash, the config files, the session folders on
 * each agent's disk and the containers.
 */
async function everything(): Promise<Record<string, unknown>> {
  const sessions = (await json<SessionJson[]>('list'))
    .map((s) => ({ id: s.id, agent: s.agent, state: s.state, lock: s.lock, name: s.name, port: s.port, dns: s.dns, limits: s.limits, command: s.command, env: s.env, attached: s.attached }))
    .sort((a, b) => a.id.localeCompare(b.id));
  const agents = (await json<AgentJson[]>('agents')).map((a) => ({ id: a.id, status: a.status, drained: a.drained, sessions: a.sessions }));
  const operators = (await json<Array<Record<string, unknown>>>('operator list')).map(({ connections: _c, ...o }) => o);
  const enrolled = await json<unknown[]>('agent list');
  const trash = await json<TrashJson[]>('trash');
  const files = {
    shell: await fs.readFile(cluster.shell.configFile, 'utf8'),
    agents: await fs.readFile(path.join(cluster.dir, 'state', 'agents.json'), 'utf8'),
  };
  const disk = await Promise.all(cluster.agents.map(async (a) => (await fs.readdir(a.root)).sort()));
  const containers = (await testContainers(runLabel)).map((c) => `${c.session} ${c.state}`).sort();
  return { sessions, agents, operators, enrolled, trash, files, disk, containers };
}

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 2, shellConfig: { login: LOGIN } });
  await cluster.agentsOnline();
  admin = await connect({ port: cluster.shell.port, username: 'alice', privateKey: await keyOf('alice') });
  run = await json<SessionJson>(`create --name run-${tag} --agent agent-1`);
  await json(`restart ${run.id}`);
  idle = await json<SessionJson>(`create --name idle-${tag} --agent agent-1 --port -1 --dns idle-${tag}`);
  far = await json<SessionJson>(`create --name far-${tag} --agent agent-2`);
  trashed = (await json<SessionJson>(`create --name gone-${tag} --agent agent-2`)).id;
  await json(`delete ${trashed} --yes`);
  await until('the session running', () => json<SessionJson[]>('list'), (l) => l.find((s) => s.id === run.id)?.state === 'running', 20_000);
}, 60_000);

afterAll(async () => {
  admin?.end();
  await cluster?.dispose();
});

test('keys: unknown ones, known ones under another name, the agent-side keys: refused before any channel, in the failed-login log, never audited; every rightful login still works', async () => {
  const auditBefore = (await auditLines()).length;
  const shellPort = cluster.shell.port;
  const agent = cluster.agents[0]!;
  const stranger = generateEd25519('stranger').private;
  // The key the shell logs in to agents with, the agent's own host key, the shell's host key.
  const agentKey = await fs.readFile(path.join(cluster.dir, 'state', 'agent_key'));
  const agentHostKey = await fs.readFile(path.join(agent.dir, 'state', 'host_key'));
  const shellHostKey = await fs.readFile(path.join(cluster.dir, 'state', 'host_key'));

  const atShell = [
    { from: '127.0.4.1', user: 'alice', key: stranger, why: 'unknown key' },
    { from: '127.0.4.2', user: 'bob', key: await keyOf('alice'), why: 'unknown key' },
    { from: '127.0.4.3', user: 'alice', key: await keyOf('vic'), why: 'unknown key' }, // a viewer's key as the admin
    { from: '127.0.4.4', user: 'ALICE', key: await keyOf('alice'), why: 'unknown user' },
    { from: '127.0.4.5', user: 'alice', key: agentKey, why: 'unknown key' },
    { from: '127.0.4.6', user: 'shell', key: agentKey, why: 'unknown user' },
    { from: '127.0.4.7', user: 'alice', key: agentHostKey, why: 'unknown key' },
  ];
  const atAgent = [
    { from: '127.0.4.8', user: 'shell', key: await keyOf('alice'), why: 'unknown key' },
    { from: '127.0.4.9', user: 'alice', key: await keyOf('alice'), why: 'unknown key' },
    { from: '127.0.4.10', user: 'shell', key: shellHostKey, why: 'unknown key' },
  ];
  const outcomes = await Promise.all([
    ...atShell.map((a) => tryLogin({ port: shellPort, from: a.from, username: a.user, privateKey: a.key })),
    ...atAgent.map((a) => tryLogin({ port: agent.port, from: a.from, username: a.user, privateKey: a.key })),
  ]);
  expect(outcomes).toEqual(outcomes.map(() => expect.stringMatching(/authentication methods failed/)));

  // Each is one inert line in the failed-login log of the server it knocked at, with the key it offered.
  for (const [logs, attempts] of [
    [cluster.shell.logs, atShell],
    [agent.logs, atAgent],
  ] as const) {
    for (const a of attempts) {
      const [line] = await until(`failed login from ${a.from} logged`, async () => loginFailed(logs, a.from), (r) => r.length === 1, 5000, 50);
      expect(line).toMatchObject({ level: 'warn', user: a.user, why: a.why, method: 'publickey', keys: [fingerprintOf(a.key)] });
    }
  }
  // The key refused at the shell's door is the one the agents trust: it still opens agent-1.
  expect(await tryLogin({ port: agent.port, from: '127.0.4.11', username: 'shell', privateKey: agentKey })).toBe('LOGGED IN');

  // Nobody was identified: nothing connected as an operator, nothing audited.
  const knockers = new Set([...atShell, ...atAgent].map((a) => a.from));
  expect(records(cluster.shell.logs, 'operator connected').filter((r) => knockers.has(String(r['address'])))).toEqual([]);
  expect((await auditLines()).slice(auditBefore)).toEqual([]);

  // Every rightful login still works, through the real client, and the shell's links to both agents stand.
  for (const [user, role] of [['alice', 'admin'], ['bob', 'operator'], ['vic', 'viewer']]) {
    const r = await cluster.ssh(user!, ['whoami']);
    expect({ code: r.code, out: r.out }).toEqual({ code: 0, out: `${user} (${role})\n` });
  }
  expect((await json<AgentJson[]>('agents')).map((a) => [a.id, a.status])).toEqual([
    ['agent-1', 'online'],
    ['agent-2', 'online'],
  ]);
}, 30_000);

/** What a viewer may do; every other command the shell lists must be refused to them. */
const VIEWER_MAY = ['agents', 'list', 'preview', 'watch', 'ops', 'trash', 'attach', 'whoami', 'version', 'help'];

/** Each command a viewer may not run, as a line that an admin's would succeed with, and the action its refusal names. */
function refusedToViewer(vicKey: string): Record<string, { line: string; action: string; session?: string }> {
  const fp = `SHA256:${'A'.repeat(43)}`;
  return {
    create: { line: `create --name vnew-${tag} --agent agent-1`, action: 'create' },
    edit: { line: `edit ${idle.id} --name vedit-${tag} --port -1`, action: 'edit', session: idle.id },
    clone: { line: `clone ${idle.id} --name vclone-${tag}`, action: 'clone', session: idle.id },
    move: { line: `move ${idle.id} --to agent-2`, action: 'move', session: idle.id },
    restart: { line: `restart ${idle.id}`, action: 'restart', session: idle.id },
    background: { line: `background ${run.id}`, action: 'background', session: run.id },
    kill: { line: `kill ${run.id} --yes`, action: 'kill', session: run.id },
    delete: { line: `delete ${run.id} --yes`, action: 'delete', session: run.id },
    restore: { line: `restore ${trashed}`, action: 'restore' },
    override: { line: `override ${idle.id} --reason viewer`, action: 'override', session: idle.id },
    audit: { line: 'audit', action: 'audit' },
    'agent list': { line: 'agent list', action: 'manage-agents' },
    'agent add': { line: `agent add agent-9 --host 127.0.0.1 --port 22 --fingerprint ${fp}`, action: 'manage-agents' },
    'agent drain': { line: 'agent drain agent-1', action: 'manage-agents' },
    'agent resume': { line: 'agent resume agent-2', action: 'manage-agents' },
    'agent remove': { line: 'agent remove agent-2 --yes', action: 'manage-agents' },
    'operator list': { line: 'operator list', action: 'manage-operators' },
    'operator add': { line: `operator add eve --role admin --key '${vicKey}'`, action: 'manage-operators' },
    'operator remove': { line: 'operator remove alice --yes', action: 'manage-operators' },
    'operator role': { line: 'operator role vic admin', action: 'manage-operators' },
    'operator keys': { line: `operator keys alice --key '${vicKey}'`, action: 'manage-operators' },
  };
}

/** The commands the shell's own usage lists: `agent` and `operator` by subcommand. */
function usageCommands(usage: string): string[] {
  const lines = usage.split('\n');
  const start = lines.indexOf('') + 1;
  const end = lines.indexOf('', start);
  const found = new Set<string>();
  for (const l of lines.slice(start, end)) {
    // A command starts two spaces in; its description, if on the same line, after two more.
    const m = /^ {2}(\S.*?)(?: {2,}.*)?$/.exec(l);
    if (!m) continue;
    for (const alt of (m[1] ?? '').split(' | ')) {
      const [word = '', sub = ''] = alt.trim().split(/\s+/);
      found.add(word === 'agent' || word === 'operator' ? `${word} ${sub}` : word);
    }
  }
  return [...found].sort();
}

test('a viewer: every command the shell lists that a viewer may not run is FORBIDDEN, audited under their name, and changes nothing; their attach is read-only', async () => {
  const vic = await connect({ port: cluster.shell.port, username: 'vic', privateKey: await keyOf('vic') });
  try {
    const vicKey = (await fs.readFile(path.join(cluster.dir, 'key_vic.pub'), 'utf8')).trim();
    const refused = refusedToViewer(vicKey);
    // The list comes from the shell's own usage: a command added there fails here until classified.
    const help = await execOn(vic, 'help');
    expect(help.code).toBe(0);
    const listed = usageCommands(help.out);
    expect(listed.length).toBeGreaterThan(20);
    const classified = [...VIEWER_MAY, ...Object.keys(refused)];
    expect({ unclassified: listed.filter((c) => !classified.includes(c)), notListed: classified.filter((c) => !listed.includes(c)) }).toEqual({ unclassified: [], notListed: [] });

    const before = await everything();
    const auditBefore = (await auditLines()).length;
    for (const [command, r] of Object.entries(refused)) {
      const got = await execOn(vic, r.line);
      expect({ command, code: got.code, out: got.out, err: got.err }).toEqual({ command, code: 1, out: '', err: `error: FORBIDDEN: vic is a viewer and may not ${r.action}\n` });
    }
    const added = await auditSince(auditBefore, 'every refusal audited', (a) => a.length >= Object.keys(refused).length);
    const expected = Object.values(refused).map((r) => ({
      operator: 'vic',
      op: r.action,
      result: 'refused',
      code: 'FORBIDDEN',
      message: `vic is a viewer and may not ${r.action}`,
      ...(r.session ? { session: r.session } : {}),
    }));
    const key = (x: { op: string; session?: unknown }): string => `${x.op} ${String(x.session ?? '')}`;
    expect(added.map((a) => ({ operator: a.operator, op: a.op, result: a.result, code: a.code, message: a.message, ...(a['session'] ? { session: a['session'] } : {}) })).sort((a, b) => key(a).localeCompare(key(b)))).toEqual(
      expected.sort((a, b) => key(a).localeCompare(key(b))),
    );
    expect(await everything()).toEqual(before);

    // What a viewer may do works for them (watch until it has said everything, then they leave).
    for (const line of ['agents', 'list', 'ops', 'trash', 'whoami', 'version', `preview ${run.id} --lines 5`]) {
      const got = await execOn(vic, line);
      expect({ line, code: got.code, err: got.err }).toEqual({ line, code: 0, err: '' });
    }
    const watching = await within(
      'watch synced',
      10_000,
      new Promise<string>((resolve, reject) =>
        vic.exec('watch --json', (err, ch) => {
          if (err) return reject(err);
          let out = '';
          ch.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('"synced"')) ch.close();
          });
          ch.stderr.on('data', (d: Buffer) => (out += d.toString()));
          ch.on('close', () => resolve(out));
        }),
      ),
    );
    expect(watching).toContain(run.id);
    expect(watching).not.toContain('FORBIDDEN');

    // A viewer's attach is read-only: their keys never reach the session; a writer's do, after.
    const auditAttach = (await auditLines()).length;
    const watch = await attachOn(vic, run.id);
    await until('the viewer’s screen drawn', async () => watch.output().length, (n) => n > 20, 10_000, 50);
    watch.write('echo viewer-wrote-$((6*7))\r');
    await watch.leave();
    const writer = await attachOn(admin, run.id);
    writer.write('echo writer-wrote-$((6*7))\r');
    await writer.seen('writer-wrote-42');
    await writer.leave();
    expect(writer.output()).not.toContain('viewer-wrote-42');
    expect(watch.output()).not.toContain('viewer-wrote-42');
    const attaches = await auditSince(auditAttach, 'both attaches and detaches audited', (a) => a.length >= 4);
    expect(attaches.map((a) => [a.operator, a.op, a.result, (a['detail'] as { readOnly?: boolean } | undefined)?.readOnly ?? null])).toEqual([
      ['vic', 'attach', 'ok', true],
      ['vic', 'detach', 'ok', null],
      ['alice', 'attach', 'ok', false],
      ['alice', 'detach', 'ok', null],
    ]);
  } finally {
    vic.end();
  }
}, 45_000);

test('the shell refuses port and socket forwarding both ways, X11, agent forwarding, subsystems and environment variables; the connection serves on; the operator’s refused requests are audited', async () => {
  const auditBefore = (await auditLines()).length;
  const c = await connect({ port: cluster.shell.port, from: '127.0.5.1', username: 'bob', privateKey: await keyOf('bob'), agent: new NoKeys() });
  const listenPort = await freePort();
  const sock = path.join(cluster.dir, `fwd-${tag}.sock`);
  try {
    const got = {
      toAgent: await answer((cb) => c.forwardOut('127.0.0.1', 40000, '127.0.0.1', cluster.agents[0]!.port, cb)),
      toItself: await answer((cb) => c.forwardOut('127.0.0.1', 40001, '127.0.0.1', cluster.shell.port, cb)),
      toDockerSocket: await answer((cb) => c.openssh_forwardOutStreamLocal('/var/run/docker.sock', cb)),
      listenTcp: await answer((cb) => c.forwardIn('127.0.0.1', listenPort, (err) => cb(err))),
      listenSocket: await answer((cb) => c.openssh_forwardInStreamLocal(sock, (err) => cb(err ?? undefined))),
      agentForward: await answer((cb) => c.exec('whoami', ASK_AGENT_FORWARDING, cb)),
      x11: await answer((cb) => c.exec('whoami', { x11: true }, cb)),
      sftp: await answer((cb) => c.subsys('sftp', cb)),
      berthRpc: await answer((cb) => c.subsys('berth-rpc', cb)),
    };
    // Channels to forward through: refused at open (the SSH library's reason, "connect failed").
    // Requests: refused as SSH requests fail (the client's own words for each).
    expect(got).toEqual({
      toAgent: { message: expect.stringContaining('Channel open failure'), reason: 2 },
      toItself: { message: expect.stringContaining('Channel open failure'), reason: 2 },
      toDockerSocket: { message: expect.stringContaining('Channel open failure'), reason: 2 },
      listenTcp: { message: `Unable to bind to 127.0.0.1:${listenPort}` },
      listenSocket: { message: `Unable to bind to ${sock}` },
      agentForward: { message: 'Unable to request agent forwarding' },
      x11: { message: 'Unable to request X11' },
      sftp: { message: 'Unable to start subsystem: sftp' },
      berthRpc: { message: 'Unable to start subsystem: berth-rpc' },
    });
    // Nothing was opened on the shell's host for them.
    expect(await listening(listenPort)).toBe(false);
    await expect(fs.stat(sock)).rejects.toThrow();

    // The same connection serves on; variables it sends are refused and change nothing (whoami,
    // list, an attach). The locale, which stock clients send, is refused without an audit line.
    const env = { LANG: 'C.UTF-8', BERTH_ACCESS_PROBE: 'leaked', LD_PRELOAD: '/nonexistent/x.so' };
    expect(await execOn(c, 'whoami', { env })).toEqual({ code: 0, out: 'bob (operator)\n', err: '' });
    expect((await json<SessionJson[]>('list', c)).map((s) => s.id)).toEqual(expect.arrayContaining([run.id, idle.id, far.id]));
    const term = await attachOn(c, run.id, env);
    term.write('printenv BERTH_ACCESS_PROBE || echo probe-unset-$((40+2))\r');
    await term.seen('probe-unset-42');
    expect(term.output()).not.toContain('leaked');
    expect(JSON.stringify(await auditLines())).not.toContain('leaked');
    await term.leave();

    // A viewer asking is refused alike, and audited under their name.
    const vic = await connect({ port: cluster.shell.port, from: '127.0.5.2', username: 'vic', privateKey: await keyOf('vic') });
    try {
      expect(await answer((cb) => vic.forwardIn('0.0.0.0', 0, (err) => cb(err)))).toEqual({ message: 'Unable to bind to 0.0.0.0:0' });
      expect(await execOn(vic, 'whoami')).toMatchObject({ code: 0, out: 'vic (viewer)\n' });
    } finally {
      vic.end();
    }

    // Audited: each refused channel and request, with who asked; variables by name only.
    const refusedOps = (a: AuditLine[]): AuditLine[] => a.filter((r) => r.result === 'refused');
    const added = await auditSince(auditBefore, 'refused requests audited', (a) => refusedOps(a).length >= 14 && a.length >= 16);
    expect(refusedOps(added).map((r) => [r.operator, r.op, r['code'], r['message']])).toEqual([
      ['bob', 'forward', 'FORBIDDEN', `the shell forwards nothing (direct-tcpip 127.0.0.1:${cluster.agents[0]!.port})`],
      ['bob', 'forward', 'FORBIDDEN', `the shell forwards nothing (direct-tcpip 127.0.0.1:${cluster.shell.port})`],
      ['bob', 'forward', 'FORBIDDEN', 'the shell forwards nothing (direct-streamlocal /var/run/docker.sock)'],
      ['bob', 'forward', 'FORBIDDEN', `the shell forwards nothing (tcpip-forward 127.0.0.1:${listenPort})`],
      ['bob', 'forward', 'FORBIDDEN', `the shell forwards nothing (streamlocal-forward@openssh.com ${sock})`],
      ['bob', 'agent-forward', 'FORBIDDEN', 'the shell forwards no SSH agent'],
      ['bob', 'x11-forward', 'FORBIDDEN', 'the shell forwards no X11'],
      ['bob', 'subsystem', 'FORBIDDEN', 'the shell has no subsystems (sftp)'],
      ['bob', 'subsystem', 'FORBIDDEN', 'the shell has no subsystems (berth-rpc)'],
      ['bob', 'env', 'FORBIDDEN', 'the shell takes no environment (BERTH_ACCESS_PROBE)'],
      ['bob', 'env', 'FORBIDDEN', 'the shell takes no environment (LD_PRELOAD)'],
      ['bob', 'env', 'FORBIDDEN', 'the shell takes no environment (BERTH_ACCESS_PROBE)'],
      ['bob', 'env', 'FORBIDDEN', 'the shell takes no environment (LD_PRELOAD)'],
      ['vic', 'forward', 'FORBIDDEN', 'the shell forwards nothing (tcpip-forward 0.0.0.0:0)'],
    ]);
    expect(added.filter((r) => r.result !== 'refused').map((r) => [r.operator, r.op, r.result])).toEqual([
      ['bob', 'attach', 'ok'],
      ['bob', 'detach', 'ok'],
    ]);
  } finally {
    c.end();
  }

  // One connection repeating a refused request: each refused, the first 20 audited, the rest counted in the log.
  const auditRepeat = (await auditLines()).length;
  const repeater = await connect({ port: cluster.shell.port, from: '127.0.5.4', username: 'bob', privateKey: await keyOf('bob') });
  const answers: Answer[] = [];
  for (let i = 0; i < 25; i++) answers.push(await answer((cb) => repeater.forwardIn('127.0.0.1', listenPort, (err) => cb(err))));
  expect(new Set(answers.map((a) => a.message))).toEqual(new Set([`Unable to bind to 127.0.0.1:${listenPort}`]));
  repeater.end();
  const [gone] = await until('the repeater’s disconnect logged', async () => records(cluster.shell.logs, 'operator disconnected').filter((r) => r['unaudited'] !== undefined), (r) => r.length === 1, 5000, 50);
  expect(gone).toMatchObject({ operator: 'bob', unaudited: 5 });
  const repeated = await auditSince(auditRepeat, 'the repeated refusals audited', (a) => a.length >= 20);
  expect({ records: repeated.length, all: repeated.every((r) => r.operator === 'bob' && r.op === 'forward' && r.result === 'refused') }).toEqual({ records: 20, all: true });
}, 30_000);

test('an agent refuses port and socket forwarding both ways, X11, agent forwarding, a shell, exec and unknown subsystems; the same connection then serves berth-rpc; the shell’s link stands', async () => {
  const agent = cluster.agents[0]!;
  const c = await connect({ port: agent.port, from: '127.0.5.3', username: 'shell', privateKey: agent.shellKey.private, agent: new NoKeys() });
  const listenPort = await freePort();
  const sock = path.join(agent.dir, `fwd-${tag}.sock`);
  try {
    const got = {
      toShell: await answer((cb) => c.forwardOut('127.0.0.1', 40002, '127.0.0.1', cluster.shell.port, cb)),
      toDockerSocket: await answer((cb) => c.openssh_forwardOutStreamLocal('/var/run/docker.sock', cb)),
      listenTcp: await answer((cb) => c.forwardIn('127.0.0.1', listenPort, (err) => cb(err))),
      listenSocket: await answer((cb) => c.openssh_forwardInStreamLocal(sock, (err) => cb(err ?? undefined))),
      agentForward: await answer((cb) => c.exec('id', ASK_AGENT_FORWARDING, cb)),
      x11: await answer((cb) => c.exec('id', { x11: true }, cb)),
      shell: await answer((cb) => c.shell(false, cb)),
      execWithEnv: await answer((cb) => c.exec('id', { env: { BERTH_ACCESS_PROBE: 'leaked' } }, cb)),
      sftp: await answer((cb) => c.subsys('sftp', cb)),
      unknown: await answer((cb) => c.subsys('berth-shell', cb)),
    };
    expect(got).toEqual({
      toShell: { message: expect.stringContaining('Channel open failure'), reason: 1 },
      toDockerSocket: { message: expect.stringContaining('Channel open failure'), reason: 1 },
      listenTcp: { message: `Unable to bind to 127.0.0.1:${listenPort}` },
      listenSocket: { message: `Unable to bind to ${sock}` },
      agentForward: { message: 'Unable to request agent forwarding' },
      x11: { message: 'Unable to request X11' },
      shell: { message: 'Unable to open shell' },
      execWithEnv: { message: 'Unable to exec' },
      sftp: { message: 'Unable to start subsystem: sftp' },
      unknown: { message: 'Unable to start subsystem: berth-shell' },
    });
    expect(await listening(listenPort)).toBe(false);
    await expect(fs.stat(sock)).rejects.toThrow();
    expect(records(agent.logs, 'refused subsystem').map((r) => r['name'])).toEqual(expect.arrayContaining(['sftp', 'berth-shell']));

    // The same connection still opens berth-rpc, which sees the sessions as they were.
    const rpc = new AgentClient(c);
    const ids = (await rpc.call('list', {})).sessions.map((e) => (e.kind === 'session' ? e.meta.id : e.id));
    expect(ids.sort()).toEqual([run.id, idle.id].sort());
  } finally {
    c.end();
  }
  // The shell's own link to that agent stood throughout, and still carries calls.
  expect((await json<AgentJson[]>('agents')).find((a) => a.id === agent.id)?.status).toBe('online');
  expect((await execOn(admin, `preview ${run.id} --lines 3`)).code).toBe(0);
}, 30_000);

test('a flood of connections that never log in, past every pre-auth cap, from several addresses: operators list and attach meanwhile; the slots come back when it ends', async () => {
  const port = cluster.shell.port;
  const auditBefore = (await auditLines()).length;
  // Logged in before the flood: logged-in connections never count against the caps.
  const held = await connect({ port, from: '127.0.0.2', username: 'bob', privateKey: await keyOf('bob') });
  const flood: IdlePeer[] = [];
  let fresh: Client | null = null;
  try {
    // Past the per-address cap from two addresses (one of them silent): the total cap is not full.
    flood.push(...(await idlePeers({ port, count: 10, from: '127.0.3.1' })), ...(await idlePeers({ port, count: 10, from: '127.0.3.2', banner: false })));
    expect(counts(flood)).toEqual({ greeted: 2 * LOGIN.maxPerSource, refused: 20 - 2 * LOGIN.maxPerSource, open: 2 * LOGIN.maxPerSource });

    // An operator from another address logs in afresh, lists (the real client) and attaches.
    const listed = await cluster.ssh('alice', ['list', '--json']);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.out) as SessionJson[]).find((s) => s.id === run.id)?.state).toBe('running');
    fresh = await connect({ port, from: '127.0.0.1', username: 'alice', privateKey: await keyOf('alice') });
    const aliceTerm = await attachOn(fresh, run.id);
    aliceTerm.write('echo during-flood-$((6*7))\r');
    await aliceTerm.seen('during-flood-42');

    // Now every pre-auth slot is taken: a third address fills the total, a fourth gets nothing.
    flood.push(...(await idlePeers({ port, count: 10, from: '127.0.3.3' })), ...(await idlePeers({ port, count: 5, from: '127.0.3.4' })));
    expect(counts(flood)).toEqual({ greeted: LOGIN.maxTotal, refused: 35 - LOGIN.maxTotal, open: LOGIN.maxTotal });
    // A fresh login is refused while the total cap is full (a hard cap, as the log says) …
    expect(await tryLogin({ port, from: '127.0.0.1', username: 'alice', privateKey: await keyOf('alice') })).not.toBe('LOGGED IN');
    await until('the refusal logged', async () => records(cluster.shell.logs, 'connection refused').filter((r) => r['address'] === '127.0.0.1'), (r) => r.length >= 1, 5000, 50);
    // … and operators already in go on: the held connection lists and attaches, alice's attach answers.
    expect((await json<SessionJson[]>('list', held)).map((s) => s.id)).toEqual(expect.arrayContaining([run.id, idle.id]));
    const bobTerm = await attachOn(held, run.id);
    bobTerm.write('echo full-flood-$((6*7))\r');
    await bobTerm.seen('full-flood-42');
    await aliceTerm.seen('full-flood-42');
    await bobTerm.leave();
    await aliceTerm.leave();
    // The flood held its slots all along.
    expect(counts(flood).open).toBe(LOGIN.maxTotal);
  } finally {
    await dropPeers(flood);
    held.end();
    fresh?.end();
  }

  // Its slots are free again: a fresh login works, and each flooding address is admitted again.
  expect(await cluster.ssh('alice', ['whoami'])).toMatchObject({ code: 0, out: 'alice (admin)\n' });
  const again = await idlePeers({ port, count: LOGIN.maxPerSource, from: '127.0.3.1' });
  expect(counts(again).greeted).toBe(LOGIN.maxPerSource);
  await dropPeers(again);
  // The operators' connections are gone from the count too.
  const ops = await until(
    'the operators’ connections closed',
    () => json<Array<{ name: string; connections: number }>>('operator list'),
    (o) => o.find((x) => x.name === 'bob')?.connections === 0 && o.find((x) => x.name === 'alice')?.connections === 1,
    5000,
  );
  expect(ops.map((o) => [o.name, o.connections])).toEqual([
    ['alice', 1],
    ['bob', 0],
    ['vic', 0],
  ]);

  // Logged: a few refusals per address (rate-limited), no failed login (none asked to log in).
  for (const from of ['127.0.3.1', '127.0.3.2', '127.0.3.3', '127.0.3.4']) {
    const lines = records(cluster.shell.logs, 'connection refused').filter((r) => r['address'] === from);
    expect({ from, some: lines.length >= 1, few: lines.length <= 5 }).toEqual({ from, some: true, few: true });
    expect(loginFailed(cluster.shell.logs, from)).toEqual([]);
  }
  expect(records(cluster.shell.logs, 'connection refused').find((r) => r['address'] === '127.0.3.4')).toMatchObject({ why: 'too many not logged in', limit: LOGIN.maxTotal });
  // Audited: the two operators' attaches, nothing of the flood (nobody in it was identified).
  const added = await auditSince(auditBefore, 'attaches audited', (a) => a.length >= 4);
  expect(added.map((a) => `${a.operator} ${a.op} ${a.result}`).sort()).toEqual(['alice attach ok', 'alice detach ok', 'bob attach ok', 'bob detach ok']);
}, 45_000);

test('an agent that comes back with another host key is refused and shown offline with why; the other agent serves on; its real key brings it back', async () => {
  const real = cluster.agents[1]!;
  const keyFile = path.join(real.dir, 'state', 'host_key');
  const realKey = await fs.readFile(keyFile);
  const auditBefore = (await auditLines()).length;
  await real.stop();
  await fs.rm(keyFile);
  // Same address, same trusted shell keys, another host key: another machine answering there.
  const impostor = await startAgentProcess({ runLabel, dir: real.dir, id: real.id, config: { listen: { host: '127.0.0.1', port: real.port } } });
  cluster.agents[1] = impostor;
  expect(impostor.fingerprint).not.toBe(real.fingerprint);

  const agents = await until(
    'agent-2 refused for its key',
    () => json<AgentJson[]>('agents'),
    (a) => (a.find((x) => x.id === real.id)?.reason ?? '').includes('host key changed'),
    20_000,
  );
  const row = agents.find((x) => x.id === real.id);
  expect(row?.status).toMatch(/offline|connecting/);
  expect(row?.reason).toContain(`expected ${real.fingerprint}`);
  expect(row?.reason).toContain(impostor.fingerprint);
  // The shell never logged in to it: no signature of its key went to the impostor.
  expect(records(impostor.logs, 'shell connected')).toEqual([]);

  // agent-1 serves on; agent-2's sessions show unknown and ops on them are refused, audited.
  expect(agents.find((x) => x.id === 'agent-1')?.status).toBe('online');
  const list = await json<SessionJson[]>('list');
  expect(list.find((s) => s.id === run.id)?.state).toBe('running');
  expect(list.find((s) => s.id === far.id)?.state).toBe('unknown');
  expect((await execOn(admin, `preview ${run.id} --lines 3`)).code).toBe(0);
  const kill = await execOn(admin, `kill ${far.id} --yes`);
  expect({ code: kill.code, err: kill.err }).toEqual({ code: 1, err: expect.stringMatching(/^error: AGENT_OFFLINE: /) });
  const [refusal] = await auditSince(auditBefore, 'the refused kill audited', (a) => a.length >= 1);
  expect(refusal).toMatchObject({ operator: 'alice', op: 'kill', session: far.id, agent: real.id, result: 'refused', code: 'AGENT_OFFLINE' });

  // The real key back at that address: the pin was never changed, the agent is taken back as it was.
  await impostor.stop();
  await fs.writeFile(keyFile, realKey, { mode: 0o600 });
  const back = await startAgentProcess({ runLabel, dir: real.dir, id: real.id, config: { listen: { host: '127.0.0.1', port: real.port } } });
  cluster.agents[1] = back;
  expect(back.fingerprint).toBe(real.fingerprint);
  await until('agent-2 online again', () => json<AgentJson[]>('agents'), (a) => a.every((x) => x.status === 'online'), 20_000);
  const after = await until('its session known again', () => json<SessionJson[]>('list'), (l) => l.find((s) => s.id === far.id)?.state === 'stopped', 10_000);
  expect(after.find((s) => s.id === far.id)).toMatchObject({ agent: real.id, name: `far-${tag}` });
  const trash = await until('its trash known again', () => json<TrashJson[]>('trash'), (t) => t.length > 0, 10_000);
  expect(trash).toEqual([expect.objectContaining({ id: trashed, agent: real.id })]);
}, 50_000);
