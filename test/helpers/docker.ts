/** Docker facts and cleanup for tests, through the docker CLI (argument arrays only). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const TEST_LABEL = 'berth.test';
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

/** How many tmux clients are attached inside a session container (as the containers' user). */
export async function tmuxClientCount(container: string, user = '1000:1000'): Promise<number> {
  const out = await docker('exec', '-u', user, container, 'tmux', 'list-clients', '-F', 'client');
  return out.split('\n').filter((l) => l.trim() === 'client').length;
}
