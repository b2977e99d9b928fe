/**
 * berth-attach: the shell sends one JSON header line; the agent answers with one JSON line (ok or
 * an error), then the channel carries raw terminal bytes both ways until either side closes it.
 * Terminal sizes, wherever they come from (this header, an SSH pty request or window change), go
 * through clampTermSize before they reach tmux.
 */
import { z } from 'zod';
import { operatorNameSchema, sessionIdSchema } from '../names';
import { sessionEntrySchema } from './session';
import { wireErrorSchema } from './rpc';

export interface TermSize {
  cols: number;
  rows: number;
}

/**
 * The largest terminal berth passes on: bigger sizes are clamped to it, never refused. tmux keeps
 * a grid of the window's size for every pane and its history, so an unbounded size is memory
 * anyone with a terminal could take from a session's container.
 */
export const MAX_TERM_SIZE: Readonly<TermSize> = { cols: 500, rows: 200 };
/** What a dimension that is zero or missing becomes. */
export const DEFAULT_TERM_SIZE: Readonly<TermSize> = { cols: 80, rows: 24 };

/**
 * A size that is safe to hand to tmux: each dimension a whole number from 1 to the maximum (larger
 * ones clamped, fractions dropped); zero, missing or not a number gives the default. Pure.
 */
export function clampTermSize(cols: number | undefined, rows: number | undefined): TermSize {
  return {
    cols: clampDimension(cols, DEFAULT_TERM_SIZE.cols, MAX_TERM_SIZE.cols),
    rows: clampDimension(rows, DEFAULT_TERM_SIZE.rows, MAX_TERM_SIZE.rows),
  };
}

function clampDimension(n: number | undefined, fallback: number, max: number): number {
  if (typeof n !== 'number' || Number.isNaN(n) || n < 1) return fallback;
  return Math.min(Math.floor(n), max);
}

/** A header dimension: any whole number of zero or more (the size is clamped after parsing); may be left out. */
const dimension = z
  .number({ error: 'must be a number' })
  .min(0, 'must not be negative')
  .refine(Number.isInteger, 'must be a whole number')
  .optional();

/** The header as parsed: cols and rows are always there, and within MAX_TERM_SIZE. */
export const attachHeaderSchema = z
  .object({
    session: sessionIdSchema,
    operator: operatorNameSchema,
    readOnly: z.boolean(),
    cols: dimension,
    rows: dimension,
  })
  .strict()
  .transform((h) => ({ ...h, ...clampTermSize(h.cols, h.rows) }));
export type AttachHeader = z.infer<typeof attachHeaderSchema>;

export const attachReplySchema = z.union([
  z.object({ ok: z.literal(true), session: sessionEntrySchema }),
  z.object({ ok: z.literal(false), error: wireErrorSchema }),
]);
export type AttachReply = z.infer<typeof attachReplySchema>;
