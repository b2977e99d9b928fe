/** Docker facts and cleanup for tests, through the docker CLI (argument arrays only). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const TEST_LABEL = 'berth.test';
export const SESSION_IMAGE = process.env.BERTH_TEST_IMAGE ?? 'berth-session:latest';

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Removes every container carrying the test label (any value, or the given one). */
export async function removeTestContainers(value?: string): Promise<number> {
  const filter = value ? `label=${TEST_LABEL}=${value}` : `label=${TEST_LABEL}`;
  const ids = (await docker('ps', '-aq', '--filter', filter)).split('\n').filter(Boolean);
  if (ids.length > 0) await docker('rm', '-f', ...ids);
  return ids.length;
}

/** Containers of one test run, as `docker ps` sees them. */
export async function testContainers(value: string): Promise<Array<{ id: string; session: string; state: string }>> {
  const out = await docker('ps', '-a', '--filter', `label=${TEST_LABEL}=${value}`, '--format', '{{.ID}} {{.Label "berth.session"}} {{.State}}');
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id = '', session = '', state = ''] = l.split(' ');
      return { id, session, state };
    });
}

export async function dockerAnswers(): Promise<boolean> {
  return docker('version', '--format', '{{.Server.Version}}').then(
    () => true,
    () => false,
  );
}
