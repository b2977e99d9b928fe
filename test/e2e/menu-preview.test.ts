/**
 * The menu's preview, as an operator sees it: the real OpenSSH client in a terminal (tmux), a real
 * shell, agent and sessions. The selected session's screen shows below the table, follows the
 * selection, refreshes while the session prints, hides with P, grows with L, and says why when a
 * session has no screen. How long a selection takes to show its preview is printed, never asserted.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Cluster, startCluster } from '../helpers/cluster';
import { removeTestContainers } from '../helpers/docker';
import { sessionCli } from '../helpers/session-cli';
import { Tmux } from '../helpers/tmux';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `e2e-preview-${randomUUID().slice(0, 8)}`;
const socket = `berth-${runLabel}`;
const tmux = new Tmux(socket);
let cluster: Cluster;
const { json, startAndWait, killAndWait } = sessionCli(() => cluster);
const ids: Record<string, string> = {};
const ROWS = 30;

/** Types a line into the session's shell, from inside its container (what an attached operator does). */
function typeIn(name: string, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('docker', ['exec', `berth-${ids[name]}`, 'tmux', 'send-keys', '-t', 'claude', line, 'Enter'], { stdio: 'ignore' });
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`send-keys into ${name}: exit ${code}`))));
  });
}

/** The preview's headline row (its index on the screen) and the name it shows, or null. */
function previewHead(screen: string): { at: number; name: string } | null {
  const lines = screen.split('\n');
  const at = lines.findIndex((l) => /^ (left|right|idle) on agent-1/.test(l));
  return at < 0 ? null : { at, name: /^ (\w+) on/.exec(lines[at] ?? '')?.[1] ?? '' };
}
/** The screen below the preview's headline. */
const below = (screen: string): string => screen.split('\n').slice((previewHead(screen)?.at ?? screen.length) + 1).join('\n');

/** Polls the screen every 5 ms (bounded) until `pred` holds; how long it took. */
function timeUntil(pred: (screen: string) => boolean, timeoutMs = 5000): number {
  const start = performance.now();
  for (;;) {
    const s = execFileSync('tmux', ['-u', '-L', socket, 'capture-pane', '-p', '-t', 'alice'], { encoding: 'utf8' });
    if (pred(s)) return performance.now() - start;
    if (performance.now() - start > timeoutMs) throw new Error(`not on screen within ${timeoutMs} ms:\n${s}`);
    execFileSync('sleep', ['0.005']);
  }
}

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 1, agentConfig: { command: 'bash' } });
  await cluster.agentsOnline();
  for (const name of ['left', 'right', 'idle']) ids[name] = (await json<SessionJson>(`create --name ${name}`)).id;
  for (const name of ['left', 'right']) {
    await startAndWait(ids[name]!);
    await typeIn(name, `echo MARK-$((1+1))-${name}`);
  }
  // Sorted by name, so rows stay put whatever their activity does.
  tmux.start('alice', ['ssh', ...cluster.sshArgs('alice', ['-t'])], 140, ROWS);
  await tmux.waitFor('alice', (s) => s.includes('alice (admin)') && s.includes(' idle '), 'the menu');
  tmux.type('alice', '>');
  await tmux.waitFor('alice', (s) => s.includes('sort: name'), 'sorted by name');
}, 120_000);

afterAll(async () => {
  tmux.kill();
  await cluster?.dispose();
  await removeTestContainers(runLabel);
});

test("the selected session's screen shows below the table and follows the selection", async () => {
  // idle, left, right by name; the first row up is idle, never started.
  await tmux.waitFor('alice', (x) => previewHead(x) !== null, 'a preview');
  tmux.keys('alice', 'Up', 'Up');
  let s = await tmux.waitFor('alice', (x) => previewHead(x)?.name === 'idle', 'the preview of idle');
  expect(below(s)).toContain('stopped: Enter starts it and attaches');
  // A third of the screen: the headline sits that far above the status line and the hint bar.
  expect(previewHead(s)?.at).toBe(ROWS - 2 - Math.floor(ROWS / 3));

  tmux.keys('alice', 'Down');
  s = await tmux.waitFor('alice', (x) => previewHead(x)?.name === 'left' && below(x).includes('MARK-2-left'), "left's screen");
  expect(below(s)).not.toContain('MARK-2-right');
  // The command typed and what it printed, as on its screen (the echo's argument unexpanded).
  expect(below(s)).toContain('echo MARK-$((1+1))-left');

  // Selection → preview on screen, back and forth.
  const took: number[] = [];
  for (let i = 0; i < 10; i++) {
    const [key, name] = i % 2 === 0 ? ['Down', 'right'] : ['Up', 'left'];
    tmux.keys('alice', key);
    took.push(timeUntil((x) => previewHead(x)?.name === name && below(x).includes(`MARK-2-${name}`)));
  }
  const sorted = [...took].sort((a, b) => a - b);
  console.log(`selection -> preview on screen (10 moves, 5 ms polls): median ${sorted[5]?.toFixed(0)} ms, max ${sorted[9]?.toFixed(0)} ms`);
}, 60_000);

test('it refreshes while the session prints, without a key', async () => {
  await tmux.waitFor('alice', (x) => previewHead(x)?.name === 'left', 'left selected');
  await typeIn('left', 'for i in 1 2 3; do echo TICK-$i; sleep 0.4; done');
  await tmux.waitFor('alice', (x) => below(x).includes('TICK-1'), 'the first tick');
  await tmux.waitFor('alice', (x) => below(x).includes('TICK-3'), 'the last tick');
}, 30_000);

test('P hides and shows it; L makes it taller, and back', async () => {
  let s = await tmux.waitFor('alice', (x) => previewHead(x) !== null, 'the preview');
  const third = previewHead(s)?.at ?? -1;
  tmux.type('alice', 'p');
  s = await tmux.waitFor('alice', (x) => previewHead(x) === null, 'no preview');
  expect(s).not.toContain('MARK-2-left');
  tmux.type('alice', 'p');
  await tmux.waitFor('alice', (x) => previewHead(x)?.at === third, 'the preview again');
  tmux.type('alice', 'l');
  s = await tmux.waitFor('alice', (x) => previewHead(x)?.at === ROWS - 2 - Math.floor(ROWS / 2), 'half the screen');
  tmux.type('alice', 'l');
  await tmux.waitFor('alice', (x) => previewHead(x)?.at === ROWS - 2 - Math.floor((ROWS * 2) / 3), 'two thirds');
  tmux.type('alice', 'l');
  await tmux.waitFor('alice', (x) => previewHead(x)?.at === third, 'a third again');
}, 30_000);

test('a session killed while shown: the preview says it stopped', async () => {
  await tmux.waitFor('alice', (x) => previewHead(x)?.name === 'left', 'left selected');
  await killAndWait(ids.left!);
  const s = await tmux.waitFor('alice', (x) => below(x).includes('stopped: Enter starts it and attaches'), 'left stopped');
  expect(below(s)).not.toContain('MARK-2-left');
}, 60_000);
