/**
 * Activity from Claude Code's hooks: each documented event maps to its activity; a report is
 * untrusted (bad JSON, unknown events, huge texts change nothing or are cut short); the watcher
 * follows a real folder with inotify, reads at most every READ_GAP_MS however fast the session
 * writes, never follows a link or reads a FIFO, and tells only when something changed. The menu
 * colours the cell and counts the sessions that need an operator.
 */
import { promises as fs } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../common/logging';
import { Activity } from '../../common/protocol';
import { activityOfReport, gitOfReport, isNews } from '../../agent/activity/hook-report';
import { OUTPUT_FILE, READ_GAP_MS, REPORT_FILE, StatusWatch } from '../../agent/activity/status-watch';
import { activityCell, sessionRow } from '../../shell/cli/format';
import { INITIAL_STATE } from '../../shell/ui/menu-state';
import { needingYou, tableLines, titleLine } from '../../shell/ui/menu-view';
import { BerthError } from '../../common/errors';
import { AuditLog } from '../../shell/audit';
import { Agents } from '../../shell/agents/pool';
import { runCommand } from '../../shell/cli/commands';
import { globRegExp } from '../../shell/cli/list-filter';
import { ShellService } from '../../shell/service';
import { viewEntry } from '../helpers/entries';
import { viewWithAgent } from '../helpers/raw-text';
import { sleep, until } from '../helpers/wait';

const noAgents: Agents = {
  call: (() => Promise.reject(new BerthError('AGENT_OFFLINE', 'no'))) as Agents['call'],
  attach: () => Promise.reject(new BerthError('AGENT_OFFLINE', 'no')),
  addressOf: () => null,
};

const NOW = new Date('2026-12-02T10:00:00.000Z');
const withActivity = (id: string, name: string, activity: Activity | null) => ({ ...viewEntry({ id, name }), activity });
const base = { session_id: 'abc', transcript_path: '/home/claude/.claude/x.jsonl', cwd: '/home/claude/web' };
const report = (o: Record<string, unknown>): string => JSON.stringify({ ...base, ...o });

describe('reports', () => {
  test('each event Claude Code documents means its activity', () => {
    const at = NOW.toISOString();
    const cases: Array<[Record<string, unknown>, Activity | null]> = [
      [{ hook_event_name: 'SessionStart', source: 'startup' }, { state: 'waiting', since: at, detail: 'started' }],
      [{ hook_event_name: 'UserPromptSubmit', prompt: 'fix the tests' }, { state: 'working', since: at, detail: '' }],
      [{ hook_event_name: 'PreToolUse', tool_name: 'Bash', tool_input: { command: 'npm test' } }, { state: 'working', since: at, detail: 'Bash' }],
      [{ hook_event_name: 'PostToolUse', tool_name: 'Edit', tool_input: {}, tool_response: {} }, { state: 'working', since: at, detail: 'Edit' }],
      [
        { hook_event_name: 'Notification', notification_type: 'permission_prompt', message: 'Claude needs your permission to use Bash' },
        { state: 'permission', since: at, detail: 'Claude needs your permission to use Bash' },
      ],
      [
        { hook_event_name: 'Notification', notification_type: 'idle_prompt', message: 'Claude is waiting for your input' },
        { state: 'waiting', since: at, detail: 'Claude is waiting for your input' },
      ],
      // Older payloads carry no notification_type: the message says which.
      [{ hook_event_name: 'Notification', message: 'Claude needs your permission to use Write' }, { state: 'permission', since: at, detail: 'Claude needs your permission to use Write' }],
      [{ hook_event_name: 'Notification', notification_type: 'auth_success', message: 'ok' }, null],
      [{ hook_event_name: 'Stop', stop_hook_active: false }, { state: 'done', since: at, detail: '' }],
      [{ hook_event_name: 'SessionEnd', reason: 'exit' }, { state: 'exited', since: at, detail: '' }],
      [{ hook_event_name: 'PreCompact' }, null],
    ];
    for (const [payload, want] of cases) expect({ payload, got: activityOfReport(report(payload), NOW) }).toEqual({ payload, got: want });
  });

  test('a report is untrusted: bad JSON, wrong types and oversized fields mean nothing; details are one short line', () => {
    expect(activityOfReport('{"hook_event_name": "Stop"', NOW)).toBeNull();
    expect(activityOfReport('[]', NOW)).toBeNull();
    expect(activityOfReport(JSON.stringify({ hook_event_name: 42 }), NOW)).toBeNull();
    expect(activityOfReport(JSON.stringify({ hook_event_name: 'PreToolUse', tool_name: 'x'.repeat(300) }), NOW)).toBeNull();
    const long = activityOfReport(report({ hook_event_name: 'Notification', notification_type: 'permission_prompt', message: `line one\n\u001b[2J${'y'.repeat(500)}` }), NOW);
    expect(long?.detail).toHaveLength(200);
    expect(long?.detail).not.toContain('\n');
  });

  test('a report cut at its cap (a big prompt or tool input) still says its event and tool', () => {
    const big = report({ hook_event_name: 'PostToolUse', tool_name: 'Write', tool_input: { content: 'x'.repeat(30_000) } }).slice(0, 16_384);
    expect(activityOfReport(big, NOW)).toEqual({ state: 'working', since: NOW.toISOString(), detail: 'Write' });
    const prompt = report({ hook_event_name: 'UserPromptSubmit', prompt: 'y'.repeat(30_000) }).slice(0, 16_384);
    expect(activityOfReport(prompt, NOW)?.state).toBe('working');
    // A cut inside the event's own name says nothing; a short broken report is no cut one.
    expect(activityOfReport(`{"hook_event_name": "Pre${' '.repeat(16_384)}`, NOW)).toBeNull();
    expect(activityOfReport('{"hook_event_name": "Stop", ', NOW)).toBeNull();
    expect(activityOfReport(`[${report({ hook_event_name: 'Stop' })}]`, NOW)).toBeNull();
  });

  test('news is a new state or detail, not a new time', () => {
    const a: Activity = { state: 'working', since: NOW.toISOString(), detail: 'Bash' };
    expect(isNews(null, a)).toBe(true);
    expect(isNews(a, { ...a, since: '2026-12-02T10:00:05.000Z' })).toBe(false);
    expect(isNews(a, { ...a, detail: 'Edit' })).toBe(true);
    expect(isNews(a, { ...a, state: 'done' })).toBe(true);
  });
});

describe("the project's git state", () => {
  test('read from git status --porcelain=v2 --branch and the subject line; junk is ignored, texts are cut', () => {
    const report = [
      '# branch.oid 0123abcd',
      '# branch.head berth/web',
      '# branch.upstream origin/berth/web',
      '# branch.ab +2 -1',
      '1 .M N... 100644 100644 100644 aaa bbb README.md',
      '2 R. N... 100644 100644 100644 aaa bbb R100 new.txt\told.txt',
      'u UU N... 100644 100644 100644 100644 a b c conflict.txt',
      '? notes.txt',
      '! ignored.txt',
      'junk line',
      `# subject ${'Fix the tests '.repeat(30)}`,
    ].join('\n');
    const g = gitOfReport(report);
    expect(g).toMatchObject({ branch: 'berth/web', ahead: 2, behind: 1, changed: 4 });
    expect(g?.subject).toHaveLength(200);
    expect(gitOfReport('# branch.head (detached)\n# branch.ab +x -1\n')).toEqual({ branch: '(detached)', ahead: null, behind: null, changed: 0, subject: '' });
    expect(gitOfReport('not git at all')).toBeNull();
  });
});

describe('the watcher', () => {
  let dir: string;
  let changes: string[];
  let watch: StatusWatch;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-status-'));
    changes = [];
    watch = new StatusWatch({ changed: (id) => changes.push(id), logger: silentLogger });
  });
  afterEach(async () => {
    watch.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** What berth-hook does: write aside, rename into place. */
  const put = async (text: string, into = dir): Promise<void> => {
    const tmp = path.join(into, `.event.${Math.random()}`);
    await fs.writeFile(tmp, text);
    await fs.rename(tmp, path.join(into, REPORT_FILE));
  };

  test('follows a folder with inotify: each new state is told once; the same state again is not', async () => {
    watch.follow('s1', dir);
    await put(report({ hook_event_name: 'UserPromptSubmit' }));
    await until('working', async () => watch.activity('s1')?.state, (s) => s === 'working', 2000, 10);
    const since = watch.activity('s1')?.since;
    await sleep(READ_GAP_MS + 20);
    await put(report({ hook_event_name: 'PreToolUse', tool_name: 'Bash' }));
    await until('Bash', async () => watch.activity('s1')?.detail, (d) => d === 'Bash', 2000, 10);
    // Another detail in the same state keeps when the state began.
    expect(watch.activity('s1')?.since).toBe(since);
    await sleep(READ_GAP_MS + 20);
    await put(report({ hook_event_name: 'PostToolUse', tool_name: 'Bash' }));
    await sleep(READ_GAP_MS * 3);
    expect(changes).toEqual(['s1', 's1']);
  });

  test('working with no report for stuckAfterMs is stuck; the next report ends it; other states never get stuck', async () => {
    watch.stop();
    watch = new StatusWatch({ changed: (id) => changes.push(id), logger: silentLogger, stuckAfterMs: 300 });
    watch.follow('s1', dir);
    await put(report({ hook_event_name: 'PreToolUse', tool_name: 'Bash' }));
    await until('working', async () => watch.activity('s1')?.state, (s) => s === 'working', 2000, 10);
    await until('stuck', async () => watch.activity('s1'), (a) => a?.state === 'stuck', 3000, 20);
    expect(watch.activity('s1')?.detail).toBe('no report for 1 s');
    // A report (even the same tool again) ends it.
    await put(report({ hook_event_name: 'PostToolUse', tool_name: 'Bash' }));
    await until('working again', async () => watch.activity('s1')?.state, (s) => s === 'working', 2000, 10);
    await sleep(READ_GAP_MS + 20);
    await put(report({ hook_event_name: 'Stop' }));
    await until('done', async () => watch.activity('s1')?.state, (s) => s === 'done', 2000, 10);
    await sleep(600);
    expect(watch.activity('s1')?.state).toBe('done');
  });

  test('reads what is there when it starts following', async () => {
    await put(report({ hook_event_name: 'Stop' }));
    watch.follow('s1', dir);
    await until('done', async () => watch.activity('s1')?.state, (s) => s === 'done', 2000, 10);
  });

  test('a flood of reports costs at most one read per gap, and the last one wins', async () => {
    watch.follow('s1', dir);
    const started = Date.now();
    for (let i = 0; i < 300; i++) await put(report({ hook_event_name: 'PreToolUse', tool_name: `tool-${i}` }));
    await put(report({ hook_event_name: 'Stop' }));
    await until('the last report', async () => watch.activity('s1')?.state, (s) => s === 'done', 3000, 10);
    const took = Date.now() - started;
    // Each change told came from one read; reads are at least READ_GAP_MS apart.
    expect(changes.length).toBeLessThanOrEqual(Math.ceil(took / READ_GAP_MS) + 1);
  });

  test('never follows a link, never reads a FIFO or an oversized file, and keeps working after', async () => {
    const outside = path.join(dir, '..', `${path.basename(dir)}-outside.json`);
    await fs.writeFile(outside, report({ hook_event_name: 'Stop' }));
    try {
      await fs.symlink(outside, path.join(dir, REPORT_FILE));
      watch.follow('s1', dir);
      await sleep(READ_GAP_MS * 3);
      expect(watch.activity('s1')).toBeNull();
      await fs.rm(path.join(dir, REPORT_FILE));
      execFileSync('mkfifo', [path.join(dir, REPORT_FILE)]);
      await sleep(READ_GAP_MS * 3);
      expect(watch.activity('s1')).toBeNull();
      await fs.rm(path.join(dir, REPORT_FILE));
      await put(JSON.stringify({ hook_event_name: 'Stop', pad: 'x'.repeat(20_000) }));
      await sleep(READ_GAP_MS * 3);
      expect(watch.activity('s1')).toBeNull();
      await put(report({ hook_event_name: 'SessionStart' }));
      await until('a good report after', async () => watch.activity('s1')?.state, (s) => s === 'waiting', 2000, 10);
    } finally {
      await fs.rm(outside, { force: true });
    }
  });

  test('sessions are apart: a report in one folder changes only its session; forget stops following', async () => {
    const other = path.join(dir, 'other');
    await fs.mkdir(other);
    watch.follow('a', dir);
    watch.follow('b', other);
    await put(report({ hook_event_name: 'Stop' }), other);
    await until('b done', async () => watch.activity('b')?.state, (s) => s === 'done', 2000, 10);
    expect(watch.activity('a')).toBeNull();
    watch.forget('b');
    expect(watch.activity('b')).toBeNull();
    await put(report({ hook_event_name: 'UserPromptSubmit' }), other);
    await sleep(READ_GAP_MS * 3);
    expect(changes).toEqual(['b']);
  });
});

describe('output, for any command', () => {
  let dir: string;
  let changes: string[];
  let watch: StatusWatch;
  const IDLE_MS = 400;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-output-'));
    changes = [];
    watch = new StatusWatch({ changed: (id) => changes.push(id), logger: silentLogger, idleAfterMs: IDLE_MS });
  });
  afterEach(async () => {
    watch.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** What berth-output does when the pane prints: a file aside, renamed into place. */
  const printed = async (): Promise<void> => {
    const tmp = path.join(dir, `.output.${Math.random()}`);
    await fs.writeFile(tmp, 'output\n');
    await fs.rename(tmp, path.join(dir, OUTPUT_FILE));
  };
  const state = async (): Promise<string | undefined> => watch.activity('s1')?.state;

  test('printing is working; quiet for idleAfterMs is idle, since the last output; printing again is working', async () => {
    watch.follow('s1', dir);
    await printed();
    await until('working', state, (s) => s === 'working', 2000, 10);
    expect(watch.activity('s1')?.detail).toBe('output');
    // Output that goes on keeps it working, and tells nothing new.
    for (let i = 0; i < 5; i++) {
      await sleep(IDLE_MS / 4);
      await printed();
    }
    expect(await state()).toBe('working');
    const lastOutput = Date.now();
    await until('idle', state, (s) => s === 'idle', 3000, 20);
    const idle = watch.activity('s1');
    expect(idle?.detail).toBe('no output');
    expect(Math.abs(Date.parse(idle?.since ?? '') - lastOutput)).toBeLessThan(IDLE_MS / 2);
    expect(Date.now() - lastOutput).toBeGreaterThanOrEqual(IDLE_MS - 20);
    await printed();
    await until('working again', state, (s) => s === 'working', 2000, 10);
    expect(changes).toEqual(['s1', 's1', 's1']);
  });

  test("once a hook reported, its report wins: output changes nothing and the session never turns idle", async () => {
    watch.follow('s1', dir);
    await printed();
    await until('working', state, (s) => s === 'working', 2000, 10);
    const tmp = path.join(dir, '.event.x');
    await fs.writeFile(tmp, report({ hook_event_name: 'Notification', notification_type: 'permission_prompt', message: 'Claude needs your permission to use Bash' }));
    await fs.rename(tmp, path.join(dir, REPORT_FILE));
    await until('permission', state, (s) => s === 'permission', 2000, 10);
    await printed();
    await sleep(IDLE_MS * 2);
    expect(await state()).toBe('permission');
    // A new container forgets the hooks: output counts again.
    await watch.reset('s1', dir);
    expect(watch.activity('s1')).toBeNull();
    await printed();
    await until('working from output', state, (s) => s === 'working', 2000, 10);
  });

  test('a flood of output marks changes the state once and reads nothing', async () => {
    watch.follow('s1', dir);
    for (let i = 0; i < 500; i++) await printed();
    await until('working', state, (s) => s === 'working', 2000, 10);
    await sleep(50);
    expect(changes).toEqual(['s1']);
  });

  test('an agent that starts following a session recalls its last output from the file, never later than now', async () => {
    await printed();
    const old = new Date(Date.now() - 60_000);
    await fs.utimes(path.join(dir, OUTPUT_FILE), old, old);
    watch.follow('s1', dir);
    await until('idle', state, (s) => s === 'idle', 2000, 10);
    expect(Math.abs(Date.parse(watch.activity('s1')?.since ?? '') - old.getTime())).toBeLessThan(1000);
    watch.forget('s1');

    // Printed a moment ago: working, and idle once quiet long enough.
    await printed();
    watch.follow('s2', dir);
    await until('working', async () => watch.activity('s2')?.state, (s) => s === 'working', 2000, 10);
    await until('then idle', async () => watch.activity('s2')?.state, (s) => s === 'idle', 3000, 20);

    // A time in the future (the container's clock is its word) counts as now.
    const future = new Date(Date.now() + 3_600_000);
    await fs.utimes(path.join(dir, OUTPUT_FILE), future, future);
    watch.follow('s3', dir);
    await until('working', async () => watch.activity('s3'), (a) => a?.state === 'working', 2000, 10);
    expect(Date.parse(watch.activity('s3')?.since ?? '')).toBeLessThanOrEqual(Date.now());
  });
});

describe('the shell', () => {

  test('the ACTIVITY cell, its colour in the menu, and the count of sessions that need you', () => {
    const view = viewWithAgent('1.0', 'host');
    const at = NOW.toISOString();
    view.apply('agent-1', { type: 'session', session: withActivity('11111111-aaaa-4bbb-8ccc-000000000001', 'web', { state: 'permission', since: at, detail: 'Bash' }) });
    view.apply('agent-1', { type: 'session', session: withActivity('11111111-aaaa-4bbb-8ccc-000000000002', 'api', { state: 'done', since: at, detail: '' }) });
    view.apply('agent-1', { type: 'session', session: withActivity('11111111-aaaa-4bbb-8ccc-000000000003', 'db', null) });
    const shown = view.sessions();
    expect(shown.map(activityCell)).toEqual(['permission', 'done', '-']);
    expect(sessionRow(shown[0]!)[4]).toBe('permission');
    expect(needingYou(view.agentList())).toBe(1);
    const title = titleLine({ name: 'alice', role: 'admin' }, view.agentList(), 3, INITIAL_STATE);
    expect(title.find((s) => s.text === '1 needs you')?.tone).toBe('warn');
    // Row 0 is selected (one tone); the others colour their activity cell only.
    const lines = tableLines(shown, { ...INITIAL_STATE, selected: 0 }, 10);
    expect(lines[1]).toHaveLength(1);
    expect(lines[2]?.map((s) => s.tone)).toEqual(['plain', 'good', 'plain']);
    expect(lines[2]?.[1]?.text.trim()).toBe('done');
    expect(lines[3]?.map((s) => s.tone)).toEqual(['plain', 'plain', 'plain']);
    // An agent away: its sessions' activity is the last known, marked, and counts for nobody.
    view.setStatus('agent-1', 'offline', 'gone');
    expect(view.sessions().map(activityCell)).toEqual(['permission?', 'done?', '-']);
    expect(needingYou(view.agentList())).toBe(0);
  });
});

describe('list filters', () => {
  test('--agent, --state, --activity and --name GLOB: each a list, all must match; bad values are named', async () => {
    const view = viewWithAgent('1.0', 'host');
    const at = NOW.toISOString();
    view.apply('agent-1', { type: 'session', session: withActivity('11111111-aaaa-4bbb-8ccc-000000000001', 'web-1', { state: 'permission', since: at, detail: '' }) });
    view.apply('agent-1', { type: 'session', session: withActivity('11111111-aaaa-4bbb-8ccc-000000000002', 'api', { state: 'done', since: at, detail: '' }) });
    view.apply('agent-1', { type: 'session', session: viewEntry({ id: '11111111-aaaa-4bbb-8ccc-000000000003', name: 'web.2' }) });
    const service = new ShellService({ view, agents: noAgents, audit: new AuditLog('/dev/null', silentLogger), dns: null, logger: silentLogger });
    const names = async (line: string): Promise<string[]> => {
      let out = '';
      expect(await runCommand(`${line} --json`, { name: 'vic', role: 'viewer' }, service, { out: (t) => (out += t), err: () => undefined })).toEqual({ code: 0 });
      return (JSON.parse(out) as Array<{ name: string }>).map((s) => s.name);
    };
    expect(await names('list')).toEqual(['web-1', 'api', 'web.2']);
    expect(await names("list --name 'web*'")).toEqual(['web-1', 'web.2']);
    expect(await names("list --name 'web.?'")).toEqual(['web.2']);
    expect(await names('list --activity permission,done')).toEqual(['web-1', 'api']);
    expect(await names('list --activity none')).toEqual(['web.2']);
    expect(await names("list --activity done --activity permission --name 'w*'")).toEqual(['web-1']);
    expect(await names('list --agent agent-2')).toEqual([]);
    let err = '';
    expect(await runCommand('list --activity busy', { name: 'vic', role: 'viewer' }, service, { out: () => undefined, err: (t) => (err += t) })).toEqual({ code: 2 });
    expect(err).toContain('--activity must be one of permission, waiting, stuck, done, working, idle, exited, none (got busy)');
    expect(globRegExp('a.b*').test('a.bc')).toBe(true);
    expect(globRegExp('a.b*').test('axbc')).toBe(false);
  });
});

describe('watch', () => {
  test('--json: the sessions, synced, then one line per change (a burst gives one), removals, until the client leaves', async () => {
    const view = viewWithAgent('1.0', 'host');
    const A = '11111111-aaaa-4bbb-8ccc-000000000001';
    const B = '11111111-aaaa-4bbb-8ccc-000000000002';
    view.apply('agent-1', { type: 'session', session: withActivity(A, 'web', null) });
    view.apply('agent-1', { type: 'session', session: withActivity(B, 'api', null) });
    const service = new ShellService({ view, agents: noAgents, audit: new AuditLog('/dev/null', silentLogger), dns: null, logger: silentLogger });
    const lines: Array<Record<string, unknown>> = [];
    let leave: () => void = () => undefined;
    const closed = new Promise<void>((r) => (leave = r));
    const io = {
      out: (t: string) => t.split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)),
      err: () => undefined,
      client: { closed, backlog: () => 0 },
    };
    const watching = runCommand("watch --json --name 'w*'", { name: 'vic', role: 'viewer' }, service, io);
    await until('the start', async () => lines.length, (n) => n === 2, 1000, 5);
    expect(lines[0]).toMatchObject({ type: 'session', session: { id: A, activity: null } });
    expect(lines[1]).toEqual({ type: 'synced' });
    const at = NOW.toISOString();
    view.apply('agent-1', { type: 'session', session: withActivity(A, 'web', { state: 'working', since: at, detail: 'Bash' }) });
    view.apply('agent-1', { type: 'session', session: withActivity(A, 'web', { state: 'permission', since: at, detail: 'Bash' }) });
    view.apply('agent-1', { type: 'session', session: withActivity(B, 'api', { state: 'done', since: at, detail: '' }) });
    await until('the change', async () => lines.length, (n) => n >= 3, 1000, 5);
    await sleep(20);
    expect(lines.slice(2)).toEqual([{ type: 'session', session: expect.objectContaining({ id: A, activity: { state: 'permission', since: at, detail: 'Bash' } }) }]);
    view.forget('agent-1', A);
    await until('the removal', async () => lines.length, (n) => n === 4, 1000, 5);
    expect(lines[3]).toEqual({ type: 'removed', id: A });
    leave();
    expect(await watching).toEqual({ code: 0 });
  });

  test('a first snapshot larger than the backlog limit is no reason to drop the client; falling behind after it is', async () => {
    const view = viewWithAgent('1.0', 'host');
    const id = (i: number): string => `11111111-aaaa-4bbb-8ccc-${String(i).padStart(12, '0')}`;
    // About 3,000 sessions: the snapshot alone is over 1 MB.
    for (let i = 0; i < 3000; i++) view.apply('agent-1', { type: 'session', session: withActivity(id(i), `s${i}`, null) });
    const service = new ShellService({ view, agents: noAgents, audit: new AuditLog('/dev/null', silentLogger), dns: null, logger: silentLogger });
    let written = 0;
    let lines = 0;
    let err = '';
    // The client has read nothing yet: all that was written waits, and `behind` more on top.
    let behind = 0;
    const io = {
      out: (t: string) => {
        written += Buffer.byteLength(t);
        lines += t.split('\n').length - 1;
      },
      err: (t: string) => (err += t),
      client: { closed: new Promise<void>(() => undefined), backlog: () => written + behind },
    };
    const watching = runCommand('watch --json', { name: 'vic', role: 'viewer' }, service, io);
    await until('the snapshot', async () => lines, (n) => n === 3001, 2000, 5);
    expect(written).toBeGreaterThan(1024 * 1024);
    view.apply('agent-1', { type: 'session', session: withActivity(id(7), 's7', { state: 'working', since: NOW.toISOString(), detail: '' }) });
    await until('the change', async () => lines, (n) => n === 3002, 2000, 5);
    expect(err).toBe('');
    behind = 1024 * 1024 + 1;
    view.apply('agent-1', { type: 'session', session: withActivity(id(8), 's8', { state: 'working', since: NOW.toISOString(), detail: '' }) });
    expect(await watching).toEqual({ code: 1 });
    expect(err).toContain('watch: the client reads too slowly');
  });

  test('a client that stops reading is dropped with a clear error, not held in memory', async () => {
    const view = viewWithAgent('1.0', 'host');
    const service = new ShellService({ view, agents: noAgents, audit: new AuditLog('/dev/null', silentLogger), dns: null, logger: silentLogger });
    let err = '';
    const io = { out: () => undefined, err: (t: string) => (err += t), client: { closed: new Promise<void>(() => undefined), backlog: () => 2 * 1024 * 1024 } };
    const watching = runCommand('watch', { name: 'vic', role: 'viewer' }, service, io);
    view.apply('agent-1', { type: 'session', session: withActivity('11111111-aaaa-4bbb-8ccc-000000000001', 'web', null) });
    expect(await watching).toEqual({ code: 1 });
    expect(err).toContain('watch: the client reads too slowly');
  });
});
