/**
 * The `audit` command over the real OpenSSH client, against a real `berth shell serve` with a real
 * agent and Docker: what an admin reads back (creates, attaches, kills, refusals) through each
 * filter, who may not read it (that refusal recorded too), records of a deleted session, a log
 * rotated at a tiny byte bound read across its files, and the example in docs/operations.md.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { docSection, docSteps } from '../helpers/doc-steps';
import { sessionCli } from '../helpers/session-cli';
import { ShellTerms } from '../helpers/shell-term';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `shaudit-${randomUUID().slice(0, 8)}`;
const tag = runLabel.slice(-6);
/** Small enough that a few records fill a file; keep enough files that this suite loses none. */
const ROTATION = { maxBytes: 1024, keep: 50 };
let cluster: Cluster;
const terms = new ShellTerms(() => cluster);
const { cli, json } = sessionCli(() => cluster);

/** A command with --json that must succeed, as `user`: its one JSON value. */
async function jsonAs<T>(line: string, user: string): Promise<T> {
  const r = await cli(`${line} --json`, user);
  expect({ line, code: r.code, err: r.err }).toEqual({ line, code: 0, err: '' });
  return JSON.parse(r.out) as T;
}

type Rec = Record<string, unknown> & { ts: string; operator: string; op: string; result: string; session?: string };

/** `audit ARGS --json` as alice: the records, which must all parse. */
async function audit(args = ''): Promise<Rec[]> {
  const r = await cli(`audit ${args} --json`);
  expect({ args, code: r.code, err: r.err }).toEqual({ args, code: 0, err: '' });
  return r.out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Rec);
}

/** The records as the files hold them, oldest file first, read here without the shell. */
async function filesRecords(): Promise<Rec[]> {
  const out: Rec[] = [];
  for (let i = ROTATION.keep; i >= 0; i--) {
    const text = await fs.readFile(i === 0 ? cluster.auditFile : `${cluster.auditFile}.${i}`, 'utf8').catch(() => '');
    out.push(...text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Rec));
  }
  return out;
}

const brief = (r: Rec): string => `${r.operator} ${r.op} ${r.result}${typeof r.code === 'string' ? ` ${r.code}` : ''}`;

beforeAll(async () => {
  cluster = await startCluster({
    runLabel,
    agents: 1,
    operators: [
      { name: 'alice', role: 'admin' },
      { name: 'bob', role: 'operator' },
      { name: 'carol', role: 'viewer' },
    ],
    shellConfig: { audit: ROTATION },
  });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  terms.endAll();
  await cluster?.dispose();
});

test('the example in docs/operations.md prints what it shows', async () => {
  const examples = docSteps(await docSection('docs/operations.md', 'The audit log'));
  expect(examples.map((e) => e.command)).toEqual(['audit --session web --since 1h', 'audit --operator carol --op kill --json']);

  // What the example's records come from.
  const web = await json<SessionJson>('create --name web');
  expect((await cli('restart web', 'bob')).code).toBe(0);
  expect((await cli('kill web', 'carol')).code).toBe(1);
  expect((await cli('kill web', 'bob')).code).toBe(0);

  const [text, asJson] = examples;
  const r = await cli(text?.command ?? '');
  expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
  const anyTime = (s: string): string => s.replace(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/gm, 'YYYY-MM-DD hh:mm:ss');
  expect(anyTime(r.out)).toBe(anyTime(`${text?.shown.join('\n')}\n`));

  const j = await cli(asJson?.command ?? '');
  expect({ code: j.code, err: j.err }).toEqual({ code: 0, err: '' });
  // The ids, the agent and the time are this cluster's; the rest is as shown.
  const ours = (l: string): unknown => ({ ...(JSON.parse(l) as object), ts: 'TS', session: 'ID', agent: 'AGENT' });
  expect(j.out.trim().split('\n').map(ours)).toEqual(asJson?.shown.map(ours));
  expect((JSON.parse(j.out) as Rec).session).toBe(web.id);
});

test('an admin reads creates, attaches, kills and refusals back, through each filter', async () => {
  const name = `api-${tag}`;
  const s = await jsonAs<SessionJson>(`create --name ${name}`, 'bob');
  const t = await terms.attach('alice', name, { cols: 100, rows: 30 });
  await until('attached', () => json<SessionJson[]>('list'), (l) => l.find((x) => x.id === s.id)?.attached.includes('alice') === true, 30_000, 200);
  t.channel.close();
  await t.closed;
  await until('the detach recorded', () => audit(`--session ${name} --op detach`), (a) => a.length === 1, 10_000, 100);
  expect((await cli(`restart ${name}`, 'carol')).code).toBe(1);
  expect((await cli(`kill ${name}`, 'bob')).code).toBe(0);
  expect((await cli(`kill gone-${tag}`, 'bob')).code).toBe(1);

  const mine = await audit(`--session ${name}`);
  expect(mine.map(brief)).toEqual(['bob create ok', 'alice attach ok', 'alice detach ok', 'carol restart refused FORBIDDEN', 'bob kill ok']);
  expect(mine.every((r) => r.session === s.id && r.agent === 'agent-1')).toBe(true);
  expect(mine[1]?.detail).toEqual({ readOnly: false });
  expect(mine.map((r) => Date.parse(r.ts))).toEqual(mine.map((r) => Date.parse(r.ts)).sort((a, b) => a - b));

  expect((await audit(`--session ${s.id.slice(0, 8)} --op attach`)).map(brief)).toEqual(['alice attach ok']);
  expect((await audit(`--session ${name} --operator carol`)).map(brief)).toEqual(['carol restart refused FORBIDDEN']);
  expect((await audit(`--session ${name} --limit 2`)).map(brief)).toEqual(['carol restart refused FORBIDDEN', 'bob kill ok']);
  const kills = await audit('--since 10m --op kill --operator bob');
  expect(kills.slice(-2).map((r) => [brief(r), r.session ?? (r.detail as { ref?: string }).ref])).toEqual([
    ['bob kill ok', s.id],
    ['bob kill refused NOT_FOUND', `gone-${tag}`],
  ]);
  expect(await audit(`--session gone-${tag}`)).toEqual([expect.objectContaining({ op: 'kill', message: `no session matches "gone-${tag}"` })]);
  expect(await audit('--since 2000-01-01 --operator nobody')).toEqual([]);
  // A time to come matches nothing yet.
  expect(await audit(`--since ${new Date(Date.now() + 3_600_000).toISOString()}`)).toEqual([]);

  const textual = await cli(`audit --session ${name}`);
  expect(textual.code).toBe(0);
  const rows = textual.out.trimEnd().split('\n');
  expect(rows[0]).toMatch(/^TIME \(UTC\) +OPERATOR +OP +SESSION +RESULT +DETAIL$/);
  expect(rows.slice(1).map((l) => l.split(/ {2,}/).slice(1))).toEqual([
    ['bob', 'create', name, 'ok'],
    ['alice', 'attach', name, 'ok'],
    ['alice', 'detach', name, 'ok'],
    ['carol', 'restart', name, 'refused', 'FORBIDDEN: carol is a viewer and may not restart'],
    ['bob', 'kill', name, 'ok'],
  ]);

  // Deleted, the session is still in the audit, by its id or the start of it.
  expect(await jsonAs(`delete ${name} --yes`, 'bob')).toEqual({ deleted: s.id });
  const gone = await audit(`--session ${s.id.slice(0, 8)}`);
  expect(gone.map(brief)).toEqual([...mine.map(brief), 'bob delete ok']);
  expect(await audit(`--session ${s.id}`)).toEqual(gone);
  const goneText = await cli(`audit --session ${s.id} --op delete`);
  expect(goneText.out.split('\n')[1]?.split(/ {2,}/).slice(1)).toEqual(['bob', 'delete', s.id.slice(0, 8), 'ok']);
}, 90_000);

test('an operator and a viewer are refused, and each refusal is in the audit', async () => {
  expect(await cli('audit', 'bob')).toEqual({ code: 1, out: '', err: 'error: FORBIDDEN: bob is an operator and may not audit\n' });
  expect(await cli('audit --op create --json', 'carol')).toEqual({ code: 1, out: '', err: 'error: FORBIDDEN: carol is a viewer and may not audit\n' });
  const refused = await audit('--op audit');
  expect(refused.slice(-2)).toEqual([
    { ts: expect.any(String), operator: 'bob', op: 'audit', result: 'refused', code: 'FORBIDDEN', message: 'bob is an operator and may not audit' },
    { ts: expect.any(String), operator: 'carol', op: 'audit', result: 'refused', code: 'FORBIDDEN', message: 'carol is a viewer and may not audit' },
  ]);
});

test('a log rotated at a tiny byte bound is read across its files, in order, nothing lost', async () => {
  for (let i = 0; i < 12; i++) expect((await cli(`restart nope-${tag}-${String(i).padStart(2, '0')}`, 'bob')).code).toBe(1);
  const held = await filesRecords();
  const names = (await fs.readdir(path.dirname(cluster.auditFile))).filter((f) => f.startsWith('audit.jsonl'));
  expect(names.length).toBeGreaterThanOrEqual(4);
  expect(names.length).toBeLessThanOrEqual(ROTATION.keep + 1);
  for (const f of names) expect((await fs.stat(path.join(path.dirname(cluster.auditFile), f))).size).toBeLessThanOrEqual(ROTATION.maxBytes);

  // Everything, oldest first, as the files hold it; the first record of the suite among them.
  const all = await audit(`--limit ${held.length + 10}`);
  expect(all).toEqual(held);
  expect(all[0]).toEqual(expect.objectContaining({ operator: 'alice', op: 'create', result: 'ok' }));
  const refs = (await audit(`--op restart --operator bob --since 10m`)).map((r) => (r.detail as { ref?: string } | undefined)?.ref);
  expect(refs.slice(-12)).toEqual(Array.from({ length: 12 }, (_, i) => `nope-${tag}-${String(i).padStart(2, '0')}`));
  expect((await audit('--limit 3')).map((r) => (r.detail as { ref?: string }).ref)).toEqual(['09', '10', '11'].map((i) => `nope-${tag}-${i}`));
}, 90_000);
