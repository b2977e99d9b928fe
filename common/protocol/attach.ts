/**
 * berth-attach: the shell sends one JSON header line; the agent answers with one JSON line (ok or
 * an error), then the channel carries raw terminal bytes both ways until either side closes it.
 */
import { z } from 'zod';
import { operatorNameSchema, sessionIdSchema } from '../names';
import { sessionEntrySchema } from './session';
import { wireErrorSchema } from './rpc';

const dimension = (max: number) => z.number().int().min(1).max(max);

export const attachHeaderSchema = z
  .object({
    session: sessionIdSchema,
    operator: operatorNameSchema,
    readOnly: z.boolean(),
    cols: dimension(1000),
    rows: dimension(500),
  })
  .strict();
export type AttachHeader = z.infer<typeof attachHeaderSchema>;

export const attachReplySchema = z.union([
  z.object({ ok: z.literal(true), session: sessionEntrySchema }),
  z.object({ ok: z.literal(false), error: wireErrorSchema }),
]);
export type AttachReply = z.infer<typeof attachReplySchema>;
