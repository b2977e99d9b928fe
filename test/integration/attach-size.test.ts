/**
 * Terminal sizes against a real shell, a real agent and real containers: whatever size a client
 * asks (pty request, window change, attach header), tmux never sees more than 500x200 nor less
 * than a real size, and a read-only viewer's size never resizes the window while an operator is
 * attached. Sizes are read from tmux itself inside the container.
 */
import { randomUUID } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { SUBSYSTEMS } from '../../common/protocol';
import { AgentClient, Attach } from '../helpers/agent-client';
import { Cluster, startCluster } from '../helpers/cluster';
import { docker, testContainers } from '../helpers/docker';
import { ShellTerm, ShellTerms } from '../helpers/shell-term';
import { until } from '../helpers/wait';

const runLabel = `attsize-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
let agent: AgentClient;
const terms = new ShellTerms(() => cluster);

/** Creates a session through the shell; returns its id. */
async function createSession(name: string): Promise<string> {
  const r = await cluster.ssh('alice', [`create --name ${name} --json`]);
  expect({ code: r.code, err: r.err.replace(/^Warning: Permanently added .*\r?\n/m, '') }).toEqual({ code: 0, err: '' });
  return (JSON.parse(r.out) as { id: string }).id;
}

/** tmux inside a session's container, as the container's own user (the one its tmux runs as). */
function tmux(session: string, ...args: string[]): Promise<string> {
  return docker('exec', `berth-${session}`, 'tmux', ...args);
}

/** The window's size, as tmux has it: one row less than the client that sizes it (the status line). */
const windowSize = (session: string): Promise<string> => tmux(session, 'display', '-p', '-t', 'claude', '#{window_width}x#{window_height}');

/** Each attached tmux client as `rw|ro WIDTHxHEIGHT flags`, sorted. */
async function clients(session: string): Promise<string[]> {
  const out = await tmux(session, 'list-clients', '-F', '#{?client_readonly,ro,rw} #{client_width}x#{client_height} #{client_flags}');
  return out.split('\n').filter(Boolean).sort();
}

/**
 * Waits until the clients' sizes (`rw 120x40`, `ro 500x200`, …) are exactly these. While the
 * container or its tmux is still starting, the read says so instead of failing.
 */
function clientSizes(session: string, want: string[]): Promise<string[]> {
  const sizes = async (): Promise<string[]> =>
    clients(session).then(
      (cs) => cs.map((c) => c.split(' ').slice(0, 2).join(' ')),
      (err: unknown) => [`no tmux yet: ${String(err).split('\n').slice(-2).join(' ')}`],
    );
  return until(`tmux clients ${want.join(', ')}`, sizes, (s) => JSON.stringify(s) === JSON.stringify([...want].sort()), 15_000, 100);
}

/** Types a command whose output differs from its echo and waits until every watcher shows it. */
async function typeAndSee(from: ShellTerm, label: string, watchers: ShellTerm[]): Promise<void> {
  const n = 100 + Math.floor(Math.random() * 800);
  from.channel.write(`echo ${label}-$((${n}+1))-done\r`);
  for (const w of watchers) await until(`${label} seen`, async () => w.output(), (o) => o.includes(`${label}-${n + 1}-done`), 10_000, 50);
}

async function closeTerm(t: ShellTerm): Promise<void> {
  t.channel.close();
  await t.closed;
}

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 1 });
  await cluster.agentsOnline();
  const a = cluster.agents[0];
  if (!a) throw new Error('no agent');
  agent = await a.connect();
}, 60_000);

afterAll(async () => {
  terms.endAll();
  await cluster?.dispose();
  expect(await testContainers(runLabel)).toEqual([]);
});

describe('a read-only viewer beside an operator', () => {
  let session = '';
  let alice: ShellTerm;
  let vic: ShellTerm;

  beforeAll(async () => {
    session = await createSession('size-pair');
  });

  test('the operator\'s terminal sizes the window', async () => {
    alice = await terms.attach('alice', session, { cols: 120, rows: 40 });
    await clientSizes(session, ['rw 120x40']);
    expect(await windowSize(session)).toBe('120x39');
  });

  test('a viewer at 500x200 leaves the window at the operator\'s size; its client is read-only and ignores size', async () => {
    vic = await terms.attach('vic', session, { cols: 500, rows: 200 });
    // The viewer's client has its size: tmux has already worked out the window's size with it.
    await clientSizes(session, ['rw 120x40', 'ro 500x200']);
    expect(await windowSize(session)).toBe('120x39');
    const ro = (await clients(session)).find((c) => c.startsWith('ro '));
    expect(ro?.split(' ')[2]?.split(',')).toEqual(expect.arrayContaining(['read-only', 'ignore-size']));
  });

  test('the viewer\'s window changes, however large, are clamped and never resize the window', async () => {
    vic.resize(300, 100);
    await clientSizes(session, ['rw 120x40', 'ro 300x100']);
    expect(await windowSize(session)).toBe('120x39');
    // What `stty cols 40000 rows 40000` in the viewer's terminal sends.
    vic.resize(40000, 40000);
    await clientSizes(session, ['rw 120x40', 'ro 500x200']);
    expect(await windowSize(session)).toBe('120x39');
    // The viewer typing (activity makes a client tmux's "latest") changes nothing either.
    vic.channel.write('x');
    await typeAndSee(alice, 'after-viewer', [alice, vic]);
    expect(await windowSize(session)).toBe('120x39');
  });

  test('a flood of window changes from the viewer ends no attach', async () => {
    for (let i = 0; i < 200; i++) vic.resize(1 + ((i * 7919) % 60000), 1 + ((i * 104729) % 60000));
    vic.resize(200, 60);
    await clientSizes(session, ['rw 120x40', 'ro 200x60']);
    expect(await windowSize(session)).toBe('120x39');
    await typeAndSee(alice, 'after-flood', [alice, vic]);
  });

  test('the operator\'s own window changes are clamped: 40000x40000 is 500x200, 0x0 is 80x24', async () => {
    alice.resize(40000, 40000);
    await clientSizes(session, ['rw 500x200', 'ro 200x60']);
    expect(await windowSize(session)).toBe('500x199');
    alice.resize(0, 0);
    await clientSizes(session, ['rw 80x24', 'ro 200x60']);
    expect(await windowSize(session)).toBe('80x23');
    alice.resize(132, 43);
    await clientSizes(session, ['rw 132x43', 'ro 200x60']);
    expect(await windowSize(session)).toBe('132x42');
    await typeAndSee(alice, 'after-resizes', [alice, vic]);
    await closeTerm(vic);
    await closeTerm(alice);
    await clientSizes(session, []);
  });
});

describe('sizes a client asks up front', () => {
  let session = '';

  beforeAll(async () => {
    session = await createSession('size-asked');
  });

  test('an operator whose terminal is wider than 1000 columns can attach, at 500x200', async () => {
    const t = await terms.attach('bob', session, { cols: 1200, rows: 300 });
    await clientSizes(session, ['rw 500x200']);
    expect(await windowSize(session)).toBe('500x199');
    await typeAndSee(t, 'wide', [t]);
    await closeTerm(t);
    await clientSizes(session, []);
  });

  test('a pty request of 50000x50000 is 500x200, for an operator and for a viewer alone', async () => {
    const bob = await terms.attach('bob', session, { cols: 50000, rows: 50000 });
    await clientSizes(session, ['rw 500x200']);
    await typeAndSee(bob, 'huge-pty', [bob]);
    await closeTerm(bob);
    await clientSizes(session, []);
    const vic = await terms.attach('vic', session, { cols: 50000, rows: 50000 });
    await clientSizes(session, ['ro 500x200']);
    // Alone, a viewer sizes the window (tmux counts an ignore-size client only then): bounded too.
    expect(await windowSize(session)).toBe('500x199');
    await closeTerm(vic);
    await clientSizes(session, []);
  });

  test('a pty request of 0x0 is 80x24', async () => {
    const t = await terms.attach('alice', session, { cols: 0, rows: 0 });
    await clientSizes(session, ['rw 80x24']);
    expect(await windowSize(session)).toBe('80x23');
    await closeTerm(t);
    await clientSizes(session, []);
  });
});

describe('the menu', () => {
  const ESC = '\u001b';
  /** A cursor move: ESC [ row ; col H. */
  const CURSOR_TO = new RegExp(`${ESC}\\[(\\d+);(\\d+)H`, 'g');

  /** The furthest row and column the output moves the cursor to. */
  function furthest(out: string): { row: number; col: number } {
    let row = 0;
    let col = 0;
    for (const m of out.matchAll(CURSOR_TO)) {
      row = Math.max(row, Number(m[1]));
      col = Math.max(col, Number(m[2]));
    }
    return { row, col };
  }

  test('a pty of 50000x50000 gets a menu drawn within 500x200, and window changes stay within it', async () => {
    await createSession('size-menu');
    const conn = await terms.login('alice');
    const channel = await new Promise<ClientChannel>((resolve, reject) =>
      conn.shell({ cols: 50000, rows: 50000, height: 0, width: 0, term: 'xterm-256color' }, (err, ch) => (err ? reject(err) : resolve(ch))),
    );
    let out = '';
    channel.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const closed = new Promise<void>((r) => channel.on('close', () => r()));
    await until('the menu lists the session', async () => out, (o) => o.includes('size-menu'), 15_000, 50);
    const first = furthest(out);
    expect(first.row).toBeGreaterThan(24);
    expect(first.row).toBeLessThanOrEqual(200);
    expect(first.col).toBeLessThanOrEqual(500);
    let from = out.length;
    channel.setWindow(150, 400, 0, 0);
    await until('the menu redrawn at 400x150', async () => furthest(out.slice(from)), (f) => f.row === 150, 15_000, 50);
    expect(furthest(out.slice(from)).col).toBeLessThanOrEqual(400);
    from = out.length;
    channel.setWindow(60000, 60000, 0, 0);
    await until('the menu redrawn at 500x200', async () => furthest(out.slice(from)), (f) => f.row === 200, 15_000, 50);
    expect(furthest(out.slice(from)).col).toBeLessThanOrEqual(500);
    channel.write('q');
    await closed;
    // The shell is still there for everyone.
    const r = await cluster.ssh('alice', ['whoami']);
    expect(r.code).toBe(0);
  });
});

describe('the agent on its own', () => {
  let session = '';

  beforeAll(async () => {
    session = await createSession('size-agent');
  });

  /** Opens berth-attach on the agent directly with this header line. */
  async function rawAttach(header: Record<string, unknown>): Promise<Attach> {
    const ch = await agent.subsystem(SUBSYSTEMS.attach);
    const a = new Attach(ch);
    ch.write(`${JSON.stringify({ session, operator: 'alice', readOnly: false, ...header })}\n`);
    return a;
  }

  test('a header larger than the maximum is clamped, not refused; window changes are clamped', async () => {
    const a = await rawAttach({ cols: 2000, rows: 1000 });
    expect((await a.ready).ok).toBe(true);
    await clientSizes(session, ['rw 500x200']);
    a.resize({ cols: 100, rows: 30 });
    await clientSizes(session, ['rw 100x30']);
    a.resize({ cols: 50000, rows: 50000 });
    await clientSizes(session, ['rw 500x200']);
    a.resize({ cols: 0, rows: 0 });
    await clientSizes(session, ['rw 80x24']);
    a.close();
    await a.closed;
    await clientSizes(session, []);
  });

  test('a header without a size, or with zeros, opens at 80x24', async () => {
    for (const header of [{ cols: undefined, rows: undefined }, { cols: 0, rows: 0 }]) {
      const a = await rawAttach(header);
      expect((await a.ready).ok).toBe(true);
      await clientSizes(session, ['rw 80x24']);
      a.close();
      await a.closed;
      await clientSizes(session, []);
    }
  });

  test('a negative size or one that is not a number is refused, saying why', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ cols: -1, rows: 24 }, 'cols: must not be negative'],
      [{ cols: 80, rows: 'tall' }, 'rows: must be a number'],
    ];
    for (const [header, message] of cases) {
      const a = await rawAttach(header);
      expect(await a.ready).toEqual({ ok: false, error: { code: 'BAD_REQUEST', message } });
      await a.closed;
    }
    expect(await clients(session)).toEqual([]);
  });
});
