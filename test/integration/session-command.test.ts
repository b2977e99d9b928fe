/**
 * A command per session, end to end through the shell's CLI over the real OpenSSH client: it is
 * kept in the session's metadata and shown by `list --json`, runs in the tmux pane inside the
 * container, and an edit applies at the next start (shown as restartNeeded until then). What an
 * operator types is never run on a host: only inside the container.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Cluster, startCluster, until } from '../helpers/cluster';
import { sessionCli } from '../helpers/session-cli';
import { removeTestContainers } from '../helpers/docker';
import type { SessionJson } from '../../shell/cli/format';

const runLabel = `cmd-${randomUUID().slice(0, 8)}`;
const tag = runLabel.slice(-6);
/** The agents' own command (the tests' default). */
const AGENT_COMMAND = 'bash';

let cluster: Cluster;

const { cli, json, list, find, inSession, startAndWait, killAndWait } = sessionCli(() => cluster);

/** Waits (bounded) until the session's pane shows `text`; returns the pane. */

async function paneShows(id: string, text: string): Promise<string> {
  const r = await until('pane text', () => inSession(id, ['tmux', 'capture-pane', '-p', '-t', 'claude']), (x) => x.code === 0 && x.out.includes(text), 20_000, 200);
  return r.out;
}

const exists = (p: string): Promise<boolean> =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );

const storedMeta = async (id: string): Promise<{ command?: string }> =>
  JSON.parse(await fs.readFile(path.join(cluster.agents[0]!.root, id, 'session.json'), 'utf8')) as { command?: string };

beforeAll(async () => {
  cluster = await startCluster({ runLabel, agents: 1, agentConfig: { command: AGENT_COMMAND } });
  await cluster.agentsOnline();
}, 60_000);

afterAll(async () => {
  await cluster?.dispose();
  await removeTestContainers(runLabel);
});

test('create --command: kept in metadata and list --json, run in the pane inside the container', async () => {
  const command = "bash -c 'echo hi-from-$((40+2)); exec bash'";
  const s = await json<SessionJson>(`create --name cmd-${tag} --command "${command}"`);
  expect(s.command).toBe(command);
  expect((await find(s.id)).command).toBe(command);
  expect((await storedMeta(s.id)).command).toBe(command);
  // A session that names none runs the agent's, and says null.
  const plain = await json<SessionJson>(`create --name plain-${tag}`);
  expect(plain.command).toBeNull();
  expect((await storedMeta(plain.id)).command).toBeUndefined();

  await startAndWait(s.id);
  // The arithmetic is done by the shell in the pane: the text typed never contains the result.
  expect(await paneShows(s.id, 'hi-from-42')).not.toContain('hi-from-$((40+2))');
  expect(await inSession(s.id, ['printenv', 'BERTH_COMMAND'])).toEqual({ code: 0, out: `${command}\n`, err: '' });
  expect((await find(s.id)).restartNeeded).toBe(false);

  await startAndWait(plain.id);
  expect(await inSession(plain.id, ['printenv', 'BERTH_COMMAND'])).toEqual({ code: 0, out: `${AGENT_COMMAND}\n`, err: '' });
  expect((await find(plain.id)).restartNeeded).toBe(false);
}, 90_000);

test('a command that starts with NAME=value words runs as written: its program is the word after them', async () => {
  const s = await json<SessionJson>(`create --name assign-${tag} --command "X=1 Y=2 bash -c 'echo x-is-$X-$Y; exec bash'"`);
  await startAndWait(s.id);
  await paneShows(s.id, 'x-is-1-2');
  // A first word that is no plain name (a quoted one) is left to the shell, not looked up.
  const quoted = await json<SessionJson>(`create --name quoted-${tag} --command "'bash' -c 'echo quoted-ran; exec bash'"`);
  await startAndWait(quoted.id);
  await paneShows(quoted.id, 'quoted-ran');
}, 90_000);

test('the command and the variables run only inside the container, never on a host', async () => {
  const mark = `/tmp/berth-cmd-mark-${randomUUID()}`;
  // Everything here would make a file on the host if any host shell read it.
  const command = `touch ${mark}; echo $(touch ${mark}-sub) \`touch ${mark}-tick\`; exec bash`;
  const s = await json<SessionJson>(`create --name host-${tag} --command '${command}' --env 'SUB=$(touch ${mark}-env)'`);
  expect(s.command).toBe(command);
  expect(s.env).toEqual({ SUB: `$(touch ${mark}-env)` });
  const onHost = async (): Promise<string[]> => {
    const found: string[] = [];
    for (const p of [mark, `${mark}-sub`, `${mark}-tick`, `${mark}-env`]) if (await exists(p)) found.push(p);
    return found;
  };
  expect(await onHost()).toEqual([]);

  await startAndWait(s.id);
  await until('the command ran in the container', () => inSession(s.id, ['ls', '/tmp']), (r) => r.out.includes(path.basename(`${mark}-tick`)), 20_000, 200);
  for (const p of [mark, `${mark}-sub`, `${mark}-tick`]) expect((await inSession(s.id, ['test', '-e', p])).code).toBe(0);
  // A variable's value is a value: nothing evaluates it, in the container either.
  expect((await inSession(s.id, ['test', '-e', `${mark}-env`])).code).toBe(1);
  expect(await inSession(s.id, ['printenv', 'SUB'])).toEqual({ code: 0, out: `$(touch ${mark}-env)\n`, err: '' });
  expect(await onHost()).toEqual([]);
}, 90_000);

test('edit --command on a running session: restartNeeded until kill and restart, then the new command runs; --command \'\' goes back to the agent\'s', async () => {
  const s = await json<SessionJson>(`create --name edit-${tag} --command "bash -c 'echo first-$((1+1)); exec bash'"`);
  await startAndWait(s.id);
  await paneShows(s.id, 'first-2');

  const second = "bash -c 'echo second-$((2+2)); exec bash'";
  const edited = await json<SessionJson>(`edit ${s.id} --command "${second}"`);
  expect(edited).toEqual(expect.objectContaining({ command: second, restartNeeded: true, state: 'running' }));
  expect(await find(s.id)).toEqual(expect.objectContaining({ command: second, restartNeeded: true }));
  expect((await storedMeta(s.id)).command).toBe(second);
  // The running container keeps what it started with.
  expect(await inSession(s.id, ['printenv', 'BERTH_COMMAND'])).toEqual({ code: 0, out: "bash -c 'echo first-$((1+1)); exec bash'\n", err: '' });

  await killAndWait(s.id);
  expect((await find(s.id)).restartNeeded).toBe(false);
  await startAndWait(s.id);
  const pane = await paneShows(s.id, 'second-4');
  expect(pane).not.toContain('first-2');
  expect((await find(s.id)).restartNeeded).toBe(false);

  const back = await json<SessionJson>(`edit ${s.id} --command ''`);
  expect(back).toEqual(expect.objectContaining({ command: null, restartNeeded: true }));
  expect((await find(s.id)).command).toBeNull();
  expect((await storedMeta(s.id)).command).toBeUndefined();
  await killAndWait(s.id);
  await startAndWait(s.id);
  expect(await inSession(s.id, ['printenv', 'BERTH_COMMAND'])).toEqual({ code: 0, out: `${AGENT_COMMAND}\n`, err: '' });
  expect(await find(s.id)).toEqual(expect.objectContaining({ command: null, restartNeeded: false }));
  await until('the agent\'s command in the pane', () => inSession(s.id, ['tmux', 'display-message', '-p', '-t', 'claude', '#{pane_current_command}']), (r) => r.out.trim() === AGENT_COMMAND, 15_000, 200);

  // Naming the agent's own command explicitly changes nothing the container runs.
  expect(await json<SessionJson>(`edit ${s.id} --command ${AGENT_COMMAND}`)).toEqual(expect.objectContaining({ command: AGENT_COMMAND, restartNeeded: false }));
  // An edit of a stopped session needs no restart: its next start applies it.
  await killAndWait(s.id);
  expect(await json<SessionJson>(`edit ${s.id} --command "bash -c 'echo third; exec bash'"`)).toEqual(expect.objectContaining({ restartNeeded: false, state: 'stopped' }));
}, 120_000);

test('commands that are no command are refused, and leave nothing', async () => {
  const empty = await cli(`create --name bad-${tag} --command ''`);
  expect(empty.code).toBe(2);
  expect(empty.err).toMatch(/^berth: --command must not be empty\n/);
  const long = await cli(`create --name bad-${tag} --command '${'x'.repeat(1001)}'`);
  expect(long.code).toBe(1);
  expect(long.err).toMatch(/^error: BAD_REQUEST: .*command.*1000/);
  const tab = await cli(`create --name bad-${tag} --command 'echo\tx'`);
  expect(tab.code).toBe(1);
  expect(tab.err).toMatch(/^error: BAD_REQUEST: .*command.*control characters/);
  expect((await list()).filter((x) => x.name === `bad-${tag}`)).toEqual([]);
  const some = (await list()).find((x) => x.name === `plain-${tag}`)!;
  const editEmpty = await cli(`edit ${some.id} --command '${'y'.repeat(1001)}'`);
  expect(editEmpty.code).toBe(1);
  expect((await find(some.id)).command).toBeNull();
});
