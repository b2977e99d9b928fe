/**
 * The files a move leaves on disk, and the tar streams that carry a session folder:
 *
 *     <root>/<uuid>/moving.json                        source: this session is leaving {to, token, running}
 *     <root>/.incoming/<uuid>.<token>/                 target: staging, not committed (never listed)
 *     <root>/.incoming/<uuid>.<token>.committed/       target: committed, not yet listed
 *     .../moved-in.json                                target: {from, token, running}, inside both
 *
 * tar runs in a child that dies with the agent (common/tied-child.ts), as cp does for clones.
 * Only session.json and home/ travel: the lock, the marker and the status folder stay behind.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import { BerthError } from '../../common/errors';
import { parseJson } from '../../common/json';
import { fsyncDir, writeFileAtomic } from '../../common/atomic-file';
import { MoveSums } from '../../common/protocol';
import { tiedArgv } from '../../common/tied-child';
import { HOME_DIR, SESSION_FILE } from './session-store';

export const MOVING_FILE = 'moving.json';
export const MOVED_IN_FILE = 'moved-in.json';
export const INCOMING_DIR = '.incoming';
const COMMITTED = '.committed';

export const movingSchema = z.object({ to: z.string(), token: z.string(), running: z.boolean(), operator: z.string() }).strict();
export type Moving = z.infer<typeof movingSchema>;
export const movedInSchema = z.object({ from: z.string(), token: z.string(), running: z.boolean() }).strict();
export type MovedIn = z.infer<typeof movedInSchema>;

/** Writes a small JSON record durably (atomic, folder synced). */
export async function writeRecord(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value)}\n`);
  await fsyncDir(path.dirname(file));
}

/** A record read and checked, or null when absent or unreadable. */
export async function readRecord<S extends z.ZodType>(file: string, schema: S): Promise<z.output<S> | null> {
  const text = await fs.readFile(file, 'utf8').catch(() => null);
  if (text === null) return null;
  const r = parseJson(text, schema);
  return r.ok ? r.value : null;
}

export class IncomingFolders {
  readonly dir: string;

  constructor(root: string) {
    this.dir = path.join(root, INCOMING_DIR);
  }

  staging(id: string, token: string): string {
    return path.join(this.dir, `${id}.${token}`);
  }

  committed(id: string, token: string): string {
    return `${this.staging(id, token)}${COMMITTED}`;
  }

  /** Every folder here: its session, token and whether it is committed. Names of any other shape are left out. */
  async list(): Promise<Array<{ id: string; token: string; committed: boolean; path: string }>> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    const out = [];
    for (const name of names) {
      const m = /^([0-9a-f-]{36})\.([A-Za-z0-9]{16,64})(\.committed)?$/.exec(name);
      if (m) out.push({ id: m[1]!, token: m[2]!, committed: m[3] !== undefined, path: path.join(this.dir, name) });
    }
    return out;
  }

  async ensure(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
  }
}

/** What a tar stream carried: counted and hashed as it passed. */
class Tally {
  private readonly hash = createHash('sha256');
  bytes = 0;
  add(d: Buffer): void {
    this.hash.update(d);
    this.bytes += d.length;
  }
  sums(): MoveSums {
    return { bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

/** Waits for a child's end; rejects unless it exits 0. */
function exitOf(child: ReturnType<typeof spawn>, what: string, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new BerthError('INTERNAL', `${what}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new BerthError('INTERNAL', `${what} exited ${code ?? signal}: ${stderr().slice(0, 300)}`));
    });
  });
}

/**
 * Writes the tar stream of session folder `dir` (session.json and home/) to `out`, waiting on it
 * when it is full; resolves with what was sent once tar has exited 0. `out` is not ended.
 */
export async function exportTar(dir: string, out: Writable, sent: (bytes: number) => void = () => undefined): Promise<MoveSums> {
  const [file, ...args] = tiedArgv(['tar', '-C', dir, '--numeric-owner', '-cf', '-', '--', SESSION_FILE, HOME_DIR]);
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const tally = new Tally();
  const stdout = child.stdout;
  stdout.on('data', (d: Buffer) => {
    tally.add(d);
    sent(tally.bytes);
    if (!out.write(d)) {
      stdout.pause();
      out.once('drain', () => stdout.resume());
    }
  });
  const gone = (): void => void child.kill('SIGKILL');
  out.once('close', gone);
  try {
    await exitOf(child, 'tar', () => err);
  } finally {
    out.off('close', gone);
  }
  return tally.sums();
}

/**
 * Unpacks the tar stream `input` into folder `dir` (owners and modes kept where the agent may),
 * holding `input` back while tar is busy; resolves with what was received once tar has exited 0.
 */
export async function importTar(dir: string, input: Readable): Promise<MoveSums> {
  const [file, ...args] = tiedArgv(['tar', '-C', dir, '--numeric-owner', '-xf', '-']);
  const child = spawn(file, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const tally = new Tally();
  const stdin = child.stdin;
  stdin.on('error', () => undefined);
  const onData = (d: Buffer): void => {
    tally.add(d);
    if (!stdin.write(d)) {
      input.pause();
      stdin.once('drain', () => input.resume());
    }
  };
  const onEnd = (): void => void stdin.end();
  // A stream cut short (the shell gone) must not become a complete import: tar is killed.
  const onClose = (): void => {
    if (!input.readableEnded) child.kill('SIGKILL');
  };
  input.on('data', onData);
  input.once('end', onEnd);
  input.once('close', onClose);
  input.resume();
  try {
    await exitOf(child, 'tar', () => err);
  } finally {
    input.off('data', onData);
    input.off('end', onEnd);
    input.off('close', onClose);
  }
  return tally.sums();
}
