/**
 * berth-events: what an agent pushes to a shell. On subscribe the agent sends `hello`, then one
 * `session` per session it has, then `synced` (the set is complete); after that, changes as they
 * happen, and `stats` now and then.
 */
import { z } from 'zod';
import { sessionIdSchema } from '../names';
import { hostStatsSchema } from './rpc';
import { limitsSchema, sessionEntrySchema } from './session';

export const helloEventSchema = z.object({
  type: z.literal('hello'),
  agent: z.string(),
  protocol: z.number().int(),
  version: z.string(),
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

export const eventSchema = z.discriminatedUnion('type', [
  helloEventSchema,
  z.object({ type: z.literal('session'), session: sessionEntrySchema }),
  z.object({ type: z.literal('session-removed'), id: sessionIdSchema }),
  z.object({ type: z.literal('synced'), count: z.number().int() }),
  z.object({ type: z.literal('stats'), stats: hostStatsSchema }),
  z.object({ type: z.literal('error'), error: z.object({ code: z.string(), message: z.string() }) }),
]);
export type AgentEvent = z.infer<typeof eventSchema>;
export type HelloEvent = z.infer<typeof helloEventSchema>;
