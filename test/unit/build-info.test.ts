/**
 * The build stamp (deploy/stamp-build.ts) and how a process reads it (common/build-info.ts): the
 * package.json's version with a 40-hex commit from this checkout, `unknown` for a copy without
 * git of its own, and the version alone from package.json when there is no stamp at all (or a
 * stamp that does not parse).
 */
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUILD, buildInfoPath, packageRoot, readBuildInfo } from '../../common/build-info';
import { BERTH_VERSION } from '../../common/protocol';
import { stampBuild } from '../../deploy/stamp-build';

const REPO_ROOT = path.resolve(__dirname, '../..');
const packageVersion = (root: string): string => (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;

let tmp: string;

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-stamp-'));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

test("the stamp of this checkout has package.json's version, a 40-hex or unknown commit, and the time", async () => {
  const file = path.join(tmp, 'build-info.json');
  const before = Date.now();
  const b = await stampBuild(REPO_ROOT, file);
  expect(JSON.parse(await fs.readFile(file, 'utf8'))).toEqual(b);
  expect(b.version).toBe(packageVersion(REPO_ROOT));
  expect(b.commit).toMatch(/^([0-9a-f]{40}|unknown)$/);
  // Whole seconds: the stamp is no earlier than the second the test began in.
  expect(Date.parse(b.builtAt)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
});

test('a copy without git of its own reads unknown; without a stamp, the version comes from package.json', async () => {
  await fs.writeFile(path.join(tmp, 'package.json'), JSON.stringify({ name: 'berth', version: '9.8.7' }));
  await fs.mkdir(path.join(tmp, 'dist', 'common'), { recursive: true });
  expect(packageRoot(path.join(tmp, 'dist', 'common'))).toBe(tmp);

  expect(readBuildInfo(tmp)).toEqual({ version: '9.8.7', commit: 'unknown', builtAt: 'unknown' });
  await fs.writeFile(buildInfoPath(tmp), '{"version": "9.8.7", "commit": "not hex"');
  expect(readBuildInfo(tmp)).toEqual({ version: '9.8.7', commit: 'unknown', builtAt: 'unknown' });

  const b = await stampBuild(tmp);
  expect(b).toMatchObject({ version: '9.8.7', commit: 'unknown' });
  expect(readBuildInfo(tmp)).toEqual(b);
});

test('this process knows its build, and the protocol reports its version', () => {
  expect(BUILD.version).toBe(packageVersion(REPO_ROOT));
  expect(BUILD.commit).toMatch(/^([0-9a-f]{40}|unknown)$/);
  expect(BERTH_VERSION).toBe(BUILD.version);
});
