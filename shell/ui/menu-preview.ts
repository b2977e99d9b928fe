/**
 * Pure: the menu's preview pane, below the table: the selected session's last lines (as tmux
 * captures them in its container), under a headline with its activity and git state. P shows or
 * hides it, L cycles its height; on a terminal too low for both it stays hidden.
 */
import { inertCell } from '../../common/terminal-text';
import { previewHeadline } from '../cli/format';
import type { ClusterSession } from '../cluster/view';
import type { Line } from './lines';

/** The preview's heights, as parts of the screen, in the order L cycles through them. */
export const PREVIEW_SIZES = [1 / 3, 1 / 2, 2 / 3] as const;

/** A screen lower than this shows no preview (the table needs the room). */
const MIN_SCREEN_ROWS = 14;
/** Fewest rows a preview takes when shown: its headline and three lines. */
const MIN_PREVIEW_ROWS = 4;

/** Whether the preview is shown and how high (an index of PREVIEW_SIZES). */
export interface PreviewLayout {
  readonly open: boolean;
  readonly size: number;
}

export const INITIAL_PREVIEW: PreviewLayout = { open: true, size: 0 };

/** The rows the preview takes on a screen `screenRows` high: 0 when hidden or the screen is too low. */
export function previewRows(screenRows: number, p: PreviewLayout): number {
  if (!p.open || screenRows < MIN_SCREEN_ROWS) return 0;
  const part = PREVIEW_SIZES[p.size] ?? PREVIEW_SIZES[0];
  return Math.max(MIN_PREVIEW_ROWS, Math.floor(screenRows * part));
}

/** P: shown ↔ hidden. */
export function togglePreview(p: PreviewLayout): PreviewLayout {
  return { ...p, open: !p.open };
}

/** L: the next height (back to the first after the last); a hidden preview is shown. */
export function cyclePreviewSize(p: PreviewLayout): PreviewLayout {
  return { open: true, size: p.open ? (p.size + 1) % PREVIEW_SIZES.length : p.size };
}

/** Whether a session in this state may have a screen to show (running, attached or locked; the agent says if not). */
export function mayShow(s: ClusterSession): boolean {
  return s.state === 'R' || s.state === 'C' || s.state === 'L';
}

/** What the agent last showed of a session's screen, or why it could not. */
export interface PreviewShot {
  /** The session it is of. */
  id: string;
  text: string;
  /** When the agent took it (ISO). */
  at: string;
  /** Why there is no text ("CONFLICT: session is not running"); null when there is. */
  error: string | null;
}

/**
 * The preview's lines, `rows` in all: the headline (bold), then the last lines of `shot` when it
 * is of `s` (each one made inert), else a word on why there are none. Lines longer than the
 * screen are cut by the screen.
 */
export function previewLines(s: ClusterSession | undefined, shot: PreviewShot | null, rows: number): Line[] {
  if (rows <= 0) return [];
  if (!s) return [[{ text: ' no session selected', tone: 'dim' }]];
  const head: Line = [{ text: ` ${previewHeadline(s)}`, tone: 'bold' }];
  const room = rows - 1;
  const say = (text: string, tone: 'dim' | 'error' = 'dim'): Line[] => [head, [{ text: ` ${text}`, tone }]];
  if (s.state === '?') return say('its agent is away');
  if (s.state === '-') return say('stopped: Enter starts it and attaches');
  if (!shot || shot.id !== s.id) return say('…');
  if (shot.error !== null) return say(inertCell(shot.error, 200), 'error');
  const lines = shot.text.split('\n');
  // The screen's last lines, without the blank ones below its cursor.
  while (lines.length > 0 && lines[lines.length - 1]?.trim() === '') lines.pop();
  return [head, ...lines.slice(-room).map((l): Line => [{ text: inertCell(l, 1000), tone: 'plain' }])];
}
