/** Docker facts and cleanup for tests, through the docker CLI (argument arrays only). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { alive } from './procs';

const run = promisify(execFile);

export const TEST_LABEL = 'berth.test';
/** The Jest run (its main process id) a test container belongs to: runs side by side never remove each other's. */
export const OWNER_LABEL = 'berth.test.owner';

/** The owner of this process's test containers: the Jest run that set BERTH_TEST_OWNER, or this process. */
export function testOwner(): string {
  return process.env.BERTH_TEST_OWNER ?? String(process.pid);
}

/** The labels every test container carries: the test's own run label and its owner. */
export function testLabels(runLabel: string): Record<string, string> {
  return { [TEST_LABEL]: runLabel, [OWNER_LABEL]: testOwner() };
}

/** The same as `docker run` arguments. */
export function testLabelArgs(runLabel: string): string[] {
  return Object.entries(testLabels(runLabel)).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
}
export const SESSION_IMAGE = process.env.BERTH_TEST_IMAGE ?? 'berth-session:latest';

/** The docker CLI, with an argument array, against the machine's engine. */
export function docker(...args: string[]): Promise<string> {
  return dockerAt(null, ...args);
}

/** The docker CLI against the engine at `socket` (null: the machine's own). */
export async function dockerAt(socket: string | null, ...args: string[]): Promise<string> {
  const host = socket ? ['-H', `unix://${socket}`] : [];
  const { stdout } = await run('docker', [...host, ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Removes the test containers of this run (`owner`), or of runs that are over (`stale`). */
export async function removeOwnedContainers(which: 'owner' | 'stale'): Promise<number> {
  const rows = (await docker('ps', '-a', '--filter', `label=${TEST_LABEL}`, '--format', `{{.ID}} {{.Label "${OWNER_LABEL}"}}`)).split('\n').filter(Boolean);
  const own = testOwner();
  const ids = rows
    .map((r) => r.split(' '))
    .filter(([, owner = '']) => (which === 'owner' ? owner === own : owner === '' || !runIsAlive(owner)))
    .map(([id = '']) => id);
  if (ids.length > 0) await docker('rm', '-f', ...ids);
  return ids.length;
}

/** Removes the networks carrying the test label `value` (those in use by a container stay). */
export async function removeTestNetworks(value: string): Promise<number> {
  const ids = (await docker('network', 'ls', '-q', '--filter', `label=${TEST_LABEL}=${value}`)).split('\n').filter(Boolean);
  let removed = 0;
  for (const id of ids) {
    await docker('network', 'rm', id).then(
      () => (removed += 1),
      () => undefined,
    );
  }
  return removed;
}

function runIsAlive(owner: string): boolean {
  const pid = Number(owner);
  return Number.isInteger(pid) && pid > 0 && alive(pid);
}

/** Removes every container carrying the test label (any value, or the given one). */
export async function removeTestContainers(value?: string, socket: string | null = null): Promise<number> {
  const filter = value ? `label=${TEST_LABEL}=${value}` : `label=${TEST_LABEL}`;
  const ids = (await dockerAt(socket, 'ps', '-aq', '--filter', filter)).split('\n').filter(Boolean);
  if (ids.length > 0) await dockerAt(socket, 'rm', '-f', ...ids);
  return ids.length;
}

/** Containers of one test run, as `docker ps` sees them. */
export async function testContainers(value: string, socket: string | null = null): Promise<Array<{ id: string; session: string; state: string }>> {
  const out = await dockerAt(socket, 'ps', '-a', '--filter', `label=${TEST_LABEL}=${value}`, '--format', '{{.ID}} {{.Label "berth.session"}} {{.State}}');
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id = '', session = '', state = ''] = l.split(' ');
      return { id, session, state };
    });
}

export async function dockerAnswers(socket: string | null = null): Promise<boolean> {
  return dockerAt(socket, 'version', '--format', '{{.Server.Version}}').then(
    () => true,
    () => false,
  );
}

/** How many tmux clients are attached inside a session container (as the container's own user). */
export async function tmuxClientCount(container: string): Promise<number> {
  const out = await docker('exec', container, 'tmux', 'list-clients', '-F', 'client');
  return out.split('\n').filter((l) => l.trim() === 'client').length;
}
