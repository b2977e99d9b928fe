/**
 * Keystroke and resize storms into the menu, over real SSH with a pty: a viewer and an operator
 * at once, each sending seeded menu keys, escape sequences, garbage bytes, pastes and window
 * changes (1x1, 0x0, huge) while an admin keeps using the CLI. Afterwards each menu still answers
 * (a reset and a resize redraw the table with every session), Q quits it cleanly, the shell
 * serves everyone, and the sessions and the audit log show that the storms did nothing but be
 * refused.
 *
 * What the storms may press: the viewer every key but Q (every op is refused for a viewer, and a
 * read-only attach of a stopped session does not start it); the operator no Enter (no form is
 * ever submitted, no attach), none of the keys that start, stop, delete, move, restore or unlock
 * a session (R K D M U O) and no Y, nor Q. So the sessions must come out exactly as they went in.
 */
import { promises as fs, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { Client, ClientChannel } from 'ssh2';
import type { SessionJson } from '../../shell/cli/format';
import { Cluster, startCluster } from '../helpers/cluster';
import { Rng, seededRng } from '../helpers/seed';
import { sessionCli } from '../helpers/session-cli';
import { ShellTerms, execOn } from '../helpers/shell-term';
import { sleep, until, within } from '../helpers/wait';
import { randomText } from './hostile-input';

const runLabel = `hostile-menu-${randomUUID().slice(0, 8)}`;
/** Storm events per operator, and the most time a storm may take. */
const EVENTS = 2500;
const STORM_MS = 12_000;
const NAMES = ['storm-a', 'storm-b', 'storm-c'];

let cluster: Cluster;
const terms = new ShellTerms(() => cluster);
const { list, json } = sessionCli(() => cluster);
let before: SessionJson[];

const KEYS = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/?>< -_.,:;!@#$%^&*()[]{}|\\\'"`~',
  '\r', '\n', '\t', '\x7f', '\b', '\x1b', '\x03', '\x04', '\x1a', '\x1c', '\x00', '\x02d',
  '\x1b[A', '\x1b[B', '\x1b[C', '\x1b[D', '\x1b[H', '\x1b[F', '\x1b[5~', '\x1b[6~', '\x1b[2~', '\x1b[3~',
  '\x1bOP', '\x1bOQ', '\x1b[15~', '\x1b[24~', '\x1b[1;5A', '\x1b[Z', '\x1bOM', '\x1b\r', '\x1bx',
];
const SEQUENCES = [
  '\x1b[M !!', '\x1b[<0;10;10M', '\x1b[<0;10;10m', '\x1b[999;999X', '\x1b]0;title\x07', '\x1b]52;c;aGk=\x07', '\x1bP+q544e\x1b\\',
  '\x1b[?1049h', '\x1b[6n', '\x1b[200~', '\x1b[201~', '\x1b[', '\x1b[1;', '\x1b]', '\x1b[99999999999999999999A', '\x1bc',
];
const SIZES = [0, 1, 2, 3, 10, 24, 80, 120, 200, 500, 501, 1000, 65535, 2 ** 32 - 1];

/** Bytes each storm never sends (see the top): Q, and for the operator the keys that would change a session. */
const NEVER: Record<string, ReadonlySet<number>> = {
  vic: new Set(Buffer.from('qQ')),
  bob: new Set(Buffer.from('\rdDkKmMuUoOrRyYqQ')),
};

interface Storm {
  user: string;
  conn: Client;
  ch: ClientChannel;
  /** Everything the menu sent (the last 2 MB), as latin1 so that every byte stays one character. */
  out: () => string;
  size: () => number;
  closed: Promise<number | null>;
}

async function openMenu(user: string): Promise<Storm> {
  const conn = await terms.login(user);
  const ch = await new Promise<ClientChannel>((resolve, reject) =>
    conn.shell({ term: 'xterm-256color', cols: 120, rows: 30, height: 0, width: 0 }, (err, c) => (err ? reject(err) : resolve(c))),
  );
  let out = '';
  let total = 0;
  ch.on('data', (d: Buffer) => {
    out += d.toString('latin1');
    total += d.length;
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
  });
  ch.stderr.on('data', (d: Buffer) => (out += d.toString('latin1')));
  let code: number | null = null;
  ch.on('exit', (c: number | null) => (code = c));
  const closed = new Promise<number | null>((r) => ch.on('close', () => r(code)));
  const s: Storm = { user, conn, ch, out: () => out, size: () => total, closed };
  await until(`${user}'s menu`, async () => out.includes(`${user} (`), (ok) => ok, 15_000, 50);
  return s;
}

/** One storm event, planned ahead: bytes to type, a window change, or a moment's pause. */
type StormEvent = { bytes: Buffer } | { window: [rows: number, cols: number, height: number, width: number] } | { pause: number };

/**
 * A storm for `user`: keys, garbage bytes, escape sequences, pastes (bracketed or not) and window
 * changes, in seeded order. Made before it is sent, so that one seed replays both storms exactly.
 */
function planStorm(rng: Rng, user: string): StormEvent[] {
  const never = NEVER[user] ?? new Set<number>();
  const events: StormEvent[] = [];
  for (let n = 0; n < EVENTS; n++) {
    const r = rng.next();
    let bytes: Buffer;
    if (r < 0.15) {
      events.push({ window: [rng.pick(SIZES), rng.pick(SIZES), rng.pick([0, 640, 2 ** 32 - 1]), rng.pick([0, 480])] });
      continue;
    } else if (r < 0.7) bytes = Buffer.from(Array.from({ length: rng.int(1, 6) }, () => rng.pick(KEYS)).join(''), 'latin1');
    else if (r < 0.82) bytes = Buffer.from(Array.from({ length: rng.int(1, 24) }, () => rng.int(0, 255)));
    else if (r < 0.9) bytes = Buffer.from(rng.pick(SEQUENCES), 'latin1');
    else if (r < 0.95) bytes = Buffer.from(randomText(rng, rng.int(1, 4000)), 'utf8');
    else bytes = Buffer.from(`\x1b[200~${randomText(rng, 500)}\x1b[201~`, 'utf8');
    // Filtered byte by byte: the bytes left out are ASCII, which is never part of a longer UTF-8 character.
    events.push({ bytes: Buffer.from(bytes.filter((b) => !never.has(b))) });
    // Now and then the menu gets a moment, so keys land in every state it can reach.
    if (rng.next() < 0.1) events.push({ pause: rng.int(0, 15) });
  }
  return events;
}

/** Sends a planned storm (bounded in time); how many events went. */
async function storm(s: Storm, events: StormEvent[]): Promise<number> {
  const end = Date.now() + STORM_MS;
  let n = 0;
  for (const e of events) {
    if (Date.now() > end) break;
    if ('bytes' in e) s.ch.write(e.bytes);
    else if ('window' in e) s.ch.setWindow(...e.window);
    else await sleep(e.pause);
    if (!('pause' in e)) n++;
    await new Promise((r) => setImmediate(r));
  }
  return n;
}

const ESC = '\u001b';
const CURSOR_RIGHT = new RegExp(`${ESC}\\[(\\d*)C`, 'g');
const OTHER_SEQUENCE = new RegExp(`${ESC}(\\[[0-9;?]*[A-Za-z]|[78()][0-9A-Za-z]?)`, 'g');

/** Terminal output as text: cursor steps right become spaces, other control sequences go. */
function plain(out: string): string {
  return out.replace(CURSOR_RIGHT, (_m, n: string) => ' '.repeat(Number(n) || 1)).replace(OTHER_SEQUENCE, '');
}

/** Closes whatever is open and clears the filter, then redraws at 120x30: the table must show every session. */
async function reset(s: Storm): Promise<void> {
  for (const key of ['\x1b', '\x1b', '/', '\x1b']) {
    s.ch.write(key);
    await sleep(150);
  }
  s.ch.setWindow(24, 80, 0, 0);
  await sleep(150);
  const from = s.out().length;
  s.ch.setWindow(30, 120, 0, 0);
  await until(
    `${s.user}'s menu drawn again with every session`,
    async () => s.out().slice(from),
    (o) => {
      const p = plain(o);
      return p.includes(`${s.user} (`) && p.includes('sessions 3') && NAMES.every((n) => p.includes(n)) && !p.includes('filter:');
    },
    10_000,
    100,
  );
}

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 1, agentConfig: { log: { level: 'info' } }, shellConfig: { log: { level: 'info' } } });
  await cluster.agentsOnline();
  for (const name of NAMES) await json(`create --name ${name} --dns ${name}`);
  before = await list();
}, 60_000);

afterAll(async () => {
  const trouble = cluster?.shell.logs.filter((l) => /"level":"(warn|error)"/.test(l)) ?? [];
  if (trouble.length > 0) console.log(`shell warnings and errors:\n${trouble.slice(0, 20).join('\n')}`);
  terms.endAll();
  await cluster?.dispose();
});

test('a viewer and an operator storm their menus at once; both menus still answer and quit cleanly; nothing changed', async () => {
  const vic = await openMenu('vic');
  const bob = await openMenu('bob');
  const auditFrom = (await auditRecords()).length;
  // Meanwhile an admin on another connection keeps listing: the shell serves through the storms.
  const alice = await terms.login('alice');
  let stop = false;
  let served = 0;
  const waits: number[] = [];
  const lister = (async () => {
    while (!stop) {
      const t0 = Date.now();
      const r = await execOnce(alice, 'list --json');
      waits.push(Date.now() - t0);
      expect({ code: r.code, sessions: (JSON.parse(r.out) as SessionJson[]).length }).toEqual({ code: 0, sessions: NAMES.length });
      served++;
      await sleep(200);
    }
  })();
  const started = Date.now();
  const cpu = (): number => Number(readFileSync(`/proc/${cluster.shell.proc.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[11] ?? 0);
  const cpu0 = cpu();
  const rng = seededRng('menu storms');
  const plans = { vic: planStorm(rng, 'vic'), bob: planStorm(rng, 'bob') };
  const [nVic, nBob] = await Promise.all([storm(vic, plans.vic), storm(bob, plans.bob)]);
  stop = true;
  await lister;
  console.log(`menu storms: vic ${nVic} events, bob ${nBob} events in ${Date.now() - started} ms (shell cpu ${cpu() - cpu0} ticks), ${vic.size() + bob.size()} bytes drawn; the admin listed ${served} times meanwhile (${waits.join(' ')} ms)`);
  expect(served).toBeGreaterThan(0);

  for (const s of [vic, bob]) {
    expect(s.ch.destroyed).toBe(false);
    await reset(s);
    // S still opens the settings page (the shell's build, the agents), and any key closes it.
    const from = s.out().length;
    s.ch.write('S');
    await until(`${s.user}'s settings page`, async () => plain(s.out().slice(from)), (o) => o.includes('this shell:'), 10_000, 50);
    s.ch.write('\x1b');
    await sleep(150);
    s.ch.write('q');
    const code = await Promise.race([s.closed, sleep(10_000).then(() => 'open' as const)]);
    expect({ user: s.user, quit: code }).toEqual({ user: s.user, quit: 0 });
  }

  // What survived: the shell, the sessions exactly as they were, and an audit of refusals only.
  expect(cluster.shell.proc.exitCode).toBeNull();
  expect(await list()).toEqual(before);
  const storms = (await auditRecords()).slice(auditFrom).filter((x) => x.operator === 'vic' || x.operator === 'bob');
  // B (background) may succeed for the operator: it ends their own attaches, of which there are none.
  expect(storms.filter((x) => x.result !== 'refused' && !(x.op === 'background' && x.detail?.detached === 0))).toEqual([]);
  expect(storms.filter((x) => x.operator === 'vic').length).toBeGreaterThan(0);
  const again = await openMenu('bob');
  again.ch.write('q');
  expect(await again.closed).toBe(0);
  expect(cluster.shell.logs.filter((l) => l.includes('"level":"error"') || l.includes('uncaught'))).toEqual([]);
}, 80_000);

test('what the storms first found: combining characters in a form on a tiny terminal, and long pastes into a form and the filter', async () => {
  const bob = await openMenu('bob');
  const logsFrom = cluster.shell.logs.length;
  // N opens the new-session form (one agent: no picker); a value with combining and zero-width
  // characters, then the terminal shrinks under the form: this once threw in every draw, for good.
  bob.ch.write('N');
  await sleep(200);
  bob.ch.write('a\u0301\u200b\ufeff\u0301');
  for (const [cols, rows] of [[1, 1], [2, 2], [10, 5], [19, 3], [120, 30]]) {
    bob.ch.setWindow(rows, cols, 0, 0);
    await sleep(120);
  }
  // 20,000 characters pasted into the form and, after Esc, into the filter: each once redrew all
  // it had so far for every character, holding the shell for everyone.
  const paste = 'x'.repeat(20_000);
  bob.ch.write(paste);
  await sleep(100);
  bob.ch.write('\x1b');
  await sleep(150);
  bob.ch.write(`/${paste}`);
  const alice = await terms.login('alice');
  expect(await execOnce(alice, 'whoami')).toEqual({ code: 0, out: 'alice (admin)\n', err: '' });
  await reset(bob);
  bob.ch.write('q');
  expect(await bob.closed).toBe(0);
  expect(cluster.shell.logs.slice(logsFrom).filter((l) => l.includes('uncaught'))).toEqual([]);
  expect(await list()).toEqual(before);
});

interface AuditLine {
  operator: string;
  op: string;
  result: string;
  detail?: { detached?: number };
}

/** Every audit record so far, each line parsed on its own. */
async function auditRecords(): Promise<AuditLine[]> {
  const text = await fs.readFile(cluster.auditFile, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditLine);
}

/** Runs a command line on an exec channel; fails if it does not end in 20 s (the shell is not serving). */
function execOnce(conn: Client, line: string): Promise<{ code: number | null; out: string; err: string }> {
  return within(line, 20_000, execOn(conn, line));
}
