/**
 * The agent as the systemd unit runs it: a service user (not root) in the docker group, with
 * only CAP_CHOWN, CAP_DAC_OVERRIDE and CAP_FOWNER, ambient, and no new privileges. It must still
 * keep each home owned by the containers' uid (61000, no host account) and 0700, its own records
 * its own, and create, run, clone and delete sessions.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { DEFAULT_SESSION_USER } from '../../agent/config';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { docker } from '../helpers/docker';
import { view } from '../helpers/agent-client';

const runLabel = `svcuser-${randomUUID().slice(0, 8)}`;
const SERVICE_UID = 4321;
const CAPS = '+chown,+dac_override,+fowner';
let agent: AgentProcess;

beforeAll(async () => {
  const dockerGid = execFileSync('getent', ['group', 'docker'], { encoding: 'utf8' }).split(':')[2];
  agent = await startAgentProcess({
    runLabel,
    wrap: [
      'setpriv',
      `--reuid=${SERVICE_UID}`,
      `--regid=${SERVICE_UID}`,
      `--groups=${dockerGid}`,
      `--inh-caps=${CAPS}`,
      `--ambient-caps=${CAPS}`,
      `--bounding-set=-all,${CAPS}`,
      '--no-new-privs',
      '--',
    ],
  });
});

afterAll(async () => {
  await agent?.dispose();
});

test('a service user with three capabilities keeps homes for the containers\' uid and runs every op', async () => {
  const status = await fs.readFile(`/proc/${agent.proc.pid}/status`, 'utf8');
  expect(status).toMatch(new RegExp(`^Uid:\\s+${SERVICE_UID}\\s`, 'm'));
  expect(status).toMatch(/^CapEff:\s+000000000000000b$/m);
  const client = await agent.connect();
  const s = view(await client.call('create', { name: 'svc' }));
  const dir = path.join(agent.root, s.meta.id);
  const home = path.join(dir, 'home');
  const [d, h, meta] = await Promise.all([fs.stat(dir), fs.stat(home), fs.stat(path.join(dir, 'session.json'))]);
  expect({ uid: d.uid, mode: d.mode & 0o777 }).toEqual({ uid: SERVICE_UID, mode: 0o700 });
  expect({ uid: h.uid, gid: h.gid, mode: h.mode & 0o777 }).toEqual({ ...DEFAULT_SESSION_USER, mode: 0o700 });
  expect(meta.uid).toBe(SERVICE_UID);

  await client.call('restart', { session: s.meta.id });
  const user = JSON.parse(await docker('inspect', '-f', '{{json .Config.User}}', `berth-${s.meta.id}`)) as string;
  expect(user).toBe(`${DEFAULT_SESSION_USER.uid}:${DEFAULT_SESSION_USER.gid}`);
  await docker('exec', `berth-${s.meta.id}`, 'bash', '-c', 'mkdir -p ~/work && echo kept > ~/work/note && chmod 600 ~/work/note');

  // The clone reads a home the service user could not read without its capabilities.
  const c = view(await client.call('clone', { session: s.meta.id }));
  const note = path.join(agent.root, c.meta.id, 'home', 'work', 'note');
  expect(await fs.readFile(note, 'utf8')).toBe('kept\n');
  expect((await fs.stat(note)).uid).toBe(DEFAULT_SESSION_USER.uid);
  await client.call('delete', { session: c.meta.id });
  await client.call('delete', { session: s.meta.id });
  expect(await fs.readdir(agent.root)).toEqual(expect.not.arrayContaining([s.meta.id, c.meta.id]));
  expect(agent.logs.join('\n')).not.toContain('cannot give session homes');
}, 120_000);
