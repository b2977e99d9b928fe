/**
 * The move from the first layout, where session.json and the lock lived inside the mounted home
 * (so the session could rewrite them), to the current one (see session-store.ts): the old folder
 * becomes `<uuid>/home/` and the records move beside it, into a folder only the agent can write.
 *
 * Crash-safe: before touching anything the agent writes a journal naming each old folder by its
 * inode. Each session then moves in steps that are each atomic or idempotent:
 *
 *     mkdir .migrate-<uuid>/              (the new folder, out of sight)
 *     rename <uuid>/ → .migrate-<uuid>/home/
 *     write .migrate-<uuid>/session.json  (checked metadata from the old file)
 *     remove the old records from home/
 *     rename .migrate-<uuid>/ → <uuid>/
 *
 * A folder named `<uuid>` whose inode is the journal's still has the old layout; any other is done.
 * A kill at any point is finished by the next start. When every session has moved, a marker says
 * so and the journal goes.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { fsyncDir, writeFileAtomic } from '../../common/atomic-file';
import { BerthError } from '../../common/errors';
import { parseJson } from '../../common/json';
import { UUID_RE } from '../../common/names';
import { SessionMeta, sessionMetaSchema } from '../../common/protocol';
import { readUntrustedFile } from './untrusted-files';

/** In the root: which layout its sessions have. Absent in a root of the first layout. */
export const LAYOUT_FILE = '.berth-layout';
export const CURRENT_LAYOUT = 2;
const JOURNAL_FILE = '.berth-migration';
const MIGRATING = '.migrate-';
/** Names of the old layout (kept here: nothing else knows them any more). */
const OLD_SESSION_FILE = 'session.json';
const OLD_RECORDS = ['session.lock', 'session.lock.owner.json'];
const OLD_RECORD_TMP_RE = /^\.session\.(json|lock\.owner\.json)\.[0-9a-f]{8}\.tmp$/;
/** The temp file of the new metadata's write, in the folder being migrated (see writeFileAtomic). */
const META_TMP_RE = /^\.session\.json\.[0-9a-f]{8}\.tmp$/;
/** The temp file of a journal or layout marker write a kill cut short (see writeFileAtomic). */
const ROOT_TMP_RE = /^\.\.berth-(migration|layout)\.[0-9a-f]{8}\.tmp$/;
const MAX_OLD_META_BYTES = 64 * 1024;

const layoutSchema = z.object({ layout: z.number().int() });
const journalSchema = z.object({
  sessions: z.array(z.object({ id: z.string().regex(UUID_RE), ino: z.string().regex(/^\d+$/) })),
});
type JournalEntry = z.infer<typeof journalSchema>['sessions'][number];

export interface MigrationReport {
  /** Sessions moved to the current layout by this call. */
  migrated: string[];
  /** Sessions moved whose old session.json was not usable: they show broken, with this reason. */
  unreadable: Array<{ id: string; reason: string }>;
}

/** Called after each step, by name: tests stop the process there to prove the crash safety. */
export type StepHook = (step: string) => void;

/** Brings `root` to the current layout (see above). Idempotent; a no-op once the marker is there. */
export async function migrateLayout(root: string, hook: StepHook = () => undefined): Promise<MigrationReport> {
  const report: MigrationReport = { migrated: [], unreadable: [] };
  // A temp file is never the truth: its write did not reach the rename.
  for (const name of await fs.readdir(root).catch(() => [] as string[])) {
    if (ROOT_TMP_RE.test(name)) await fs.rm(path.join(root, name), { force: true });
  }
  const layout = await readLayout(root);
  if (layout === CURRENT_LAYOUT) {
    await fs.rm(path.join(root, JOURNAL_FILE), { force: true });
    return report;
  }
  if (layout !== null) {
    throw new BerthError('CONFLICT', `${path.join(root, LAYOUT_FILE)}: layout ${layout} is newer than this agent knows (${CURRENT_LAYOUT})`);
  }
  const journal = (await readJournal(root)) ?? (await writeJournal(root));
  hook('journal');
  for (const e of journal) {
    const outcome = await migrateOne(root, e, hook);
    if (outcome === 'skipped') continue;
    report.migrated.push(e.id);
    if (outcome !== 'ok') report.unreadable.push({ id: e.id, reason: outcome.problem });
  }
  await writeFileAtomic(path.join(root, LAYOUT_FILE), `${JSON.stringify({ layout: CURRENT_LAYOUT })}\n`);
  hook('marked');
  await fs.rm(path.join(root, JOURNAL_FILE), { force: true });
  return report;
}

async function readLayout(root: string): Promise<number | null> {
  let text: string;
  try {
    text = await fs.readFile(path.join(root, LAYOUT_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const r = parseJson(text, layoutSchema);
  if (!r.ok) throw new BerthError('CONFLICT', `${path.join(root, LAYOUT_FILE)}: ${r.problem}`);
  return r.value.layout;
}

async function readJournal(root: string): Promise<JournalEntry[] | null> {
  const file = path.join(root, JOURNAL_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const r = parseJson(text, journalSchema);
  if (!r.ok) throw new BerthError('CONFLICT', `${file}: ${r.problem}`);
  return r.value.sessions;
}

/** Every session folder in the root has the old layout (no marker yet): records each by inode. */
async function writeJournal(root: string): Promise<JournalEntry[]> {
  const sessions: JournalEntry[] = [];
  for (const d of await fs.readdir(root, { withFileTypes: true })) {
    if (!d.isDirectory() || !UUID_RE.test(d.name)) continue;
    const st = await fs.lstat(path.join(root, d.name), { bigint: true });
    sessions.push({ id: d.name, ino: String(st.ino) });
  }
  await writeFileAtomic(path.join(root, JOURNAL_FILE), `${JSON.stringify({ sessions })}\n`, 0o600);
  return sessions;
}

async function lstatOrNull(p: string) {
  return fs.lstat(p, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
}

/** Is `dir` still the journal's old folder? */
async function isOldFolder(dir: string, e: JournalEntry): Promise<boolean> {
  const st = await lstatOrNull(dir);
  return st !== null && st.isDirectory() && String(st.ino) === e.ino;
}

async function migrateOne(root: string, e: JournalEntry, hook: StepHook): Promise<'ok' | 'skipped' | { problem: string }> {
  const dir = path.join(root, e.id);
  const next = path.join(root, `${MIGRATING}${e.id}`);
  const home = path.join(next, 'home');
  if (!(await lstatOrNull(next))) {
    if (!(await isOldFolder(dir, e))) return 'skipped';
    await fs.mkdir(next, { mode: 0o700 });
    await fsyncDir(root);
    hook('mkdir');
  }
  if (!(await lstatOrNull(home))) {
    if (!(await isOldFolder(dir, e))) {
      await fs.rmdir(next);
      return 'skipped';
    }
    await fs.rename(dir, home);
    await fsyncDir(root);
    await fsyncDir(next);
    hook('moved');
  }
  const metaFile = path.join(next, OLD_SESSION_FILE);
  let outcome: 'ok' | { problem: string } = 'ok';
  if (!(await lstatOrNull(metaFile))) {
    const meta = await readOldMeta(home, e.id);
    if ('problem' in meta) {
      outcome = meta;
    } else {
      await writeFileAtomic(metaFile, `${JSON.stringify(meta.value, null, 2)}\n`);
      hook('meta');
    }
  }
  // The old records are the session's files now: take them out of its home (links are removed,
  // never followed). An unusable session.json stays, for whoever looks into the broken session.
  const names = await fs.readdir(home);
  const records = names.filter((n) => OLD_RECORDS.includes(n) || OLD_RECORD_TMP_RE.test(n) || (n === OLD_SESSION_FILE && outcome === 'ok'));
  for (const n of records) await fs.rm(path.join(home, n), { recursive: true, force: true });
  // A kill inside the metadata's write left its temp file beside it.
  for (const n of await fs.readdir(next)) if (META_TMP_RE.test(n)) await fs.rm(path.join(next, n), { force: true });
  hook('cleaned');
  await fs.rename(next, dir);
  await fsyncDir(root);
  hook('done');
  return outcome;
}

/**
 * The old session.json, checked like any session.json. The session could write it, so what only
 * an operator may choose is dropped: its limits, command, variables and project (the older layout
 * had none of these). The agent's defaults apply until an edit.
 */
async function readOldMeta(home: string, id: string): Promise<{ value: unknown } | { problem: string }> {
  let text: string;
  try {
    text = (await readUntrustedFile(path.join(home, OLD_SESSION_FILE), MAX_OLD_META_BYTES)).toString('utf8');
  } catch (err) {
    return { problem: `old session.json ${(err as Error).message}` };
  }
  const r = parseJson(text, sessionMetaSchema);
  if (!r.ok) return { problem: `old session.json: ${r.problem}` };
  if (r.value.id !== id) return { problem: `old session.json: id ${r.value.id} does not match its folder` };
  const meta: Partial<SessionMeta> = { ...r.value };
  delete meta.limits;
  delete meta.command;
  delete meta.env;
  delete meta.repo;
  return { value: meta };
}
