/**
 * While attached to one session, the operator's terminal title tells them another needs them, as
 * they see it: the real OpenSSH client in a terminal (tmux, whose pane title follows OSC 2), a real
 * shell, agent and sessions. Other sessions report through their status folders (what berth-hook
 * does inside the container, done here from the host). The title names the attached session, then
 * who needs you; it is never written inside the session's output, a session cannot set it, each
 * operator attached to one session (pair work, one from the menu) has their own, and a detach sets
 * it back to `berth`. Every byte alice's terminal gets is recorded (tmux's pipe-pane) and checked
 * at the end: where each title was written, and that no title of the session's is among them.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { sessionCli } from '../helpers/session-cli';
import { Tmux } from '../helpers/tmux';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `e2e-title-${randomUUID().slice(0, 8)}`;
const socket = `berth-${runLabel}`;
const tmux = new Tmux(socket);
let cluster: Cluster;
const { json, startAndWait, inSession } = sessionCli(() => cluster);
const ids: Record<string, string> = {};
/** How long each notice took from the hook report to the title, for the log line at the end. */
const delays: number[] = [];

const PROMPT = /claude@berth-[0-9a-f]{8}:~\$/;
const ESC = '\u001b';
const BEL = '\u0007';
/** Where alice's terminal's bytes are recorded. */
let rawFile = '';

/** The title tmux keeps for the pane (it follows OSC 0 and 2 by default). */
const titleOf = (pane: string): string =>
  execFileSync('tmux', ['-u', '-L', socket, 'display-message', '-p', '-t', pane, '#{pane_title}'], { encoding: 'utf8' }).replace(/\n$/, '');

/** Waits (bounded) until the pane's title is `want`; returns the milliseconds since `from`. */
async function titleBecomes(pane: string, want: string, from = Date.now()): Promise<number> {
  const end = Date.now() + 10_000;
  for (;;) {
    const t = titleOf(pane);
    if (t === want) return Date.now() - from;
    if (Date.now() > end) throw new Error(`${pane}: title ${JSON.stringify(want)} not set within 10 s; it is ${JSON.stringify(t)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Why the title at `at` in `raw` is not at a point where a terminal is in its ground state, or null
 * if it is: the bytes before it must not end inside a UTF-8 character, and the last escape
 * sequence before it must be whole (CSI, OSC ended by BEL, or ESC and intermediates and a final).
 */
function cutAt(raw: Buffer, at: number): string | null {
  const before = raw.subarray(Math.max(0, at - 4096), at);
  let lead = before.length - 1;
  while (lead >= 0 && lead >= before.length - 4 && (before[lead]! & 0xc0) === 0x80) lead--;
  const b = before[lead] ?? 0;
  const need = b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : b >= 0xc0 ? 1 : 0;
  if (lead >= 0 && before.length - 1 - lead < need) return `a UTF-8 character cut: ${before.subarray(lead).toString('hex')}`;
  const esc = before.lastIndexOf(0x1b);
  if (esc < 0) return null;
  const seq = before.subarray(esc);
  return wholeSequence(seq) ? null : `an escape sequence cut: ${JSON.stringify(seq.subarray(0, 40).toString('latin1'))}`;
}

/** Whether `seq`, from its ESC on, holds a whole sequence: CSI, OSC ended by BEL, or intermediates and a final. */
function wholeSequence(seq: Buffer): boolean {
  const kind = seq[1];
  if (kind === undefined) return false;
  if (kind === 0x5b) {
    for (const c of seq.subarray(2)) {
      if (c >= 0x40 && c <= 0x7e) return true;
      if (c < 0x20 || c > 0x3f) return false;
    }
    return false;
  }
  // An OSC ended by ST has ST's ESC as the last one.
  if (kind === 0x5d) return seq.includes(0x07);
  let i = 1;
  while (i < seq.length && seq[i]! >= 0x20 && seq[i]! <= 0x2f) i++;
  return i < seq.length && seq[i]! >= 0x30 && seq[i]! <= 0x7e;
}

/** Writes a hook report into the session's status folder, as berth-hook does: a temp name, then a rename. */
async function report(name: string, event: Record<string, unknown>): Promise<number> {
  const dir = path.join(cluster.agents[0]!.root, ids[name]!, 'status');
  await fs.writeFile(path.join(dir, '.event.tmp'), JSON.stringify({ session_id: 'x', cwd: '/home/claude', ...event }));
  const at = Date.now();
  await fs.rename(path.join(dir, '.event.tmp'), path.join(dir, 'event.json'));
  return at;
}
const permission = (name: string): Promise<number> => report(name, { hook_event_name: 'Notification', notification_type: 'permission_prompt', message: 'Claude needs your permission to use Bash' });
const waiting = (name: string): Promise<number> => report(name, { hook_event_name: 'Notification', notification_type: 'idle_prompt', message: 'Claude is waiting for your input' });
const working = (name: string): Promise<number> => report(name, { hook_event_name: 'PreToolUse', tool_name: 'Bash' });

/** Runs a command line in the attached shell of `pane` and waits for `marker` on its screen. */
async function runIn(pane: string, line: string, marker: string): Promise<string> {
  tmux.type(pane, line);
  tmux.keys(pane, 'Enter');
  return tmux.waitFor(pane, (s) => s.includes(marker), marker);
}

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 1 });
  await cluster.agentsOnline();
  // The test agents' command is bash: web's pane is a shell the test types into.
  for (const name of ['web', 'api', 'db']) ids[name] = (await json<SessionJson>(`create --name ${name}`)).id;
  // A session's status folder is made at its start.
  await startAndWait(ids.api!);
  await startAndWait(ids.db!);
}, 120_000);

afterAll(async () => {
  if (delays.length > 0) console.log(`attach title: hook report to title ${delays.map((d) => `${d} ms`).join(', ')}`);
  tmux.kill();
  await cluster?.dispose();
});

test('an attach names its session in the title', async () => {
  rawFile = path.join(cluster.dir, 'alice.raw');
  await fs.writeFile(rawFile, '');
  // ssh starts once the recording has: the pane waits for a line first.
  tmux.start('alice', ['sh', '-c', 'read go && exec "$@"', 'sh', 'ssh', ...cluster.sshArgs('alice', ['-t']), 'attach', 'web']);
  execFileSync('tmux', ['-L', socket, 'pipe-pane', '-o', '-t', 'alice', `cat >> '${rawFile}'`]);
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => PROMPT.test(s), 'the session prompt', 20_000);
  await titleBecomes('alice', 'berth · web');
});

test('another session asking permission or waiting shows in the title, and goes when it works again', async () => {
  delays.push(await titleBecomes('alice', 'berth · web — 1 needs you: api (permission)', await permission('api')));
  delays.push(await titleBecomes('alice', 'berth · web — 2 need you: api (permission), db (waiting)', await waiting('db')));
  await titleBecomes('alice', 'berth · web — 1 needs you: db (waiting)', await working('api'));
  await titleBecomes('alice', 'berth · web', await working('db'));
  // The attached session's own activity never counts: with web waiting, the next title names api
  // alone (had web counted, it would say 2 need you, and never this).
  await waiting('web');
  await until('web waiting', () => json<SessionJson[]>('list'), (l) => l.find((s) => s.name === 'web')?.activity?.state === 'waiting');
  await titleBecomes('alice', 'berth · web — 1 needs you: api (permission)', await permission('api'));
});

test('a title that comes while the session prints never cuts its output', async () => {
  await titleBecomes('alice', 'berth · web', await working('api'));
  const home = path.join(cluster.agents[0]!.root, ids.web!, 'home');
  // Lines of 80 characters in 80 colours (UTF-8, a colour sequence before each: tmux's redraws
  // come in large chunks, cut anywhere) until the test says stop, bounded by a count either way.
  await fs.writeFile(
    path.join(home, 'loop.sh'),
    [
      'line=; for c in $(seq 16 95); do line="$line\\033[38;5;${c}m═"; done',
      'i=0',
      'while [ ! -e ~/stop ] && [ $i -lt 200000 ]; do i=$((i+1)); printf "$line\\033[0m %d\\n" $i; done',
      'echo loop-end-$((i>0))',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  tmux.type('alice', 'bash ~/loop.sh');
  tmux.keys('alice', 'Enter');
  await tmux.waitFor('alice', (s) => /═ \d+/.test(s), 'the loop printing');
  // Many titles while it prints, each written between two chunks of its output.
  for (let round = 0; round < 12; round++) {
    delays.push(await titleBecomes('alice', 'berth · web — 1 needs you: api (permission)', await permission('api')));
    await titleBecomes('alice', 'berth · web', await working('api'));
  }
  await titleBecomes('alice', 'berth · web — 1 needs you: db (waiting)', await waiting('db'));
  await fs.writeFile(path.join(home, 'stop'), '');
  const s = await tmux.waitFor('alice', (x) => x.includes('loop-end-1'), 'the loop stopped');
  // Every line of the loop on the screen is whole: no sequence was cut, no title text shows.
  const lines = s.split('\n').filter((l) => l.includes('═'));
  expect(lines.length).toBeGreaterThan(0);
  expect(lines.filter((l) => !/^═{80} \d+ *$/.test(l))).toEqual([]);
  expect(s).not.toContain('need');
});

test('pair work: an operator attached from the menu gets their own title, and `berth` back at the menu', async () => {
  tmux.start('bob', ['ssh', ...cluster.sshArgs('bob', ['-t'])]);
  await tmux.waitFor('bob', (s) => s.includes('bob (operator)') && s.includes(' web '), 'the menu');
  tmux.keys('bob', '/');
  tmux.type('bob', 'web');
  tmux.keys('bob', 'Enter');
  await tmux.waitFor('bob', (s) => s.includes('filter: web') && !s.includes(' api '), 'web alone');
  tmux.keys('bob', 'Enter');
  await tmux.waitFor('bob', (s) => PROMPT.test(s), 'the session prompt', 20_000);
  await titleBecomes('bob', 'berth · web — 1 needs you: db (waiting)');
  const from = await permission('api');
  const want = 'berth · web — 2 need you: api (permission), db (waiting)';
  delays.push(await titleBecomes('bob', want, from));
  await titleBecomes('alice', want);
  tmux.keys('bob', 'C-b', 'd');
  await tmux.waitFor('bob', (s) => s.includes('bob (operator)'), 'the menu again');
  await titleBecomes('bob', 'berth');
  expect(titleOf('alice')).toBe(want);
  await titleBecomes('alice', 'berth · web — 1 needs you: api (permission)', await working('db'));
  tmux.keys('bob', 'q');
  await until("bob's ssh exits", async () => tmux.dead('bob'), (d) => d);
});

test('a session cannot set the title: its OSC 0 and 2 never reach the operator', async () => {
  // The session's own tmux is told to pass its pane's title on to its clients (OSC 0).
  await runIn('alice', "tmux set -g set-titles on; tmux set -g set-titles-string 'spoof #{pane_title}'; printf '\\033]2;fake\\007'; echo spoof-$((3*3))", 'spoof-9');
  await until('the pane title inside the session', () => inSession(ids.web!, ['tmux', 'display-message', '-p', '-t', 'claude', '#{pane_title}']), (r) => r.out.trim() === 'fake');
  // Without berth in between, a client of that tmux does get the title: the spoof is real.
  tmux.start('direct', ['docker', 'exec', '-it', `berth-${ids.web}`, 'tmux', 'attach', '-t', 'claude', '-f', 'read-only,ignore-size']);
  await titleBecomes('direct', 'spoof fake');
  tmux.keys('direct', 'C-b', 'd');
  await until('the direct client gone', async () => tmux.dead('direct'), (d) => d);
  // Through berth it never came: output after it has arrived, and the title is still berth's.
  await runIn('alice', "printf '\\033]0;fake\\007\\033]2;fake\\033\\\\'; echo after-$((2*5))", 'after-10');
  await runIn('alice', 'echo again-$((3*5))', 'again-15');
  expect(titleOf('alice')).toBe('berth · web — 1 needs you: api (permission)');
});

test('a detach sets the title back to berth', async () => {
  tmux.keys('alice', 'C-b', 'd');
  await until("alice's ssh exits", async () => tmux.dead('alice'), (d) => d);
  expect(titleOf('alice')).toBe('berth');
});

test("every title in alice's bytes is berth's, each written where the terminal was in its ground state", async () => {
  const raw = await until('the recording whole', () => fs.readFile(rawFile), (b) => b.includes(`${ESC}]2;berth${BEL}`));
  const titles: string[] = [];
  const cuts: string[] = [];
  for (let at = raw.indexOf(`${ESC}]`); at >= 0; at = raw.indexOf(`${ESC}]`, at + 1)) {
    const end = raw.indexOf(BEL, at);
    const osc = raw.subarray(at + 2, end < 0 ? raw.length : end).toString('utf8');
    if (!/^[012];/.test(osc)) continue;
    titles.push(osc);
    const why = cutAt(raw, at);
    if (why) cuts.push(`${osc}: ${why}`);
  }
  expect(cuts).toEqual([]);
  expect(titles.filter((t) => !t.startsWith('2;berth'))).toEqual([]);
  expect(titles[0]).toBe('2;berth · web');
  expect(titles[titles.length - 1]).toBe('2;berth');
  // Each one changed the title: none was written twice in a row.
  expect(titles.filter((t, i) => i > 0 && titles[i - 1] === t)).toEqual([]);
  expect(titles.length).toBeGreaterThan(25);
});
