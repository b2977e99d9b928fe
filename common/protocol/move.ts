/**
 * berth-move: moving a session between agents, through the shell. Every channel starts with one
 * JSON header line from the shell and one JSON reply line from the agent. `export` then carries
 * the session folder as a tar stream from the agent to its end; `import` carries it the other way,
 * and after the shell's EOF the agent sends one more line: what it received (bytes, sha256). The
 * other ops are one header and one reply. See agent/session-move.ts for the protocol's invariant.
 */
import { z } from 'zod';
import { operatorNameSchema, sessionIdSchema } from '../names';
import { wireErrorSchema } from './rpc';
import { sessionMetaSchema } from './session';

/** One move's name on both agents: 16-64 letters and digits. */
export const moveTokenSchema = z.string().regex(/^[A-Za-z0-9]{16,64}$/, { error: 'must be 16-64 letters or digits' });
const agentIdSchema = z.string().min(1).max(64);
const byToken = { token: moveTokenSchema, session: sessionIdSchema };

export const moveHeaderSchema = z.discriminatedUnion('op', [
  /** Source: lock (op `move`), stop, write the marker. Returns whether it was running. */
  z.object({ op: z.literal('out-begin'), ...byToken, to: agentIdSchema }).strict(),
  /** Source: the tar stream of the session folder follows the reply. */
  z.object({ op: z.literal('out-export'), ...byToken }).strict(),
  /** Source: what the last complete export sent. */
  z.object({ op: z.literal('out-sums'), ...byToken }).strict(),
  /** Source, after the target committed: removes its copy. Idempotent. */
  z.object({ op: z.literal('out-finish'), ...byToken }).strict(),
  /** Source, when the target never committed: clears the marker, unlocks, starts it again if it ran. Idempotent. */
  z.object({ op: z.literal('out-cancel'), ...byToken }).strict(),
  /** Target: checks and reserves id, port and DNS name; makes the staging folder. */
  z.object({ op: z.literal('in-begin'), token: moveTokenSchema, from: agentIdSchema, meta: sessionMetaSchema, running: z.boolean() }).strict(),
  /** Target: the tar stream follows the reply; after EOF, one line of what was received. */
  z.object({ op: z.literal('in-import'), ...byToken }).strict(),
  /** Target: checks what it received against the source's sums, then commits. */
  z.object({ op: z.literal('in-commit'), ...byToken, bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict(),
  /** Target: lists the committed session (and starts it if it ran at the source). Idempotent. */
  z.object({ op: z.literal('in-confirm'), ...byToken }).strict(),
  /** Target: drops an uncommitted staging folder and its reservation; refuses a committed one. Idempotent. */
  z.object({ op: z.literal('in-abort'), ...byToken }).strict(),
  /** Target: where this move stands here. */
  z.object({ op: z.literal('in-status'), ...byToken }).strict(),
  /** Either: the moves this agent has half-done (for the shell's recovery). */
  z.object({ op: z.literal('pending') }).strict(),
]);
export type MoveHeader = z.infer<typeof moveHeaderSchema>;
export type MoveOp = MoveHeader['op'];

/** The envelope around a header: protocol version and the operator it is done for. */
export const moveEnvelopeSchema = z.object({ v: z.number().int(), operator: operatorNameSchema, req: z.unknown() });

export const moveSumsSchema = z.object({ bytes: z.number().int().nonnegative(), sha256: z.string() });
export type MoveSums = z.infer<typeof moveSumsSchema>;

export const moveStatusSchema = z.enum(['none', 'staged', 'committed', 'confirmed']);
export type MoveStatus = z.infer<typeof moveStatusSchema>;

export const movePendingSchema = z.object({
  /** Sessions here marked as moving out. */
  outgoing: z.array(z.object({ session: sessionIdSchema, to: z.string(), token: moveTokenSchema })),
  /** Moves coming in, staged or committed, not confirmed. */
  incoming: z.array(z.object({ session: sessionIdSchema, from: z.string(), token: moveTokenSchema, committed: z.boolean() })),
});
export type MovePending = z.infer<typeof movePendingSchema>;

export const moveReplySchema = z.union([
  z.object({ ok: z.literal(true), result: z.unknown() }),
  z.object({ ok: z.literal(false), error: wireErrorSchema }),
]);
export type MoveReply = z.infer<typeof moveReplySchema>;

/** What each op answers with (its `result`). */
export const moveResultSchemas = {
  'out-begin': z.object({ meta: sessionMetaSchema, running: z.boolean() }),
  'out-export': z.object({}),
  'out-sums': moveSumsSchema,
  'out-finish': z.object({}),
  'out-cancel': z.object({}),
  'in-begin': z.object({}),
  'in-import': z.object({}),
  'in-commit': z.object({}),
  'in-confirm': z.object({}),
  'in-abort': z.object({}),
  'in-status': z.object({ status: moveStatusSchema }),
  pending: movePendingSchema,
} satisfies Record<MoveOp, z.ZodType>;
export type MoveResult<O extends MoveOp> = z.infer<(typeof moveResultSchemas)[O]>;
