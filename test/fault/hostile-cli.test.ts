/**
 * Hostile input, in bulk, against the shell's exec CLI on a real cluster (two agents, the shell's
 * own dnsmasq): names and DNS names with shell metacharacters, newlines, NUL, very long values,
 * Unicode and path traversal are refused naming the field or stored as they are, never run; then
 * 10,000 seeded random command lines over a few SSH connections, each ending with exit 0, 1 and a
 * coded error line, or 2 and usage. Afterwards the shell serves, every session is where it was
 * (plus what the lines that succeeded made), the audit log parses line by line and the dnsmasq
 * hosts file is well-formed, holds exactly the sessions' names, and answers.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Resolver } from 'node:dns/promises';
import { randomUUID } from 'node:crypto';
import type { Client } from 'ssh2';
import { ERROR_CODES } from '../../common/errors';
import { DNS_NAME_RE, SESSION_NAME_RE } from '../../common/names';
import { UsageError, splitWords } from '../../shell/cli/args';
import type { SessionJson } from '../../shell/cli/format';
import { Cluster, startCluster } from '../helpers/cluster';
import { freePort } from '../helpers/ports';
import { seededRng } from '../helpers/seed';
import { sessionCli } from '../helpers/session-cli';
import { ShellTerms, execOn } from '../helpers/shell-term';
import { until, within } from '../helpers/wait';
import { COMMANDS, commandLine, quoted } from './hostile-argv';
import { hostileStrings } from './hostile-input';
import { pooled } from './hostile-wire';

const runLabel = `hostile-cli-${randomUUID().slice(0, 8)}`;
const LINES = 10_000;
/** Command lines in flight at once, over the connections below. */
const WIDTH = 64;
const DOMAIN = 'berth.test';
const canary = `/tmp/berth-canary-${runLabel}`;
const HOSTILE = hostileStrings(canary);
const CODES = new Set<string>(ERROR_CODES.filter((c) => c !== 'INTERNAL'));

let cluster: Cluster;
let dnsPort: number;
const terms = new ShellTerms(() => cluster);
const { list, cli, inSession, startAndWait, killAndWait } = sessionCli(() => cluster, { trim: true });
let fixtures: SessionJson[];

interface ExecResult {
  code: number | null;
  out: string;
  err: string;
  /** No exit in the time given: the channel was closed here. */
  hung: boolean;
}

/** Runs one command line on an exec channel of `conn` (no pty); one with no exit in time is reported as hung. */
async function execLine(conn: Client, line: string, timeoutMs = 20_000): Promise<ExecResult> {
  const run = execOn(conn, line);
  try {
    return { ...(await within('exec', timeoutMs, run)), hung: false };
  } catch (err) {
    const hung = err instanceof Error && err.message.startsWith('exec: no answer');
    return { code: null, out: '', err: hung ? '' : `exec refused: ${String(err)}`, hung };
  }
}

/** What is wrong with a reply to a line the CLI reads as `words` (null for a usage error), or null. */
function problemWith(r: ExecResult, words: string[] | null): string | null {
  if (r.hung) return 'no exit in 20 s';
  if (/^\s+at /m.test(r.err) || /^\s+at /m.test(r.out)) return 'a stack trace';
  if (r.err.includes('INTERNAL')) return 'INTERNAL';
  if (r.code === 0) return /^error: /m.test(r.err) ? 'exit 0 with an error line' : null;
  if (r.code === 1) {
    const m = /^error: ([A-Z_]+): \S/m.exec(r.err);
    return m && CODES.has(m[1] ?? '') ? null : 'exit 1 without a coded error line';
  }
  if (r.code === 2) return r.err.startsWith('berth: ') ? null : 'exit 2 without a usage line';
  return words === null ? 'not the usage error an unreadable line is' : `exit ${String(r.code)}`;
}

/** The words the CLI reads from a line, or null when it cannot (an unterminated quote). */
function wordsOf(line: string): string[] | null {
  try {
    return splitWords(line);
  } catch (err) {
    if (err instanceof UsageError) return null;
    throw err;
  }
}

const hostsLines = async (): Promise<string[]> => (await fs.readFile(path.join(cluster.dir, 'state', 'dns.hosts'), 'utf8')).split('\n');

/** The hosts file: only comments and `127.0.0.1 <label>.berth.test` lines; returns the labels. */
async function wellFormedHosts(): Promise<string[]> {
  const lines = await hostsLines();
  expect(lines.pop()).toBe('');
  const records = lines.filter((l) => !l.startsWith('# '));
  const record = /^127\.0\.0\.1 ([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\.berth\.test$/;
  expect(records.filter((l) => !record.test(l))).toEqual([]);
  return records.map((l) => record.exec(l)?.[1] ?? '').sort();
}

async function resolves(name: string): Promise<string[] | string> {
  const r = new Resolver({ timeout: 1000, tries: 2 });
  r.setServers([`127.0.0.1:${dnsPort}`]);
  try {
    return await r.resolve4(`${name}.${DOMAIN}`);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  }
}

const exists = (p: string): Promise<boolean> => fs.stat(p).then(() => true, () => false);

beforeAll(async () => {
  dnsPort = await freePort();
  cluster = await startCluster({
    runLabel,
    agents: 2,
    // A cap, so that the creates and clones among the lines that succeed stay few.
    agentConfig: { maxSessions: 8, log: { level: 'info' } },
    shellConfig: { dns: { domain: DOMAIN, manage: { listenAddress: '127.0.0.1', port: dnsPort, upstream: [] } }, log: { level: 'info' } },
  });
  await cluster.agentsOnline();
  expect((await cli('create --name fz-one --agent agent-1 --dns fz-one')).code).toBe(0);
  expect((await cli('create --name fz-two --agent agent-2 --dns fz-two')).code).toBe(0);
  fixtures = await list();
}, 60_000);

afterAll(async () => {
  terms.endAll();
  await cluster?.dispose();
  await fs.rm(canary, { force: true });
});

describe('names, DNS names and values from hell', () => {
  let alice: Client;
  beforeAll(async () => {
    alice = await terms.login('alice');
  });

  /** A create or edit with one hostile value: refused naming the field, or (a valid one) stored exactly. */
  async function tryValue(line: string, field: 'name' | 'dns', value: string, valid: boolean): Promise<SessionJson | null> {
    const r = await execLine(alice, line);
    const what = { line: line.slice(0, 120), code: r.code, err: r.err.slice(0, 200) };
    if (valid) {
      expect(what).toEqual({ ...what, code: 0 });
      const s = JSON.parse(r.out) as SessionJson;
      expect(s[field]).toBe(value);
      return s;
    }
    if (value === '') expect(what).toEqual({ ...what, code: 2, err: expect.stringMatching(/^berth: --name must not be empty/) });
    else expect(what).toEqual({ ...what, code: 1, err: expect.stringMatching(new RegExp(`^error: BAD_REQUEST: ${field}: `)) });
    return null;
  }

  test('names: refused with BAD_REQUEST naming the field, or stored exactly as given', async () => {
    const made: string[] = [];
    try {
      await pooled(HOSTILE.length, 6, async (i) => {
        const name = HOSTILE[i] ?? '';
        const valid = SESSION_NAME_RE.test(name);
        const s = await tryValue(`create --name=${quoted(name)} --agent agent-${1 + (i % 2)} --json`, 'name', name, valid);
        if (s) made.push(s.id);
        // The same on edit and clone of a session that exists; it stays as it was.
        if (!valid && name !== '') {
          await tryValue(`edit fz-one --name=${quoted(name)} --json`, 'name', name, false);
          await tryValue(`clone fz-two --name=${quoted(name)} --json`, 'name', name, false);
        }
      });
      expect(made.length).toBeGreaterThan(0);
      expect((await list()).filter((s) => fixtures.some((f) => f.id === s.id))).toEqual(fixtures);
    } finally {
      for (const id of made) expect((await execLine(alice, `delete ${id} --yes`)).code).toBe(0);
    }
  });

  test('DNS names: refused with BAD_REQUEST naming the field, or stored exactly; the hosts file stays well-formed and answers', async () => {
    const made: string[] = [];
    try {
      // Two of them (lone surrogates) reach the shell as the same text, at once: both must hear
      // what is wrong with it, not that the other took it.
      await pooled(HOSTILE.length, 6, async (i) => {
        const dns = HOSTILE[i] ?? '';
        // --dns '' is "no name": valid, and not what this is about.
        if (dns === '') return;
        const valid = DNS_NAME_RE.test(dns);
        const s = await tryValue(`create --name fzh-${i} --dns=${quoted(dns)} --json`, 'dns', dns, valid);
        if (s) made.push(s.id);
        if (!valid) await tryValue(`edit fz-one --dns=${quoted(dns)} --json`, 'dns', dns, false);
      });
      expect(made.length).toBeGreaterThan(0);
      // The same, pinned: one bad name in several ops at once; the shell once claimed it for the
      // first and told the others it was being taken (NAME_TAKEN) instead of what is wrong with it.
      const same = await Promise.all([1, 2, 3, 4].map((n) => execLine(alice, `create --name fzc-${n} --dns='Not A Name' --json`)));
      expect(same.map((r) => ({ code: r.code, err: r.err }))).toEqual(same.map(() => ({ code: 1, err: expect.stringMatching(/^error: BAD_REQUEST: dns: /) })));
      expect((await list()).filter((s) => fixtures.some((f) => f.id === s.id))).toEqual(fixtures);
      const names = (await list()).map((s) => s.dns).filter(Boolean).sort();
      await until('the hosts file has every name', wellFormedHosts, (got) => JSON.stringify(got) === JSON.stringify(names), 10_000);
      for (const n of names) expect({ n, got: await resolves(n) }).toEqual({ n, got: ['127.0.0.1'] });
    } finally {
      for (const id of made) expect((await execLine(alice, `delete ${id} --yes`)).code).toBe(0);
    }
    await until('the hosts file has only the fixtures', wellFormedHosts, (got) => JSON.stringify(got) === JSON.stringify(['fz-one', 'fz-two']), 10_000);
  });

  test('variables with metacharacters are stored as text and reach the container as text; repo URLs that could run something are refused', async () => {
    const values = [`$(touch ${canary})`, `\`touch ${canary}\``, `;touch ${canary}`, `a\ntouch ${canary}`, `'"; touch ${canary}; "'`];
    const env = values.map((v, i) => `--env ${quoted(`V${i}=${v}`)}`).join(' ');
    const r = await execLine(alice, `create --name fz-env --agent agent-1 ${env} --json`);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
    const s = JSON.parse(r.out) as SessionJson;
    expect(s.env).toEqual(Object.fromEntries(values.map((v, i) => [`V${i}`, v])));
    await startAndWait(s.id);
    for (const [i, v] of values.entries()) expect(await inSession(s.id, ['printenv', `V${i}`])).toEqual({ code: 0, out: v.trim(), err: '' });
    expect((await inSession(s.id, ['test', '-e', canary])).code).toBe(1);
    await killAndWait(s.id);
    for (const repo of [`ext::sh -c touch% ${canary}`, `-u$(touch ${canary})`, `/tmp/$(touch ${canary})`, `/tmp/$(touch\${IFS}${canary})`, `file:///tmp/;touch ${canary}`, `https://x/$(touch ${canary}) y`]) {
      const x = await execLine(alice, `create --name fz-repo --repo ${quoted(repo)}`);
      expect({ repo, code: x.code, err: x.err }).toEqual({ repo, code: 1, err: expect.stringMatching(/^error: (BAD_REQUEST|FORBIDDEN): repo: /) });
    }
    expect((await cli(`delete ${s.id} --yes`)).code).toBe(0);
    expect(await exists(canary)).toBe(false);
  });
});

describe('10,000 random command lines', () => {
  const outcomes = new Map<string, number>();
  let made = 0;
  /** Audit records before the lines ran. */
  let auditBefore = 0;

  test('each ends with exit 0, or 1 and a coded error, or 2 and usage: never a hang, a stack or INTERNAL', async () => {
    const rng = seededRng('hostile exec command lines');
    const refs = [...fixtures.flatMap((f) => [f.name, f.id, f.id.slice(0, 4), f.id.slice(0, 8)]), randomUUID(), 'fz', '*', '../fz-one', 'fz-one ', 'FZ-ONE'];
    const lines = Array.from({ length: LINES }, () => commandLine(rng, { refs, hostile: HOSTILE }));
    // Mostly the admin; some as an operator and a viewer, whose refusals are FORBIDDEN.
    const users = ['alice', 'alice', 'alice', 'bob', 'vic'];
    const conns = await Promise.all(users.map((u) => terms.login(u)));
    auditBefore = (await fs.readFile(cluster.auditFile, 'utf8')).split('\n').filter(Boolean).length;
    const problems: string[] = [];
    const started = Date.now();
    await pooled(lines.length, WIDTH, async (i) => {
      const line = lines[i] ?? '';
      const user = users[i % users.length] ?? 'alice';
      const r = await execLine(conns[i % conns.length] as Client, line);
      const words = wordsOf(line);
      const cmd = words?.[0] ?? '';
      let problem = problemWith(r, words);
      if (!problem && (words === null || !(COMMANDS as readonly string[]).includes(cmd)) && r.code !== 2) problem = `exit ${String(r.code)} for what is no command`;
      if (!problem && user === 'vic' && r.code === 0 && ['create', 'edit', 'clone', 'restart', 'background', 'audit'].includes(cmd)) problem = 'a viewer was let through';
      if (!problem && r.code === 0 && words?.includes('--json') && ['list', 'agents', 'whoami', 'version', 'create', 'edit', 'clone', 'restart', 'ops'].includes(cmd)) {
        try {
          JSON.parse(r.out);
        } catch {
          problem = 'exit 0 with --json but no JSON';
        }
      }
      if (r.code === 0 && (cmd === 'create' || cmd === 'clone')) made++;
      const key = `${r.code}${r.code === 1 ? ` ${/^error: ([A-Z_]+)/m.exec(r.err)?.[1] ?? '?'}` : ''}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      if (problem) problems.push(`line ${i} as ${user}: ${problem}: ${JSON.stringify(line.slice(0, 200))} -> ${r.code} ${JSON.stringify(r.err.slice(0, 300))}`);
    });
    console.log(`exec CLI: ${LINES} lines in ${Date.now() - started} ms: ${JSON.stringify(Object.fromEntries(outcomes))}; sessions made: ${made}`);
    if (problems.length > 0) console.log(`exec CLI: ${problems.length} problems\n${problems.slice(0, 10).join('\n')}`);
    expect(problems.slice(0, 10)).toEqual([]);
    // The lines went through the whole CLI: usage errors, refusals, and ops that were done.
    expect(outcomes.get('2')).toBeGreaterThan(LINES / 10);
    expect(outcomes.get('0')).toBeGreaterThan(LINES / 20);
    expect(outcomes.get('1 BAD_REQUEST')).toBeGreaterThan(10);
    expect(outcomes.get('1 FORBIDDEN')).toBeGreaterThan(10);
  }, 120_000);

  test('afterwards the shell serves: sessions, audit log, hosts file and dnsmasq are all as they must be', async () => {
    expect({ exitCode: cluster.shell.proc.exitCode, signal: cluster.shell.proc.signalCode }).toEqual({ exitCode: null, signal: null });
    // Another operator, on a fresh connection, through the real OpenSSH client.
    const r = await cluster.ssh('bob', ['list', '--json']);
    expect({ code: r.code, err: r.err.replace(/^Warning: Permanently added .*\r?\n/m, '') }).toEqual({ code: 0, err: '' });
    const now = JSON.parse(r.out) as SessionJson[];

    // The audit log: every line is one JSON record.
    const dir = path.dirname(cluster.auditFile);
    const files = (await fs.readdir(dir)).filter((f) => f.startsWith(path.basename(cluster.auditFile)));
    const records: Array<{ operator: string; op: string; result: string; session?: string; detail?: { clone?: string } }> = [];
    // Oldest first: rotated files (.N, the highest oldest), then the current one.
    files.sort((a, b) => (Number(b.split('.').pop()) || 0) - (Number(a.split('.').pop()) || 0));
    for (const f of files) {
      for (const line of (await fs.readFile(path.join(dir, f), 'utf8')).split('\n').filter(Boolean)) records.push(JSON.parse(line) as (typeof records)[number]);
    }
    expect(records.filter((x) => typeof x.operator !== 'string' || typeof x.op !== 'string' || !['ok', 'refused', 'unknown'].includes(x.result))).toEqual([]);
    expect(records.filter((x) => x.result === 'unknown')).toEqual([]);
    const fromLines = records.slice(auditBefore);
    expect(fromLines.filter((x) => x.result === 'refused').length).toBeGreaterThan(LINES / 20);
    // Nothing in the lines could delete: every fixture is there, and the rest are the sessions the
    // creates and clones that succeeded made, as audited (a repeated --op-id makes one, not two).
    const madeIds = new Set(fromLines.filter((x) => x.result === 'ok').flatMap((x) => (x.op === 'create' ? [x.session ?? ''] : x.op === 'clone' ? [x.detail?.clone ?? ''] : [])));
    expect(madeIds.size).toBeGreaterThan(0);
    expect(madeIds.size).toBeLessThanOrEqual(made);
    const unexplained = now.filter((s) => !madeIds.has(s.id) && !fixtures.some((f) => f.id === s.id));
    if (unexplained.length > 0) console.log(`sessions no audited op made: ${JSON.stringify(unexplained)}\n${records.filter((x) => unexplained.some((u) => JSON.stringify(x).includes(u.id) || JSON.stringify(x).includes(u.name))).map((x) => JSON.stringify(x)).join('\n')}`);
    expect(now.map((s) => s.id).sort()).toEqual([...fixtures.map((f) => f.id), ...madeIds].sort());
    for (const s of now) {
      expect(s.name).toMatch(SESSION_NAME_RE);
      expect(s.dns === '' || DNS_NAME_RE.test(s.dns)).toBe(true);
    }

    // The hosts file holds exactly the names the sessions have, well-formed, and dnsmasq answers them.
    const names = now.map((s) => s.dns).filter(Boolean).sort();
    await until('the hosts file follows the sessions', wellFormedHosts, (got) => JSON.stringify(got) === JSON.stringify(names), 10_000);
    for (const n of names) expect({ n, got: await resolves(n) }).toEqual({ n, got: ['127.0.0.1'] });
    expect(await exists(canary)).toBe(false);
    expect(cluster.shell.logs.filter((l) => l.includes('INTERNAL') || l.includes('uncaught'))).toEqual([]);
  });
});
