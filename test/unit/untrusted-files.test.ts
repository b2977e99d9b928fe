import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readUntrustedFile } from '../../agent/store/untrusted-files';

const run = promisify(execFile);
let dir: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-untrusted-'));
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

describe('readUntrustedFile', () => {
  it('reads a regular file within the cap', async () => {
    await fs.writeFile(path.join(dir, 'a'), 'hello');
    expect((await readUntrustedFile(path.join(dir, 'a'), 5)).toString()).toBe('hello');
  });

  it('never follows a symlink, even to a readable file', async () => {
    await fs.writeFile(path.join(dir, 'target'), 'secret');
    await fs.symlink(path.join(dir, 'target'), path.join(dir, 'link'));
    await expect(readUntrustedFile(path.join(dir, 'link'), 100)).rejects.toMatchObject({ problem: 'symlink' });
  });

  it('returns at once for a FIFO nobody writes to', async () => {
    await run('mkfifo', [path.join(dir, 'fifo')]);
    // Without O_NONBLOCK this open() would wait for a writer for ever (the test would time out).
    await expect(readUntrustedFile(path.join(dir, 'fifo'), 100)).rejects.toMatchObject({ problem: 'not a regular file' });
  });

  it('refuses folders and devices', async () => {
    await expect(readUntrustedFile(dir, 100)).rejects.toMatchObject({ problem: 'not a regular file' });
    await expect(readUntrustedFile('/dev/zero', 100)).rejects.toMatchObject({ problem: 'not a regular file' });
  });

  it('refuses a file over the cap without reading it all', async () => {
    await fs.writeFile(path.join(dir, 'big'), Buffer.alloc(1024 * 1024));
    await expect(readUntrustedFile(path.join(dir, 'big'), 1000)).rejects.toMatchObject({ problem: 'too large' });
  });

  it('says a missing file is missing', async () => {
    await expect(readUntrustedFile(path.join(dir, 'none'), 100)).rejects.toMatchObject({ problem: 'missing' });
  });

  it('keeps one FIFO from stalling other file work: many opens at once all return', async () => {
    await run('mkfifo', [path.join(dir, 'fifo')]);
    await fs.writeFile(path.join(dir, 'a'), 'ok');
    // More than the thread pool's four threads: a blocking open would hang every later fs call.
    const tries = Array.from({ length: 16 }, () => readUntrustedFile(path.join(dir, 'fifo'), 100).catch((e: Error) => e));
    const results = await Promise.all(tries);
    expect(results.every((r) => r instanceof Error)).toBe(true);
    expect(await fs.readFile(path.join(dir, 'a'), 'utf8')).toBe('ok');
  });
});
