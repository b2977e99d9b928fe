/**
 * A clone's copy never outlives the agent that started it: when the agent is killed with SIGKILL
 * mid-copy, the copy dies too, so nothing writes into the staging folder the next agent sweeps.
 */
import { spawn } from 'node:child_process';
import { promises as fs, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { copiesDieWithAgent } from '../../agent/store/trees';
import { REPO_ROOT } from '../helpers/agent-process';
import { processesMentioning } from '../helpers/procs';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-copy-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

test('this host ties copies to the agent (setpriv is there)', () => {
  expect(copiesDieWithAgent()).toBe(true);
});

test('SIGKILL of the copying process ends the copy at once', async () => {
  const src = path.join(dir, 'src');
  const dst = path.join(dir, 'dst');
  await fs.mkdir(src);
  const block = Buffer.alloc(8 * 1024 * 1024, 0x61);
  for (let i = 0; i < 40; i++) await fs.writeFile(path.join(src, `f${i}`), block);

  await fs.mkdir(dst);
  const sources = await fs.readdir(src);
  const script = `require(${JSON.stringify(path.join(REPO_ROOT, 'dist/agent/store/trees.js'))}).copyEntries(process.argv[1], JSON.parse(process.argv[2]), process.argv[3], 60000)`;
  const copier = spawn(process.execPath, ['-e', script, src, JSON.stringify(sources), dst], { stdio: 'ignore' });
  const exited = new Promise((r) => copier.once('exit', r));
  try {
    // Kill as soon as the copy is under way.
    const end = Date.now() + 10_000;
    while (readdirSync(dst).length === 0 && Date.now() < end) await sleep(2);
    expect(readdirSync(dst).length).toBeGreaterThan(0);
    expect(processesMentioning(dst).length).toBeGreaterThan(0);
  } finally {
    copier.kill('SIGKILL');
    await exited;
  }
  // The kernel kills the copy with its parent: within a second nothing copies into dst any more.
  const end = Date.now() + 2000;
  while (processesMentioning(dst).length > 0 && Date.now() < end) await sleep(20);
  expect(processesMentioning(dst)).toEqual([]);
  const names = await fs.readdir(dst);
  await sleep(300);
  expect(await fs.readdir(dst)).toEqual(names);
  // It really was cut short, or this test proved nothing.
  expect(names.length).toBeLessThan(40);
});
