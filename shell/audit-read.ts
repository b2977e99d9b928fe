/**
 * Reading the audit log back (the `audit` command): its files oldest first, each streamed in
 * chunks, keeping only the most recent records that match. The files may have been cut short by a
 * crash or edited by hand: a line that is not a record (a partial last line, junk, one too long to
 * be ours) is skipped and counted, never fatal, and never held whole in memory.
 */
import { z } from 'zod';
import { parseJson } from '../common/json';
import type { AuditFile } from './audit';

/** A record as stored: the fields a reader uses are checked, any other is kept as it is. */
export const storedRecordSchema = z.looseObject({
  ts: z.iso.datetime({ offset: true }),
  operator: z.string(),
  op: z.string(),
  session: z.string().optional(),
  agent: z.string().optional(),
  result: z.string(),
  code: z.string().optional(),
  message: z.string().optional(),
  detail: z.looseObject({ ref: z.string().optional(), clone: z.string().optional() }).optional(),
});
export type StoredRecord = z.output<typeof storedRecordSchema>;

/** The records about one session, which may be gone (a deleted session stays in the audit). */
export interface SessionMatch {
  /** The id of the live session the REF named. */
  id?: string;
  /** An id, or the start of one: matches every session whose id starts with it, gone ones too. */
  prefix?: string;
  /** The REF as typed: an op whose REF named no session keeps it in `detail.ref`. */
  ref: string;
}

export interface AuditQuery {
  /** Records at or after this time. */
  since?: Date;
  operator?: string;
  op?: string;
  session?: SessionMatch;
  /** At most this many records: the most recent ones that match. */
  limit: number;
}

/** Records stay under 4 KB (see audit.ts): a longer line is not one of ours, and is skipped unread. */
export const LINE_MAX = 16 * 1024;
const CHUNK = 64 * 1024;

/** Whether record `r` is one `q` asks for (its limit aside). */
export function matches(r: StoredRecord, q: AuditQuery): boolean {
  if (q.since && Date.parse(r.ts) < q.since.getTime()) return false;
  if (q.operator !== undefined && r.operator !== q.operator) return false;
  if (q.op !== undefined && r.op !== q.op) return false;
  return !q.session || aboutSession(r, q.session);
}

/** A record is about a session it names, a clone it made, or the REF it was refused for. */
function aboutSession(r: StoredRecord, m: SessionMatch): boolean {
  const ids = [r.session, r.detail?.clone].filter((x): x is string => x !== undefined);
  if (m.id !== undefined && ids.includes(m.id)) return true;
  const prefix = m.prefix;
  if (prefix !== undefined && ids.some((id) => id.startsWith(prefix))) return true;
  return r.detail?.ref === m.ref;
}

/**
 * The most recent `q.limit` records of `files` (taken oldest first) that match `q`, oldest first,
 * and how many non-blank lines were not records. Holds at most `q.limit` records and one line.
 * Leaves the handles open. Rejects only when a file cannot be read.
 */
export async function readAudit(files: AuditFile[], q: AuditQuery): Promise<{ records: StoredRecord[]; skipped: number }> {
  const ring = new Array<StoredRecord>(q.limit);
  let seen = 0;
  let skipped = 0;
  for (const f of files) {
    for await (const line of linesOf(f)) {
      if (line !== null && line.trim() === '') continue;
      const parsed = line === null ? null : parseJson(line, storedRecordSchema);
      if (!parsed?.ok) {
        skipped++;
        continue;
      }
      if (!matches(parsed.value, q)) continue;
      ring[seen % q.limit] = parsed.value;
      seen++;
    }
  }
  if (seen <= q.limit) return { records: ring.slice(0, seen), skipped };
  const at = seen % q.limit;
  return { records: [...ring.slice(at), ...ring.slice(0, at)], skipped };
}

/**
 * The lines of the first `f.size` bytes of `f` (the last one also without its line break); null
 * for a line longer than LINE_MAX, whose bytes are dropped as they are read.
 */
async function* linesOf(f: AuditFile): AsyncGenerator<string | null> {
  const buf = Buffer.alloc(CHUNK);
  let parts: Buffer[] = [];
  let held = 0;
  let tooLong = false;
  let pos = 0;
  while (pos < f.size) {
    const { bytesRead } = await f.handle.read(buf, 0, Math.min(CHUNK, f.size - pos), pos);
    if (bytesRead === 0) break; // cut short since it was opened
    pos += bytesRead;
    const chunk = buf.subarray(0, bytesRead);
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const piece = chunk.subarray(start, nl === -1 ? chunk.length : nl);
      if (!tooLong && held + piece.length > LINE_MAX) {
        tooLong = true;
        parts = [];
        held = 0;
      }
      if (!tooLong) {
        parts.push(Buffer.from(piece)); // a copy: buf is read into again
        held += piece.length;
      }
      if (nl === -1) break;
      yield tooLong ? null : Buffer.concat(parts).toString('utf8');
      parts = [];
      held = 0;
      tooLong = false;
      start = nl + 1;
    }
  }
  if (tooLong) yield null;
  else if (held > 0) yield Buffer.concat(parts).toString('utf8');
}
