/**
 * The audit log: one JSON line per operation, attach and detach, refused ones too, appended in the
 * order they were recorded (never rewritten). Whatever an operator typed or an agent answered, a
 * line stays small and inert: every value is cut to a bound, its controls shown as escapes, and a
 * long value a field holds is not written again inside the message. A file about to pass its
 * byte bound is renamed `<file>.1` (older ones shift up to `<file>.<keep>`; the oldest goes) and a
 * new one begins: a record is never split between two files.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { ErrorCode } from '../common/errors';
import { Logger } from '../common/logging';
import { inertBlock, inertCell } from '../common/terminal-text';

/** What an op adds to its record. */
export interface AuditDetail {
  /** The REF as typed, when it named no one session. */
  ref?: string;
  /** An override's reason, as the operator gave it. */
  reason?: string;
  /** The id of the clone made. */
  clone?: string;
  readOnly?: boolean;
  detached?: number;
  /** The agent a move goes to. */
  to?: string;
  /** The op's id: the records of one op (an unknown outcome, then the late one) share it. */
  opId?: string;
  /** The outcome of an op whose answer came after the shell had stopped waiting. */
  late?: boolean;
}

export interface AuditRecord {
  operator: string;
  /** The op (create, kill, …), or attach / detach. */
  op: string;
  session?: string;
  agent?: string;
  /**
   * `refused`: not done (a role, a REF, an agent's refusal, no agent online…); `code` and
   * `message` say why. `unknown`: the agent did not answer in time; a later record with the same
   * `detail.opId` and `detail.late` gives the outcome.
   */
  result: 'ok' | 'refused' | 'unknown';
  code?: ErrorCode;
  message?: string;
  detail?: AuditDetail;
}

/**
 * The most bytes (UTF-8, as written in the line) of an identifier (a name, an id, a REF) and of a
 * text (a message, a reason). With these a record's line stays under 4 KB.
 */
export const ID_MAX = 200;
export const TEXT_MAX = 1000;

/**
 * Longer than any valid name or id: a value this long that a field holds reads `{field}` where the
 * message repeats it. Shorter ones stay: a repeat costs little, and replacing one could hit an
 * ordinary word ("operator is an operator and may not override").
 */
const REPEAT_MIN = 65;

/** When the log's file is rotated: before it would pass `maxBytes`, keeping `keep` older files. */
export interface AuditRotation {
  maxBytes: number;
  keep: number;
}

/** shell.json's defaults (`audit` in config.ts). */
export const DEFAULT_ROTATION: AuditRotation = { maxBytes: 10 * 1024 * 1024, keep: 5 };

/** One file of the log as a reader sees it: open, with the bytes it held when opened. */
export interface AuditFile {
  name: string;
  handle: FileHandle;
  size: number;
}

export class AuditLog {
  private ready: Promise<void> | null = null;
  private last: Promise<void> = Promise.resolve();
  /** Whether the current file is known to end in a whole line (a crash mid-write may leave part of one). */
  private endsWhole = false;

  constructor(
    private readonly file: string,
    private readonly logger: Logger,
    private readonly rotation: AuditRotation = DEFAULT_ROTATION,
  ) {}

  /**
   * Appends one record, bounded (see auditLine), with a timestamp, after every record asked for
   * before it (a rotation included). Never rejects: a failed write is logged as an error.
   */
  record(r: AuditRecord): Promise<void> {
    const line = auditLine(r, new Date());
    this.last = this.last.then(() => this.append(line));
    return this.last;
  }

  /** Resolves when every record asked for so far is written (or its failure logged). Never rejects. */
  settled(): Promise<void> {
    return this.last;
  }

  /** The log's files, oldest first: `<file>.<keep>` … `<file>.1`, then `<file>`. */
  files(): string[] {
    const out: string[] = [];
    for (let i = this.rotation.keep; i >= 0; i--) out.push(rotatedName(this.file, i));
    return out;
  }

  /**
   * Opens the log's files that exist, oldest first, between two writes: a rotation afterwards
   * renames them without taking a record out from under the reader, and the sizes leave out what
   * is written afterwards. The caller closes the handles. Rejects when a file that is there cannot
   * be opened (then none is left open).
   */
  open(): Promise<AuditFile[]> {
    const opened = this.last.then(() => openAll(this.files()));
    this.last = opened.then(
      () => undefined,
      () => undefined,
    );
    return opened;
  }

  private async append(line: string): Promise<void> {
    try {
      this.ready ??= fs.mkdir(path.dirname(this.file), { recursive: true }).then(() => undefined);
      await this.ready;
      const lead = await this.makeRoom(Buffer.byteLength(line));
      // One write per record with O_APPEND: lines of other writers never interleave with it.
      await fs.appendFile(this.file, lead + line, { mode: 0o640 });
      this.endsWhole = true;
    } catch (err) {
      this.ready = null; // the folder may be made later
      this.endsWhole = false;
      this.logger.error('audit write failed', { file: this.file, err: (err as Error).message, line: line.trimEnd() });
    }
  }

  /**
   * Rotates the file when `bytes` more would take it past maxBytes (a record larger than that
   * alone gets a file of its own), and returns what goes before the record: a line break when the
   * file ends in a partial line a crash left, so that the record stays whole. A failed rotation is
   * logged, and the record goes to the current file.
   */
  private async makeRoom(bytes: number): Promise<string> {
    const size = await sizeOf(this.file);
    if (size > 0 && size + bytes > this.rotation.maxBytes) {
      try {
        // The oldest first: a crash between two renames leaves a gap, never a lost record.
        for (let i = this.rotation.keep; i >= 1; i--) await renameIfThere(rotatedName(this.file, i - 1), rotatedName(this.file, i));
        return ''; // a new file
      } catch (err) {
        this.logger.error('audit rotation failed', { file: this.file, err: (err as Error).message });
      }
    }
    if (this.endsWhole || size === 0) return '';
    return (await lastByte(this.file, size)) === '\n' ? '' : '\n';
  }
}

/** `<file>` for 0, else `<file>.<n>`. */
export function rotatedName(file: string, n: number): string {
  return n === 0 ? file : `${file}.${n}`;
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

async function renameIfThere(from: string, to: string): Promise<void> {
  try {
    await fs.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function lastByte(file: string, size: number): Promise<string> {
  const h = await fs.open(file, 'r');
  try {
    const { buffer, bytesRead } = await h.read(Buffer.alloc(1), 0, 1, size - 1);
    return bytesRead === 1 ? buffer.toString('latin1') : '';
  } finally {
    await h.close();
  }
}

/** Opens each of `files` that exists, with its size; on a failure closes those opened and rejects. */
async function openAll(files: string[]): Promise<AuditFile[]> {
  const out: AuditFile[] = [];
  try {
    for (const name of files) {
      let handle: FileHandle;
      try {
        handle = await fs.open(name, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const f = { name, handle, size: 0 };
      out.push(f); // closed below if its size cannot be read
      f.size = (await handle.stat()).size;
    }
    return out;
  } catch (err) {
    await Promise.all(out.map((f) => f.handle.close().catch(() => undefined)));
    throw err;
  }
}

/**
 * One record as its line: identifiers cut to ID_MAX bytes and texts to TEXT_MAX (ending in `…`),
 * every control, C1, bidi and format character shown as an escape (a message and a reason keep
 * their line breaks, written as JSON's `\n`), a long value of a field not repeated in the message.
 */
export function auditLine(r: AuditRecord, at: Date): string {
  const d = r.detail;
  const fields: Array<[string, string | undefined]> = [
    ['ref', d?.ref],
    ['reason', d?.reason],
    ['clone', d?.clone],
    ['session', r.session],
    ['agent', r.agent],
    ['operator', r.operator],
  ];
  const message = r.message === undefined ? undefined : text(withoutRepeats(r.message, fields));
  const out = {
    ts: at.toISOString(),
    operator: id(r.operator),
    op: id(r.op),
    session: optional(r.session, id),
    agent: optional(r.agent, id),
    result: r.result,
    code: r.code,
    message,
    detail: d && {
      ref: optional(d.ref, id),
      reason: optional(d.reason, text),
      clone: optional(d.clone, id),
      readOnly: d.readOnly,
      detached: d.detached,
      to: optional(d.to, id),
      opId: optional(d.opId, id),
      late: d.late,
    },
  };
  return `${JSON.stringify(out)}\n`; // fields left undefined are not written
}

function optional(v: string | undefined, f: (s: string) => string): string | undefined {
  return v === undefined ? undefined : f(v);
}

const id = (s: string): string => fit(s, ID_MAX, inertCell);
const text = (s: string): string => fit(s, TEXT_MAX, inertBlock);

/** `message` with each long value of `fields` replaced by the field's name in braces. */
function withoutRepeats(message: string, fields: Array<[string, string | undefined]>): string {
  let out = message;
  for (const [name, value] of fields) {
    if (value !== undefined && value.length >= REPEAT_MIN) out = out.split(value).join(`{${name}}`);
  }
  return out;
}

/** `s` made inert by `inert`, cut so that it takes at most `max` bytes inside a JSON string. */
function fit(s: string, max: number, inert: (s: string, max: number) => string): string {
  let chars = max;
  let out = inert(s, chars);
  let size = jsonBytes(out);
  // A character takes 1 to 4 bytes (an escape's backslash 2): cut further in proportion until it fits.
  while (size > max && chars > 1) {
    chars = Math.max(1, Math.min(chars - 1, Math.floor((chars * max) / size)));
    out = inert(s, chars);
    size = jsonBytes(out);
  }
  return out;
}

/** The bytes `s` takes inside a JSON string, quotes left out. */
function jsonBytes(s: string): number {
  return Buffer.byteLength(JSON.stringify(s)) - 2;
}
