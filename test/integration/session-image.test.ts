/**
 * The session image carries what a coding-agent session needs: Claude Code at the version
 * package.json pins (the Dockerfile's default is the same, and so are its packages), git, ripgrep,
 * the OpenSSH client and CA certificates. Seen from inside real sessions started through an agent:
 * `claude --version`, the tools, Claude Code's own screen in the tmux pane when it is the command,
 * and, when the command is not in the image, a notice in the pane that the operator sees on attach.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { PACKAGES } from '../../deploy/image/build';
import { CLAUDE_BIN, claudeCodeVersion } from '../../deploy/image/claude-code';
import { AgentClient, view } from '../helpers/agent-client';
import { AgentProcess, REPO_ROOT, startAgentProcess } from '../helpers/agent-process';
import { removeTestContainers } from '../helpers/docker';
import { until } from '../helpers/wait';

const runLabel = `image-${randomUUID().slice(0, 8)}`;
/** A command no image has. */
const MISSING = 'berth-no-such-program';
const agents: AgentProcess[] = [];
let pinned = '';

beforeAll(async () => {
  pinned = await claudeCodeVersion(path.join(REPO_ROOT, 'package.json'));
});

afterAll(async () => {
  for (const a of agents) await a.dispose().catch(() => undefined);
  await removeTestContainers(runLabel);
});

/** An agent of this run whose sessions run `command`. */
async function agentRunning(command: string): Promise<{ agent: AgentProcess; client: AgentClient }> {
  const agent = await startAgentProcess({ runLabel, config: { command } });
  agents.push(agent);
  return { agent, client: await agent.connect() };
}

/** Creates a session, lets `prepare` fill its home (a host folder), then starts it; its id. */
async function runningSession(client: AgentClient, name: string, prepare?: (id: string) => Promise<void>): Promise<string> {
  const id = view(await client.call('create', { name })).meta.id;
  await prepare?.(id);
  expect(view(await client.call('restart', { session: id })).state).toBe('R');
  return id;
}

/** Runs `argv` (no shell) in a session's container as its user; exit code and output, never throws. */
function inSession(id: string, argv: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('docker', ['exec', `berth-${id}`, ...argv], { timeout: 20_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

/** What the session's tmux pane shows now ('' once the session is gone). */
async function pane(id: string): Promise<string> {
  const r = await inSession(id, ['tmux', 'capture-pane', '-p', '-t', 'claude']);
  return r.code === 0 ? r.out : '';
}

/** The program running in the session's pane. */
async function paneProgram(id: string): Promise<string> {
  return (await inSession(id, ['tmux', 'display-message', '-p', '-t', 'claude', '#{pane_current_command}'])).out;
}

describe('both recipes agree', () => {
  let dockerfile = '';

  beforeAll(async () => {
    dockerfile = await fs.readFile(path.join(REPO_ROOT, 'deploy/image/Dockerfile'), 'utf8');
  });

  test("the Dockerfile's default Claude Code version is the one package.json pins", () => {
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(/^ARG CLAUDE_CODE_VERSION=(\S+)$/m.exec(dockerfile)?.[1]).toBe(pinned);
  });

  test('the Dockerfile installs the packages the offline builder does', () => {
    const install = /--no-install-recommends([^&]*)&&/.exec(dockerfile)?.[1] ?? '';
    expect(install.split(/[\s\\]+/).filter(Boolean).sort()).toEqual([...PACKAGES].sort());
  });
});

describe('inside a real session', () => {
  let client: AgentClient;
  let id = '';

  beforeAll(async () => {
    ({ client } = await agentRunning('bash'));
    id = await runningSession(client, 'tools');
  });

  test('claude --version prints the pinned version; the binary is root-owned and stays at that version', async () => {
    const v = await inSession(id, ['claude', '--version']);
    expect(v.code).toBe(0);
    expect(v.out.split(' ')[0]).toBe(pinned);
    expect(v.out).toContain('Claude Code');
    expect(await inSession(id, ['sh', '-c', 'command -v claude'])).toEqual({ code: 0, out: CLAUDE_BIN });
    expect(await inSession(id, ['stat', '-c', '%a %U %G', CLAUDE_BIN])).toEqual({ code: 0, out: '755 root root' });
    expect(await inSession(id, ['printenv', 'DISABLE_AUTOUPDATER'])).toEqual({ code: 0, out: '1' });
  });

  test('git, ripgrep, the OpenSSH client and the CA bundle are there', async () => {
    const git = await inSession(id, ['git', '--version']);
    expect(git.code).toBe(0);
    expect(git.out).toMatch(/^git version \d/);
    const rg = await inSession(id, ['rg', '--version']);
    expect(rg.code).toBe(0);
    expect(rg.out).toMatch(/^ripgrep \d/);
    const ssh = await inSession(id, ['ssh', '-V']);
    expect(ssh.code).toBe(0);
    expect(ssh.out).toMatch(/^OpenSSH_/);
    const bundle = await inSession(id, ['sh', '-c', 'grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/ca-certificates.crt']);
    expect(bundle.code).toBe(0);
    expect(Number(bundle.out)).toBeGreaterThan(50);
  });
});

test("a session whose command is claude shows Claude Code's own screen in its pane", async () => {
  const { agent, client } = await agentRunning('claude');
  // A fresh home shows Claude Code's first-run screens, which end at once with no network
  // ("Unable to connect", then exit: the session stops). A home that has been through them, as
  // after an operator's first login, keeps Claude Code at its prompt, whatever the network.
  const id = await runningSession(client, 'claude-screen', async (sid) => {
    const home = path.join(agent.root, sid, 'home');
    const owner = await fs.stat(home);
    const file = path.join(home, '.claude.json');
    await fs.writeFile(file, JSON.stringify({ hasCompletedOnboarding: true, projects: { '/home/claude': { hasTrustDialogAccepted: true } } }));
    await fs.chown(file, owner.uid, owner.gid);
  });
  const screen = await until('claude in the pane', () => pane(id), (s) => s.includes(`Claude Code v${pinned}`), 30_000, 250);
  expect(screen).toMatch(/\/login/);
  expect(await paneProgram(id)).toBe('claude');
  // The session's tmux passes focus in and out (without, Claude Code tells the operator to set it).
  expect(await inSession(id, ['tmux', 'show-options', '-s', '-v', 'focus-events'])).toEqual({ code: 0, out: 'on' });
});

test('a session whose command is not in the image says so in its pane, on attach, over a login shell', async () => {
  const { client } = await agentRunning(`${MISSING} --flag`);
  const id = await runningSession(client, 'missing');
  const notice = `berth: '${MISSING}' is not installed in this image,`;
  const shown = await until('the notice in the pane', () => pane(id), (s) => s.includes(notice), 15_000, 200);
  expect(shown).toContain('so this is a login shell instead.');
  expect(await paneProgram(id)).toBe('bash');
  // What the operator sees on attach, in a terminal narrower than the pane: the notice, then a
  // shell that works.
  const a = await client.attach({ session: id }, { cols: 80, rows: 24 });
  expect((await a.ready).ok).toBe(true);
  await a.waitForText(notice);
  const mark = a.output.length;
  a.write('echo shell-$((40+2))\r');
  await a.waitForText('shell-42', 10_000, mark);
  a.close();
});
