/**
 * deploy/install-agent.sh and deploy/install-shell.sh, each run twice in a row as root inside a
 * throwaway container (the offline session image: Debian minbase, no network, the host's node
 * mounted in, this checkout mounted read-only at /src): both runs end in the same state, the
 * second says nothing changed, and the berth user can use what was installed.
 */
import { execFile } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { REPO_ROOT } from '../helpers/agent-process';
import { readBuildInfo } from '../../common/build-info';
import { SESSION_IMAGE, docker, removeTestContainers, testLabelArgs } from '../helpers/docker';

const runLabel = `e2e-install-${randomUUID().slice(0, 8)}`;
/** A public key only: the shell's config needs one well-formed operator key. */
const ALICE_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJliDeFuYITAh8ziHJjHd6G05Ul2MwitY0kF1TZVWm64 alice@laptop';
const AGENT_INSTALL = 'bash /src/deploy/install-agent.sh --source /src --no-systemd --no-image --id test-1';
const SHELL_INSTALL = `bash /src/deploy/install-shell.sh --source /src --no-systemd --operator alice --operator-key '${ALICE_KEY}'`;
/** Everything the scripts make, with modes, owners and sizes; the users and groups; the configs' hashes. */
const STATE = [
  "find /opt/berth /etc/berth /var/lib/berth /home/claude /var/log/berth /usr/local/bin/berth -printf '%p %m %u %g %s\\n' | sort",
  'getent passwd berth',
  'getent group docker berth',
  'id -nG berth',
  'sha256sum /etc/berth/*.json /usr/local/bin/berth',
].join('; ');

let container = '';

interface Run {
  code: number;
  out: string;
}

/** Runs a bash script in the container as root; never takes longer than `timeoutMs`. */
function sh(script: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'docker',
      ['exec', '-w', '/', container, 'bash', '-c', script],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, out: `${stdout}${stderr}` });
      },
    );
  });
}

async function ok(script: string, timeoutMs?: number): Promise<string> {
  const r = await sh(script, timeoutMs);
  expect({ script, ...r }).toMatchObject({ code: 0 });
  return r.out;
}

/** "mode owner group" of one path in a STATE listing, or "absent". */
function entry(state: string, p: string): string {
  const line = state.split('\n').find((l) => l.startsWith(`${p} `));
  return line ? line.slice(p.length + 1).split(' ').slice(0, 3).join(' ') : 'absent';
}

beforeAll(async () => {
  await removeTestContainers(runLabel);
  const node = realpathSync(process.execPath);
  container = await docker(
    'run', '-d', '--rm',
    ...testLabelArgs(runLabel),
    '--user', '0',
    '--network', 'none', // the install must work offline from an already built source
    '--entrypoint', 'sleep',
    '-v', `${node}:/usr/bin/node:ro`,
    '-v', `${REPO_ROOT}:/src:ro`,
    SESSION_IMAGE, 'infinity',
  );
  // The image has glibc and libstdc++ (apt needs them); node needs nothing else.
  await ok('node --version');
  // The image's own user `claude` has /home/claude; a fresh host has no such folder (and the
  // script refuses to take over a folder that belongs to someone else).
  await ok('rm -rf /home/claude');
}, 60_000);

afterAll(async () => {
  await removeTestContainers(runLabel);
});

test('install-agent.sh twice: the same state, and the second run changes nothing', async () => {
  const first = await ok(AGENT_INSTALL);
  expect(first).toContain('+ created user berth');
  expect(first).toContain('+ added berth to group docker');
  expect(first).toMatch(/\+ \/opt\/berth\/node_modules: copied from \/src\/node_modules/);
  expect(first).toMatch(/berth agent install: \d+ change\(s\)/);
  const after1 = await ok(STATE);

  const second = await ok(AGENT_INSTALL);
  expect(second).not.toMatch(/^\+ /m);
  expect(second).toContain('berth agent install: nothing changed');
  const after2 = await ok(STATE);
  expect(after2).toBe(after1);

  // What the state holds, to be sure the fingerprint is about something.
  expect(entry(after1, '/home/claude')).toBe('750 berth berth');
  expect(entry(after1, '/var/lib/berth/agent')).toBe('700 berth berth');
  expect(entry(after1, '/var/lib/berth/agent/host_key')).toBe('600 berth berth');
  expect(entry(after1, '/etc/berth')).toBe('755 root root');
  expect(entry(after1, '/opt/berth/dist/deploy/berth.js')).toMatch(/^(644|755) root root$/);
  expect(entry(after1, '/opt/berth/node_modules/ssh2')).toBe('755 root root');
  for (const dev of ['typescript', 'jest', 'eslint']) expect(entry(after1, `/opt/berth/node_modules/${dev}`)).toBe('absent');
  expect(after1.split('\n')).toContain('berth docker');
  const cfg = JSON.parse(await ok('cat /etc/berth/agent.json')) as Record<string, unknown>;
  expect(cfg).toEqual({ id: 'test-1', listen: { host: '0.0.0.0', port: 2222 }, root: '/home/claude', stateDir: '/var/lib/berth/agent' });

  // The installed program runs, and the berth user (the service's) reads its config and key.
  expect(await ok('/usr/local/bin/berth version')).toMatch(/^berth \d+\.\d+\.\d+ \(protocol \d+\)/);
  // The build's stamp came along: the installed program names the source's commit and date.
  const stamp = readBuildInfo(REPO_ROOT);
  expect(await ok('/usr/local/bin/berth version')).toContain(`commit ${stamp.commit}, built ${stamp.builtAt}`);
  const fp = (await ok("su -s /bin/sh berth -c 'berth agent fingerprint --config /etc/berth/agent.json'")).trim();
  expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  expect(first).toContain(`agent host key: ${fp}`);
  // As root, the wrapper runs agent commands as berth: a trusted key file the agent can read.
  await ok(`berth agent authorize-shell --config /etc/berth/agent.json '${ALICE_KEY}'`);
  expect(await ok('stat -c "%U %a" /var/lib/berth/agent/trusted_shell_keys')).toBe('berth 600\n');
  expect(await ok("su -s /bin/sh berth -c 'mkdir /home/claude/probe && rmdir /home/claude/probe && echo writable'")).toBe('writable\n');
  await ok('rm /var/lib/berth/agent/trusted_shell_keys');
}, 240_000);

test('install-shell.sh twice: the same state, and the second run changes nothing', async () => {
  const first = await ok(SHELL_INSTALL);
  expect(first).toContain('+ installed /etc/berth/shell.json');
  expect(first).toContain("+ made the shell's key for agents");
  const after1 = await ok(STATE);

  const second = await ok(SHELL_INSTALL);
  expect(second).not.toMatch(/^\+ /m);
  expect(second).toContain('berth shell install: nothing changed');
  expect(await ok(STATE)).toBe(after1);

  expect(entry(after1, '/var/lib/berth/shell')).toBe('700 berth berth');
  expect(entry(after1, '/var/lib/berth/shell/agent_key')).toBe('600 berth berth');
  const cfg = JSON.parse(await ok('cat /etc/berth/shell.json')) as { operators: unknown[]; stateDir: string };
  expect(cfg.operators).toEqual([{ name: 'alice', role: 'admin', keys: [ALICE_KEY] }]);
  expect(cfg.stateDir).toBe('/var/lib/berth/shell');
  const key = (await ok("su -s /bin/sh berth -c 'berth shell show-key --config /etc/berth/shell.json'")).trim();
  expect(key).toMatch(/^ssh-ed25519 \S+ berth-shell$/);
  expect(first).toContain(`agents must trust this key (berth agent authorize-shell): ${key}`);
}, 240_000);

test('install-shell.sh without an operator writes none, says what to do, and keeps a config it did not write', async () => {
  await ok('rm /etc/berth/shell.json');
  const out = await ok('bash /src/deploy/install-shell.sh --source /src --no-systemd');
  expect(out).toContain('has no operator yet, and the shell refuses to start without one');
  expect(JSON.parse(await ok('cat /etc/berth/shell.json'))).toMatchObject({ operators: [] });
  // The operator list is filled in while it is empty, and only then.
  expect(await ok(SHELL_INSTALL)).toContain('+ installed /etc/berth/shell.json');
  const again = await ok(`bash /src/deploy/install-shell.sh --source /src --no-systemd --operator bob --operator-key '${ALICE_KEY}'`);
  expect(again).toContain('berth shell install: nothing changed');
  expect(again).toContain('bob was not added');
}, 240_000);

test('the unit: installed, reloaded, enabled and started once; the second run asks systemd only what it is', async () => {
  // A stand-in systemctl (the container has no systemd) that logs its calls and keeps state in files.
  await ok(`mkdir -p /etc/systemd/system /run/fake-systemd && cat >/usr/local/sbin/systemctl <<'EOF'
#!/bin/sh
echo "$*" >>/run/fake-systemd/calls
for a; do name=$a; done
case $1 in
  is-enabled) test -e "/run/fake-systemd/enabled-$name" ;;
  is-active) test -e "/run/fake-systemd/active-$name" ;;
  enable) touch "/run/fake-systemd/enabled-$name" ;;
  start) touch "/run/fake-systemd/active-$name" ;;
esac
EOF
chmod 755 /usr/local/sbin/systemctl`);
  const install = 'bash /src/deploy/install-agent.sh --source /src --no-image --start';
  const first = await ok(install);
  expect(first).toContain('+ installed /etc/systemd/system/berth-agent.service');
  expect(first).toContain('+ enabled berth-agent');
  expect(first).toContain('+ started berth-agent');
  expect(await ok('cat /run/fake-systemd/calls')).toBe(
    'daemon-reload\nis-enabled --quiet berth-agent\nenable --quiet berth-agent\nis-active --quiet berth-agent\nstart berth-agent\n',
  );
  expect(await ok('cmp /src/deploy/systemd/berth-agent.service /etc/systemd/system/berth-agent.service && rm /run/fake-systemd/calls')).toBe('');
  const second = await ok(install);
  expect(second).toContain('berth agent install: nothing changed');
  expect(await ok('cat /run/fake-systemd/calls')).toBe('is-enabled --quiet berth-agent\nis-active --quiet berth-agent\n');
}, 240_000);
