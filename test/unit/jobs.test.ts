/**
 * Long ops as jobs: the agent's board pushes a job when it starts, when its phase changes, on
 * every heartbeat and once at its end; the shell's view keeps the running ones (an agent's hello
 * or a lost link drops them: the agent tells them again); `ops` and the menu's status line show
 * them with their progress, inert; the service tells a clone's caller each push of its own job.
 */
import { BerthError } from '../../common/errors';
import { silentLogger } from '../../common/logging';
import { Job, SessionEntry } from '../../common/protocol';
import { JobBoard } from '../../agent/jobs';
import { AuditLog } from '../../shell/audit';
import { Agents, CallOptions } from '../../shell/agents/pool';
import { runCommand } from '../../shell/cli/commands';
import { ClusterJob } from '../../shell/cluster/view';
import { byteSize, jobLine, jobProgress } from '../../shell/jobs-text';
import { ShellService } from '../../shell/service';
import { INITIAL_STATE } from '../../shell/ui/menu-state';
import { statusLine } from '../../shell/ui/menu-view';
import { viewEntry } from '../helpers/entries';
import { rawChars, viewWithAgent } from '../helpers/raw-text';

const SRC = '3f2b8c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const COPY = '9a8b7c6d-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const OP_ID = 'op-0123456789';

function job(over: Partial<Job> = {}): Job {
  return {
    opId: OP_ID,
    op: 'clone',
    operator: 'alice',
    session: SRC,
    target: { id: COPY, name: 'src-copy' },
    phase: 'copying',
    bytesDone: 1288490188,
    bytesTotal: 6227702579,
    startedAt: '2026-12-02T10:00:00.000Z',
    ...over,
  };
}

describe('JobBoard', () => {
  test('pushes at start, on a new phase, on every heartbeat and once at the end; lists only running jobs', async () => {
    const board = new JobBoard(30);
    const pushes: Job[] = [];
    board.on('job', (j: Job) => pushes.push(j));
    const h = board.begin({ opId: OP_ID, op: 'clone', operator: 'alice', session: SRC });
    expect(pushes.map((p) => p.phase)).toEqual(['measuring']);
    h.progress({ bytesTotal: 100 });
    expect(pushes).toHaveLength(1); // bytes wait for the heartbeat
    h.progress({ phase: 'copying', bytesDone: 10 });
    expect(pushes.at(-1)).toMatchObject({ phase: 'copying', bytesDone: 10, bytesTotal: 100 });
    expect(board.list()).toEqual([expect.objectContaining({ opId: OP_ID, phase: 'copying' })]);
    const before = pushes.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(pushes.length).toBeGreaterThanOrEqual(before + 2);
    h.end();
    h.end();
    expect(pushes.at(-1)?.phase).toBe('done');
    expect(pushes.filter((p) => p.phase === 'done')).toHaveLength(1);
    expect(board.list()).toEqual([]);
    const after = pushes.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(pushes.length).toBe(after); // no heartbeat once ended
  });

  test('a failed job carries its error code and text; progress after the end is ignored', () => {
    const board = new JobBoard(1000);
    const pushes: Job[] = [];
    board.on('job', (j: Job) => pushes.push(j));
    const h = board.begin({ opId: OP_ID, op: 'clone', operator: 'alice', session: SRC });
    h.end(new BerthError('LOCKED', 'session is locked by bob'));
    h.progress({ phase: 'copying' });
    expect(pushes.at(-1)).toMatchObject({ phase: 'failed', error: { code: 'LOCKED', message: 'session is locked by bob' } });
    expect(pushes).toHaveLength(2);
  });
});

describe('the view and the texts', () => {
  test('the view keeps running jobs; done, failed, a new hello and a lost link drop them', () => {
    const view = viewWithAgent('1.0', 'host');
    const seen: number[] = [];
    view.on('jobs', () => seen.push(view.jobs().length));
    view.apply('agent-1', { type: 'job', job: job() });
    expect(view.jobs()).toEqual([{ agent: 'agent-1', job: job() }]);
    view.apply('agent-1', { type: 'job', job: job({ phase: 'done' }) });
    expect(view.jobs()).toEqual([]);
    view.apply('agent-1', { type: 'job', job: job() });
    view.setStatus('agent-1', 'offline', 'gone');
    expect(view.jobs()).toEqual([]);
    view.setStatus('agent-1', 'online', '');
    view.apply('agent-1', { type: 'job', job: job() });
    const hello = view.agent('agent-1')?.hello;
    if (!hello) throw new Error('no hello');
    view.apply('agent-1', hello);
    expect(view.jobs()).toEqual([]);
    expect(seen).toEqual([1, 0, 1, 0, 1, 0]);
  });

  test('progress reads as sizes and a percentage; hostile names are inert', () => {
    expect(byteSize(512)).toBe('512 B');
    expect(byteSize(1536)).toBe('1.5 KB');
    expect(byteSize(6227702579)).toBe('5.8 GB');
    expect(jobProgress(job())).toBe('1.2 GB of 5.8 GB (20%)');
    expect(jobProgress(job({ bytesTotal: null }))).toBe('1.2 GB copied');
    expect(jobProgress(job({ phase: 'measuring', bytesDone: null, bytesTotal: null }))).toBe('measuring');
    const creating: ClusterJob = { agent: 'agent-1', job: job({ op: 'create', phase: 'fetching', target: { id: COPY, name: 'api' } }) };
    expect(jobLine(creating, 'ignored', new Date('2026-12-02T10:00:03.000Z'))).toBe('creating api: fetching the project, 3 s');
    const moving: ClusterJob = { agent: 'agent-1', job: job({ op: 'move', target: { id: COPY, name: 'agent-2' } }) };
    expect(jobLine(moving, 'web', new Date('2026-12-02T10:00:03.000Z'))).toBe('moving web → agent-2: 1.2 GB of 5.8 GB (20%), 3 s');
    const hostile: ClusterJob = { agent: 'agent-1', job: job({ target: { id: COPY, name: 'x\u001b]52;c;AAAA\u0007' } }) };
    const line = jobLine(hostile, 'src\u001b[2J', new Date('2026-12-02T10:00:12.000Z'));
    expect(rawChars(line)).toEqual([]);
    expect(line).toContain('cloning src');
    expect(line).toContain(', 12 s');
  });

  test("the menu's status line shows the running jobs, also beside the op in flight", () => {
    expect(statusLine(INITIAL_STATE, [])).toEqual([]);
    const one = statusLine(INITIAL_STATE, ['cloning a → a-copy: 10%']);
    expect(one.map((s) => s.text).join('')).toBe('cloning a → a-copy: 10%');
    const two = statusLine(INITIAL_STATE, ['cloning a', 'cloning b']);
    expect(two.map((s) => s.text).join('')).toBe('cloning a (and 1 more)');
    const busy = statusLine({ ...INITIAL_STATE, busy: 'cloning a' }, ['cloning a → a-copy: 10%']);
    expect(busy.map((s) => s.text).join('')).toContain('cloning a · cloning a → a-copy: 10%');
    const message = statusLine({ ...INITIAL_STATE, message: 'killed web' }, ['cloning a']);
    expect(message.map((s) => s.text).join('')).toBe('killed web');
  });
});

describe('the service and the CLI', () => {
  /** An agent whose clone pushes its job twice (through the view, as the link does) before it answers. */
  function setup() {
    const view = viewWithAgent('1.0', 'host');
    view.apply('agent-1', { type: 'session', session: viewEntry({ id: SRC, name: 'src' }) });
    let release: () => void = () => undefined;
    const answered = new Promise<void>((r) => (release = r));
    const agents: Agents = {
      call: (async (_agent: string, _op: string, _params: unknown, _operator: string, opts?: CallOptions) => {
        const opId = opts?.opId ?? '';
        view.apply('agent-1', { type: 'job', job: job({ opId, phase: 'measuring', bytesDone: null, bytesTotal: null }) });
        view.apply('agent-1', { type: 'job', job: job({ opId }) });
        await answered;
        view.apply('agent-1', { type: 'job', job: job({ opId, phase: 'done' }) });
        return viewEntry({ id: COPY, name: 'src-copy' }) as SessionEntry;
      }) as Agents['call'],
      attach: () => Promise.reject(new BerthError('CONFLICT', 'no')),
      addressOf: () => null,
    };
    const audit = new AuditLog('/dev/null', silentLogger);
    const service = new ShellService({ view, agents, audit, dns: null, logger: silentLogger });
    return { service, release };
  }

  test('ops lists the running job until it ends; a clone done at once prints no progress', async () => {
    const { service, release } = setup();
    let out = '';
    let err = '';
    const io = { out: (s: string) => (out += s), err: (s: string) => (err += s) };
    const cloning = runCommand('clone src --op-id op-abcdefgh', { name: 'alice', role: 'admin' }, service, io);
    await new Promise((r) => setImmediate(r));
    const opsOut: string[] = [];
    const opsIo = { out: (s: string) => opsOut.push(s), err: (_s: string) => undefined };
    await runCommand('ops --json', { name: 'vic', role: 'viewer' }, service, opsIo);
    expect(JSON.parse(opsOut.join(''))).toEqual({
      running: [expect.objectContaining({ agent: 'agent-1', opId: 'op-abcdefgh', op: 'clone', phase: 'copying', bytesDone: 1288490188 })],
      waiting: [],
    });
    opsOut.length = 0;
    await runCommand('ops', { name: 'vic', role: 'viewer' }, service, opsIo);
    expect(opsOut.join('')).toContain('1.2 GB of 5.8 GB (20%)');
    release();
    expect(await cloning).toEqual({ code: 0 });
    expect(out).toContain('cloned into src-copy');
    // Done within 2 s: no progress printed (a long one's is, in shell-clone-job).
    expect(err).toBe('');
    opsOut.length = 0;
    await runCommand('ops', { name: 'vic', role: 'viewer' }, service, opsIo);
    expect(opsOut.join('')).toBe('no op is running or waiting for its outcome\n');
  });
});
