/**
 * Pure: what a Claude Code hook report says about its session (and berth-hook's git report). A report is the event's JSON as
 * Claude Code hands it to its hooks (berth-hook in the image passes it on untouched), written by
 * the container: untrusted input, read capped, parsed with a schema, every text cut short. Fields
 * other than the few read here are ignored.
 */
import { z } from 'zod';
import { parseJson } from '../../common/json';
import { Activity, GitGlance } from '../../common/protocol';

/** What berth-hook keeps of a report: one this long was cut there (and may end mid-value). */
export const REPORT_CAP_BYTES = 16 * 1024;

/** Longest detail kept. */
const DETAIL_MAX = 200;

const reportSchema = z.looseObject({
  hook_event_name: z.string().max(64),
  tool_name: z.string().max(256).optional(),
  notification_type: z.string().max(64).optional(),
  message: z.string().max(8192).optional(),
});

/** The activity a report means, or null when it means none (bad JSON, an event of no account). */
export function activityOfReport(text: string, now: Date): Activity | null {
  const r = parseJson(text, reportSchema);
  const e = r.ok ? r.value : Buffer.byteLength(text, 'utf8') >= REPORT_CAP_BYTES ? cutReport(text) : null;
  if (!e) return null;
  const at = now.toISOString();
  const make = (state: Activity['state'], detail = ''): Activity => ({ state, since: at, detail: oneLine(detail) });
  switch (e.hook_event_name) {
    case 'SessionStart':
      return make('waiting', 'started');
    case 'UserPromptSubmit':
      return make('working');
    case 'PreToolUse':
    case 'PostToolUse':
      return make('working', e.tool_name ?? '');
    case 'Notification': {
      const kind = e.notification_type ?? (/permission/i.test(e.message ?? '') ? 'permission_prompt' : 'idle_prompt');
      if (kind === 'permission_prompt') return make('permission', e.message ?? '');
      if (kind === 'idle_prompt') return make('waiting', e.message ?? '');
      return null;
    }
    case 'Stop':
      return make('done');
    case 'SessionEnd':
      return make('exited');
    default:
      return null;
  }
}

/**
 * The fields read here from a report cut at its size cap (a big prompt or tool input): Claude Code
 * writes them before the big ones, so a cut report still says which event it was. Only whole
 * string values count; the result is checked like a whole report.
 */
function cutReport(text: string): z.output<typeof reportSchema> | null {
  const out: Record<string, string> = {};
  for (const key of ['hook_event_name', 'tool_name', 'notification_type', 'message']) {
    const m = new RegExp(`"${key}"\\s*:\\s*("(?:[^"\\\\]|\\\\.){0,8192}")`).exec(text);
    if (!m?.[1]) continue;
    try {
      const v: unknown = JSON.parse(m[1]);
      if (typeof v === 'string') out[key] = v;
    } catch {
      // not a whole string: left out
    }
  }
  const r = reportSchema.safeParse(out);
  return r.success ? r.data : null;
}

/** One line, at most DETAIL_MAX characters. */
function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().slice(0, DETAIL_MAX);
}

/** Whether `next` says something other than `prev` (a new state or detail; `since` is not news). */
export function isNews(prev: Activity | null, next: Activity): boolean {
  return !prev || prev.state !== next.state || prev.detail !== next.detail;
}

/**
 * A session's git state from its report (git status --porcelain=v2 --branch, then "# subject …"),
 * or null when it says nothing usable. Every number is checked, every text cut short.
 */
export function gitOfReport(text: string): GitGlance | null {
  let branch: string | null = null;
  let ahead: number | null = null;
  let behind: number | null = null;
  let changed = 0;
  let subject = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('# branch.head ')) branch = oneLine(line.slice('# branch.head '.length));
    else if (line.startsWith('# branch.ab ')) {
      const m = /^# branch\.ab \+(\d{1,9}) -(\d{1,9})$/.exec(line);
      if (m) [ahead, behind] = [Number(m[1]), Number(m[2])];
    } else if (line.startsWith('# subject ')) subject = oneLine(line.slice('# subject '.length));
    else if (/^[12u?] /.test(line)) changed++;
  }
  return branch === null ? null : { branch, ahead, behind, changed, subject };
}
