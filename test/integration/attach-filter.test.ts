/**
 * A hostile session against the operator's terminal, with a real shell, a real agent and a real
 * container: from inside the session, tmux's `set-clipboard` and `allow-passthrough` are turned on
 * and the session prints a clipboard write, and passthroughs of a clipboard read, of a DCS query
 * and of a passthrough meant for the operator's own tmux. An attach straight to the agent (what
 * the shell reads) receives them all, so tmux did send them; the operator attached through the
 * shell receives the text around them and none of them.
 */
import { randomUUID } from 'node:crypto';
import { AgentClient } from '../helpers/agent-client';
import { Cluster, startCluster } from '../helpers/cluster';
import { docker, testContainers, tmuxClientCount } from '../helpers/docker';
import { ShellTerms } from '../helpers/shell-term';
import { until } from '../helpers/wait';

const runLabel = `attfilt-${randomUUID().slice(0, 8)}`;
let cluster: Cluster;
let agent: AgentClient;
const terms = new ShellTerms(() => cluster);

/** The container's tmux, as the container's own user (the one the session runs as). */
function tmux(session: string, ...args: string[]): Promise<string> {
  return docker('exec', `berth-${session}`, 'tmux', ...args);
}

/** Prints a printf format into the session's pane, as a program in it would (written to its tty). */
function printInPane(session: string, format: string): Promise<string> {
  const script = 'printf "$1" > "$(tmux display -p -t claude "#{pane_tty}")"';
  return docker('exec', `berth-${session}`, 'sh', '-c', script, 'sh', format);
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

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

test('clipboard sequences and passthroughs reach an attach to the agent, never the operator through the shell', async () => {
  const r = await cluster.ssh('alice', ['create --name hostile-print --json']);
  expect(r.code).toBe(0);
  const session = (JSON.parse(r.out) as { id: string }).id;
  const operator = await terms.attach('alice', session, { cols: 100, rows: 30 }, 'latin1');
  // The direct attach comes once the operator's screen is there, so that both see the same output.
  await until('the operator is attached', async () => operator.output(), (o) => o.includes('\u001b[?1049h'), 15_000, 50);
  const direct = await agent.attach({ session, operator: 'bob' });
  expect(await direct.ready).toMatchObject({ ok: true });
  await until('both attaches are tmux clients', () => tmuxClientCount(`berth-${session}`).catch(() => -1), (n) => n === 2, 15_000, 100);

  // What a hostile session can do: it runs as the user its tmux runs as.
  await tmux(session, 'set', '-g', 'set-clipboard', 'on');
  await tmux(session, 'set', '-g', 'allow-passthrough', 'on');
  const E = '\\033';
  const BEL = '\\007';
  const ST = `${E}\\\\`;
  const written = b64(`written-${randomUUID()}`);
  const nested = b64(`nested-${randomUUID()}`);
  const marker = `filter-marker-${randomUUID().slice(0, 8)}`;
  await printInPane(
    session,
    [
      // A clipboard write: tmux sends its own OSC 52 to its clients.
      `${E}]52;c;${written}${BEL}`,
      // Passthroughs: tmux sends what is inside, unwrapped. A clipboard read, a DCS query (XTGETTCAP),
      // and a passthrough for an operator's own tmux (ESCs inside are doubled once per level).
      `${E}Ptmux;${E}${E}]52;c;?${BEL}${ST}`,
      `${E}Ptmux;${E}${E}P+q544e${E}${ST}${ST}`,
      `${E}Ptmux;${E}${E}Ptmux;${E}${E}${E}${E}]52;c;${nested}${BEL}${E}${ST}${ST}`,
      // Text around them, with bytes 0x90 and 0x9d inside UTF-8 characters.
      `${marker} Ð═✝ end\\n`,
    ].join(''),
  );

  // tmux sent each of them: the bytes the shell reads from the agent.
  await until('the direct attach shows the marker', async () => direct.output, (o) => o.includes(marker), 15_000, 50);
  // tmux writes its own clipboard sequence with the selection left out: ESC ] 52 ; ; DATA BEL.
  expect(direct.output).toMatch(new RegExp(`\u001b\\]52;[a-z]*;${written.replace(/[+/]/g, '\\$&')}\u0007`));
  expect(direct.output).toContain('\u001b]52;c;?\u0007');
  expect(direct.output).toContain('\u001bP+q544e\u001b\\');
  expect(direct.output).toContain(`\u001bPtmux;\u001b\u001b]52;c;${nested}\u0007\u001b\\`);

  // The operator gets the text, and none of them.
  await until('the operator sees the marker', async () => operator.output(), (o) => o.includes(marker), 15_000, 50);
  const seen = operator.output();
  expect(Buffer.from(seen, 'latin1').toString('utf8')).toContain(`${marker} Ð═✝ end`);
  expect(seen).not.toContain('\u001b]52');
  expect(seen).not.toContain('\u001bP');
  expect(seen).not.toContain('\u001bPtmux;');
  expect(seen).not.toContain(written);
  expect(seen).not.toContain(nested);
  expect(seen).not.toContain('52;c;?');

  direct.close();
  operator.channel.close();
  await Promise.all([direct.closed, operator.closed]);
  await until('no tmux client left', () => tmuxClientCount(`berth-${session}`).catch(() => -1), (n) => n === 0, 15_000, 100);
});
