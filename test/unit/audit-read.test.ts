/**
 * The audit log's rotation and its reader: files renamed at the byte bound and kept up to `keep`,
 * nothing lost or reordered under concurrent records, filters, relative times, files cut short or
 * edited by hand, and the `audit` command's text and JSON, inert whatever the records hold.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../../common/errors';
import { silentLogger } from '../../common/logging';
import { AuditLog, AuditRecord, auditLine } from '../../shell/audit';
import { AuditQuery, LINE_MAX, StoredRecord, readAudit } from '../../shell/audit-read';
import { Agents } from '../../shell/agents/pool';
import { AUDIT_HEAD, auditRow, sinceOf } from '../../shell/cli/audit-command';
import { UsageError } from '../../shell/cli/args';
import { runCommand } from '../../shell/cli/commands';
import { table } from '../../shell/cli/format';
import { shellConfigSchema } from '../../shell/config';
import { Operator, ShellService } from '../../shell/service';
import { viewEntry } from '../helpers/entries';
import { rawChars, viewWithAgent } from '../helpers/raw-text';

const LIVE = '3f2b8c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const GONE = 'a1b2c3d4-0000-4000-8000-000000000001';
const ALICE: Operator = { name: 'alice', role: 'admin' };

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-audit-read-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const fresh = (): string => path.join(dir, `${Math.random().toString(36).slice(2)}`, 'audit.jsonl');

/** Record number `n`: its op names it, so order and loss can be read back. */
const numbered = (n: number): AuditRecord => ({ operator: 'alice', op: `op-${n}`, result: 'ok' });

/** Every record the log's files hold, oldest first, through the reader. */
async function readAll(log: AuditLog, q: Partial<AuditQuery> = {}): Promise<{ records: StoredRecord[]; skipped: number }> {
  await log.settled();
  const files = await log.open();
  try {
    return await readAudit(files, { limit: 10_000, ...q });
  } finally {
    await Promise.all(files.map((f) => f.handle.close()));
  }
}

const opNumbers = (records: StoredRecord[]): number[] => records.map((r) => Number(r.op.slice('op-'.length)));
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function sizes(file: string, keep: number): Promise<Array<number | null>> {
  const out: Array<number | null> = [];
  for (let i = 0; i <= keep + 1; i++) out.push(await fs.stat(i === 0 ? file : `${file}.${i}`).then((s) => s.size, () => null));
  return out;
}

describe('rotation', () => {
  const LINE = Buffer.byteLength(auditLine(numbered(10), new Date())); // op-10 … op-99 take as many bytes
  const PER_FILE = 4;
  const rotation = { maxBytes: LINE * PER_FILE, keep: 3 };

  it('renames the file at the byte bound, keeps `keep` older files and drops the oldest; no file passes the bound', async () => {
    const file = fresh();
    const log = new AuditLog(file, silentLogger, rotation);
    for (let n = 10; n < 10 + PER_FILE * 6; n++) await log.record(numbered(n)); // six files' worth
    expect(await sizes(file, rotation.keep)).toEqual([LINE * PER_FILE, LINE * PER_FILE, LINE * PER_FILE, LINE * PER_FILE, null]);
    // The last four files' worth, in order, with no gap: the two oldest files were dropped whole.
    expect(opNumbers((await readAll(log)).records)).toEqual(range(10 + PER_FILE * 2, 10 + PER_FILE * 6 - 1));
    expect(log.files()).toEqual([`${file}.3`, `${file}.2`, `${file}.1`, file]);
  });

  it('loses nothing while fewer files than keep were rotated, and one record more begins a new file', async () => {
    const file = fresh();
    const log = new AuditLog(file, silentLogger, rotation);
    const last = 10 + PER_FILE * (rotation.keep + 1) - 1;
    for (let n = 10; n <= last; n++) await log.record(numbered(n));
    expect(opNumbers((await readAll(log)).records)).toEqual(range(10, last));
    await log.record(numbered(last + 1));
    expect(await sizes(file, rotation.keep)).toEqual([LINE, LINE * PER_FILE, LINE * PER_FILE, LINE * PER_FILE, null]);
    expect(opNumbers((await readAll(log)).records)).toEqual(range(10 + PER_FILE, last + 1));
  });

  it('keeps the order of records made at once, rotations among them, and never splits one', async () => {
    const file = fresh();
    const log = new AuditLog(file, silentLogger, { maxBytes: LINE * 3 + 7, keep: 100 });
    await Promise.all(range(10, 99).map((n) => log.record(numbered(n)))); // none waits for the one before
    const { records, skipped } = await readAll(log);
    expect(skipped).toBe(0);
    expect(opNumbers(records)).toEqual(range(10, 99));
    for (const f of log.files()) {
      const text = await fs.readFile(f, 'utf8').catch(() => '');
      expect(text === '' || text.endsWith('\n')).toBe(true);
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(LINE * 3 + 7);
    }
  });

  it('gives a record larger than the bound a file of its own', async () => {
    const file = fresh();
    const log = new AuditLog(file, silentLogger, { maxBytes: 200, keep: 2 });
    await log.record(numbered(10));
    await log.record({ ...numbered(11), message: 'm'.repeat(500) });
    await log.record(numbered(12));
    const [current, one, two] = await sizes(file, 2);
    expect(current).toBe(LINE);
    expect(one).toBeGreaterThan(500);
    expect(two).toBe(LINE);
    expect(opNumbers((await readAll(log)).records)).toEqual([10, 11, 12]);
  });

  it('a reader that opened the files keeps its view while records and rotations go on', async () => {
    const file = fresh();
    const log = new AuditLog(file, silentLogger, { maxBytes: LINE * 2, keep: 10 });
    for (let n = 10; n < 15; n++) await log.record(numbered(n));
    const files = await log.open();
    try {
      for (let n = 15; n < 25; n++) await log.record(numbered(n)); // five more rotations under the reader
      expect(opNumbers((await readAudit(files, { limit: 100 })).records)).toEqual(range(10, 14));
    } finally {
      await Promise.all(files.map((f) => f.handle.close()));
    }
    expect(opNumbers((await readAll(log)).records)).toEqual(range(10, 24));
  });
});

/** A hand-written line of the log. */
const line = (ts: string, r: object): string => `${JSON.stringify({ ts, ...r })}\n`;

describe('shell.json', () => {
  const base = { operators: [{ name: 'alice', role: 'admin', keys: ['ssh-ed25519 AAAA alice'] }] };

  it('takes `audit` next to `auditFile`, with 10 MiB and 5 files by default', () => {
    expect(shellConfigSchema.parse(base).audit).toEqual({ maxBytes: 10 * 1024 * 1024, keep: 5 });
    const cfg = shellConfigSchema.parse({ ...base, auditFile: 'a.jsonl', audit: { maxBytes: 4096 } });
    expect([cfg.auditFile, cfg.audit]).toEqual(['a.jsonl', { maxBytes: 4096, keep: 5 }]);
  });

  it.each([{ maxBytes: 100 }, { maxBytes: 2048.5 }, { keep: 0 }, { keep: 101 }, { max: 1 }])('refuses audit %j', (audit) => {
    expect(shellConfigSchema.safeParse({ ...base, audit }).success).toBe(false);
  });
});

describe('reading files cut short or edited', () => {
  it('skips a partial last line, junk, records of the wrong shape and a line too long to be one, and reads on', async () => {
    const file = fresh();
    await fs.mkdir(path.dirname(file), { recursive: true });
    const ok = (n: number): string => line(`2026-11-21T10:00:0${n}.000Z`, numbered(n));
    await fs.writeFile(`${file}.1`, [ok(1), 'not json\n', '\n', line('yesterday', numbered(9)), line('2026-11-21T10:00:00Z', { op: 'x', result: 'ok' }), ok(2)].join(''));
    await fs.writeFile(file, [`${'x'.repeat(LINE_MAX * 3)}\n`, '{"ts":"2026-11-2', '\n', ok(3), '[1,2]\n', ok(4), ok(5).slice(0, 40)].join(''));
    const log = new AuditLog(file, silentLogger, { maxBytes: 1 << 20, keep: 1 });
    const { records, skipped } = await readAll(log);
    expect(opNumbers(records)).toEqual([1, 2, 3, 4]);
    expect(skipped).toBe(7);
  });

  it('keeps fields it does not know, and any op name (config changes are records too)', async () => {
    const file = fresh();
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, line('2026-11-21T10:00:00+02:00', { operator: 'alice', op: 'config.reload', result: 'ok', detail: { changed: ['operators'] }, extra: 1 }));
    const { records } = await readAll(new AuditLog(file, silentLogger));
    expect(records).toEqual([{ ts: '2026-11-21T10:00:00+02:00', operator: 'alice', op: 'config.reload', result: 'ok', detail: { changed: ['operators'] }, extra: 1 }]);
    expect(auditRow(records[0] as StoredRecord, new Map())).toEqual(['2026-11-21 08:00:00', 'alice', 'config.reload', '-', 'ok', 'changed=["operators"]']);
  });

  it('a record written after a crash cut the last line short starts on a line of its own', async () => {
    const file = fresh();
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, `${line('2026-11-21T10:00:01.000Z', numbered(1))}{"ts":"2026-11-21T10:00:0`);
    const log = new AuditLog(file, silentLogger);
    await log.record(numbered(2));
    await log.record(numbered(3));
    const { records, skipped } = await readAll(log);
    expect(opNumbers(records)).toEqual([1, 2, 3]);
    expect(skipped).toBe(1);
  });
});

describe('filters', () => {
  const T0 = Date.parse('2026-11-21T10:00:00.000Z');
  const at = (minutes: number): string => new Date(T0 + minutes * 60_000).toISOString();
  const records: Array<[number, Record<string, unknown>]> = [
    [0, { operator: 'alice', op: 'create', session: LIVE, agent: 'agent-1', result: 'ok' }],
    [1, { operator: 'alice', op: 'create', session: GONE, agent: 'agent-1', result: 'ok' }],
    [2, { operator: 'bob', op: 'clone', session: LIVE, agent: 'agent-1', result: 'ok', detail: { clone: GONE } }],
    [3, { operator: 'vic', op: 'kill', session: GONE, agent: 'agent-1', result: 'refused', code: 'FORBIDDEN', message: 'vic is a viewer and may not kill' }],
    [4, { operator: 'bob', op: 'delete', session: GONE, agent: 'agent-1', result: 'ok' }],
    [5, { operator: 'bob', op: 'kill', result: 'refused', code: 'NOT_FOUND', message: 'no session matches "old"', detail: { ref: 'old' } }],
    [6, { operator: 'alice', op: 'agent.add', result: 'ok' }],
    [7, { operator: 'bob', op: 'kill', session: LIVE, agent: 'agent-1', result: 'ok' }],
  ];

  /** A service over one agent holding LIVE (named web), its log holding the records above (split over two files). */
  async function setup() {
    const file = fresh();
    await fs.mkdir(path.dirname(file), { recursive: true });
    const lines = records.map(([m, r]) => line(at(m), r));
    await fs.writeFile(`${file}.1`, lines.slice(0, 3).join(''));
    await fs.writeFile(file, lines.slice(3).join(''));
    const audit = new AuditLog(file, silentLogger);
    const view = viewWithAgent('1.0', 'host');
    view.apply('agent-1', { type: 'session', session: viewEntry({ id: LIVE, name: 'web' }) });
    const agents: Agents = { call: () => Promise.reject(new BerthError('CONFLICT', 'no')), attach: () => Promise.reject(new BerthError('CONFLICT', 'no')), addressOf: () => null };
    const service = new ShellService({ view, agents, audit, dns: null, logger: silentLogger });
    const cli = async (cmd: string, op = ALICE) => {
      let out = '';
      let err = '';
      const r = await runCommand(cmd, op, service, { out: (s) => (out += s), err: (s) => (err += s) });
      return { code: r.code, out, err };
    };
    /** The minutes (record numbers) `audit ARGS --json` prints. */
    const minutes = async (args: string): Promise<number[]> => {
      const r = await cli(`audit ${args} --json`);
      expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
      return r.out
        .split('\n')
        .filter(Boolean)
        .map((l) => (Date.parse((JSON.parse(l) as { ts: string }).ts) - T0) / 60_000);
    };
    return { audit, service, cli, minutes, file };
  }

  it('every record, oldest first, across the files; --limit keeps the most recent', async () => {
    const { minutes } = await setup();
    expect(await minutes('')).toEqual(range(0, 7));
    expect(await minutes('--limit 3')).toEqual([5, 6, 7]);
    expect(await minutes('--limit 1')).toEqual([7]);
  });

  it('--operator, --op and --since (an ISO time) narrow it, together too', async () => {
    const { minutes } = await setup();
    expect(await minutes('--operator bob')).toEqual([2, 4, 5, 7]);
    expect(await minutes('--op kill')).toEqual([3, 5, 7]);
    expect(await minutes('--op agent.add')).toEqual([6]);
    expect(await minutes(`--since ${at(4)}`)).toEqual([4, 5, 6, 7]);
    expect(await minutes('--since 2026-11-21T10:05')).toEqual([5, 6, 7]); // no offset: UTC
    expect(await minutes('--since 2026-11-21T12:05+02:00')).toEqual([5, 6, 7]);
    expect(await minutes('--operator bob --op kill --since 2026-11-21T10:06Z')).toEqual([7]);
    expect(await minutes('--operator nobody')).toEqual([]);
  });

  it('--session: a live session by name or id; a gone one by id or prefix; the REF an op was refused for', async () => {
    const { minutes } = await setup();
    expect(await minutes('--session web')).toEqual([0, 2, 7]);
    expect(await minutes(`--session ${LIVE.slice(0, 6)}`)).toEqual([0, 2, 7]);
    expect(await minutes(`--session ${GONE}`)).toEqual([1, 2, 3, 4]); // 2 made it, as a clone
    expect(await minutes('--session a1b2')).toEqual([1, 2, 3, 4]);
    expect(await minutes('--session old')).toEqual([5]);
    expect(await minutes('--session nothing')).toEqual([]);
  });

  it('the text: one aligned line per record, a live session by name, a gone one by its id’s start', async () => {
    const { cli } = await setup();
    const r = await cli('audit --since 2026-11-21T10:03Z');
    expect(r).toEqual({
      code: 0,
      err: '',
      out: [
        'TIME (UTC)           OPERATOR  OP         SESSION   RESULT   DETAIL',
        '2026-11-21 10:03:00  vic       kill       a1b2c3d4  refused  FORBIDDEN: vic is a viewer and may not kill',
        '2026-11-21 10:04:00  bob       delete     a1b2c3d4  ok',
        '2026-11-21 10:05:00  bob       kill       -         refused  NOT_FOUND: no session matches "old"  ref=old',
        '2026-11-21 10:06:00  alice     agent.add  -         ok',
        '2026-11-21 10:07:00  bob       kill       web       ok',
        '',
      ].join('\n'),
    });
    expect(await cli('audit --operator nobody')).toEqual({ code: 0, out: 'no audit record matches\n', err: '' });
  });

  it('only an admin may read it; a refusal is recorded like any other', async () => {
    const { cli, audit, file } = await setup();
    for (const op of [{ name: 'bob', role: 'operator' }, { name: 'vic', role: 'viewer' }] as Operator[]) {
      const r = await cli('audit', op);
      expect(r).toEqual({ code: 1, out: '', err: `error: FORBIDDEN: ${op.name} is ${op.role === 'viewer' ? 'a' : 'an'} ${op.role} and may not audit\n` });
    }
    await audit.settled();
    const tail = (await fs.readFile(file, 'utf8')).trim().split('\n').slice(-2);
    expect(tail.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual(
      ['bob', 'vic'].map((operator) => expect.objectContaining({ operator, op: 'audit', result: 'refused', code: 'FORBIDDEN' })),
    );
    // Reading is not itself recorded, as listing is not.
    const before = (await fs.readFile(file, 'utf8')).length;
    expect((await cli('audit')).code).toBe(0);
    await audit.settled();
    expect((await fs.readFile(file, 'utf8')).length).toBe(before);
  });

  it('refuses bad flags as usage errors, and an ambiguous REF as other commands do', async () => {
    const { cli, service } = await setup();
    for (const args of ['--limit 0', '--limit 10001', '--limit x', '--since yesterday', '--since 2026-13-01', '--since 5y', 'extra']) {
      expect((await cli(`audit ${args}`)).code).toBe(2);
    }
    service.view.apply('agent-1', { type: 'session', session: viewEntry({ id: `${LIVE.slice(0, 8)}-0000-4000-8000-000000000000`, name: 'api' }) });
    const r = await cli(`audit --session ${LIVE.slice(0, 4)}`);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: BAD_REQUEST: "3f2b" is ambiguous/);
  });

  it('says on stderr how many lines were not records', async () => {
    const { cli, file } = await setup();
    await fs.appendFile(file, 'junk\n{"ts":');
    const r = await cli('audit --limit 1');
    expect(r.code).toBe(0);
    expect(r.err).toBe('berth: 2 lines are not audit records (cut short or edited): left out\n');
  });
});

describe('relative and ISO times', () => {
  const now = new Date('2026-11-21T12:00:00.000Z');
  it.each([
    ['30s', '2026-11-21T11:59:30.000Z'],
    ['10m', '2026-11-21T11:50:00.000Z'],
    ['2h', '2026-11-21T10:00:00.000Z'],
    ['3d', '2026-11-18T12:00:00.000Z'],
    ['0m', '2026-11-21T12:00:00.000Z'],
    ['2026-11-20', '2026-11-20T00:00:00.000Z'],
    ['2026-11-20T08:30', '2026-11-20T08:30:00.000Z'],
    ['2026-11-20 08:30:15', '2026-11-20T08:30:15.000Z'],
    ['2026-11-20T08:30:15.250Z', '2026-11-20T08:30:15.250Z'],
    ['2026-11-20T08:30+01:00', '2026-11-20T07:30:00.000Z'],
  ])('%s', (text, iso) => {
    expect(sinceOf(text, now).toISOString()).toBe(iso);
  });

  it.each(['', '10', 'm', '-5m', '1.5h', '2w', 'now', '2026-11-20T25:00', '20261120', '2026-11-20T08:30 UTC'])('refuses %j', (text) => {
    expect(() => sinceOf(text, now)).toThrow(UsageError);
  });
});

describe('inert output', () => {
  const hostile = '\u001b]52;c;eA==\u0007\u009b6n\u202e\u2028evil';
  const rec: StoredRecord = {
    ts: '2026-11-21T10:00:00.000Z',
    operator: `op${hostile}`,
    op: `config.${hostile}`,
    session: `${hostile}${GONE}`,
    result: `ok${hostile}`,
    code: 'CONFLICT',
    message: `said\n${hostile}`,
    detail: { ref: hostile, reason: `${hostile} ${'w'.repeat(5000)}` },
  };

  it('every cell of the text is inert, on one line, and bounded', () => {
    const text = table(AUDIT_HEAD, [auditRow(rec, new Map())]);
    expect(rawChars(text, { lines: true })).toEqual([]);
    expect(text.trimEnd().split('\n')).toHaveLength(2);
    expect(text.length).toBeLessThan(1200);
    expect(text).toContain('\\x1b]52;c;eA==\\x07\\x9b6n\\u202e\\u2028evil');
  });

  it('a hand-edited line with raw controls comes out of --json as escapes, and parses back to the same record', async () => {
    const file = fresh();
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, `${JSON.stringify(rec)}\n`); // C1, bidi and line separators raw, as JSON allows
    expect(rawChars(await fs.readFile(file, 'utf8'), { lines: true })).toEqual(expect.arrayContaining(['U+009B', 'U+202E', 'U+2028']));
    const audit = new AuditLog(file, silentLogger);
    const view = viewWithAgent('1.0', 'host');
    const agents: Agents = { call: () => Promise.reject(new Error('no')), attach: () => Promise.reject(new Error('no')), addressOf: () => null };
    const service = new ShellService({ view, agents, audit, dns: null, logger: silentLogger });
    for (const json of [true, false]) {
      let out = '';
      const r = await runCommand(`audit${json ? ' --json' : ''}`, ALICE, service, { out: (s) => (out += s), err: () => undefined });
      expect(r.code).toBe(0);
      expect(rawChars(out, { lines: true })).toEqual([]);
      if (json) expect(JSON.parse(out)).toEqual(rec);
    }
  });
});
