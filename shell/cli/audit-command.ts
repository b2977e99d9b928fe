/**
 * `audit [--since T] [--operator O] [--session REF] [--op OP] [--limit N] [--json]`, for admins:
 * the audit records, oldest first, across the log's current and rotated files. Text: one aligned
 * line per record, every cell inert; `--json`: NDJSON, one record per line as stored (through
 * inertJson). Reading is not itself recorded, as `list` is not; a refused one is.
 */
import { BerthError } from '../../common/errors';
import { inertCell, inertJson } from '../../common/terminal-text';
import { AuditQuery, SessionMatch, StoredRecord, readAudit } from '../audit-read';
import { MIN_PREFIX } from '../cluster/refs';
import { Operator, ShellService } from '../service';
import { FlagSpec, Parsed, UsageError, intFlag, parseFlags, strFlag } from './args';
import { table } from './format';

/** How many records `audit` prints when not told (the most recent), and the most it will. */
export const AUDIT_LIMIT = 1000;
export const AUDIT_LIMIT_MAX = 10_000;
/** Longest a record's message (and each detail value) is shown; --json has it whole. */
const CELL_MAX = 200;

const AUDIT_FLAGS: FlagSpec = { json: 'boolean', since: 'string', operator: 'string', session: 'string', op: 'string', limit: 'string' };

export const AUDIT_HEAD = ['TIME (UTC)', 'OPERATOR', 'OP', 'SESSION', 'RESULT', 'DETAIL'];

/** Runs `audit` with its words after the command. Throws UsageError, FORBIDDEN (audited) and what the service's REF resolution throws. */
export async function auditCommand(words: string[], op: Operator, svc: ShellService, io: { out(text: string): void; err(text: string): void }): Promise<{ code: number }> {
  const { flags } = parseFlags(words, AUDIT_FLAGS, 0);
  svc.check(op, 'audit');
  const query = auditQueryOf(flags, (ref) => sessionMatchOf(svc, ref), new Date());
  const files = await svc.auditLog.open();
  let found: Awaited<ReturnType<typeof readAudit>>;
  try {
    found = await readAudit(files, query);
  } finally {
    await Promise.all(files.map((f) => f.handle.close().catch(() => undefined)));
  }
  if (flags.json) io.out(found.records.map((r) => `${inertJson(r)}\n`).join(''));
  else if (found.records.length === 0) io.out('no audit record matches\n');
  else {
    const names = namesOf(svc);
    io.out(table(AUDIT_HEAD, found.records.map((r) => auditRow(r, names))));
  }
  const n = found.skipped;
  if (n > 0) io.err(`berth: ${n === 1 ? '1 line is not an audit record' : `${n} lines are not audit records`} (cut short or edited): left out\n`);
  return { code: 0 };
}

/** The query the flags ask for; `session` turns a REF into what it matches. Throws UsageError. */
export function auditQueryOf(flags: Parsed['flags'], session: (ref: string) => SessionMatch, now: Date): AuditQuery {
  const limit = intFlag(flags.limit, 'limit') ?? AUDIT_LIMIT;
  if (limit < 1 || limit > AUDIT_LIMIT_MAX) throw new UsageError(`--limit must be 1-${AUDIT_LIMIT_MAX}`);
  const since = strFlag(flags.since);
  const ref = strFlag(flags.session);
  return {
    limit,
    since: since === undefined ? undefined : sinceOf(since, now),
    operator: strFlag(flags.operator),
    op: strFlag(flags.op),
    session: ref === undefined ? undefined : session(ref),
  };
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const AGO = /^(\d{1,9})([smhd])$/;
/** A date, or a date and time (seconds and fraction optional) with or without its offset. */
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * The time `--since` means: a time ago (`10m`, `2h`, `3d`, also `30s`) or an ISO date or time (a
 * time without an offset is UTC, as `audit` prints times). Throws UsageError.
 */
export function sinceOf(text: string, now: Date): Date {
  const ago = AGO.exec(text);
  if (ago) return new Date(now.getTime() - Number(ago[1]) * (UNIT_MS[ago[2] ?? ''] ?? 0));
  const iso = ISO.exec(text);
  if (iso) {
    const norm = text.toUpperCase().replace(' ', 'T');
    const at = Date.parse(norm.includes('T') && iso[1] === undefined ? `${norm}Z` : norm);
    if (!Number.isNaN(at)) return new Date(at);
  }
  throw new UsageError('--since must be a time ago (10m, 2h, 3d) or an ISO time (2026-11-21, 2026-11-21T14:05Z)');
}

/**
 * What `--session REF` matches: the live session REF names, as other commands find it, and, for a
 * REF that is an id or the start of one (4+), every session whose id starts with it, gone ones
 * too. Throws BAD_REQUEST for a REF that names several live sessions.
 */
function sessionMatchOf(svc: ShellService, ref: string): SessionMatch {
  let id: string | undefined;
  try {
    id = svc.resolve(ref).id;
  } catch (err) {
    if (!(err instanceof BerthError && err.code === 'NOT_FOUND')) throw err;
  }
  const idLike = ref.length >= MIN_PREFIX && /^[0-9a-f-]+$/.test(ref);
  return { id, prefix: idLike ? ref : undefined, ref };
}

/** The names of the live sessions by id (a gone or broken one shows by its id). */
function namesOf(svc: ShellService): Map<string, string> {
  const names = new Map<string, string>();
  for (const s of svc.view.sessions()) if (s.entry.kind === 'session') names.set(s.id, s.entry.meta.name);
  return names;
}

/** A record's row: time, operator, op, session (its name, else its id's start), result, detail. Each cell inert. */
export function auditRow(r: StoredRecord, names: ReadonlyMap<string, string>): string[] {
  const session = r.session === undefined ? '-' : (names.get(r.session) ?? r.session.slice(0, 8));
  const cells = [timeCell(r.ts), r.operator, r.op, session, r.result].map((c) => inertCell(c, CELL_MAX));
  return [...cells, inertCell(detailCell(r), 2 * CELL_MAX)];
}

/** "2026-11-21 14:05:09" in UTC, whatever offset the record was written with. */
function timeCell(ts: string): string {
  const at = new Date(ts);
  return Number.isNaN(at.getTime()) ? ts : at.toISOString().slice(0, 19).replace('T', ' ');
}

/** `CODE: message`, then each detail as `key=value` (a value with spaces quoted; `true` as the key alone). */
function detailCell(r: StoredRecord): string {
  const parts: string[] = [];
  const message = r.message === undefined ? undefined : inertCell(r.message, CELL_MAX);
  if (r.code !== undefined || message !== undefined) parts.push([r.code, message].filter((x) => x !== undefined).join(': '));
  for (const [key, value] of Object.entries(r.detail ?? {})) {
    if (value === undefined || value === false) continue;
    if (value === true) parts.push(key);
    else parts.push(`${key}=${detailValue(value)}`);
  }
  return parts.join('  ');
}

/** A string as it is, quoted when empty or holding spaces or quotes; anything else as JSON. */
function detailValue(v: unknown): string {
  const text = typeof v !== 'string' ? JSON.stringify(v) : v === '' || /[\s"]/.test(v) ? JSON.stringify(v) : v;
  return inertCell(text, CELL_MAX);
}

