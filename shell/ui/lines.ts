/** The menu's text as plain spans with a tone each (the blessed layer turns tones into colours). */

/**
 * How a span looks: `warn` for what needs an eye (agents away, the op in flight), `dim` for hints
 * and what the operator dismissed, `good` and `info` for a session that finished its turn or is
 * working.
 */
export type Tone = 'plain' | 'bold' | 'warn' | 'error' | 'dim' | 'selected' | 'good' | 'info';

export interface Span {
  text: string;
  tone: Tone;
}

/** One line on the screen. */
export type Line = Span[];
