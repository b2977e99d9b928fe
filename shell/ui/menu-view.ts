/**
 * Pure: what the menu's lines say, as plain text in spans with a tone each (the blessed layer turns
 * tones into colours and escapes the tags): the title, the session table, the status line, and the
 * settings page. Every text an agent, a session or a keystroke can influence is made inert here
 * (common/terminal-text.ts), so a span never holds a control character.
 */
import { BUILD, BuildInfo } from '../../common/build-info';
import { PROTOCOL_VERSION } from '../../common/protocol';
import { inertCell } from '../../common/terminal-text';
import { ACTIVITY_COLUMN, AGENT_HEAD, NOTE_MAX, SESSION_HEAD, agentRow, buildLine, columnWidths, sessionRow, table } from '../cli/format';
import type { AgentView, ClusterSession } from '../cluster/view';
import type { Operator } from '../service';
import { SORT_WORDS, isDismissed, needingYou } from './menu-attention';
import type { Line, Span, Tone } from './lines';
import type { MenuState } from './menu-state';

export { NEEDS_YOU, needingYou } from './menu-attention';

export type { Line, Span, Tone } from './lines';

/** The tone of an activity cell: what waits for the operator stands out most. */
const ACTIVITY_TONES: Record<string, Tone> = { permission: 'error', stuck: 'error', waiting: 'warn', done: 'good', working: 'info' };


export const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

const span = (text: string, tone: Tone = 'plain'): Span => ({ text, tone });

/** The line's text without its tones. */
export function plain(line: Line): string {
  return line.map((s) => s.text).join('');
}

/**
 * "berth  alice (admin)  agents 1/2 online (? agent-1 offline)  sessions 3  2 need you  sort: attention
 * agent: agent-1  filter: web_" (the count leaves out what the operator dismissed).
 */
export function titleLine(operator: Operator, agents: AgentView[], shown: number, st: MenuState): Line {
  const online = agents.filter((a) => a.status === 'online').length;
  const away = agents.filter((a) => a.status !== 'online').map((a) => `${inertCell(a.id)} ${a.status}`);
  const line: Line = [span(' '), span('berth', 'bold'), span(`  ${inertCell(operator.name)} (${operator.role})  agents ${online}/${agents.length} online`)];
  if (away.length) line.push(span(' '), span(`(? ${away.join(', ')})`, 'warn'));
  line.push(span(`  sessions ${shown}`));
  const needYou = needingYou(agents, st.dismissed);
  if (needYou > 0) line.push(span('  '), span(`${needYou} need${needYou === 1 ? 's' : ''} you`, 'warn'));
  line.push(span(`  sort: ${SORT_WORDS[st.sort]}`));
  if (st.agent !== null) line.push(span(`  agent: ${inertCell(st.agent)}`));
  if (st.filter || st.filtering) line.push(span(`  filter: ${inertCell(st.filter)}${st.filtering ? '_' : ''}`));
  return line;
}

/** Column widths per list of rows (menus that show the same rows share them; see tableRows). */
const widthsByRows = new WeakMap<readonly ClusterSession[], number[]>();

function widthsOf(shown: readonly ClusterSession[]): number[] {
  let w = widthsByRows.get(shown);
  if (!w) widthsByRows.set(shown, (w = columnWidths(SESSION_HEAD, shown.map(sessionRow))));
  return w;
}

/**
 * The table: its head, then the rows from `st.top` that fit in `height` (the selected one inverse,
 * those of an agent that is not online dim, a dismissed activity dim), or a hint when there is no
 * row. `st` is laid out.
 */
export function tableLines(shown: readonly ClusterSession[], st: MenuState, height: number): Line[] {
  const widths = widthsOf(shown);
  const fmt = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  const lines: Line[] = [[span(fmt(SESSION_HEAD), 'bold')]];
  for (let i = st.top; i < Math.min(shown.length, st.top + height); i++) {
    const s = shown[i];
    if (!s) continue;
    const row = sessionRow(s);
    const tone = i === st.selected ? 'selected' : s.agentStatus !== 'online' ? 'dim' : 'plain';
    if (tone !== 'plain') {
      lines.push([span(fmt(row), tone)]);
      continue;
    }
    // The activity cell in its own colour, the rest plain.
    const text = fmt(row);
    const start = widths.slice(0, ACTIVITY_COLUMN).reduce((n, w) => n + w + 2, 0);
    const end = start + (widths[ACTIVITY_COLUMN] ?? 0);
    const activityTone = isDismissed(s, st.dismissed) ? 'dim' : (ACTIVITY_TONES[row[ACTIVITY_COLUMN] ?? ''] ?? 'plain');
    lines.push([span(text.slice(0, start)), span(text.slice(start, end), activityTone), span(text.slice(end))]);
  }
  if (shown.length === 0) lines.push([span(st.filter || st.agent !== null ? 'no session matches the filter' : 'no sessions yet: N creates one', 'dim')]);
  return lines;
}

/** Longest the status line's text is (the screen cuts it at its edge anyway). */
const STATUS_MAX = 500;

/**
 * The status line: the op in flight with its spinner, else the message (red if an error), else
 * the long ops running in the cluster (`jobs`, one line each: the first, and how many more), which
 * also follow the op in flight.
 */
export function statusLine(st: MenuState, jobs: string[] = []): Line {
  const [first] = jobs;
  const running = first === undefined ? '' : `${first}${jobs.length > 1 ? ` (and ${jobs.length - 1} more)` : ''}`;
  if (st.busy) {
    const text = running ? `${st.busy} · ${running}` : st.busy;
    return [span(`${SPINNER[st.spin % SPINNER.length]} ${inertCell(text, STATUS_MAX)}`, 'warn')];
  }
  if (st.message) return [span(inertCell(st.message, STATUS_MAX), st.messageIsError ? 'error' : 'plain')];
  return running ? [span(inertCell(running, STATUS_MAX), 'dim')] : [];
}

/** The settings page (S): the shell's version and build, the operator, and each agent's state and build. */
export function settingsText(operator: Operator, agents: AgentView[], build: BuildInfo = BUILD): string {
  // The agents as `agents` shows them (capacity included), with each host's name.
  const rows = agents.map((a) => [...agentRow(a), inertCell(a.hello?.hostname ?? '', NOTE_MAX)]);
  const list = rows.length > 0 ? table([...AGENT_HEAD, 'HOST'], rows).replace(/\n$/, '') : '(none enrolled)';
  const head = `berth ${inertCell(build.version)} (protocol ${PROTOCOL_VERSION})\noperator ${inertCell(operator.name)} (${operator.role})`;
  return `${head}\nthis shell: ${buildLine(build)}\n\nagents:\n${list}`;
}
