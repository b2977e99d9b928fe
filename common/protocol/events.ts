/**
 * berth-events: what an agent pushes to a shell. On subscribe the agent sends `hello`, then one
 * `session` per session it has, then `synced` (the set is complete), then its `trash`; after that,
 * changes as they happen, and `stats` now and then.
 */
import { z } from 'zod';
import { operatorNameSchema, sessionIdSchema } from '../names';
import { hostStatsSchema, opIdSchema, wireErrorSchema } from './rpc';
import { limitsSchema, sessionEntrySchema } from './session';
import { MAX_TRASH_EVENT_ENTRIES, trashEntrySchema } from './trash';

export const helloEventSchema = z.object({
  type: z.literal('hello'),
  agent: z.string(),
  protocol: z.number().int(),
  version: z.string(),
  /** The git commit the agent was built from and when (see common/build-info.ts; older agents: absent). */
  commit: z.string().optional(),
  builtAt: z.string().optional(),
  hostname: z.string(),
  publishAddress: z.string(),
  capacity: z.object({
    cpus: z.number().int(),
    memoryMb: z.number(),
    maxSessions: z.number().int().nullable(),
    /** What a session gets by default and the most an operator may ask for (older agents: absent). */
    limits: z.object({ defaults: limitsSchema, max: limitsSchema }).optional(),
  }),
});

/**
 * A long op (a clone, a create that fetches its project) while it runs: pushed when it starts, when its phase changes, every second
 * meanwhile (with its progress so far), and once when it ends (`done` or `failed`, then it is
 * gone). A shell that subscribes gets the running ones after `synced`.
 */
export const jobSchema = z.object({
  opId: opIdSchema,
  op: z.enum(['clone', 'create', 'move']),
  operator: operatorNameSchema,
  /** The session it works on (a clone's source; the new session of a create). */
  session: sessionIdSchema,
  /** The session it makes (a clone's copy, a create's session), with its name; a move's: its agent to. */
  target: z.object({ id: sessionIdSchema, name: z.string().max(200) }).optional(),
  /** A clone measures, copies and finishes; a create on a project fetches its mirror first. */
  phase: z.enum(['fetching', 'measuring', 'copying', 'finishing', 'done', 'failed']),
  /** Bytes copied so far and in all, once known (null before). */
  bytesDone: z.number().int().nonnegative().nullable(),
  bytesTotal: z.number().int().nonnegative().nullable(),
  startedAt: z.string(),
  error: wireErrorSchema.optional(),
});
export type Job = z.infer<typeof jobSchema>;
export type JobPhase = Job['phase'];

export const eventSchema = z.discriminatedUnion('type', [
  helloEventSchema,
  z.object({ type: z.literal('session'), session: sessionEntrySchema }),
  z.object({ type: z.literal('session-removed'), id: sessionIdSchema }),
  z.object({ type: z.literal('synced'), count: z.number().int() }),
  z.object({ type: z.literal('stats'), stats: hostStatsSchema }),
  z.object({ type: z.literal('job'), job: jobSchema }),
  /** The agent's whole trash: after `synced`, then again at each change (see trash.ts). */
  z.object({ type: z.literal('trash'), trash: z.array(trashEntrySchema).max(MAX_TRASH_EVENT_ENTRIES) }),
  z.object({ type: z.literal('error'), error: z.object({ code: z.string(), message: z.string() }) }),
]);
export type AgentEvent = z.infer<typeof eventSchema>;
export type HelloEvent = z.infer<typeof helloEventSchema>;
