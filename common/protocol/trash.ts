/**
 * The trash: where `delete` puts a session for a while (the agent's `trashHours`) before it is
 * purged; `restore` brings it back. Each agent pushes its whole trash (an event of kind `trash`)
 * after `synced` and whenever it changes; it is small (one entry per deleted session).
 */
import { z } from 'zod';
import { dnsNameSchema, protocolSchema, sessionIdSchema, sessionNameSchema } from '../names';

const isoDate = z.iso.datetime({ error: 'must be an ISO date-time' });

/** `deleted.json` in a trashed session's folder: when, by whom, and when it goes for good. */
export const deletedRecordSchema = z
  .object({
    deletedAt: isoDate,
    deletedBy: z.string().min(1).max(64),
    purgeAt: isoDate,
  })
  .strict();
export type DeletedRecord = z.infer<typeof deletedRecordSchema>;

/** One trashed session as the agent tells it: what restore needs to decide, and the record. */
export const trashEntrySchema = z.object({
  id: sessionIdSchema,
  name: sessionNameSchema,
  protocol: protocolSchema,
  /** The port it held (released while it is in the trash; restore takes it again). */
  port: z.number().int().min(0).max(65535),
  /** Its DNS name: still reserved cluster-wide while it is in the trash. */
  dns: dnsNameSchema,
  deletedAt: isoDate,
  deletedBy: z.string().min(1).max(64),
  purgeAt: isoDate,
});
export type TrashEntry = z.infer<typeof trashEntrySchema>;

/** The most entries one `trash` event carries (an agent tells its newest ones). */
export const MAX_TRASH_EVENT_ENTRIES = 10_000;
