/** JSON text checked against a zod schema in one step: the value, or one line saying what is wrong. */
import { z } from 'zod';
import { messageOf } from './errors';
import { describeIssue } from './protocol/rpc';

export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

/** Parses `text` and checks it with `schema`; never throws. */
export function parseJson<S extends z.ZodType>(text: string, schema: S): Checked<z.output<S>> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    // Never the parser's own message: it quotes the text, which may be a file that is not ours.
    const at = /position (\d+)/.exec(messageOf(err));
    return { ok: false, problem: `not valid JSON${at ? ` (at character ${at[1]})` : ''}` };
  }
  const r = schema.safeParse(raw);
  return r.success ? { ok: true, value: r.data } : { ok: false, problem: describeIssue(r.error) };
}
