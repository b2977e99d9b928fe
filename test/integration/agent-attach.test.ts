/**
 * berth-attach against a real agent process and real containers: starting a stopped session,
 * pair work over separate SSH connections, read-only viewers, resizes, every way an attach ends
 * (channel close, dropped connection, `background`, `Ctrl-b d`, the command exiting), and the
 * header errors.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SUBSYSTEMS, SessionView } from '../../common/protocol';
import { AgentClient, Attach, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { docker, testContainers, tmuxClientCount } from '../helpers/docker';
import { sleep, until } from '../helpers/wait';

const runLabel = `attach-${randomUUID().slice(0, 8)}`;

let agent: AgentProcess;
let alice: AgentClient;
let bob: AgentClient;
let carol: AgentClient;
let sessionId = '';
let container = '';

function connect(): Promise<AgentClient> {
  return agent.connect();
}

/** The session as the agent sees it now. */
async function current(): Promise<SessionView> {
  return view(await alice.call('get', { session: sessionId }));
}

let counter = 100 + Math.floor(Math.random() * 800);
/** Types a command whose output differs from its echo, and waits until every watcher shows the output. */
async function typeAndSee(from: Attach, label: string, watchers: Attach[] = [from]): Promise<string> {
  const n = counter++;
  const seen = `${label}-${n + 1}-done`;
  from.write(`echo ${label}-$((${n}+1))-done\r`);
  await Promise.all(watchers.map((w) => w.waitForText(seen, 10_000)));
  return seen;
}

/** Resolves true if the attach's channel closes within `ms`. */
async function closesWithin(a: Attach, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([a.closed.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The first reply of an attach channel fed with a raw header line. */
async function rawAttach(c: AgentClient, line: string): Promise<Attach> {
  const ch = await c.subsystem(SUBSYSTEMS.attach);
  const a = new Attach(ch);
  ch.write(line);
  return a;
}

function expectRefused(reply: Awaited<Attach['ready']>, code: string): void {
  expect(reply.ok).toBe(false);
  if (!reply.ok) expect(reply.error.code).toBe(code);
}

const clientCount = (): Promise<number> => tmuxClientCount(container);

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel });
  alice = await connect();
  bob = await connect();
  carol = await connect();
  const created = view(await alice.call('create', { name: 'attach-main' }));
  sessionId = created.meta.id;
  container = `berth-${sessionId}`;
  expect(created.state).toBe('-');
}, 30_000);

afterAll(async () => {
  await agent?.dispose();
});

describe('attach refusals', () => {
  test('an unknown session is NOT_FOUND', async () => {
    const a = await alice.attach({ session: randomUUID(), operator: 'alice' });
    expectRefused(await a.ready, 'NOT_FOUND');
    expect(await closesWithin(a, 5000)).toBe(true);
  });

  test('a header that is not JSON, lacks fields or has unknown ones is BAD_REQUEST', async () => {
    const lines = [
      'this is not json\n',
      `${JSON.stringify({ session: sessionId, operator: 'alice' })}\n`,
      `${JSON.stringify({ session: 'not-a-uuid', operator: 'alice', readOnly: false, cols: 80, rows: 24 })}\n`,
      `${JSON.stringify({ session: sessionId, operator: 'alice', readOnly: false, cols: 80, rows: 24, shell: true })}\n`,
    ];
    for (const line of lines) {
      const a = await rawAttach(alice, line);
      expectRefused(await a.ready, 'BAD_REQUEST');
      expect(await closesWithin(a, 5000)).toBe(true);
    }
    // None of these started the session.
    expect((await current()).state).toBe('-');
  });

  test('a read-only attach to a stopped session is refused and does not start it', async () => {
    const a = await carol.attach({ session: sessionId, operator: 'carol', readOnly: true });
    expectRefused(await a.ready, 'CONFLICT');
    expect((await current()).state).toBe('-');
    expect(await testContainers(runLabel)).toEqual([]);
  });
});

describe('attached operators', () => {
  let aliceA: Attach;
  let bobA: Attach;
  let carolA: Attach;

  test('attaching to a stopped session starts it; typed commands run', async () => {
    aliceA = await alice.attach({ session: sessionId, operator: 'alice' });
    const reply = await aliceA.ready;
    expect(reply.ok).toBe(true);
    if (reply.ok) expect(view(reply.session).state).toBe('C');
    const v = await current();
    expect(v.state).toBe('C');
    expect(v.attached).toEqual(['alice']);
    expect(v.container?.running).toBe(true);
    aliceA.write('echo marker-$((40+2))\r');
    await aliceA.waitForText('marker-42', 15_000);
    expect(await clientCount()).toBe(1);
  });

  test('two operators on separate connections share the session (pair work)', async () => {
    bobA = await bob.attach({ session: sessionId, operator: 'bob' });
    expect((await bobA.ready).ok).toBe(true);
    await typeAndSee(aliceA, 'from-alice', [aliceA, bobA]);
    await typeAndSee(bobA, 'from-bob', [aliceA, bobA]);
    const v = await current();
    expect(v.state).toBe('C');
    expect([...v.attached].sort()).toEqual(['alice', 'bob']);
    expect(await clientCount()).toBe(2);
  });

  test('a read-only viewer sees the typing, but what it types never reaches the shell', async () => {
    carolA = await carol.attach({ session: sessionId, operator: 'carol', readOnly: true });
    expect((await carolA.ready).ok).toBe(true);
    expect([...(await current()).attached].sort()).toEqual(['alice', 'bob', 'carol']);
    expect(await clientCount()).toBe(3);
    await typeAndSee(aliceA, 'carol-watches', [aliceA, bobA, carolA]);

    const tag = randomUUID().slice(0, 8);
    carolA.write(`touch /home/claude/carol-${tag}; echo carol-ran-$((6*7))-${tag}\r`);
    await sleep(500);
    // Alice's command goes after carol's keys: if those had reached the shell, they ran first.
    aliceA.write(`touch /home/claude/alice-${tag}\r`);
    await typeAndSee(aliceA, 'after-carol', [aliceA, bobA, carolA]);
    for (const a of [aliceA, bobA, carolA]) {
      expect(a.output).not.toContain(`carol-ran-42-${tag}`);
      expect(a.output).not.toContain(`carol-ran-$((6*7))-${tag}`);
    }
    // The positive control: alice's file is there, carol's is not.
    expect(existsSync(path.join(agent.root, sessionId, 'home', `alice-${tag}`))).toBe(true);
    expect(existsSync(path.join(agent.root, sessionId, 'home', `carol-${tag}`))).toBe(false);
  });

  test('closing one attach ends exactly that tmux client; the others keep working', async () => {
    expect(await clientCount()).toBe(3);
    carolA.close();
    await carolA.closed;
    await until('two tmux clients', clientCount, (n) => n === 2);
    await sleep(500);
    expect(await clientCount()).toBe(2);
    const v = await until('carol gone from attached', current, (x) => x.attached.length === 2);
    expect([...v.attached].sort()).toEqual(['alice', 'bob']);
    expect(v.state).toBe('C');
    await typeAndSee(bobA, 'still-pairing', [aliceA, bobA]);
  });

  test('a dropped SSH connection leaves no tmux client behind', async () => {
    const dave = await connect();
    const daveA = await dave.attach({ session: sessionId, operator: 'dave' });
    expect((await daveA.ready).ok).toBe(true);
    await typeAndSee(daveA, 'dave-here', [daveA, aliceA]);
    expect(await clientCount()).toBe(3);
    dave.conn.destroy();
    await until('dave\'s tmux client gone', clientCount, (n) => n === 2, 10_000);
    const v = await until('dave gone from attached', current, (x) => !x.attached.includes('dave'), 10_000);
    expect([...v.attached].sort()).toEqual(['alice', 'bob']);
    await typeAndSee(aliceA, 'after-drop', [aliceA, bobA]);
  });

  test('background ends the calling operator\'s attach only', async () => {
    const r = await bob.call('background', { session: sessionId }, 'alice');
    expect(r.detached).toBe(1);
    expect(await closesWithin(aliceA, 5000)).toBe(true);
    expect(await closesWithin(bobA, 1000)).toBe(false);
    await typeAndSee(bobA, 'bob-alone', [bobA]);
    await until('one tmux client', clientCount, (n) => n === 1);
    const v = await current();
    expect(v.attached).toEqual(['bob']);
    expect(v.state).toBe('C');
    // Nothing of alice's left to background.
    expect((await alice.call('background', { session: sessionId }, 'alice')).detached).toBe(0);
  });

  test('Ctrl-b d ends that attach; the container keeps running', async () => {
    bobA.write('\x02d');
    expect(await closesWithin(bobA, 5000)).toBe(true);
    const v = await until('state R', current, (x) => x.state === 'R');
    expect(v.attached).toEqual([]);
    expect(v.container?.running).toBe(true);
    await until('no tmux client', clientCount, (n) => n === 0);
    expect((await docker('inspect', '-f', '{{.State.Running}}', container)).trim()).toBe('true');
  });
});

describe('a single attach', () => {
  let a: Attach;
  const sizeRe = /SZ-(\d+)x(\d+)-(\d+) (\d+)-END/g;
  const lastSize = (): string | null => {
    const all = [...a.output.matchAll(sizeRe)];
    const m = all[all.length - 1];
    return m ? `${m[1]}x${m[2]} stty ${m[3]} ${m[4]}` : null;
  };
  const askSize = (): void => a.write(`echo SZ-$(tmux display -p '#{client_width}x#{client_height}')-$(stty size)-END\r`);
  const sizeBecomes = (want: string): Promise<string | null> =>
    until(
      `size ${want}`,
      async () => {
        askSize();
        await sleep(300);
        return lastSize();
      },
      (s) => s === want,
    );

  test('the header size is used and a window-change resizes what tmux sees', async () => {
    a = await alice.attach({ session: sessionId, operator: 'alice' }, { cols: 100, rows: 30 });
    expect((await a.ready).ok).toBe(true);
    // The pane is one row shorter than the client: tmux's status line.
    await sizeBecomes('100x30 stty 29 100');
    // Attach.resize goes through ssh2's setWindow, which sends nothing on a subsystem channel.
    a.resize({ cols: 120, rows: 40 });
    a.resize({ cols: 120, rows: 40 });
    await sizeBecomes('120x40 stty 39 120');
    a.resize({ cols: 90, rows: 25 });
    await sizeBecomes('90x25 stty 24 90');
  });

  test('when the session command exits, the container stops and the attach closes', async () => {
    a.write('exit\r');
    expect(await closesWithin(a, 15_000)).toBe(true);
    const v = await until('state -', current, (x) => x.state === '-', 15_000);
    expect(v.attached).toEqual([]);
    expect(v.container?.running ?? false).toBe(false);
    const cs = await testContainers(runLabel);
    expect(cs.filter((c) => c.state === 'running')).toEqual([]);
  });
});

test('background of an unknown session is NOT_FOUND', async () => {
  await expect(alice.call('background', { session: randomUUID() }, 'alice')).rejects.toMatchObject({ code: 'NOT_FOUND' });
});
