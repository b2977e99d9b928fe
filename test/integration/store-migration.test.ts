/**
 * The move from the first layout (records inside the mounted home) to the current one, killed
 * with SIGKILL after every one of its steps, twice in a row, and at random moments: the next
 * start always finishes it, no file of any home is lost, and what the old session.json said is
 * carried over only where it was a sound regular file (never its limits).
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SessionStore } from '../../agent/store/session-store';
import { REPO_ROOT } from '../helpers/agent-process';
import { seededRng } from '../helpers/seed';

const run = promisify(execFile);
const MIGRATE_JS = path.join(REPO_ROOT, 'dist/agent/store/migrate.js');

let base: string;
beforeAll(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-migrate-'));
});
afterAll(() => fs.rm(base, { recursive: true, force: true }));

interface OldRoot {
  root: string;
  good: string;
  plain: string;
  linked: string;
  fifo: string;
  /** Outside every home: must never be read into metadata, changed or moved. */
  secret: string;
}

const metaOf = (id: string, name: string, extra: object = {}) => ({
  version: 1,
  id,
  name,
  protocol: 'tcp',
  port: 0,
  dns: '',
  createdAt: '2026-01-01T00:00:00.000Z',
  lastAccessedAt: null,
  createdBy: 'alice',
  ...extra,
});

/** A root as the first layout left it, with the tricks a hostile session could have played. */
async function oldRoot(): Promise<OldRoot> {
  const root = path.join(base, randomUUID().slice(0, 8));
  const r: OldRoot = { root, good: randomUUID(), plain: randomUUID(), linked: randomUUID(), fifo: randomUUID(), secret: path.join(base, 'secret.json') };
  await fs.writeFile(r.secret, JSON.stringify(metaOf(r.linked, 'stolen')));
  for (const id of [r.good, r.plain, r.linked, r.fifo]) await fs.mkdir(path.join(root, id), { recursive: true });
  const g = path.join(root, r.good);
  await fs.writeFile(path.join(g, 'session.json'), JSON.stringify(metaOf(r.good, 'good', { limits: { memoryMb: 1048576, pids: 1000000 } })));
  await fs.mkdir(path.join(g, 'project/src'), { recursive: true });
  await fs.writeFile(path.join(g, 'project/src/main.ts'), 'console.log(1)\n');
  await fs.writeFile(path.join(g, '.bashrc'), 'export A=1\n');
  // A folder of the user's own called "home": it must stay inside the new home.
  await fs.mkdir(path.join(g, 'home'));
  await fs.writeFile(path.join(g, 'home/inner.txt'), 'inner');
  await fs.symlink('/etc/passwd', path.join(g, 'passwd-link'));
  await run('mkfifo', [path.join(g, 'pipe')]);
  await fs.mkdir(path.join(g, 'session.lock'));
  await fs.writeFile(path.join(g, 'session.lock.owner.json'), '{"operator":"mallory"}');
  await fs.writeFile(path.join(g, '.session.json.0123abcd.tmp'), '{}');
  const p = path.join(root, r.plain);
  await fs.writeFile(path.join(p, 'session.json'), JSON.stringify(metaOf(r.plain, 'plain')));
  const l = path.join(root, r.linked);
  await fs.symlink(r.secret, path.join(l, 'session.json'));
  await fs.writeFile(path.join(l, 'work.txt'), 'mine');
  const f = path.join(root, r.fifo);
  await run('mkfifo', [path.join(f, 'session.json')]);
  await fs.writeFile(path.join(root, '.agent.pid'), '1 1\n');
  return r;
}

/** Runs the migration in a child that SIGKILLs itself after step number `killAt` (0: never). */
function migrateInChild(root: string, killAt: number, killAfterMs = 0): Promise<'done' | 'killed'> {
  const script =
    `let n = 0; const at = Number(process.argv[2]);` +
    `if (Number(process.argv[3]) > 0) setTimeout(() => process.kill(process.pid, 'SIGKILL'), Number(process.argv[3]));` +
    `require(${JSON.stringify(MIGRATE_JS)}).migrateLayout(process.argv[1], () => { if (++n === at) process.kill(process.pid, 'SIGKILL'); })` +
    `.then(() => process.exit(0), (e) => { console.error(e); process.exit(3); });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, root, String(killAt), String(killAfterMs)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0) resolve('done');
      else reject(new Error(`migration exited ${code}: ${err}`));
    });
  });
}

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const d of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const p = path.join(rel, d.name);
      const full = path.join(dir, p);
      if (d.isSymbolicLink()) out.push(`${p} -> ${await fs.readlink(full)}`);
      else if (d.isFIFO()) out.push(`${p} (fifo)`);
      else if (d.isDirectory()) {
        out.push(`${p}/`);
        await walk(p);
      } else out.push(`${p}: ${await fs.readFile(full, 'utf8')}`);
    }
  };
  await walk('');
  return out.sort();
}

async function expectMigrated(r: OldRoot): Promise<void> {
  const names = (await fs.readdir(r.root)).sort();
  expect(names).toEqual(['.agent.pid', '.berth-layout', ...[r.good, r.plain, r.linked, r.fifo].sort()]);
  for (const id of [r.good, r.plain, r.linked, r.fifo]) {
    const own = (await fs.readdir(path.join(r.root, id))).sort();
    expect(own).toEqual(id === r.linked || id === r.fifo ? ['home'] : ['home', 'session.json']);
  }
  expect(await tree(path.join(r.root, r.good, 'home'))).toEqual(
    [
      '.bashrc: export A=1\n',
      'home/',
      'home/inner.txt: inner',
      'passwd-link -> /etc/passwd',
      'pipe (fifo)',
      'project/',
      'project/src/',
      'project/src/main.ts: console.log(1)\n',
    ].sort(),
  );
  expect(await tree(path.join(r.root, r.plain, 'home'))).toEqual([]);
  // Unusable old records stay in the home (the session's own file now), never read through.
  expect(await tree(path.join(r.root, r.linked, 'home'))).toEqual([`session.json -> ${r.secret}`, 'work.txt: mine']);
  expect(await tree(path.join(r.root, r.fifo, 'home'))).toEqual(['session.json (fifo)']);

  const store = new SessionStore({ root: r.root });
  const good = await store.read(r.good);
  expect(good).toEqual({ kind: 'ok', meta: metaOf(r.good, 'good') }); // limits dropped
  expect(await store.read(r.plain)).toEqual({ kind: 'ok', meta: metaOf(r.plain, 'plain') });
  expect(await store.read(r.linked)).toEqual({ kind: 'broken', id: r.linked, reason: 'session.json is missing' });
  expect(await store.read(r.fifo)).toEqual({ kind: 'broken', id: r.fifo, reason: 'session.json is missing' });
  expect(JSON.parse(await fs.readFile(r.secret, 'utf8'))).toMatchObject({ name: 'stolen' });
}

test('an uninterrupted migration moves every session and says which were unreadable', async () => {
  const r = await oldRoot();
  const report = await (await import('../../agent/store/migrate')).migrateLayout(r.root);
  expect(report.migrated.sort()).toEqual([r.good, r.plain, r.linked, r.fifo].sort());
  expect(report.unreadable.map((u) => u.id).sort()).toEqual([r.linked, r.fifo].sort());
  expect(report.unreadable.find((u) => u.id === r.linked)?.reason).toBe('old session.json symlink');
  await expectMigrated(r);
  // Again: nothing to do, nothing changes.
  expect(await (await import('../../agent/store/migrate')).migrateLayout(r.root)).toEqual({ migrated: [], unreadable: [] });
  await expectMigrated(r);
});

test("a kill inside a marker's write leaves its temp file: the next start removes it, before and after the migration", async () => {
  const r = await oldRoot();
  const { migrateLayout } = await import('../../agent/store/migrate');
  // What a kill between writeFileAtomic's open and its rename leaves in the root.
  await fs.writeFile(path.join(r.root, '..berth-migration.dd1f1202.tmp'), '{"sessions":[');
  await migrateLayout(r.root);
  await expectMigrated(r);
  await fs.writeFile(path.join(r.root, '..berth-layout.0badf00d.tmp'), '{"lay');
  await migrateLayout(r.root);
  await expectMigrated(r);
});

test('SIGKILL after any step, even twice in a row, and the next start finishes the migration', async () => {
  let steps = 0;
  for (let k = 1; k <= 200; k++) {
    const r = await oldRoot();
    const first = await migrateInChild(r.root, k);
    if (first === 'done') {
      steps = k - 1;
      await expectMigrated(r);
      break;
    }
    // The next start is killed too, at the same step count of its own run, then one finishes.
    await migrateInChild(r.root, k);
    expect(await migrateInChild(r.root, 0)).toBe('done');
    await expectMigrated(r);
  }
  // journal, then mkdir/moved/(meta)/cleaned/done per session, then the marker.
  expect(steps).toBe(1 + 4 * 4 + 2 + 1);
}, 120_000);

test('SIGKILL at random moments, then the next start finishes the migration', async () => {
  const rng = seededRng('migration kill times');
  for (let i = 0; i < 8; i++) {
    const r = await oldRoot();
    await migrateInChild(r.root, 0, rng.int(20, 120));
    expect(await migrateInChild(r.root, 0)).toBe('done');
    await expectMigrated(r);
  }
}, 120_000);
